//! `GET /channels…` across nodes, the shard's side (several nodes, linked). A channels question
//! asks this node's shards as on a single node and, in the same breath, the bridge for the
//! other nodes' counts (with the cluster's presence user counts); the answer waits for both.
//! When another node asks, the bridge hands the question to one shard, which gathers this
//! node's counts from every shard and sends them back. A bridge that does not answer in time,
//! or a link that goes down, leaves the node's own counts.

use std::sync::Arc;

use ahash::AHashMap;

use super::bridge::overdue;
use super::message::{ChannelStat, Query, QueryPart};
use super::query::{merge, PendingQuery, Purpose};
use super::Shard;
use crate::link::{ChannelCount, ChannelFilter, LinkMessage, CHANNELS_MAX};

/// Channels questions waiting for the other nodes, per shard; beyond it a question is answered
/// with the node's own counts.
pub const CLUSTER_QUERIES_MAX: usize = 4_096;
/// Longest a channels question waits for the bridge (which itself waits 1 s for the nodes).
pub const CLUSTER_QUERY_TIMEOUT_MS: u64 = 2_000;

/// Questions waiting for the other nodes: query id → (pending query id, deadline).
#[derive(Debug, Default)]
pub struct ClusterQueries {
    waiting: AHashMap<u32, (u64, u64)>,
    next: u32,
}

impl Shard {
    /// Right after a question went to the shards: also asks the other nodes (true: one more
    /// part will come, from the bridge or the timeout).
    pub(super) fn cluster_ask_channels(&mut self, pending_id: u64, query: &Query) -> bool {
        if !self.link.is_cluster_up() || self.cluster_queries.waiting.len() >= CLUSTER_QUERIES_MAX {
            return false;
        }
        let (app, filter) = match query {
            Query::Channels { app, prefix } => (
                *app,
                ChannelFilter::Prefix(prefix.as_deref().unwrap_or_default().to_owned()),
            ),
            Query::Named { app, names } => (
                *app,
                ChannelFilter::Names(names.iter().map(|n| n.to_string()).collect()),
            ),
            Query::Users { .. } | Query::Stats => return false,
        };
        let query_id = self.cluster_queries.next;
        self.cluster_queries.next = query_id.wrapping_add(1);
        let deadline_ms = self.now_ms + CLUSTER_QUERY_TIMEOUT_MS;
        self.cluster_queries
            .waiting
            .insert(query_id, (pending_id, deadline_ms));
        self.link.push(LinkMessage::ChannelsQuery {
            query_id,
            app_id: self.apps.get(app).id.clone(),
            filter,
        });
        true
    }

    /// A `ChannelsAnswer` from the bridge: the other nodes' part of a question of this shard.
    pub(super) fn cluster_channels_answer(&mut self, query_id: u32, channels: Vec<ChannelCount>) {
        let Some((pending_id, _)) = self.cluster_queries.waiting.remove(&query_id) else {
            return; // answered already (timeout or link down)
        };
        let part = QueryPart {
            channels: channels
                .into_iter()
                .map(|c| ChannelStat {
                    name: Arc::from(c.name.as_str()),
                    subscriptions: c.subscriptions,
                    users: c.users,
                    cache: None,
                })
                .collect(),
            cluster: true,
            ..QueryPart::default()
        };
        self.handle_query_reply(pending_id, part);
    }

    /// Questions whose other nodes are overdue (`now_ms` given) or unreachable (link down,
    /// `None`) go on with the node's own counts.
    pub(super) fn cluster_expire_queries(&mut self, now_ms: Option<u64>) {
        let due = overdue(&self.cluster_queries.waiting, now_ms, |(_, deadline_ms)| {
            *deadline_ms
        });
        for query_id in due {
            if let Some((pending_id, _)) = self.cluster_queries.waiting.remove(&query_id) {
                self.handle_query_reply(pending_id, QueryPart::default());
            }
        }
    }

    /// Another node asks for this node's counts (through the bridge): gather them from every
    /// shard, then answer on the link.
    pub(super) fn node_channels_query(
        &mut self,
        query_id: u32,
        app_id: &str,
        filter: ChannelFilter,
    ) {
        let Some(app) = self.apps.index_by_id(app_id) else {
            self.link.push(LinkMessage::ChannelsAnswer {
                query_id,
                channels: Vec::new(),
            });
            return;
        };
        let query = match filter {
            ChannelFilter::Prefix(prefix) => Query::Channels {
                app,
                prefix: (!prefix.is_empty()).then(|| Arc::from(prefix.as_str())),
            },
            ChannelFilter::Names(names) => Query::Named {
                app,
                names: names.iter().map(|n| Arc::from(n.as_str())).collect(),
            },
        };
        if !self.start_link_query(query, query_id) {
            // Too many questions in flight here: an empty answer rather than none.
            self.link.push(LinkMessage::ChannelsAnswer {
                query_id,
                channels: Vec::new(),
            });
        }
    }

    /// A node-wide question asked by the bridge; its answer goes back on the link.
    fn start_link_query(&mut self, query: Query, query_id: u32) -> bool {
        if self.queries.len() >= super::query::PENDING_QUERIES_MAX {
            return false;
        }
        let shard_count = self.settings.shard_count;
        let id = self.queries.insert(PendingQuery {
            conn_key: u32::MAX,
            conn_serial: 0,
            waiting: shard_count,
            parts: Vec::with_capacity(usize::from(shard_count)),
            purpose: Purpose::NodeChannels { query_id },
            keep_alive: false,
            route: "link",
        }) as u64;
        self.send_query(id, query, 0..shard_count);
        true
    }

    /// This node's counts, for the bridge (presence user counts are the cluster's business).
    pub(super) fn answer_node_channels(&mut self, query_id: u32, parts: &[QueryPart]) {
        let channels: Vec<ChannelCount> = merge(parts)
            .into_iter()
            .filter(|(_, totals)| totals.subscriptions > 0)
            .take(CHANNELS_MAX)
            .map(|(name, totals)| ChannelCount {
                name: name.to_string(),
                subscriptions: totals.subscriptions,
                users: None,
            })
            .collect();
        if self.link.is_up() {
            self.link
                .push(LinkMessage::ChannelsAnswer { query_id, channels });
        }
    }
}
