//! Scatter-gather questions across shards for the REST API and metrics: the asking shard sends a
//! [`Query`] to every shard (or to one owner), each answers with its part, and when the last
//! part arrives the asker merges them and answers the waiting HTTP connection. Shards share no
//! memory, so a node-wide count is always such a round of messages (microseconds on the rings).

use std::sync::Arc;

use bytes::Bytes;

use super::conn::Phase;
use super::message::{AppIndex, ChannelStat, Query, QueryPart, ShardMessage};
use super::query_state::{merge, ChannelTotals, PendingQuery, Purpose};
use super::stats::StatsSnapshot;
use super::Shard;
use crate::pusher::channel;

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
        if self.queries.is_full() {
            return false;
        }
        let serial = self.conns[key as usize].serial;
        let targets: Vec<u16> = match owner_name {
            Some((app, name)) => vec![self.owner_of(app, name)],
            None => (0..self.settings.shard_count).collect(),
        };
        let pending = PendingQuery {
            conn_key: key,
            conn_serial: serial,
            waiting: targets.len() as u16,
            parts: Vec::with_capacity(targets.len()),
            purpose,
            keep_alive,
            route,
        };
        let Ok(id) = self.queries.insert(self.now_ms, pending) else {
            return false;
        };
        self.conns[key as usize].phase = Phase::HttpWaiting;
        // Several nodes: the other nodes' counts are part of the answer.
        if self.cluster_ask_channels(u64::from(id), &query) {
            if let Some(pending) = self.queries.get_mut(id) {
                pending.waiting += 1;
            }
        }
        self.send_query(u64::from(id), query, targets);
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
        let Ok(id) = u32::try_from(id) else {
            return;
        };
        let Some(pending) = self.queries.get_mut(id) else {
            return;
        };
        if !pending.add_part(part) {
            return;
        }
        let Some(pending) = self.queries.take(id) else {
            return;
        };
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
                    super::prometheus::render_prometheus(&snapshots, &app_ids),
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
