//! Cluster-wide state besides presence, the shard's side (several nodes, linked): server-to-user
//! events and `terminate_connections` reach the user's connections on every node (the bridge
//! relays them); a cache channel's last event is the cluster's (the bridge keeps it in Redis
//! for 30 minutes whenever a cache channel is published on any node): the owner asks for it
//! before answering a new subscriber; and `app_max_connections` counts every node (shard 0
//! reports the node's connections each second, the bridge answers with the other nodes'). While
//! the link is down the node is alone: its own cache, its own connections.

use std::sync::Arc;

use bytes::Bytes;

use super::bridge_waits::PendingCacheJoin;
use super::frames::text_frame;
use super::message::{AppIndex, ConnRef, ShardMessage};
use super::pending::Full;
use super::Shard;
use crate::link::{LinkMessage, UserAction};
use crate::pusher::server_message;

impl Shard {
    /// A server-to-user event or a terminate for the user's connections on the other nodes.
    pub(super) fn relay_user_command(&mut self, app: AppIndex, user_id: &str, action: UserAction) {
        let app_id = &self.apps.get(app).id;
        let relay = self.link.relay(|| LinkMessage::UserCommand {
            app_id: app_id.clone(),
            user_id: user_id.to_owned(),
            action,
        });
        self.count_relay(relay);
    }

    /// From the sweep (shard 0, several nodes, linked, some app with a connection limit): the
    /// node's open connections per app, for the other nodes.
    pub(super) fn report_connections(&mut self) {
        if self.settings.shard_index != 0 || !self.link.is_cluster_up() {
            return;
        }
        let limited: Vec<(String, u64)> = self
            .apps
            .connection_counts()
            .into_iter()
            .enumerate()
            .filter(|(index, _)| self.apps.get(*index as u32).max_connections > 0)
            .map(|(_, count)| count)
            .collect();
        if !limited.is_empty() {
            self.link
                .send_to_cluster(|| LinkMessage::ConnectionCounts(limited));
        }
    }

    /// The other nodes' connections per app (or, with `None`, none: the node is alone now).
    pub(super) fn set_remote_connections(&mut self, counts: Option<Vec<(String, u64)>>) {
        match counts {
            Some(counts) => {
                for (app_id, count) in counts {
                    if let Some(index) = self.apps.index_by_id(&app_id) {
                        self.apps.set_remote_connections(index, count);
                    }
                }
            }
            None => {
                for index in 0..self.apps.len() as u32 {
                    self.apps.set_remote_connections(index, 0);
                }
            }
        }
    }

    /// A user command from another node, for this shard's connections of the user.
    pub(super) fn handle_user_command(&mut self, app_id: &str, user_id: &str, action: UserAction) {
        let Some(app) = self.apps.index_by_id(app_id) else {
            return;
        };
        self.stats.link_events_in += 1;
        let user_id: Arc<str> = Arc::from(user_id);
        let message = match action {
            UserAction::Deliver(frame) => ShardMessage::DeliverToUser {
                app,
                user_id,
                frame,
            },
            UserAction::Terminate => ShardMessage::TerminateUser { app, user_id },
        };
        // The bridge gives it to every shard's link: each handles its own connections.
        self.handle_message_inner(message);
    }

    /// Owner, a subscription to a cache channel (several nodes, linked): asks the bridge for
    /// the cluster's last event and answers later (true); else the caller answers from the
    /// node's own cache (false).
    pub(super) fn ask_cluster_cache(
        &mut self,
        app: AppIndex,
        channel: &Arc<str>,
        conn: ConnRef,
        frames: Vec<Bytes>,
    ) -> Result<(), Vec<Bytes>> {
        if !self.link.is_cluster_up() {
            return Err(frames);
        }
        let pending = PendingCacheJoin {
            app,
            channel: channel.clone(),
            conn,
            frames,
        };
        let query_id = match self.waits.cache.insert(self.now_ms, pending) {
            Ok(query_id) => query_id,
            Err(Full(pending)) => return Err(pending.frames),
        };
        let app_id = &self.apps.get(app).id;
        self.link.send_to_cluster(|| LinkMessage::CacheQuery {
            app_id: app_id.clone(),
            channel: channel.to_string(),
            query_id,
        });
        Ok(())
    }

    /// The bridge's answer: the cluster's last event (empty: none, a cache miss).
    pub(super) fn cache_answer(&mut self, query_id: u32, frame: Bytes) {
        let Some(pending) = self.waits.cache.take(query_id) else {
            return; // answered already (timeout or link down)
        };
        let last = (!frame.is_empty()).then_some(frame);
        self.answer_cache(pending, last);
    }

    /// A cache query the bridge will not answer: answered from the node's own cache.
    pub(super) fn answer_cache_locally(&mut self, pending: PendingCacheJoin) {
        let own = self
            .owner
            .cache_lookup(pending.app, &pending.channel, self.now_ms / 1000)
            .cloned();
        self.answer_cache(pending, own);
    }

    fn answer_cache(&mut self, pending: PendingCacheJoin, last: Option<Bytes>) {
        let PendingCacheJoin {
            app,
            channel,
            conn,
            mut frames,
        } = pending;
        match last {
            Some(frame) => frames.push(frame),
            None => {
                self.hook_cache_miss(app, &channel);
                frames.push(text_frame(&server_message::cache_miss(&channel)));
            }
        }
        self.route(
            conn.shard,
            ShardMessage::OwnerJoined {
                channel,
                conn,
                accepted: true,
                frames,
            },
        );
    }
}
