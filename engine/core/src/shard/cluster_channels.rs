//! `GET /channels…` across nodes, the shard's side (several nodes, linked). A channels question
//! asks this node's shards as on a single node and, in the same breath, the bridge for the
//! other nodes' counts (with the cluster's presence user counts); the answer waits for both.
//! When another node asks, the bridge hands the question to one shard, which gathers this
//! node's counts from every shard and sends them back. A bridge that does not answer in time,
//! or a link that goes down, leaves the node's own counts.

use std::sync::Arc;

use super::message::{ChannelStat, Query, QueryPart};
use super::query_state::{merge, PendingQuery, Purpose};
use super::Shard;
use crate::limits::LINK_CHANNELS_MAX;
use crate::link::{ChannelCount, ChannelFilter, LinkMessage};

impl Shard {
    /// Right after a question went to the shards: also asks the other nodes (true: one more
    /// part will come, from the bridge or the timeout).
    pub(super) fn ask_other_nodes(&mut self, pending_id: u64, query: &Query) -> bool {
        if !self.link.is_cluster_up() || self.waits.channels.is_full() {
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
        let Ok(query_id) = self.waits.channels.insert(self.now_ms, pending_id) else {
            return false;
        };
        let app_id = &self.apps.get(app).id;
        self.link.send_to_cluster(|| LinkMessage::ChannelsQuery {
            query_id,
            app_id: app_id.clone(),
            filter,
        })
    }

    /// A `ChannelsAnswer` from the bridge: the other nodes' part of a question of this shard.
    pub(super) fn other_nodes_answer(&mut self, query_id: u32, channels: Vec<ChannelCount>) {
        let Some(pending_id) = self.waits.channels.take(query_id) else {
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

    /// A question whose other nodes will not answer goes on with the node's own counts.
    pub(super) fn other_nodes_unanswered(&mut self, pending_id: u64) {
        self.handle_query_reply(pending_id, QueryPart::default());
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
            self.link.send(LinkMessage::ChannelsAnswer {
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
            self.link.send(LinkMessage::ChannelsAnswer {
                query_id,
                channels: Vec::new(),
            });
        }
    }

    /// A node-wide question asked by the bridge; its answer goes back on the link.
    fn start_link_query(&mut self, query: Query, query_id: u32) -> bool {
        let shard_count = self.settings.shard_count;
        let pending = PendingQuery {
            conn_key: u32::MAX,
            conn_serial: 0,
            waiting: shard_count,
            parts: Vec::with_capacity(usize::from(shard_count)),
            purpose: Purpose::NodeChannels { query_id },
            keep_alive: false,
            route: "link",
        };
        let Ok(id) = self.queries.insert(self.now_ms, pending) else {
            return false;
        };
        self.send_query(u64::from(id), query, 0..shard_count);
        true
    }

    /// This node's counts, for the bridge (presence user counts are the cluster's business).
    pub(super) fn answer_node_channels(&mut self, query_id: u32, parts: &[QueryPart]) {
        let channels: Vec<ChannelCount> = merge(parts)
            .into_iter()
            .filter(|(_, totals)| totals.subscriptions > 0)
            .take(LINK_CHANNELS_MAX)
            .map(|(name, totals)| ChannelCount {
                name: name.to_string(),
                subscriptions: totals.subscriptions,
                users: None,
            })
            .collect();
        self.link
            .send(LinkMessage::ChannelsAnswer { query_id, channels });
    }
}
