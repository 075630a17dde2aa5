//! The shard's side of its link to the bridge: which channels it announces to the cluster,
//! local publishes going out, other nodes' events coming in (several nodes), the webhook
//! settings and events for the bridge to send (see `webhooks`), and what happens while the
//! link is down. A node alone with webhooks has a link without the cluster part.
//!
//! The link is optional and may come and go at any time. While it is down the shard serves its
//! own node as if it were alone: nothing waits for the bridge and nothing is queued for it
//! (publishes are counted as dropped). When it comes up the shard says `Hello` and announces
//! every channel it has local subscribers for, so the bridge rebuilds its state from scratch.
//! While it is up, a first local subscriber waits for the bridge's `Subscribed` (like the other
//! shards' interest acks) so that a publish on another node that starts after
//! `subscription_succeeded` reaches the new subscriber.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::message::AppIndex;
use super::Shard;
use crate::app::AppTable;
use crate::link::{self, BridgeStats, ChannelEvent, LinkError, LinkMessage};
use crate::webhook_config;

/// Messages waiting for the link writer before local publishes are dropped (channel
/// announcements are always queued: they are bounded by the registry).
pub const LINK_QUEUE_MAX: usize = 65_536;
/// Longest a first subscriber waits for the bridge's `Subscribed` before going on without it
/// (a bridge that lost the answer, or a Redis that does not answer, must not hang subscribes).
pub const LINK_ACK_TIMEOUT_MS: u64 = 2_000;

/// Ids of the requests to the bridge in `waiting` that are overdue at `now_ms`, or all of them
/// when `now_ms` is `None` (the link went down): what every bridge-waiting table expires by.
pub(super) fn overdue<V>(
    waiting: &ahash::AHashMap<u32, V>,
    now_ms: Option<u64>,
    deadline_ms: impl Fn(&V) -> u64,
) -> Vec<u32> {
    waiting
        .iter()
        .filter(|(_, entry)| now_ms.is_none_or(|now| deadline_ms(entry) <= now))
        .map(|(id, _)| *id)
        .collect()
}

/// The link's state inside a shard.
#[derive(Debug, Default)]
pub struct LinkState {
    /// The node runs with a bridge (several nodes, or webhooks).
    pub enabled: bool,
    /// The node is one of several (`--adapter-driver redis`): channels are announced,
    /// publishes relayed and presence is cluster-wide.
    pub(super) cluster: bool,
    /// The webhook settings sent after every `Hello`.
    webhook_config: Option<Bytes>,
    /// Per app: the webhook event kinds wanted (`webhook_config::wanted_kinds`).
    pub(super) hook_kinds: Vec<u8>,
    /// Webhook events made while the link was down.
    pub(super) hooks_waiting: super::webhooks::HooksWaiting,
    /// Channels whose local subscription count changed since the last tick (apps that want
    /// `subscription_count` only).
    pub(super) counts_dirty: super::webhooks::CountsDirty,
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
    /// True while the link is connected and greeted.
    pub(super) fn is_up(&self) -> bool {
        self.up
    }

    /// Queues a message for the bridge (membership messages are bounded by the members held).
    pub(super) fn push(&mut self, message: LinkMessage) {
        self.out.push_back(message);
    }

    /// Messages waiting for the link writer.
    pub(super) fn queued(&self) -> usize {
        self.out.len()
    }

    /// True while linked as one node of several.
    pub(super) fn is_cluster_up(&self) -> bool {
        self.up && self.cluster
    }

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
}

impl Shard {
    /// The link to the bridge is connected: greet it and announce every channel with local
    /// subscribers (the bridge starts from nothing on each link).
    pub fn handle_link_up(&mut self) {
        if !self.link.enabled {
            return;
        }
        self.link.up = true;
        self.link.out.clear();
        self.stats.link_connects += 1;
        self.link.out.push_back(LinkMessage::Hello {
            version: link::VERSION,
            shard: self.settings.shard_index,
            shard_count: self.settings.shard_count,
            cluster: self.link.cluster,
        });
        if let Some(config) = &self.link.webhook_config {
            self.link
                .out
                .push_back(LinkMessage::WebhookConfig(config.clone()));
        }
        if self.link.cluster {
            self.link_announce_all();
            self.cluster_resync();
        }
        self.hooks_flush_waiting();
        self.hooks_resync_counts();
    }

    /// After `Hello` (several nodes): every channel with local subscribers.
    fn link_announce_all(&mut self) {
        for app in 0..self.apps.len() as AppIndex {
            let app_id = self.apps.get(app).id.clone();
            for (name, entry) in self.registry.channels_of(app) {
                if entry.announced {
                    self.link.out.push_back(LinkMessage::Subscribe {
                        app_id: app_id.clone(),
                        channel: name.to_string(),
                        seq: entry.interest_seq,
                    });
                }
            }
        }
    }

    /// The link is gone: stop waiting for the bridge and serve this node alone.
    pub fn handle_link_down(&mut self) {
        if !self.link.up {
            return;
        }
        self.link.up = false;
        self.link.out.clear();
        self.link.acks_due.clear();
        self.link.bridge_stats = None;
        // The resync after the next Hello states every count; nothing needs to wait for it.
        self.link.counts_dirty.clear();
        self.cluster_expire_joins(None);
        self.cluster_expire_cache(None);
        self.auth_expire(None);
        self.cluster_expire_queries(None);
        self.cluster_remote_connections(None);
        for app in 0..self.apps.len() as AppIndex {
            let waiting: Vec<Arc<str>> = self
                .registry
                .channels_of(app)
                .filter(|(_, entry)| entry.link_ack_pending)
                .map(|(name, _)| name.clone())
                .collect();
            for channel in waiting {
                self.link_confirmed(app, &channel, None);
            }
        }
        self.run_detach_queue();
    }

    /// One message from the bridge. An error means the bridge is not speaking our protocol:
    /// the shell closes the link.
    pub fn handle_link_message(
        &mut self,
        message: LinkMessage,
        now_ms: u64,
    ) -> Result<(), LinkError> {
        self.now_ms = now_ms;
        match message {
            LinkMessage::Welcome { version, .. } if version != link::VERSION => {
                return Err(LinkError::Version(version));
            }
            LinkMessage::Welcome { .. } => {}
            LinkMessage::Subscribed {
                app_id,
                channel,
                seq,
            } => {
                if let Some(app) = self.apps.index_by_id(&app_id) {
                    self.link_confirmed(app, &channel, Some(seq));
                }
            }
            LinkMessage::Deliver(event) => {
                let Some(app) = self.apps.index_by_id(&event.app_id) else {
                    return Ok(());
                };
                self.stats.link_events_in += 1;
                let except = self.parse_socket_id(&event.except_socket_id);
                self.deliver_channel(app, &event.channel, &event.frame, except, false);
            }
            LinkMessage::Stats(stats) => self.link.bridge_stats = Some(stats),
            LinkMessage::MembersSnapshot(_, query, members) => {
                self.cluster_members_snapshot(query, members);
            }
            LinkMessage::MemberAdded(channel, member) => {
                self.cluster_member_event(&channel, Some(&member), None);
            }
            LinkMessage::MemberRemoved(channel, user_id) => {
                self.cluster_member_event(&channel, None, Some(&user_id));
            }
            // Engine-to-bridge messages are never sent to an engine.
            LinkMessage::Hello { .. }
            | LinkMessage::Subscribe { .. }
            | LinkMessage::Unsubscribe { .. }
            | LinkMessage::Publish(_)
            | LinkMessage::MemberJoin(..)
            | LinkMessage::MemberLeave(..)
            | LinkMessage::MembersQuery(..)
            | LinkMessage::MembersResync(..)
            | LinkMessage::ResyncDone
            | LinkMessage::WebhookConfig(_)
            | LinkMessage::Hook(_)
            | LinkMessage::AuthRequest(_)
            | LinkMessage::CacheQuery { .. } => return Err(LinkError::WrongDirection),
            LinkMessage::CacheAnswer { query_id, frame } => {
                self.cluster_cache_answer(query_id, frame);
            }
            LinkMessage::UserCommand {
                app_id,
                user_id,
                action,
            } => self.handle_user_command(&app_id, &user_id, action),
            LinkMessage::AuthResponse {
                request_id,
                outcome,
            } => self.auth_answer(request_id, outcome),
            LinkMessage::ChannelsQuery {
                query_id,
                app_id,
                filter,
            } => self.node_channels_query(query_id, &app_id, filter),
            LinkMessage::ChannelsAnswer { query_id, channels } => {
                self.cluster_channels_answer(query_id, channels);
            }
            LinkMessage::ConnectionCounts(counts) => self.cluster_remote_connections(Some(counts)),
        }
        self.run_detach_queue();
        Ok(())
    }

    /// Encodes everything queued for the bridge into `out`.
    pub fn take_link_output(&mut self, out: &mut BytesMut) {
        while let Some(message) = self.link.out.pop_front() {
            if link::encode(&message, out).is_err() {
                // Names are validated before they get here; an oversized event is dropped.
                self.stats.link_publishes_dropped += 1;
            }
        }
    }

    /// True when messages wait for the bridge.
    pub fn has_link_output(&self) -> bool {
        !self.link.out.is_empty()
    }

    /// True while the shard is linked to a bridge.
    pub fn is_linked(&self) -> bool {
        self.link.up
    }

    /// The bridge's latest counters, while linked.
    pub fn bridge_stats(&self) -> Option<&BridgeStats> {
        self.link.bridge_stats.as_ref()
    }

    /// A first local subscriber: tell the bridge, and return whether the subscription must
    /// wait for its `Subscribed`.
    pub(super) fn link_announce(&mut self, app: AppIndex, channel: &Arc<str>, seq: u32) -> bool {
        if !self.link.is_cluster_up() {
            return false;
        }
        self.link.out.push_back(LinkMessage::Subscribe {
            app_id: self.apps.get(app).id.clone(),
            channel: channel.to_string(),
            seq,
        });
        let deadline_ms = self.now_ms + LINK_ACK_TIMEOUT_MS;
        self.link
            .acks_due
            .push_back((deadline_ms, app, channel.clone(), seq));
        true
    }

    /// From the sweep: subscribers whose `Subscribed` is overdue go on without it.
    pub(super) fn link_expire_acks(&mut self, now_ms: u64) {
        while self
            .link
            .acks_due
            .front()
            .is_some_and(|(deadline_ms, ..)| *deadline_ms <= now_ms)
        {
            if let Some((_, app, channel, seq)) = self.link.acks_due.pop_front() {
                self.link_confirmed(app, &channel, Some(seq));
            }
        }
    }

    /// The last local subscriber left.
    pub(super) fn link_withdraw(&mut self, app: AppIndex, channel: &str) {
        if self.link.is_cluster_up() {
            self.link.out.push_back(LinkMessage::Unsubscribe {
                app_id: self.apps.get(app).id.clone(),
                channel: channel.to_string(),
            });
        }
    }

    /// A local publish (REST or client event) for the other nodes; `except_socket_id` is the
    /// excluded socket as the publisher named it (it may live on another node), or empty.
    pub(super) fn link_publish(
        &mut self,
        app: AppIndex,
        channel: &str,
        frame: &Bytes,
        except_socket_id: &str,
    ) {
        if !self.link.cluster {
            return;
        }
        if !self.link.up || self.link.out.len() >= LINK_QUEUE_MAX {
            self.stats.link_publishes_dropped += 1;
            return;
        }
        self.stats.link_publishes_out += 1;
        self.link.out.push_back(LinkMessage::Publish(ChannelEvent {
            app_id: self.apps.get(app).id.clone(),
            channel: channel.to_string(),
            except_socket_id: except_socket_id.to_string(),
            frame: frame.clone(),
        }));
    }

    /// The bridge confirmed a channel (`seq` of the announcement), or the link went down
    /// (`None`): subscribers waiting only for it go on.
    fn link_confirmed(&mut self, app: AppIndex, channel: &str, seq: Option<u32>) {
        let Some(entry) = self.registry.channel_mut(app, channel) else {
            return;
        };
        if !entry.link_ack_pending || seq.is_some_and(|seq| seq != entry.interest_seq) {
            return; // an answer to an older announcement
        }
        entry.link_ack_pending = false;
        if seq.is_some() {
            if let Some(position) = self
                .link
                .acks_due
                .iter()
                .position(|(_, a, c, s)| *a == app && &**c == channel && Some(*s) == seq)
            {
                // Answered: drop its timer (the queue stays as short as the acks in flight).
                self.link.acks_due.remove(position);
            }
        }
        if entry.is_confirmed() {
            let waiting = entry.pending.clone();
            let channel: Arc<str> = Arc::from(channel);
            for key in waiting {
                self.advance_subscription(key, app, &channel);
            }
        }
    }
}
