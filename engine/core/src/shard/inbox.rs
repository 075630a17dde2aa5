//! Messages from other shards (and the ones a shard routes to itself): one handler per
//! [`ShardMessage`], dispatched by [`Shard::handle_message_inner`].

use std::sync::Arc;

use bytes::Bytes;

use super::bridge_waits::MembersWaiter;
use super::conn::Phase;
use super::frames::text_frame;
use super::message::{AppIndex, ConnRef, Query, QueryPart, ShardMessage};
use super::Shard;
use crate::dialect::Published;
use crate::pusher::{close, server_message};

impl Shard {
    /// Handles one inter-shard message (also used for messages a shard routes to itself).
    pub(super) fn handle_message_inner(&mut self, message: ShardMessage) {
        match message {
            ShardMessage::Interest {
                app,
                channel,
                from,
                on,
                seq,
            } => self.interest(app, channel, from, on, seq),
            ShardMessage::InterestAck { app, channel, seq } => {
                self.interest_ack(app, &channel, seq)
            }
            ShardMessage::Deliver {
                app,
                channel,
                message,
                except,
            } => self.deliver_channel(app, &channel, &message, except, false),
            ShardMessage::DeliverToUser {
                app,
                user_id,
                frame,
            } => self.deliver_to_user_here(app, &user_id, &frame),
            ShardMessage::DeliverToConn { conn, frame } => {
                if self.is_live(conn) {
                    self.push_data(conn.key, frame);
                }
            }
            ShardMessage::OwnerJoin(join) => self.owner_join(*join),
            ShardMessage::OwnerJoined {
                channel,
                conn,
                accepted,
                frames,
            } => self.owner_joined(conn, &channel, accepted, frames),
            ShardMessage::OwnerLeave {
                app,
                channel,
                user_id,
            } => self.owner_leave(app, &channel, &user_id),
            ShardMessage::CacheStore {
                app,
                channel,
                frame,
            } => self.owner_cache_store(app, channel, frame),
            ShardMessage::UserOnline { app, user_id } => {
                let watchers = self.owner.user_online(app, &user_id);
                self.notify_watchers(app, &user_id, watchers, "online");
            }
            ShardMessage::UserOffline { app, user_id } => {
                let watchers = self.owner.user_offline(app, &user_id);
                self.notify_watchers(app, &user_id, watchers, "offline");
            }
            ShardMessage::Watch {
                app,
                watcher,
                watched,
                conn,
            } => self.owner_watch(app, &watcher, watched, conn),
            ShardMessage::Unwatch {
                app,
                watcher,
                watched,
            } => self.owner.unwatch(app, &watcher, &watched),
            ShardMessage::Query { id, from, query } => self.query(id, from, &query),
            ShardMessage::QueryReply { id, part } => self.query_reply(id, *part),
            ShardMessage::TerminateUser { app, user_id } => self.terminate_user_here(app, &user_id),
            ShardMessage::RunFunctions {
                app,
                channel,
                publication,
                pipeline,
            } => self.start_functions(app, &channel, *publication, pipeline),
            ShardMessage::Associations(associations) => self.associations = associations,
            ShardMessage::SlipCommand {
                app,
                serial,
                command,
            } => self.slip_command_here(app, serial, *command),
            ShardMessage::RelayIn {
                app,
                room,
                conn,
                input,
            } => self.relay_in(app, &room, conn, input),
            ShardMessage::RelayOut(sends) => self.relay_out_batch(sends),
            ShardMessage::RelayRefused { conn } => self.relay_refused(conn),
            ShardMessage::SlipCloseChannel { app, channel } => {
                self.slip_close_channel_here(app, &channel)
            }
        }
    }

    /// True when `conn` is a live Pusher connection of this shard (not gone, key not reused).
    pub(super) fn is_live(&self, conn: ConnRef) -> bool {
        conn.shard == self.settings.shard_index
            && self
                .conns
                .get(conn.key as usize)
                .is_some_and(|c| c.serial == conn.serial && c.phase == Phase::Pusher)
    }

    /// Shard `from` gained its first (`on`) or lost its last local subscriber of a channel; a
    /// gain is acknowledged with the announcement's `seq`.
    fn interest(&mut self, app: AppIndex, channel: Arc<str>, from: u16, on: bool, seq: u32) {
        if app as usize >= self.apps.len() || from >= self.settings.shard_count {
            return;
        }
        let entry = self.registry.channel_entry(app, &channel);
        let node_had_it = entry.announced || entry.remote_interest != 0;
        if on {
            entry.remote_interest |= 1 << from;
        } else {
            entry.remote_interest &= !(1 << from);
        }
        let node_has_it = entry.announced || entry.remote_interest != 0;
        self.hook_occupancy(app, &channel, node_had_it, node_has_it);
        if on {
            self.route(from, ShardMessage::InterestAck { app, channel, seq });
        } else {
            self.registry.remove_if_unused(app, &channel);
        }
    }

    /// One shard acknowledged the announcement `seq`; the last ack advances the waiting
    /// subscriptions.
    fn interest_ack(&mut self, app: AppIndex, channel: &Arc<str>, seq: u32) {
        let Some(entry) = self.registry.channel_mut(app, channel) else {
            return;
        };
        if entry.interest_seq != seq || !entry.announced || entry.acks_outstanding == 0 {
            return; // an ack of an older announcement
        }
        entry.acks_outstanding -= 1;
        if entry.is_confirmed() {
            let waiting = entry.pending.clone();
            for key in waiting {
                self.advance_subscription(key, app, channel);
            }
        }
    }

    /// A frame for this shard's connections signed in as `user_id`.
    fn deliver_to_user_here(&mut self, app: AppIndex, user_id: &str, frame: &Bytes) {
        let keys: Vec<u32> = self.registry.user_conns(app, user_id).to_vec();
        self.stats.deliveries += keys.len() as u64;
        for key in keys {
            self.push_data(key, frame.clone());
        }
    }

    /// Owner side: a user's connection left a presence channel; its last one makes the member
    /// leave (on this node alone; with several nodes the bridge decides).
    fn owner_leave(&mut self, app: AppIndex, channel: &str, user_id: &str) {
        if self.owner.presence_leave(app, channel, user_id)
            && !self.report_last_leave(app, channel, user_id)
        {
            let json = server_message::member_removed(channel, user_id);
            let message = Arc::new(Published::pusher_only(text_frame(&json)));
            self.deliver_channel(app, channel, &message, None, true);
            self.hook_member(app, channel, user_id, false);
        }
    }

    /// Owner side: the last event published on a cache channel.
    fn owner_cache_store(&mut self, app: AppIndex, channel: Arc<str>, frame: Bytes) {
        if !self
            .owner
            .cache_store(app, channel, frame, self.now_ms / 1000)
        {
            self.stats.cache_events_refused += 1;
        }
    }

    /// Shard `from`'s question `id`: answered with this shard's part (with several nodes, the
    /// users of a presence channel are the cluster's and wait for the bridge).
    fn query(&mut self, id: u64, from: u16, query: &Query) {
        if let Query::Users { app, channel } = query {
            if self.ask_members(*app, channel, MembersWaiter::Users { id, from }) {
                return;
            }
        }
        let part = self.answer_query(query);
        self.route(
            from,
            ShardMessage::QueryReply {
                id,
                part: Box::new(part),
            },
        );
    }

    /// A part of this shard's question `id`; an answered HTTP request lets the requests
    /// pipelined behind it go on.
    fn query_reply(&mut self, id: u64, part: QueryPart) {
        let key = u32::try_from(id)
            .ok()
            .and_then(|id| self.queries.get(id))
            .map(|q| q.conn_key);
        self.handle_query_reply(id, part);
        if let Some(key) = key {
            if self
                .conns
                .get(key as usize)
                .is_some_and(|c| c.phase == Phase::Http)
            {
                self.process_input(key);
            }
        }
    }

    /// Closes this shard's connections signed in as `user_id` with 4009.
    fn terminate_user_here(&mut self, app: AppIndex, user_id: &str) {
        let keys: Vec<u32> = self.registry.user_conns(app, user_id).to_vec();
        for key in keys {
            self.close_pusher(key, close::UNAUTHORIZED, "Connection terminated by the app");
        }
    }
}
