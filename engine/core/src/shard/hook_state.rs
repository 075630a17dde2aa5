//! [`HookState`]: what a shard keeps for webhooks: the settings sent after every `Hello`, the
//! event kinds each app wants, the events made while the link is down, and the channels whose
//! subscription count changed since the last tick. What the shard reports is in `webhooks`;
//! handing events to the link is [`super::link_state::LinkState::hand_hook`].

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::message::AppIndex;
use crate::app::{AppTable, WebhookEventType};
use crate::limits::{COUNTS_DIRTY_MAX, HOOKS_WAITING_MAX};
use crate::link::HookEvent;
use crate::webhook_config;

/// Channels whose subscription count changed since the last tick.
pub(super) type CountsDirty = ahash::AHashSet<(AppIndex, Arc<str>)>;

/// The shard's webhook state.
#[derive(Debug, Default)]
pub(super) struct HookState {
    /// The webhook settings sent after every `Hello`.
    config: Bytes,
    /// Per app: the webhook event kinds wanted (`webhook_config::wanted_kinds`); empty when the
    /// node runs without a bridge (nobody would send them).
    kinds: Vec<u8>,
    /// Webhook events made while the link was down, oldest first (at most
    /// [`HOOKS_WAITING_MAX`]).
    waiting: VecDeque<HookEvent>,
    /// Channels whose local subscription count changed since the last tick (apps that want
    /// `subscription_count` only; at most [`COUNTS_DIRTY_MAX`]).
    counts_dirty: CountsDirty,
}

impl HookState {
    /// The settings of `apps`; `bridged`: a bridge sends the events.
    pub(super) fn new(bridged: bool, apps: &AppTable) -> Self {
        let configs = (0..apps.len() as u32).map(|index| apps.get(index));
        HookState {
            // Always sent: a bridge learns that no app wants webhooks too (with several nodes
            // it still takes its share of the cluster's due leave events, and drops them).
            config: webhook_config::link_json(configs.clone())
                .unwrap_or_else(|| Bytes::from_static(b"{\"apps\":[]}")),
            kinds: if bridged {
                configs.map(webhook_config::wanted_kinds).collect()
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }

    /// The settings document for the bridge.
    pub(super) fn config(&self) -> &Bytes {
        &self.config
    }

    /// True when some webhook of the app wants events of `kind` (and a bridge sends them).
    pub(super) fn wants(&self, app: AppIndex, kind: WebhookEventType) -> bool {
        self.kinds
            .get(app as usize)
            .is_some_and(|mask| mask & webhook_config::kind_bit(kind) != 0)
    }

    /// Keeps an event until the link is back; false (dropped) when the queue is full.
    pub(super) fn keep(&mut self, event: HookEvent) -> bool {
        if self.waiting.len() >= HOOKS_WAITING_MAX {
            return false;
        }
        self.waiting.push_back(event);
        true
    }

    /// True while events wait for the link.
    pub(super) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The events kept while the link was down or full, oldest first.
    pub(super) fn take_waiting(&mut self) -> VecDeque<HookEvent> {
        std::mem::take(&mut self.waiting)
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

    /// The link went down: changed counts are not kept (the resync after `Hello` reports
    /// every count).
    pub(super) fn forget_changed_counts(&mut self) {
        self.counts_dirty.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(n: usize) -> HookEvent {
        HookEvent {
            app_id: "1".into(),
            channel: format!("c{n}"),
            kind: WebhookEventType::ChannelOccupied,
            body: Bytes::new(),
        }
    }

    #[test]
    fn the_waiting_queue_is_bounded_and_kept_in_order() {
        let mut hooks = HookState::default();
        for n in 0..HOOKS_WAITING_MAX {
            assert!(hooks.keep(event(n)));
        }
        assert!(!hooks.keep(event(HOOKS_WAITING_MAX)), "full: dropped");
        let waiting = hooks.take_waiting();
        assert_eq!(waiting.len(), HOOKS_WAITING_MAX);
        assert_eq!(waiting[0].channel, "c0");
        assert!(hooks.take_waiting().is_empty());
    }

    #[test]
    fn changed_counts_are_bounded_but_a_channel_already_noted_stays_noted() {
        let mut hooks = HookState::default();
        for n in 0..COUNTS_DIRTY_MAX {
            assert!(hooks.mark_count_changed(0, &Arc::from(format!("c{n}").as_str())));
        }
        assert!(
            hooks.mark_count_changed(0, &Arc::from("c0")),
            "already noted"
        );
        assert!(
            !hooks.mark_count_changed(0, &Arc::from("new")),
            "full: report at once"
        );
        assert_eq!(hooks.take_changed_counts().len(), COUNTS_DIRTY_MAX);
        assert!(hooks.mark_count_changed(0, &Arc::from("new")));
    }
}
