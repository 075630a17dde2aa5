//! Cluster-wide state besides presence, the shard's side (several nodes, linked): server-to-user
//! events and `terminate_connections` reach the user's connections on every node (the bridge
//! relays them); a cache channel's last event is the cluster's (the bridge keeps it in Redis
//! for 30 minutes whenever a cache channel is published on any node): the owner asks for it
//! before answering a new subscriber; and `app_max_connections` counts every node (shard 0
//! reports the node's connections each second, the bridge answers with the other nodes'). While
//! the link is down the node is alone: its own cache, its own connections.

use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;

use super::bridge::{overdue, LINK_QUEUE_MAX};
use super::message::{AppIndex, ConnRef, ShardMessage};
use super::session::text_frame;
use super::Shard;
use crate::link::{LinkMessage, UserAction};
use crate::pusher::server_message;

/// Cache subscriptions waiting for the cluster's last event, per shard; beyond it the node's
/// own cache answers (degraded, never unbounded).
pub const PENDING_CACHE_MAX: usize = 16_384;
/// Longest a cache subscription waits for the bridge before the node's own cache answers.
pub const CACHE_QUERY_TIMEOUT_MS: u64 = 2_000;

/// A cache subscription waiting for the cluster's last event.
#[derive(Debug)]
struct PendingCacheJoin {
    app: AppIndex,
    channel: Arc<str>,
    conn: ConnRef,
    /// What goes before the last event (`subscription_succeeded`).
    frames: Vec<Bytes>,
    deadline_ms: u64,
}

/// The owner's cache queries in flight, by query id.
#[derive(Debug, Default)]
pub struct PendingCache {
    by_query: AHashMap<u32, PendingCacheJoin>,
    next_query: u32,
}

impl Shard {
    /// A server-to-user event or a terminate for the user's connections on the other nodes.
    pub(super) fn cluster_user_command(
        &mut self,
        app: AppIndex,
        user_id: &str,
        action: UserAction,
    ) {
        if !self.link.cluster {
            return;
        }
        if !self.link.is_up() || self.link.queued() >= LINK_QUEUE_MAX {
            self.stats.link_publishes_dropped += 1;
            return;
        }
        self.stats.link_publishes_out += 1;
        self.link.push(LinkMessage::UserCommand {
            app_id: self.apps.get(app).id.clone(),
            user_id: user_id.to_owned(),
            action,
        });
    }

    /// From the sweep (shard 0, several nodes, linked, some app with a connection limit): the
    /// node's open connections per app, for the other nodes.
    pub(super) fn cluster_report_connections(&mut self) {
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
            self.link.push(LinkMessage::ConnectionCounts(limited));
        }
    }

    /// The other nodes' connections per app (or, with `None`, none: the node is alone now).
    pub(super) fn cluster_remote_connections(&mut self, counts: Option<Vec<(String, u64)>>) {
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
    pub(super) fn cluster_defer_cache(
        &mut self,
        app: AppIndex,
        channel: &Arc<str>,
        conn: ConnRef,
        frames: Vec<Bytes>,
    ) -> Result<(), Vec<Bytes>> {
        if !self.link.is_cluster_up() || self.pending_cache.by_query.len() >= PENDING_CACHE_MAX {
            return Err(frames);
        }
        let query_id = self.pending_cache.next_query;
        self.pending_cache.next_query = query_id.wrapping_add(1);
        self.pending_cache.by_query.insert(
            query_id,
            PendingCacheJoin {
                app,
                channel: channel.clone(),
                conn,
                frames,
                deadline_ms: self.now_ms + CACHE_QUERY_TIMEOUT_MS,
            },
        );
        self.link.push(LinkMessage::CacheQuery {
            app_id: self.apps.get(app).id.clone(),
            channel: channel.to_string(),
            query_id,
        });
        Ok(())
    }

    /// The bridge's answer: the cluster's last event (empty: none, a cache miss).
    pub(super) fn cluster_cache_answer(&mut self, query_id: u32, frame: Bytes) {
        let Some(pending) = self.pending_cache.by_query.remove(&query_id) else {
            return; // answered already (timeout or link down)
        };
        let last = (!frame.is_empty()).then_some(frame);
        self.answer_cache(pending, last);
    }

    /// Cache subscriptions whose answer is overdue (`now_ms` given) or all of them (link down,
    /// `None`) are answered from the node's own cache.
    pub(super) fn cluster_expire_cache(&mut self, now_ms: Option<u64>) {
        let due = overdue(&self.pending_cache.by_query, now_ms, |p| p.deadline_ms);
        for query in due {
            if let Some(pending) = self.pending_cache.by_query.remove(&query) {
                let own = self
                    .owner
                    .cache_lookup(pending.app, &pending.channel, self.now_ms / 1000)
                    .cloned();
                self.answer_cache(pending, own);
            }
        }
    }

    fn answer_cache(&mut self, pending: PendingCacheJoin, last: Option<Bytes>) {
        let PendingCacheJoin {
            app,
            channel,
            conn,
            mut frames,
            ..
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
