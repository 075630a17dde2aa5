//! Counts messages the bridge drops on purpose — a full bounded queue, a batch lost to a Redis
//! error — and warns about them at most once per second per counter. Dropping is how overload
//! stays bounded in memory; the rate limit keeps it from turning into a log flood.

use crate::limits::DROP_WARNING_INTERVAL_MS;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One kind of drop: a running total and a rate-limited warning.
#[derive(Debug)]
pub struct DropCounter {
    what: &'static str,
    dropped_total: AtomicU64,
    started: Instant,
    /// Milliseconds since `started` of the last warning, offset by [`DROP_WARNING_INTERVAL_MS`] so that
    /// the very first drop warns at once.
    last_warn_ms: AtomicU64,
}

impl DropCounter {
    /// A counter whose warnings say `what` was dropped.
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            dropped_total: AtomicU64::new(0),
            started: Instant::now(),
            last_warn_ms: AtomicU64::new(0),
        }
    }

    /// Records `count` dropped messages; warns unless this counter warned within the last second.
    pub fn add(&self, count: u64) {
        let total = self.dropped_total.fetch_add(count, Ordering::Relaxed) + count;
        let elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now_ms = elapsed_ms.saturating_add(DROP_WARNING_INTERVAL_MS);
        let last_ms = self.last_warn_ms.load(Ordering::Relaxed);
        if now_ms >= last_ms.saturating_add(DROP_WARNING_INTERVAL_MS)
            && self
                .last_warn_ms
                .compare_exchange(last_ms, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(dropped_total = total, "dropped {}", self.what);
        }
    }

    /// Messages dropped since start.
    pub fn total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }
}

/// Every drop counter of the process, shared by the tasks (inside
/// [`BridgeCounters`](crate::counters::BridgeCounters)).
#[derive(Debug)]
pub struct Drops {
    /// Publishes refused because the publisher queue was full.
    pub publish_queue_full: DropCounter,
    /// Publishes lost with a batch that Redis did not take.
    pub publish_failed: DropCounter,
    /// Deliveries to an engine shard refused because its link writer queue was full.
    pub delivery_queue_full: DropCounter,
    /// Acknowledgements (`Subscribed`) refused because the link writer queue was full.
    pub ack_queue_full: DropCounter,
    /// Redis messages refused because the hub queue was full.
    pub hub_queue_full: DropCounter,
    /// Presence changes or queries Redis did not carry out (a query is then answered empty; a
    /// change is restated by its shard once Redis is back).
    pub presence_failed: DropCounter,
}

impl Drops {
    /// All counters at zero.
    pub fn new() -> Self {
        Self {
            publish_queue_full: DropCounter::new("publishes: publisher queue full"),
            publish_failed: DropCounter::new("publishes: redis did not take the batch"),
            delivery_queue_full: DropCounter::new("deliveries to an engine shard: link queue full"),
            ack_queue_full: DropCounter::new(
                "acknowledgements to an engine shard: link queue full",
            ),
            hub_queue_full: DropCounter::new("redis messages: hub queue full"),
            presence_failed: DropCounter::new("presence changes or queries: redis failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_drop() {
        let counter = DropCounter::new("things");
        counter.add(1);
        counter.add(41);
        assert_eq!(counter.total(), 42);
    }
}
