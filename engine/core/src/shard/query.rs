//! Scatter-gather questions across shards for the REST API and metrics: the asking shard sends a
//! [`Query`] to every shard (or to one owner), each answers with its part, and when the last
//! part arrives the asker merges them and answers the waiting HTTP connection. Shards share no
//! memory, so a node-wide count is always such a round of messages (microseconds on the rings).

use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;
use slab::Slab;

use super::conn::Phase;
use super::message::{AppIndex, ChannelStat, Query, QueryPart, ShardMessage};
use super::stats::StatsSnapshot;
use super::Shard;
use crate::pusher::channel;

/// Questions one shard may have in flight; more → 503. Bounds the pending table.
pub const PENDING_QUERIES_MAX: usize = 4_096;

/// What to do with the merged answer.
#[derive(Debug)]
pub enum Purpose {
    /// `GET /apps/{id}/channels`.
    ChannelList {
        /// Include `user_count`.
        user_count: bool,
    },
    /// `GET /apps/{id}/channels/{name}`.
    ChannelInfo {
        /// Channel name.
        name: Arc<str>,
        /// `info` attributes asked for.
        attributes: Vec<crate::pusher::rest::InfoAttribute>,
    },
    /// `GET /apps/{id}/channels/{name}/users`.
    Users,
    /// `POST /apps/{id}/events` with `info`.
    EventInfo {
        /// `info` attributes asked for.
        attributes: Vec<crate::pusher::rest::InfoAttribute>,
    },
    /// `POST /apps/{id}/batch_events` with `info` on some events: one entry per event.
    BatchInfo {
        /// (channel, attributes) per event, in batch order.
        events: Vec<(Arc<str>, Vec<crate::pusher::rest::InfoAttribute>)>,
    },
    /// `GET /metrics`.
    Metrics,
    /// Another node asked for this node's channel counts (through the bridge).
    NodeChannels {
        /// The bridge's question id.
        query_id: u32,
    },
}

/// A question in flight.
#[derive(Debug)]
pub struct PendingQuery {
    /// The HTTP connection waiting for the answer.
    pub conn_key: u32,
    /// Its serial (the key may be reused if it goes away).
    pub conn_serial: u64,
    /// Parts still missing.
    pub waiting: u16,
    /// Parts received.
    pub parts: Vec<QueryPart>,
    /// What to build.
    pub purpose: Purpose,
    /// Keep the connection after answering.
    pub keep_alive: bool,
    /// Route label for metrics.
    pub route: &'static str,
}

/// Merged view of one channel over every shard.
#[derive(Debug, Default, Clone)]
pub struct ChannelTotals {
    /// Subscriptions on every shard.
    pub subscriptions: u64,
    /// Presence users (from the owner).
    pub users: Option<u64>,
    /// Cached event frame and remaining seconds (from the owner).
    pub cache: Option<(Bytes, u64)>,
}

/// The pending-question table of a shard.
pub type PendingQueries = Slab<PendingQuery>;

impl Shard {
    /// Sends a question to every shard (`owner_only`: only to the owner of `owner_name`) and
    /// parks the HTTP connection; false when too many questions are in flight.
    pub(super) fn start_query(
        &mut self,
        key: u32,
        query: Query,
        owner_name: Option<(AppIndex, &str)>,
        purpose: Purpose,
        keep_alive: bool,
        route: &'static str,
    ) -> bool {
        if self.queries.len() >= PENDING_QUERIES_MAX {
            return false;
        }
        let serial = self.conns[key as usize].serial;
        let targets: Vec<u16> = match owner_name {
            Some((app, name)) => vec![self.owner_of(app, name)],
            None => (0..self.settings.shard_count).collect(),
        };
        let id = self.queries.insert(PendingQuery {
            conn_key: key,
            conn_serial: serial,
            waiting: targets.len() as u16,
            parts: Vec::with_capacity(targets.len()),
            purpose,
            keep_alive,
            route,
        }) as u64;
        self.conns[key as usize].phase = Phase::HttpWaiting;
        // Several nodes: the other nodes' counts are part of the answer.
        if self.cluster_ask_channels(id, &query) {
            if let Some(pending) = self.queries.get_mut(id as usize) {
                pending.waiting += 1;
            }
        }
        self.send_query(id, query, targets);
        true
    }

    /// Sends question `id` to the `targets` shards (this one included if named).
    pub(super) fn send_query(
        &mut self,
        id: u64,
        query: Query,
        targets: impl IntoIterator<Item = u16>,
    ) {
        let query = Arc::new(query);
        let from = self.settings.shard_index;
        for target in targets {
            self.route(
                target,
                ShardMessage::Query {
                    id,
                    from,
                    query: query.clone(),
                },
            );
        }
    }

    /// Answers a question with this shard's part.
    pub(super) fn answer_query(&self, query: &Query) -> QueryPart {
        let mut part = QueryPart::default();
        let now_s = self.now_ms / 1000;
        match query {
            Query::Channels { app, prefix } => {
                let matches = |name: &str| prefix.as_deref().is_none_or(|p| name.starts_with(p));
                for (name, entry) in self.registry.channels_of(*app) {
                    if !entry.subscribers.is_empty() && matches(name) {
                        part.channels.push(ChannelStat {
                            name: name.clone(),
                            subscriptions: entry.subscribers.len() as u64,
                            users: None,
                            cache: None,
                        });
                    }
                }
                for (name, members) in self.owner.presence_channels(*app) {
                    if matches(name) {
                        part.channels.push(ChannelStat {
                            name: name.clone(),
                            subscriptions: 0,
                            users: Some(members as u64),
                            cache: None,
                        });
                    }
                }
            }
            Query::Named { app, names } => {
                for name in names {
                    let subscriptions = self
                        .registry
                        .channel(*app, name)
                        .map_or(0, |e| e.subscribers.len() as u64);
                    let owned = self.owner_of(*app, name) == self.settings.shard_index;
                    let users =
                        owned.then(|| self.owner.members(*app, name).map_or(0, |m| m.len() as u64));
                    let cache = if owned {
                        self.owner.cache_entry(*app, name, now_s)
                    } else {
                        None
                    };
                    part.channels.push(ChannelStat {
                        name: name.clone(),
                        subscriptions,
                        users,
                        cache,
                    });
                }
            }
            Query::Users { app, channel } => {
                if let Some(members) = self.owner.members(*app, channel) {
                    part.users = members.keys().cloned().collect();
                }
            }
            Query::Stats => {
                let mut connections_by_app = vec![0u64; self.apps.len()];
                for (_, conn) in self.conns.iter() {
                    if let (Some(app), true) = (conn.app, conn.counted) {
                        connections_by_app[app as usize] += 1;
                    }
                }
                let channels = (0..self.apps.len() as AppIndex)
                    .map(|app| {
                        self.registry
                            .channels_of(app)
                            .filter(|(_, e)| !e.subscribers.is_empty())
                            .count() as u64
                    })
                    .sum();
                part.stats = Some(Box::new(StatsSnapshot {
                    shard: self.settings.shard_index,
                    stats: self.stats.clone(),
                    connections_by_app,
                    sockets: self.conns.len() as u64,
                    channels,
                    bridge_linked: self.link.enabled.then(|| self.is_linked()),
                    bridge_stats: self.bridge_stats().cloned(),
                }));
            }
        }
        part
    }

    /// One part arrived; when it is the last, answer the waiting connection.
    pub(super) fn handle_query_reply(&mut self, id: u64, part: QueryPart) {
        let Some(pending) = self.queries.get_mut(id as usize) else {
            return;
        };
        pending.parts.push(part);
        pending.waiting = pending.waiting.saturating_sub(1);
        if pending.waiting > 0 {
            return;
        }
        let pending = self.queries.remove(id as usize);
        if let Purpose::NodeChannels { query_id } = pending.purpose {
            self.answer_node_channels(query_id, &pending.parts);
            return;
        }
        let (status, content_type, body) = self.build_answer(&pending);
        let live = self
            .conns
            .get(pending.conn_key as usize)
            .is_some_and(|c| c.serial == pending.conn_serial && c.phase == Phase::HttpWaiting);
        if !live {
            return; // the client went away
        }
        self.finish_http(
            pending.conn_key,
            pending.route,
            status,
            content_type,
            body.as_bytes(),
            pending.keep_alive,
        );
    }

    fn build_answer(&self, pending: &PendingQuery) -> (u16, &'static str, String) {
        let json = "application/json";
        match &pending.purpose {
            Purpose::Metrics => {
                let mut snapshots: Vec<StatsSnapshot> = pending
                    .parts
                    .iter()
                    .filter_map(|p| p.stats.as_deref().cloned())
                    .collect();
                snapshots.sort_by_key(|s| s.shard);
                let app_ids: Vec<&str> = (0..self.apps.len() as AppIndex)
                    .map(|i| self.apps.get(i).id.as_str())
                    .collect();
                (
                    200,
                    "text/plain; version=0.0.4",
                    super::stats::render_prometheus(&snapshots, &app_ids),
                )
            }
            Purpose::Users => {
                let mut body = String::from("{\"users\":[");
                let ids = pending.parts.iter().flat_map(|p| p.users.iter());
                for (i, id) in ids.enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str("{\"id\":");
                    body.push_str(&crate::pusher::server_message::json_string(id));
                    body.push('}');
                }
                body.push_str("]}");
                (200, json, body)
            }
            Purpose::ChannelList { user_count } => {
                let totals = merge(&pending.parts);
                let occupied = totals.iter().filter(|(_, t)| t.subscriptions > 0);
                let body = channels_object(occupied.map(|(n, _)| n), |name| {
                    if *user_count {
                        format!("{{\"user_count\":{}}}", totals[name].users.unwrap_or(0))
                    } else {
                        "{}".to_owned()
                    }
                });
                (200, json, body)
            }
            Purpose::ChannelInfo { name, attributes } => {
                let totals = merge(&pending.parts);
                let t = totals.get(name).cloned().unwrap_or_default();
                (200, json, channel_info_json(name, &t, attributes, true))
            }
            Purpose::EventInfo { attributes } => {
                let totals = merge(&pending.parts);
                let body = channels_object(totals.keys(), |name| {
                    channel_info_json(name, &totals[name], attributes, false)
                });
                (200, json, body)
            }
            Purpose::NodeChannels { .. } => (200, json, "{}".to_owned()), // answered on the link
            Purpose::BatchInfo { events } => {
                let totals = merge(&pending.parts);
                let mut body = String::from("{\"batch\":[");
                for (i, (name, attributes)) in events.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    let t = totals.get(name).cloned().unwrap_or_default();
                    body.push_str(&channel_info_json(name, &t, attributes, false));
                }
                body.push_str("]}");
                (200, json, body)
            }
        }
    }
}

/// `{"channels":{name:<render(name)>,…}}` with names sorted (stable output for clients and tests).
fn channels_object<'a>(
    names: impl Iterator<Item = &'a Arc<str>>,
    render: impl Fn(&Arc<str>) -> String,
) -> String {
    let mut names: Vec<&Arc<str>> = names.collect();
    names.sort();
    let mut body = String::from("{\"channels\":{");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&crate::pusher::server_message::json_string(name));
        body.push(':');
        body.push_str(&render(name));
    }
    body.push_str("}}");
    body
}

/// Sums the parts per channel: subscriptions add up, users and cache come from the owner —
/// and user counts from the other nodes' part (the cluster's) win over the node's.
pub(super) fn merge(parts: &[QueryPart]) -> AHashMap<Arc<str>, ChannelTotals> {
    let mut totals: AHashMap<Arc<str>, ChannelTotals> = AHashMap::new();
    let node_first = parts
        .iter()
        .filter(|p| !p.cluster)
        .chain(parts.iter().filter(|p| p.cluster));
    for stat in node_first.flat_map(|p| p.channels.iter()) {
        let t = totals.entry(stat.name.clone()).or_default();
        t.subscriptions += stat.subscriptions;
        if stat.users.is_some() {
            t.users = stat.users;
        }
        if stat.cache.is_some() {
            t.cache = stat.cache.clone();
        }
    }
    totals
}

/// `{"occupied":…,"user_count":…,"subscription_count":…,"cache":{…}}` for one channel.
fn channel_info_json(
    name: &str,
    totals: &ChannelTotals,
    attributes: &[crate::pusher::rest::InfoAttribute],
    with_occupied: bool,
) -> String {
    use crate::pusher::rest::InfoAttribute;
    let presence =
        channel::classify(name, usize::MAX).is_ok_and(|c| c.kind == channel::ChannelKind::Presence);
    let mut fields: Vec<String> = Vec::new();
    if with_occupied {
        fields.push(format!("\"occupied\":{}", totals.subscriptions > 0));
    }
    if attributes.contains(&InfoAttribute::UserCount) && presence {
        fields.push(format!("\"user_count\":{}", totals.users.unwrap_or(0)));
    }
    if attributes.contains(&InfoAttribute::SubscriptionCount) {
        fields.push(format!("\"subscription_count\":{}", totals.subscriptions));
    }
    if attributes.contains(&InfoAttribute::Cache) {
        if let Some((frame, ttl_s)) = &totals.cache {
            if let Some(data) = cached_event_data(frame) {
                fields.push(format!("\"cache\":{{\"data\":{data},\"ttl\":{ttl_s}}}"));
            }
        }
    }
    format!("{{{}}}", fields.join(","))
}

/// The `data` of a cached event frame (a server text frame holding `{"event",…,"data":…}`), as
/// JSON text.
fn cached_event_data(frame: &Bytes) -> Option<String> {
    let header_len = match frame.get(1)? & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let payload = frame.get(header_len..)?;
    let event: serde_json::Value = serde_json::from_slice(payload).ok()?;
    event.get("data").map(|d| d.to_string())
}
