//! [`LinkState`]: the shard's side of its link to the bridge as data: whether it is up, the
//! messages queued for the bridge, the announcements waiting for `Subscribed`, the bridge's
//! latest counters, and the webhook state ([`HookState`]) whose events the link carries. Every
//! message goes out through one of its methods, which know when it may be sent (linked, one
//! node of several, queue not full). What the shard does with the link is in `bridge`.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;

use super::hook_state::HookState;
use super::message::AppIndex;
use crate::app::{AppTable, WebhookEventType};
use crate::limits::{LINK_ACK_TIMEOUT_MS, LINK_QUEUE_MAX};
use crate::link::{self, BridgeStats, HookEvent, LinkMessage};

/// What became of a webhook event handed to the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HookHandOff {
    /// Queued for the bridge.
    Sent,
    /// Kept until the link is back.
    Waiting,
    /// Dropped: the link's queue or the waiting queue is full.
    Dropped,
    /// Not queued, restated after a relink (the queue is full).
    Resync,
}

/// Events that are state: the resync after `Hello` restates them (occupancy, presence members,
/// subscription counts), so a full queue costs a relink, not the event.
fn restated_by_resync(kind: WebhookEventType) -> bool {
    matches!(
        kind,
        WebhookEventType::ChannelOccupied
            | WebhookEventType::ChannelVacated
            | WebhookEventType::MemberAdded
            | WebhookEventType::MemberRemoved
            | WebhookEventType::SubscriptionCount
    )
}

/// What became of an event relayed to the other nodes ([`LinkState::relay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relay {
    /// The node is alone: there is nobody to relay to.
    Alone,
    /// Queued for the bridge.
    Queued,
    /// Dropped: the link is down or its queue is full.
    Dropped,
}

/// The link's state inside a shard.
#[derive(Debug, Default)]
pub struct LinkState {
    /// The node runs with a bridge (several nodes, or webhooks).
    pub enabled: bool,
    /// The node is one of several (`--adapter-driver redis`): channels are announced,
    /// publishes relayed and presence is cluster-wide.
    cluster: bool,
    /// Webhook settings, wanted kinds, events waiting for the link, changed counts.
    hooks: HookState,
    /// The link is connected and greeted.
    up: bool,
    /// Messages for the bridge, in order.
    out: VecDeque<LinkMessage>,
    /// Announcements waiting for `Subscribed`, oldest first: (deadline, app, channel, seq).
    /// Entries already answered are skipped when they expire.
    acks_due: VecDeque<(u64, AppIndex, Arc<str>, u32)>,
    /// The bridge's latest counters (while the link is up).
    bridge_stats: Option<BridgeStats>,
    /// A change the cluster must know (a member, an occupancy) found the queue full: instead of
    /// losing it, the shell ends the link, and the next `Hello` restates everything.
    relink_due: bool,
}

impl LinkState {
    /// A link that is down. `enabled`: the node runs with a bridge; `cluster`: as one of
    /// several nodes.
    pub fn new(enabled: bool, cluster: bool, apps: &AppTable) -> Self {
        LinkState {
            enabled,
            cluster: enabled && cluster,
            hooks: HookState::new(enabled, apps),
            ..Default::default()
        }
    }

    /// True when the node is one of several (channels announced, presence cluster-wide).
    pub(super) fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The webhook state.
    pub(super) fn hooks(&self) -> &HookState {
        &self.hooks
    }

    /// The webhook state, for update.
    pub(super) fn hooks_mut(&mut self) -> &mut HookState {
        &mut self.hooks
    }

    /// Hands a webhook event to the bridge; says what became of it, so the shard can count
    /// it. While the link is down, its queue is full or older events wait, the event waits
    /// too, in order (bounded by `HOOKS_WAITING_MAX`). With several nodes an event that is
    /// state the resync restates (occupancy, members, counts) asks for a relink on a full
    /// queue instead.
    pub(super) fn hand_hook(&mut self, event: HookEvent) -> HookHandOff {
        if self.up && self.relink_due {
            return HookHandOff::Resync;
        }
        let full = self.out.len() >= LINK_QUEUE_MAX;
        if self.up && full && self.cluster && restated_by_resync(event.kind) {
            self.relink_due = true;
            return HookHandOff::Resync;
        }
        if self.up && !full && !self.hooks.has_waiting() {
            self.out.push_back(LinkMessage::Hook(event));
            return HookHandOff::Sent;
        }
        match self.hooks.keep(event) {
            true => HookHandOff::Waiting,
            false => HookHandOff::Dropped,
        }
    }

    /// While linked: queues the webhook events that waited (the link was down or its queue
    /// full), oldest first; how many.
    pub(super) fn flush_waiting_hooks(&mut self) -> u64 {
        if !self.up {
            return 0;
        }
        let waiting = self.hooks.take_waiting();
        let sent = waiting.len() as u64;
        self.out.extend(waiting.into_iter().map(LinkMessage::Hook));
        sent
    }

    /// An event for the other nodes (a publish, a user command): built by `make` only when it
    /// can go, and queued unless the link is down or its queue is full.
    pub(super) fn relay(&mut self, make: impl FnOnce() -> LinkMessage) -> Relay {
        if !self.cluster {
            return Relay::Alone;
        }
        if !self.up || self.out.len() >= LINK_QUEUE_MAX {
            return Relay::Dropped;
        }
        self.out.push_back(make());
        Relay::Queued
    }

    /// A message for the cluster's state (members, queries, resync): queued, built by `make`,
    /// when linked as one node of several; false (nothing queued) otherwise. When the queue is
    /// full the message is not queued but not lost either: the link is to be ended
    /// ([`Self::take_relink`]) and the next `Hello` restates the shard's whole state (a
    /// question then goes on without the bridge, as on any link loss).
    pub(super) fn send_to_cluster(&mut self, make: impl FnOnce() -> LinkMessage) -> bool {
        if !self.is_cluster_up() {
            return false;
        }
        if self.relink_due || self.out.len() >= LINK_QUEUE_MAX {
            self.relink_due = true;
            return true;
        }
        self.out.push_back(make());
        true
    }

    /// True once after a change could not be queued: the shell ends the link (and links
    /// again), so the change reaches the cluster with the resync instead of being lost.
    pub(super) fn take_relink(&mut self) -> bool {
        std::mem::take(&mut self.relink_due)
    }

    /// True while the link is connected and greeted.
    pub(super) fn is_up(&self) -> bool {
        self.up
    }

    /// True while linked as one node of several.
    pub(super) fn is_cluster_up(&self) -> bool {
        self.up && self.cluster
    }

    /// Messages waiting for the link writer.
    pub(super) fn queued(&self) -> usize {
        self.out.len()
    }

    /// The link came up: forget what was queued for the old one, then `Hello` and the webhook
    /// settings first.
    pub(super) fn greet(&mut self, shard: u16, shard_count: u16) {
        self.up = true;
        self.out.clear();
        self.out.push_back(LinkMessage::Hello {
            version: link::VERSION,
            shard,
            shard_count,
            cluster: self.cluster,
        });
        self.out
            .push_back(LinkMessage::WebhookConfig(self.hooks.config().clone()));
    }

    /// The link went down: nothing queued or awaited stays (the resync after the next `Hello`
    /// states everything again). False when it was not up.
    pub(super) fn go_down(&mut self) -> bool {
        if !self.up {
            return false;
        }
        self.up = false;
        self.out.clear();
        self.acks_due.clear();
        self.bridge_stats = None;
        self.hooks.forget_changed_counts();
        true
    }

    /// Encodes everything queued into `out`; returns how many messages could not be encoded
    /// (names are validated before they get here; an oversized event is dropped).
    pub(super) fn encode_queued(&mut self, out: &mut BytesMut) -> u64 {
        let mut dropped = 0;
        while let Some(message) = self.out.pop_front() {
            if link::encode(&message, out).is_err() {
                dropped += 1;
            }
        }
        dropped
    }

    /// The bridge's latest counters, while linked.
    pub(super) fn bridge_stats(&self) -> Option<&BridgeStats> {
        self.bridge_stats.as_ref()
    }

    /// The bridge sent its counters.
    pub(super) fn set_bridge_stats(&mut self, stats: BridgeStats) {
        self.bridge_stats = Some(stats);
    }

    /// A message for the bridge while linked (answers to its questions, authorizations):
    /// false (nothing queued) when the link is down.
    pub(super) fn send(&mut self, message: LinkMessage) -> bool {
        if !self.up {
            return false;
        }
        self.out.push_back(message);
        true
    }

    /// A first local subscriber (several nodes, linked): `Subscribe` for the bridge, and its
    /// `Subscribed` is awaited for [`LINK_ACK_TIMEOUT_MS`] from `now_ms`. False (nothing sent,
    /// nothing to wait for) when not linked as one node of several, or when the queue is full
    /// (the link is then to be ended: the next `Hello` announces the channel).
    pub(super) fn announce(
        &mut self,
        app_id: &str,
        app: AppIndex,
        channel: &Arc<str>,
        seq: u32,
        now_ms: u64,
    ) -> bool {
        if !self.is_cluster_up() {
            return false;
        }
        if self.relink_due || self.out.len() >= LINK_QUEUE_MAX {
            self.relink_due = true;
            return false;
        }
        self.out.push_back(LinkMessage::Subscribe {
            app_id: app_id.to_owned(),
            channel: channel.to_string(),
            seq,
        });
        let deadline_ms = now_ms + LINK_ACK_TIMEOUT_MS;
        self.acks_due
            .push_back((deadline_ms, app, channel.clone(), seq));
        true
    }

    /// The last local subscriber of a channel left (several nodes, linked): `Unsubscribe`.
    pub(super) fn withdraw(&mut self, app_id: &str, channel: &str) {
        self.send_to_cluster(|| LinkMessage::Unsubscribe {
            app_id: app_id.to_owned(),
            channel: channel.to_owned(),
        });
    }

    /// The oldest announcement whose `Subscribed` is overdue at `now_ms`, taken out.
    pub(super) fn pop_overdue_ack(&mut self, now_ms: u64) -> Option<(AppIndex, Arc<str>, u32)> {
        if self
            .acks_due
            .front()
            .is_some_and(|(deadline_ms, ..)| *deadline_ms <= now_ms)
        {
            self.acks_due
                .pop_front()
                .map(|(_, app, channel, seq)| (app, channel, seq))
        } else {
            None
        }
    }

    /// An announcement was answered: drop its timer (the queue stays as short as the acks in
    /// flight).
    pub(super) fn ack_answered(&mut self, app: AppIndex, channel: &str, seq: u32) {
        if let Some(position) = self
            .acks_due
            .iter()
            .position(|(_, a, c, s)| *a == app && &**c == channel && *s == seq)
        {
            self.acks_due.remove(position);
        }
    }
}
