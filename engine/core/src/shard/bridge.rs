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

use bytes::BytesMut;

use super::bridge_waits::{Stranded, StrandedBy};
use super::link_state::Relay;
use super::message::AppIndex;
use super::Shard;
use crate::dialect::{Content, Published};
use crate::link::{
    self, BridgeStats, ChannelEvent, DialectPart, LinkError, LinkMessage, SocketIoEvent,
};

pub use super::link_state::LinkState;

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
            self.announce_channels();
            self.resync_members();
        }
        self.stats.webhook_events_out += self.link.flush_waiting_hooks();
        self.resync_counts();
    }

    /// After `Hello` (several nodes): every channel with local subscribers.
    fn announce_channels(&mut self) {
        for app in 0..self.apps.len() as AppIndex {
            let app_id = &self.apps.get(app).id;
            for (name, entry) in self.registry.channels_of(app) {
                if entry.announced {
                    self.link.send_to_cluster(|| LinkMessage::Subscribe {
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
        // Nobody will answer what waits for the bridge: every request goes on without it.
        let stranded = self.waits.take_all();
        self.resume_stranded(stranded);
        self.set_remote_connections(None);
        for app in 0..self.apps.len() as AppIndex {
            let waiting: Vec<Arc<str>> = self
                .registry
                .channels_of(app)
                .filter(|(_, entry)| entry.link_ack_pending)
                .map(|(name, _)| name.clone())
                .collect();
            for channel in waiting {
                self.confirm_channel(app, &channel, None);
            }
        }
        self.run_detach_queue();
    }

    /// Requests the bridge will not answer (overdue, or the link is down) go on without it:
    /// authorizations fail, members and cache joins are answered from the node's own state,
    /// channels questions with the node's own counts.
    pub(super) fn resume_stranded(&mut self, stranded: Stranded) {
        let Stranded {
            by,
            auths,
            members,
            cache,
            channels,
            pipelines,
            slip_calls,
        } = stranded;
        for (_, pending) in members {
            self.answer_members_locally(pending);
        }
        for (_, pending) in cache {
            self.answer_cache_locally(pending);
        }
        for (request_id, pending) in auths {
            self.auth_unanswered(request_id, pending, by == StrandedBy::Timeout);
        }
        for (_, pending_id) in channels {
            self.other_nodes_unanswered(pending_id);
        }
        for (_, pending) in pipelines {
            self.functions_unanswered(pending, by == StrandedBy::Timeout);
        }
        for (_, pending) in slip_calls {
            self.slip_unanswered(pending, by == StrandedBy::Timeout);
        }
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
                // An app this node does not serve is ignored.
                if let Some(app) = self.apps.index_by_id(&app_id) {
                    self.confirm_channel(app, &channel, Some(seq));
                }
            }
            LinkMessage::Deliver(event) => {
                let Some(app) = self.apps.index_by_id(&event.app_id) else {
                    return Ok(()); // an app this node does not serve: nothing to do
                };
                self.deliver_from_link(app, &event);
            }
            LinkMessage::Stats(stats) => self.link.set_bridge_stats(stats),
            LinkMessage::MembersSnapshot(_, query, members) => {
                self.members_answer(query, members);
            }
            LinkMessage::MemberAdded(channel, member) => {
                self.deliver_member_event(&channel, Some(&member), None);
            }
            LinkMessage::MemberRemoved(channel, user_id) => {
                self.deliver_member_event(&channel, None, Some(&user_id));
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
            | LinkMessage::FunctionRequest(_)
            | LinkMessage::SlipCall(_)
            | LinkMessage::CacheQuery { .. } => return Err(LinkError::WrongDirection),
            LinkMessage::SlipAnswer { call_id, outcome } => self.slip_answer(call_id, outcome),
            LinkMessage::SlipCommands { app_id, commands } => {
                self.slip_commands_from_link(&app_id, &commands);
            }
            LinkMessage::FunctionResult {
                request_id,
                outcome,
            } => self.function_result(request_id, outcome),
            LinkMessage::Associations(document) => self.associations_from_link(&document),
            LinkMessage::CacheAnswer { query_id, frame } => {
                self.cache_answer(query_id, frame);
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
                self.other_nodes_answer(query_id, channels);
            }
            LinkMessage::ConnectionCounts(counts) => self.set_remote_connections(Some(counts)),
        }
        self.run_detach_queue();
        Ok(())
    }

    /// An event published on another node: counts it and delivers it to this shard's own
    /// subscribers of the channel only, leaving out the publisher's excluded socket.
    fn deliver_from_link(&mut self, app: AppIndex, event: &ChannelEvent) {
        self.stats.link_events_in += 1;
        let except = self.parse_socket_id(&event.except_socket_id);
        let frame = event.frame.clone();
        let message = match &event.part {
            None => Published::from_remote(frame, None),
            Some(DialectPart::SocketIo(s)) => {
                let socketio = crate::socketio::rooms::server_event_name(&s.event)
                    .map(|name| (name, s.args_json.clone()));
                Published::from_remote(frame, socketio)
            }
            Some(DialectPart::ChannelsJson(sender)) => {
                Published::from_remote_channels_json(frame, sender)
            }
            Some(DialectPart::SlipText) => Published::from_remote_slip(frame),
        };
        let message = Arc::new(message);
        self.deliver_channel(app, &event.channel, &message, except, false);
    }

    /// Encodes everything queued for the bridge into `out`, the webhook events that waited
    /// for room first.
    pub fn take_link_output(&mut self, out: &mut BytesMut) {
        self.stats.webhook_events_out += self.link.flush_waiting_hooks();
        // Names are validated before they get here; an oversized event is dropped.
        self.stats.link_publishes_dropped += self.link.encode_queued(out);
    }

    /// The shell closed a link connection unused: the process at the bridge socket was not this
    /// engine's bridge (its `SO_PEERCRED` did not match). Counted for `/metrics`.
    pub fn count_link_peer_refused(&mut self) {
        self.stats.link_peers_refused += 1;
    }

    /// True once after a change the cluster must know could not be queued (the link's queue
    /// was full): the shell ends the link and links again, and the resync after `Hello`
    /// restates everything, so nothing is lost. Counted.
    pub fn take_link_relink(&mut self) -> bool {
        let relink = self.link.take_relink();
        if relink {
            self.stats.link_relinks += 1;
        }
        relink
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

    /// A local publish (REST, client event, Socket.IO) for the other nodes: its Pusher frame
    /// and, for a Socket.IO event, the Socket.IO part (encoded only when there is a link).
    /// `except_socket_id` is the excluded socket as the publisher named it (it may live on
    /// another node), or empty.
    pub(super) fn relay_publish(
        &mut self,
        app: AppIndex,
        channel: &str,
        message: &Published,
        except_socket_id: &str,
    ) {
        let app_id = &self.apps.get(app).id;
        let relay = self.link.relay(|| {
            let part = match message.content() {
                Content::SocketIo {
                    event, args_json, ..
                } => Some(DialectPart::SocketIo(SocketIoEvent {
                    event: (*event).to_owned(),
                    args_json: args_json.clone(),
                })),
                Content::ChannelsJson { sender_id, .. } => {
                    Some(DialectPart::ChannelsJson(sender_id.to_string()))
                }
                Content::Slip { .. } => Some(DialectPart::SlipText),
                Content::PusherOnly | Content::PusherFrame | Content::Event { .. } => None,
            };
            LinkMessage::Publish(ChannelEvent {
                app_id: app_id.clone(),
                channel: channel.to_string(),
                except_socket_id: except_socket_id.to_string(),
                frame: message.pusher_frame(app_id, channel),
                part,
            })
        });
        self.count_relay(relay);
    }

    /// Counts what became of an event relayed to the other nodes.
    pub(super) fn count_relay(&mut self, relay: Relay) {
        match relay {
            Relay::Alone => {}
            Relay::Queued => self.stats.link_publishes_out += 1,
            Relay::Dropped => self.stats.link_publishes_dropped += 1,
        }
    }

    /// The bridge confirmed a channel (`seq` of the announcement), or the link went down
    /// (`None`): subscribers waiting only for it go on.
    pub(super) fn confirm_channel(&mut self, app: AppIndex, channel: &str, seq: Option<u32>) {
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
