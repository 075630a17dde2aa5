//! The webhook events a shard sees first and hands to the bridge, which filters, delays,
//! batches and sends them (`docs/cluster.md`, "Built: webhooks"): client events and cache misses
//! where they happen; a channel's node-wide first subscriber and last leave (`channel_occupied`
//! / `channel_vacated`) and, on a single node, a presence user's first join and last leave at
//! the channel's owner shard.
//!
//! The owner sees every shard's interest announcements in order, so it knows the node's
//! occupancy exactly and without extra messages. Events made while the bridge is away wait in
//! a bounded queue and go out after the next `Hello`; a restarted bridge therefore misses
//! nothing the engine saw, up to that bound.
//!
//! `subscription_count` is state, not an event: each shard reports its own count of a channel
//! (at most once per tick, the latest value, so a burst of subscribes costs one report) and the
//! bridge sums the shards. Nothing waits while the link is down; after `Hello` every counted
//! channel is reported again, so a new bridge starts from the truth.

use std::sync::Arc;

use crate::app::WebhookEventType;
use crate::link::HookEvent;
use crate::webhook_config::{client_event_body, event_body, subscription_count_body};

use super::link_state::HookHandOff;
use super::message::AppIndex;
use super::Shard;

/// Presence channels have member events and `user_count` instead (as Pusher does).
fn counts_subscriptions(channel: &str) -> bool {
    !channel.starts_with("presence-")
}

impl Shard {
    /// True when some webhook of the app wants events of `kind` (and a bridge sends them).
    pub(super) fn wants_hook(&self, app: AppIndex, kind: WebhookEventType) -> bool {
        self.link.hooks().wants(app, kind)
    }

    /// Hands one event to the bridge, or keeps it until the link is back.
    fn hook(&mut self, app: AppIndex, kind: WebhookEventType, channel: &str, body: String) {
        let event = HookEvent {
            app_id: self.apps.get(app).id.clone(),
            channel: channel.to_owned(),
            kind,
            body: body.into(),
        };
        match self.link.hand_hook(event) {
            HookHandOff::Sent => self.stats.webhook_events_out += 1,
            HookHandOff::Waiting => {}
            HookHandOff::Dropped => self.stats.webhook_events_dropped += 1,
            HookHandOff::Resync => {}
        }
    }

    /// True when the app wants either event of a pair: both go to the bridge, which needs the
    /// join to cancel a delayed leave even when only the leave is sent on.
    fn wants_pair(&self, app: AppIndex, join: WebhookEventType, leave: WebhookEventType) -> bool {
        self.wants_hook(app, join) || self.wants_hook(app, leave)
    }

    /// At the channel's owner: the node's occupancy of `channel` went from `was` to `is`.
    /// Several nodes: the bridge turns the node's occupancy into the cluster's; while the link
    /// is down nothing waits (the resync after `Hello` states the node's occupancy instead).
    pub(super) fn hook_occupancy(&mut self, app: AppIndex, channel: &str, was: bool, is: bool) {
        let kind = match (was, is) {
            (false, true) => WebhookEventType::ChannelOccupied,
            (true, false) => WebhookEventType::ChannelVacated,
            _ => return,
        };
        let pair = (
            WebhookEventType::ChannelOccupied,
            WebhookEventType::ChannelVacated,
        );
        if !self.wants_pair(app, pair.0, pair.1)
            || (self.link.is_cluster() && !self.link.is_up())
            || self.owner_of(app, channel) != self.settings.shard_index
        {
            return;
        }
        let body = event_body(kind, channel, None);
        self.hook(app, kind, channel, body);
    }

    /// At the owner after `Hello` (several nodes): `channel_occupied` for every channel this
    /// shard owns that the node holds, so the bridge can replace what the cluster had for it.
    pub(super) fn resync_occupancy(&mut self) {
        let pair = (
            WebhookEventType::ChannelOccupied,
            WebhookEventType::ChannelVacated,
        );
        for app in 0..self.apps.len() as AppIndex {
            if !self.wants_pair(app, pair.0, pair.1) {
                continue;
            }
            let held: Vec<String> = self
                .registry
                .channels_of(app)
                .filter(|(_, entry)| entry.announced || entry.remote_interest != 0)
                .map(|(name, _)| name.to_string())
                .collect();
            for channel in held {
                if self.owner_of(app, &channel) == self.settings.shard_index {
                    let body = event_body(pair.0, &channel, None);
                    self.hook(app, pair.0, &channel, body);
                }
            }
        }
    }

    /// At the owner, on a single node (several nodes: the bridge decides, cluster-wide): a
    /// user's first join or last leave of a presence channel.
    pub(super) fn hook_member(&mut self, app: AppIndex, channel: &str, user_id: &str, added: bool) {
        let kind = if added {
            WebhookEventType::MemberAdded
        } else {
            WebhookEventType::MemberRemoved
        };
        let pair = (
            WebhookEventType::MemberAdded,
            WebhookEventType::MemberRemoved,
        );
        if self.link.is_cluster() || !self.wants_pair(app, pair.0, pair.1) {
            return;
        }
        let body = event_body(kind, channel, Some(user_id));
        self.hook(app, kind, channel, body);
    }

    /// At the owner: a subscriber of a cache channel found no cached event.
    pub(super) fn hook_cache_miss(&mut self, app: AppIndex, channel: &str) {
        let kind = WebhookEventType::CacheMiss;
        if self.wants_hook(app, kind) {
            let body = event_body(kind, channel, None);
            self.hook(app, kind, channel, body);
        }
    }

    /// A client event was accepted and delivered. `data_json` is its `data` as sent.
    pub(super) fn hook_client_event(
        &mut self,
        app: AppIndex,
        channel: &str,
        event: &str,
        data_json: &str,
        socket_id: &str,
        user_id: Option<&str>,
    ) {
        let kind = WebhookEventType::ClientEvent;
        if !self.wants_hook(app, kind) {
            return;
        }
        let body = client_event_body(channel, event, data_json, socket_id, user_id);
        self.hook(app, kind, channel, body);
    }
}

impl Shard {
    /// True when the app's subscription counts go to the bridge now: an index and a bit test,
    /// all that other apps pay.
    pub(super) fn counts_wanted(&self, app: AppIndex) -> bool {
        self.link.is_up() && self.wants_hook(app, WebhookEventType::SubscriptionCount)
    }

    /// A local connection joined or left `channel`'s subscribers.
    pub(super) fn count_changed(&mut self, app: AppIndex, channel: &Arc<str>) {
        if !self.counts_wanted(app) || !counts_subscriptions(channel) {
            return;
        }
        if !self.link.hooks_mut().mark_count_changed(app, channel) {
            self.hook_count(app, channel);
        }
    }

    /// From the tick: one report per channel whose count changed, with its count now.
    pub(super) fn report_changed_counts(&mut self) {
        let changed = self.link.hooks_mut().take_changed_counts();
        for (app, channel) in &changed {
            self.hook_count(*app, channel);
        }
    }

    /// After `Hello`: the count of every channel this shard has subscribers for (the bridge
    /// forgot the old link's counts when it went).
    pub(super) fn resync_counts(&mut self) {
        for app in 0..self.apps.len() as AppIndex {
            if !self.wants_hook(app, WebhookEventType::SubscriptionCount) {
                continue;
            }
            let counted: Vec<Arc<str>> = self
                .registry
                .channels_of(app)
                .filter(|(name, entry)| !entry.subscribers.is_empty() && counts_subscriptions(name))
                .map(|(name, _)| name.clone())
                .collect();
            for channel in counted {
                self.hook_count(app, &channel);
            }
        }
    }

    /// This shard's count of `channel` for the bridge (0 once the channel is gone here).
    fn hook_count(&mut self, app: AppIndex, channel: &str) {
        let count = self
            .registry
            .channel(app, channel)
            .map_or(0, |entry| entry.subscribers.len());
        let kind = WebhookEventType::SubscriptionCount;
        let body = subscription_count_body(channel, count as u64);
        self.hook(app, kind, channel, body);
    }
}
