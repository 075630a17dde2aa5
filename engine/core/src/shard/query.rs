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
use crate::dialect::Dialect;
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
        if self.ask_other_nodes(u64::from(id), &query) {
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
        match query {
            Query::Channels { app, prefix } => {
                part.channels = self.occupied_channels(*app, prefix.as_deref());
            }
            Query::Named { app, names } => part.channels = self.named_channels(*app, names),
            Query::Users { app, channel } => {
                if let Some(members) = self.owner.members(*app, channel) {
                    part.users = members.keys().cloned().collect();
                }
            }
            Query::Stats => part.stats = Some(Box::new(self.stats_snapshot())),
        }
        part
    }

    /// The app's channels with local subscribers, then the presence channels this shard owns
    /// (with their user counts), both limited to names starting with `prefix` if given.
    fn occupied_channels(&self, app: AppIndex, prefix: Option<&str>) -> Vec<ChannelStat> {
        let mut channels = Vec::new();
        let matches = |name: &str| prefix.is_none_or(|p| name.starts_with(p));
        for (name, entry) in self.registry.channels_of(app) {
            if !entry.subscribers.is_empty() && matches(name) {
                channels.push(ChannelStat {
                    name: name.clone(),
                    subscriptions: entry.subscribers.len() as u64,
                    users: None,
                    cache: None,
                });
            }
        }
        for (name, members) in self.owner.presence_channels(app) {
            if matches(name) {
                channels.push(ChannelStat {
                    name: name.clone(),
                    subscriptions: 0,
                    users: Some(members as u64),
                    cache: None,
                });
            }
        }
        channels
    }

    /// One entry per named channel: its local subscriptions and, where this shard is the
    /// channel's owner, its user count and cached event.
    fn named_channels(&self, app: AppIndex, names: &[Arc<str>]) -> Vec<ChannelStat> {
        let now_s = self.now_ms / 1000;
        let mut channels = Vec::new();
        for name in names {
            let subscriptions = self
                .registry
                .channel(app, name)
                .map_or(0, |e| e.subscribers.len() as u64);
            let owned = self.owner_of(app, name) == self.settings.shard_index;
            let users = owned.then(|| self.owner.members(app, name).map_or(0, |m| m.len() as u64));
            let cache = if owned {
                self.owner.cache_entry(app, name, now_s)
            } else {
                None
            };
            channels.push(ChannelStat {
                name: name.clone(),
                subscriptions,
                users,
                cache,
            });
        }
        channels
    }

    /// This shard's counters and gauges for `/metrics`: open connections per app, sockets,
    /// channels with subscribers, and the bridge link's state and counters.
    fn stats_snapshot(&self) -> StatsSnapshot {
        let mut connections_by_app = vec![0u64; self.apps.len()];
        let mut connections_by_dialect = [0u64; Dialect::COUNT];
        for (_, conn) in self.conns.iter() {
            if let (Some(app), true) = (conn.app, conn.counted) {
                connections_by_app[app as usize] += 1;
            }
            // Open sockets of a dialect (the echo path is none).
            if conn.phase.is_open_websocket() && conn.phase != Phase::Echo {
                connections_by_dialect[conn.dialect().index()] += 1;
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
        StatsSnapshot {
            shard: self.settings.shard_index,
            stats: self.stats.clone(),
            connections_by_app,
            connections_by_dialect,
            sockets: self.conns.len() as u64,
            channels,
            bridge_linked: self.link.enabled.then(|| self.is_linked()),
            bridge_stats: self.bridge_stats().cloned(),
        }
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

    /// The HTTP answer (status, content type, body) to a question whose parts have all arrived.
    fn build_answer(&self, pending: &PendingQuery) -> (u16, &'static str, String) {
        let json = "application/json";
        match &pending.purpose {
            Purpose::Metrics => (
                200,
                "text/plain; version=0.0.4",
                self.metrics_text(&pending.parts),
            ),
            Purpose::Users => (200, json, users_json(&pending.parts)),
            Purpose::ChannelList { user_count } => {
                (200, json, channel_list_json(&pending.parts, *user_count))
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
            Purpose::BatchInfo { events } => (200, json, batch_info_json(&pending.parts, events)),
        }
    }

    /// The `/metrics` text from every shard's stats part, in shard order.
    fn metrics_text(&self, parts: &[QueryPart]) -> String {
        let mut snapshots: Vec<StatsSnapshot> = parts
            .iter()
            .filter_map(|p| p.stats.as_deref().cloned())
            .collect();
        snapshots.sort_by_key(|s| s.shard);
        let app_ids: Vec<&str> = (0..self.apps.len() as AppIndex)
            .map(|i| self.apps.get(i).id.as_str())
            .collect();
        super::prometheus::render_prometheus(&snapshots, &app_ids)
    }
}

/// `{"users":[{"id":…},…]}` of every part's users, in the order the parts arrived.
fn users_json(parts: &[QueryPart]) -> String {
    let mut body = String::from("{\"users\":[");
    let ids = parts.iter().flat_map(|p| p.users.iter());
    for (i, id) in ids.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str("{\"id\":");
        body.push_str(&crate::pusher::server_message::json_string(id));
        body.push('}');
    }
    body.push_str("]}");
    body
}

/// `{"channels":{…}}` of the occupied channels, each `{}` or `{"user_count":…}`.
fn channel_list_json(parts: &[QueryPart], user_count: bool) -> String {
    let totals = merge(parts);
    let occupied = totals.iter().filter(|(_, t)| t.subscriptions > 0);
    channels_object(occupied.map(|(n, _)| n), |name| {
        if user_count {
            format!("{{\"user_count\":{}}}", totals[name].users.unwrap_or(0))
        } else {
            "{}".to_owned()
        }
    })
}

/// `{"batch":[…]}`: the info asked for on each event's channel, in batch order.
fn batch_info_json(
    parts: &[QueryPart],
    events: &[(Arc<str>, Vec<crate::pusher::rest::InfoAttribute>)],
) -> String {
    let totals = merge(parts);
    let mut body = String::from("{\"batch\":[");
    for (i, (name, attributes)) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        let t = totals.get(name).cloned().unwrap_or_default();
        body.push_str(&channel_info_json(name, &t, attributes, false));
    }
    body.push_str("]}");
    body
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
