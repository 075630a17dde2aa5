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

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::message::AppIndex;
use super::Shard;
use crate::link::{self, BridgeStats, ChannelEvent, LinkError, LinkMessage};

pub use super::link_state::LinkState;
use crate::limits::{LINK_ACK_TIMEOUT_MS, LINK_QUEUE_MAX};

impl Shard {
    /// The link to the bridge is connected: greet it and announce every channel with local
    /// subscribers (the bridge starts from nothing on each link).
    pub fn handle_link_up(&mut self) {
        if !self.link.enabled {
            return;
        }
        self.link
            .greet(self.settings.shard_index, self.settings.shard_count);
        self.stats.link_connects += 1;
        if self.link.is_cluster() {
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
                    self.link.push(LinkMessage::Subscribe {
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
        if !self.link.go_down() {
            return;
        }
        // Nobody will answer what waits for the bridge: every table lets its requests go on.
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
            } => self.link_subscribed(&app_id, &channel, seq),
            LinkMessage::Deliver(event) => {
                let Some(app) = self.apps.index_by_id(&event.app_id) else {
                    return Ok(()); // an app this node does not serve: nothing to do
                };
                self.deliver_from_link(app, &event);
            }
            LinkMessage::Stats(stats) => self.link.set_bridge_stats(stats),
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

    /// The bridge acknowledged announcement `seq` of a channel: its waiting subscribers may go on
    /// (an app this node does not serve is ignored).
    fn link_subscribed(&mut self, app_id: &str, channel: &str, seq: u32) {
        if let Some(app) = self.apps.index_by_id(app_id) {
            self.link_confirmed(app, channel, Some(seq));
        }
    }

    /// An event published on another node: counts it and delivers it to this shard's own
    /// subscribers of the channel only, leaving out the publisher's excluded socket.
    fn deliver_from_link(&mut self, app: AppIndex, event: &ChannelEvent) {
        self.stats.link_events_in += 1;
        let except = self.parse_socket_id(&event.except_socket_id);
        self.deliver_channel(app, &event.channel, &event.frame, except, false);
    }

    /// Encodes everything queued for the bridge into `out`.
    pub fn take_link_output(&mut self, out: &mut BytesMut) {
        // Names are validated before they get here; an oversized event is dropped.
        self.stats.link_publishes_dropped += self.link.encode_queued(out);
    }

    /// True when messages wait for the bridge.
    pub fn has_link_output(&self) -> bool {
        self.link.queued() > 0
    }

    /// True while the shard is linked to a bridge.
    pub fn is_linked(&self) -> bool {
        self.link.is_up()
    }

    /// The bridge's latest counters, while linked.
    pub fn bridge_stats(&self) -> Option<&BridgeStats> {
        self.link.bridge_stats()
    }

    /// A first local subscriber: tell the bridge, and return whether the subscription must
    /// wait for its `Subscribed`.
    pub(super) fn link_announce(&mut self, app: AppIndex, channel: &Arc<str>, seq: u32) -> bool {
        if !self.link.is_cluster_up() {
            return false;
        }
        let app_id = self.apps.get(app).id.clone();
        let deadline_ms = self.now_ms + LINK_ACK_TIMEOUT_MS;
        self.link.announce(app_id, app, channel, seq, deadline_ms)
    }

    /// From the sweep: subscribers whose `Subscribed` is overdue go on without it.
    pub(super) fn link_expire_acks(&mut self, now_ms: u64) {
        while let Some((app, channel, seq)) = self.link.pop_overdue_ack(now_ms) {
            self.link_confirmed(app, &channel, Some(seq));
        }
    }

    /// The last local subscriber left.
    pub(super) fn link_withdraw(&mut self, app: AppIndex, channel: &str) {
        if self.link.is_cluster_up() {
            self.link.push(LinkMessage::Unsubscribe {
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
        if !self.link.is_cluster() {
            return;
        }
        if !self.link.is_up() || self.link.queued() >= LINK_QUEUE_MAX {
            self.stats.link_publishes_dropped += 1;
            return;
        }
        self.stats.link_publishes_out += 1;
        self.link.push(LinkMessage::Publish(ChannelEvent {
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
        if let Some(seq) = seq {
            self.link.ack_answered(app, channel, seq);
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
