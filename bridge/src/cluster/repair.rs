//! [`PresenceRepair`]: which engine shards' presence (members and channel occupancy) must be
//! stated again because a change of theirs did not reach Redis. The presence task marks a
//! shard when one of its joins, leaves or resyncs fails (Redis down, frozen or timing out);
//! once Redis has answered again for a grace period (long enough for every node's subscriber
//! to be back on its channels, so the restated events reach them) it makes every marked shard
//! due, and that shard's link ends with
//! "resync": the engine links again, says Hello and restates everything it holds, so the
//! cluster's state and its member / occupancy events come out right instead of one change
//! being lost for good. One relink per outage, not one per failure. When Redis itself was away
//! (the heartbeat failed), every shard restates: a restarted Redis may have forgotten all of
//! it. A restated member other nodes knew already is announced to them again (`member_added`
//! for a user they have, which clients treat as an update); one they did not know is not lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ringcast_core::limits::SHARD_COUNT_MAX;
use tokio::sync::Notify;

// One bit per shard.
const _: () = assert!(SHARD_COUNT_MAX as u32 <= u64::BITS);

/// Shards with lost changes, and shards due for a resync.
#[derive(Debug)]
pub struct PresenceRepair {
    /// Bit `s`: a change of shard `s` failed and is not restated yet.
    lost: AtomicU64,
    /// Milliseconds since `epoch` (plus one) at which Redis answered again after the last
    /// failure; 0: it has not yet.
    back_at_ms: AtomicU64,
    /// How long Redis must be back before the lost shards restate.
    grace_ms: u64,
    epoch: Instant,
    /// Bit `s`: shard `s`'s link is to end so that its engine restates its presence.
    due: AtomicU64,
    /// Wakes the link readers when shards become due.
    changed: Notify,
}

fn bit(shard: u16) -> u64 {
    1u64.checked_shl(u32::from(shard)).unwrap_or(0)
}

impl PresenceRepair {
    /// Nothing lost; lost shards restate once Redis has been back for `grace_ms`.
    pub fn new(grace_ms: u64) -> Self {
        PresenceRepair {
            lost: AtomicU64::new(0),
            back_at_ms: AtomicU64::new(0),
            grace_ms,
            epoch: Instant::now(),
            due: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// A change of `shard` did not reach Redis.
    pub fn mark_lost(&self, shard: u16) {
        self.lost.fetch_or(bit(shard), Ordering::SeqCst);
        self.back_at_ms.store(0, Ordering::SeqCst);
    }

    /// Redis itself failed (the heartbeat did not get through): it may come back empty, so
    /// every shard of the node restates its presence once it answers again.
    pub fn mark_all_lost(&self) {
        self.lost.store(u64::MAX, Ordering::SeqCst);
        self.back_at_ms.store(0, Ordering::SeqCst);
    }

    /// True while some shard has a lost change (the presence task probes Redis meanwhile).
    pub fn has_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst) != 0
    }

    /// Redis answered: the grace period starts (if something is lost and it has not yet).
    pub fn redis_answered(&self) {
        if self.has_lost() {
            let now_ms = self.now_ms();
            let _ = self
                .back_at_ms
                .compare_exchange(0, now_ms, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// Once Redis has been back for the grace period: every shard with a lost change is due
    /// for a resync (called each second while something is lost).
    pub fn promote(&self) {
        let back_at_ms = self.back_at_ms.load(Ordering::SeqCst);
        if back_at_ms == 0 || self.now_ms() < back_at_ms + self.grace_ms {
            return;
        }
        self.back_at_ms.store(0, Ordering::SeqCst);
        let lost = self.lost.swap(0, Ordering::SeqCst);
        if lost != 0 {
            self.due.fetch_or(lost, Ordering::SeqCst);
            self.changed.notify_waiters();
        }
    }

    /// Takes `shard`'s due flag: true once per repair.
    pub fn take_due(&self, shard: u16) -> bool {
        self.due.fetch_and(!bit(shard), Ordering::SeqCst) & bit(shard) != 0
    }

    /// A shard's link started: its Hello restates everything, so nothing is due for it.
    pub fn linked(&self, shard: u16) {
        self.due.fetch_and(!bit(shard), Ordering::SeqCst);
    }

    /// Resolves when shards may have become due. Create it before [`Self::take_due`] so that
    /// no wake-up between the two is missed.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_change_makes_its_shard_due_once_redis_answers() {
        let repair = PresenceRepair::new(0);
        repair.mark_lost(3);
        repair.mark_lost(3);
        assert!(repair.has_lost());
        repair.promote();
        assert!(!repair.take_due(3), "not while Redis is away");
        repair.redis_answered();
        repair.promote();
        assert!(!repair.has_lost());
        assert!(repair.take_due(3));
        assert!(!repair.take_due(3), "once");
        assert!(!repair.take_due(2), "only the shard that lost a change");
    }

    #[test]
    fn a_new_link_clears_what_was_due() {
        let repair = PresenceRepair::new(0);
        repair.mark_lost(0);
        repair.redis_answered();
        repair.promote();
        repair.linked(0);
        assert!(!repair.take_due(0));
    }

    #[test]
    fn the_shards_wait_for_the_grace_period_and_a_new_failure_restarts_it() {
        let repair = PresenceRepair::new(60_000);
        repair.mark_lost(2);
        repair.redis_answered();
        repair.promote();
        assert!(!repair.take_due(2), "Redis has not been back long enough");
        repair.mark_all_lost();
        assert_eq!(
            repair.back_at_ms.load(Ordering::SeqCst),
            0,
            "a failure restarts the wait"
        );
    }

    #[tokio::test]
    async fn waiting_readers_are_woken() {
        let repair = std::sync::Arc::new(PresenceRepair::new(0));
        let notified = repair.notified();
        repair.mark_lost(1);
        repair.redis_answered();
        repair.promote();
        tokio::time::timeout(std::time::Duration::from_secs(5), notified)
            .await
            .expect("woken");
        assert!(repair.take_due(1));
    }
}
