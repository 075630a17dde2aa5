//! [`LinkState`]: the shard's side of its link to the bridge as data: whether it is up, the
//! messages queued for the bridge, the announcements waiting for `Subscribed`, the bridge's
//! latest counters, and the webhook settings and events the link carries. What the shard does
//! with the link is in `bridge` (and `webhooks`).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::message::AppIndex;
use crate::app::{AppTable, WebhookEventType};
use crate::limits::{COUNTS_DIRTY_MAX, HOOKS_WAITING_MAX, LINK_QUEUE_MAX};
use crate::link::{self, BridgeStats, HookEvent, LinkMessage};
use crate::webhook_config;

/// Webhook events waiting for the link.
pub(super) type HooksWaiting = VecDeque<HookEvent>;

/// Channels whose subscription count changed since the last tick.
pub(super) type CountsDirty = ahash::AHashSet<(AppIndex, Arc<str>)>;

/// What became of a webhook event handed to the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HookHandOff {
    /// Queued for the bridge.
    Sent,
    /// Kept until the link is back.
    Waiting,
    /// Dropped: the link's queue or the waiting queue is full.
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
    /// The webhook settings sent after every `Hello`.
    webhook_config: Option<Bytes>,
    /// Per app: the webhook event kinds wanted (`webhook_config::wanted_kinds`).
    hook_kinds: Vec<u8>,
    /// Webhook events made while the link was down.
    hooks_waiting: HooksWaiting,
    /// Channels whose local subscription count changed since the last tick (apps that want
    /// `subscription_count` only).
    counts_dirty: CountsDirty,
    /// The link is connected and greeted.
    up: bool,
    /// Messages for the bridge, in order.
    out: VecDeque<LinkMessage>,
    /// Announcements waiting for `Subscribed`, oldest first: (deadline, app, channel, seq).
    /// Entries already answered are skipped when they expire.
    acks_due: VecDeque<(u64, AppIndex, Arc<str>, u32)>,
    /// The bridge's latest counters (while the link is up).
    bridge_stats: Option<BridgeStats>,
}

impl LinkState {
    /// A link that is down. `enabled`: the node runs with a bridge; `cluster`: as one of
    /// several nodes.
    pub fn new(enabled: bool, cluster: bool, apps: &AppTable) -> Self {
        let configs = (0..apps.len() as u32).map(|index| apps.get(index));
        LinkState {
            enabled,
            cluster: enabled && cluster,
            // Always sent: a bridge learns that no app wants webhooks too (with several nodes
            // it still takes its share of the cluster's due leave events, and drops them).
            webhook_config: Some(
                webhook_config::link_json(configs.clone())
                    .unwrap_or_else(|| Bytes::from_static(b"{\"apps\":[]}")),
            ),
            hook_kinds: configs.map(webhook_config::wanted_kinds).collect(),
            ..Default::default()
        }
    }

    /// True when the node is one of several (channels announced, presence cluster-wide).
    pub(super) fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// Hands a webhook event to the bridge, or keeps it (bounded by [`HOOKS_WAITING_MAX`])
    /// until the link is back; says which, so the shard can count it.
    pub(super) fn hand_hook(&mut self, event: HookEvent) -> HookHandOff {
        if self.is_up() {
            if self.queued() < LINK_QUEUE_MAX {
                self.push(LinkMessage::Hook(event));
                return HookHandOff::Sent;
            }
        } else if self.hooks_waiting.len() < HOOKS_WAITING_MAX {
            self.hooks_waiting.push_back(event);
            return HookHandOff::Waiting;
        }
        HookHandOff::Dropped
    }

    /// After `Hello`: queues the webhook events made while the link was down; how many.
    pub(super) fn flush_waiting_hooks(&mut self) -> u64 {
        let mut sent = 0;
        while let Some(event) = self.hooks_waiting.pop_front() {
            self.push(LinkMessage::Hook(event));
            sent += 1;
        }
        sent
    }

    /// Notes that `channel`'s local subscription count changed; false when the table is full
    /// (at [`COUNTS_DIRTY_MAX`] channels), so the caller reports this one at once.
    pub(super) fn mark_count_changed(&mut self, app: AppIndex, channel: &Arc<str>) -> bool {
        let key = (app, channel.clone());
        if self.counts_dirty.len() < COUNTS_DIRTY_MAX || self.counts_dirty.contains(&key) {
            self.counts_dirty.insert(key);
            return true;
        }
        false
    }

    /// The channels whose count changed since the last call.
    pub(super) fn take_changed_counts(&mut self) -> CountsDirty {
        std::mem::take(&mut self.counts_dirty)
    }

    /// True while the link is connected and greeted.
    pub(super) fn is_up(&self) -> bool {
        self.up
    }

    /// True while linked as one node of several.
    pub(super) fn is_cluster_up(&self) -> bool {
        self.up && self.cluster
    }

    /// Queues a message for the bridge (membership messages are bounded by the members held).
    pub(super) fn push(&mut self, message: LinkMessage) {
        self.out.push_back(message);
    }

    /// Messages waiting for the link writer.
    pub(super) fn queued(&self) -> usize {
        self.out.len()
    }

    /// True when some webhook of the app wants events of `kind` (and a bridge sends them).
    pub(super) fn wants_hook(&self, app: AppIndex, kind: WebhookEventType) -> bool {
        self.enabled
            && self
                .hook_kinds
                .get(app as usize)
                .is_some_and(|mask| mask & webhook_config::kind_bit(kind) != 0)
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
        if let Some(config) = &self.webhook_config {
            self.out
                .push_back(LinkMessage::WebhookConfig(config.clone()));
        }
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
        self.counts_dirty.clear();
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

    /// A first local subscriber (several nodes, linked): `Subscribe` for the bridge, and its
    /// `Subscribed` is awaited until `deadline_ms`. False (nothing sent) when not linked as one
    /// node of several.
    pub(super) fn announce(
        &mut self,
        app_id: String,
        app: AppIndex,
        channel: &Arc<str>,
        seq: u32,
        deadline_ms: u64,
    ) -> bool {
        if !self.is_cluster_up() {
            return false;
        }
        self.out.push_back(LinkMessage::Subscribe {
            app_id,
            channel: channel.to_string(),
            seq,
        });
        self.acks_due
            .push_back((deadline_ms, app, channel.clone(), seq));
        true
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
