//! Multi-shard simulation: several `Shard`s wired together by in-memory FIFO rings and a
//! virtual clock, driven by scripted clients speaking real WebSocket bytes. Checks the
//! cross-shard protocols (interest acks, owner-routed presence and cache, watchlists) and the
//! timers without any runtime.
//!
//! The harness (`Sim`, scripted clients, frame parsing and the helpers of every section) is
//! here; the tests are split by concern:
//! - `subscribe.rs`: socket ids, interest acks, client events, cache channels, exclusion, auth.
//! - `presence.rs`: presence across shards, member limits, sign-in and watchlists.
//! - `connections.rs`: slow consumers, pings and timeouts, drain, readiness, quota.
//! - `rest.rs`: the REST API and metrics over the shards.
//! - `cluster.rs`: several nodes through the bridge link.
//! - `socketio.rs`: Socket.IO clients in the one channel space with Pusher.
//! - `webhooks.rs`: webhook events for the bridge and subscription counts.
//! - `channels_json.rs`, `functions.rs`, `slip.rs`, `relay.rs`: the channels JSON dialect,
//!   channel functions, WebSocket-over-HTTP, the relay.
#![allow(clippy::unwrap_used)]

mod channels_json;
mod cluster;
mod connections;
mod functions;
mod presence;
mod relay;
mod rest;
mod slip;
mod socketio;
mod subscribe;
mod webhooks;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use serde_json::Value;

use super::message::ShardMessage;
use super::{InputState, OutputState, Shard, ShardSettings};
use crate::app::{AppConfig, AppTable};
use crate::pusher::auth;
use crate::ws::frame;

const SECRET: &str = "app-secret";
const KEY: &str = "app-key";

struct Sim {
    shards: Vec<Shard>,
    rings: VecDeque<(u16, ShardMessage)>,
    now_ms: u64,
}

#[derive(Clone, Copy, Debug)]
struct Client {
    shard: usize,
    key: u32,
}

/// A frame the server sent.
#[derive(Debug, PartialEq)]
enum Out {
    Text(Value),
    Close(u16),
    Other,
}

impl Sim {
    fn new(shard_count: u16, configure: impl Fn(&mut AppConfig)) -> Self {
        Sim::new_with(shard_count, false, configure)
    }

    /// Shards of a node that runs with a bridge (multi-node).
    fn new_with(
        shard_count: u16,
        bridge_enabled: bool,
        configure: impl Fn(&mut AppConfig),
    ) -> Self {
        Sim::new_mode(shard_count, bridge_enabled, bridge_enabled, configure)
    }

    /// Shards of a node with a bridge (`bridge_enabled`), as one of several (`cluster_enabled`)
    /// or alone (webhooks only).
    fn new_mode(
        shard_count: u16,
        bridge_enabled: bool,
        cluster_enabled: bool,
        configure: impl Fn(&mut AppConfig),
    ) -> Self {
        let functions = crate::functions::FunctionSettings::default();
        Sim::new_full(
            shard_count,
            bridge_enabled,
            cluster_enabled,
            functions,
            configure,
        )
    }

    /// Shards with these channel functions and `SECRET` as the server-wide JWT secret.
    fn new_full(
        shard_count: u16,
        bridge_enabled: bool,
        cluster_enabled: bool,
        functions: crate::functions::FunctionSettings,
        configure: impl Fn(&mut AppConfig),
    ) -> Self {
        let mut app = AppConfig::with_credentials("app-id", KEY, SECRET);
        configure(&mut app);
        let apps = Arc::new(AppTable::new(vec![app]));
        let shards = (0..shard_count)
            .map(|i| {
                Shard::new(
                    ShardSettings {
                        shard_index: i,
                        shard_count,
                        socket_id_base: 4242,
                        max_message_size: 65_536,
                        outbound_bytes_max: 64 * 1024,
                        handshake_timeout_s: 10,
                        echo_path: Some("/echo".into()),
                        metrics_port_separate: false,
                        bridge_enabled,
                        cluster_enabled,
                        socketio: crate::socketio::SocketIoSettings {
                            jwt_secret: Some(SECRET.to_owned()),
                            ..Default::default()
                        },
                        functions: functions.clone(),
                        channels_json: Default::default(),
                        fault_trigger: true,
                    },
                    apps.clone(),
                )
            })
            .collect();
        Sim {
            shards,
            rings: VecDeque::new(),
            now_ms: 1_000,
        }
    }

    /// Delivers every in-flight inter-shard message, FIFO, until quiet.
    fn settle(&mut self) {
        loop {
            for shard in &mut self.shards {
                let mut out = Vec::new();
                shard.take_outbox(&mut out);
                self.rings.extend(out);
            }
            let Some((target, message)) = self.rings.pop_front() else {
                return;
            };
            self.shards[target as usize].handle_message(message, self.now_ms);
        }
    }

    fn connect(&mut self, shard: usize) -> (Client, String) {
        let key = self.shards[shard].handle_accept(self.now_ms);
        let client = Client { shard, key };
        let request = format!(
            "GET /app/{KEY}?protocol=7&client=js&version=8.4.0 HTTP/1.1\r\nHost: x\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        self.shards[shard].handle_bytes(key, request.as_bytes(), self.now_ms);
        self.settle();
        let raw = self.raw_output(client);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        let head_end = text.find("\r\n\r\n").unwrap() + 4;
        let frames = parse_frames(&raw[head_end..]);
        let Out::Text(established) = &frames[0] else {
            panic!("{frames:?}")
        };
        assert_eq!(established["event"], "pusher:connection_established");
        let data: Value = serde_json::from_str(established["data"].as_str().unwrap()).unwrap();
        (client, data["socket_id"].as_str().unwrap().to_owned())
    }

    fn send(&mut self, client: Client, json: Value) {
        let payload = json.to_string();
        let bytes = masked_frame(frame::opcode::TEXT, payload.as_bytes());
        self.shards[client.shard].handle_bytes(client.key, &bytes, self.now_ms);
        self.settle();
    }

    fn raw_output(&mut self, client: Client) -> Vec<u8> {
        let mut out = BytesMut::new();
        loop {
            let before = out.len();
            let state = self.shards[client.shard].take_output(client.key, &mut out, 1 << 20);
            if out.len() == before || state != OutputState::Open {
                break;
            }
        }
        out.to_vec()
    }

    fn output(&mut self, client: Client) -> Vec<Out> {
        parse_frames(&self.raw_output(client))
    }

    fn events(&mut self, client: Client) -> Vec<Value> {
        self.output(client)
            .into_iter()
            .filter_map(|o| match o {
                Out::Text(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    fn subscribe(
        &mut self,
        client: Client,
        channel: &str,
        auth: Option<String>,
        data: Option<&str>,
    ) {
        let mut body = serde_json::json!({"channel": channel});
        if let Some(auth) = auth {
            body["auth"] = Value::String(auth);
        }
        if let Some(data) = data {
            body["channel_data"] = Value::String(data.to_owned());
        }
        self.send(
            client,
            serde_json::json!({"event": "pusher:subscribe", "data": body}),
        );
    }

    fn join_presence(
        &mut self,
        client: Client,
        socket_id: &str,
        channel: &str,
        user: &str,
    ) -> Vec<Value> {
        let data = format!("{{\"user_id\":\"{user}\",\"user_info\":{{\"name\":\"{user}\"}}}}");
        let token = auth::channel_auth_token(KEY, SECRET, socket_id, channel, Some(&data));
        self.subscribe(client, channel, Some(token), Some(&data));
        self.events(client)
    }

    fn tick(&mut self, seconds: u64) {
        for _ in 0..seconds {
            self.now_ms += 1_000;
            for shard in &mut self.shards {
                shard.handle_tick(self.now_ms);
            }
            self.settle();
        }
    }
}

fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut out = vec![0x80 | opcode];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn parse_frames(mut bytes: &[u8]) -> Vec<Out> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, header) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let payload = &bytes[header..header + len];
        frames.push(match opcode {
            1 => Out::Text(serde_json::from_slice(payload).unwrap()),
            8 => Out::Close(u16::from_be_bytes([payload[0], payload[1]])),
            _ => Out::Other,
        });
        bytes = &bytes[header + len..];
    }
    frames
}

fn data_of(event: &Value) -> Value {
    match &event["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    }
}

fn names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

// ---------------------------------------------------------------- REST API over the shards

const UNIX_NOW: u64 = 1_700_000_000;

impl Sim {
    /// Sends one signed REST request to a shard over a fresh HTTP connection; returns the
    /// status and the JSON body once every shard has answered.
    fn rest(
        &mut self,
        shard: usize,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        for s in &mut self.shards {
            s.set_unix_time(UNIX_NOW);
        }
        let query = crate::pusher::rest::sign_query(
            method,
            path,
            params,
            body.as_bytes(),
            KEY,
            SECRET,
            UNIX_NOW,
        );
        self.raw_http(shard, &format!(
            "{method} {path}?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// The upgrade `request_from(origin)` on shard 0: refused with 403 from another site,
    /// accepted from `allowed`, the refusal counted once.
    fn assert_only_allowed_origin_upgrades(
        &mut self,
        allowed: &str,
        request_from: impl Fn(&str) -> String,
    ) {
        for (origin, status) in [
            ("https://evil.example", "HTTP/1.1 403"),
            (allowed, "HTTP/1.1 101"),
        ] {
            let key = self.shards[0].handle_accept(self.now_ms);
            let request = request_from(origin);
            self.shards[0].handle_bytes(key, request.as_bytes(), self.now_ms);
            let raw = self.raw_output(Client { shard: 0, key });
            assert!(
                String::from_utf8_lossy(&raw).starts_with(status),
                "{origin}"
            );
        }
        assert_eq!(self.shards[0].stats().origin_refusals, 1);
    }

    fn raw_http(&mut self, shard: usize, request: &str) -> (u16, Value) {
        let key = self.shards[shard].handle_accept(self.now_ms);
        self.shards[shard].handle_bytes(key, request.as_bytes(), self.now_ms);
        self.settle();
        let raw = self.raw_output(Client { shard, key });
        let text = String::from_utf8(raw).unwrap();
        let status: u16 = text[9..12].parse().unwrap();
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

// ---------------------------------------------------------------- the bridge link (multi-node)

use crate::link::{self, ChannelEvent, LinkMessage};

impl Sim {
    /// Everything a shard queued for the bridge, decoded.
    fn link_output(&mut self, shard: usize) -> Vec<LinkMessage> {
        let mut bytes = BytesMut::new();
        self.shards[shard].take_link_output(&mut bytes);
        let mut messages = Vec::new();
        while let Some(message) = link::decode(&mut bytes).unwrap() {
            messages.push(message);
        }
        messages
    }

    fn link_in(&mut self, shard: usize, message: LinkMessage) {
        self.shards[shard]
            .handle_link_message(message, self.now_ms)
            .unwrap();
        self.settle();
    }

    /// The shard's only queued link message must announce `channel`; returns its seq.
    fn announced_seq(&mut self, shard: usize, channel: &str) -> u32 {
        let out = self.link_output(shard);
        match out.as_slice() {
            [LinkMessage::Subscribe {
                channel: c, seq, ..
            }] if c == channel => *seq,
            other => panic!("expected one Subscribe of {channel}: {other:?}"),
        }
    }

    /// Answers a shard's announcement of `channel` as the bridge would.
    fn confirm(&mut self, shard: usize, channel: &str, seq: u32) {
        let subscribed = LinkMessage::Subscribed {
            app_id: "app-id".into(),
            channel: channel.into(),
            seq,
        };
        self.link_in(shard, subscribed);
    }
}

// ------------------------------------------------------ presence across nodes (bridge linked)

use crate::link::{Member, PresenceChannel};

fn room() -> PresenceChannel {
    PresenceChannel {
        app_id: "app-id".into(),
        channel: "presence-room".into(),
    }
}

fn link_member(user_id: &str, info: &str) -> Member {
    Member {
        user_id: user_id.into(),
        user_info: bytes::Bytes::copy_from_slice(info.as_bytes()),
    }
}

impl Sim {
    /// Joins `presence-room` on a linked single-shard node up to the owner's members query;
    /// returns the client, its socket id and the query id.
    fn linked_presence_join(&mut self, user: &str) -> (Client, String, u32) {
        let (c, id) = self.connect(0);
        let data = format!("{{\"user_id\":\"{user}\",\"user_info\":{{\"name\":\"{user}\"}}}}");
        let token = auth::channel_auth_token(KEY, SECRET, &id, "presence-room", Some(&data));
        self.subscribe(c, "presence-room", Some(token), Some(&data));
        let mut out = self.link_output(0);
        if let Some(LinkMessage::Subscribe { seq, .. }) = out.first() {
            let seq = *seq;
            self.confirm(0, "presence-room", seq);
            out = self.link_output(0);
        }
        let query = out
            .iter()
            .find_map(|m| match m {
                LinkMessage::MembersQuery(channel, query) if *channel == room() => Some(*query),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no members query in {out:?}"));
        (c, id, query)
    }
}

/// A node alone that sends webhooks: every kind switched on for one URL.
fn webhook_sim(shard_count: u16) -> Sim {
    let mut sim = Sim::new_mode(shard_count, true, false, |app| {
        app.enable_client_messages = true;
        let hooks = &mut app.webhooks;
        hooks.enabled = true;
        hooks.url = Some("http://127.0.0.1:9/hooks".into());
        hooks.channel_occupied = true;
        hooks.channel_vacated = true;
        hooks.member_added = true;
        hooks.member_removed = true;
        hooks.client_event = true;
        hooks.cache_miss = true;
    });
    for shard in 0..usize::from(shard_count) {
        sim.shards[shard].handle_link_up();
        let out = sim.link_output(shard);
        assert!(matches!(out[0], LinkMessage::Hello { .. }), "{out:?}");
        let LinkMessage::WebhookConfig(config) = &out[1] else {
            panic!("{out:?}")
        };
        let config: Value = serde_json::from_slice(config).unwrap();
        assert_eq!(config["apps"][0]["app_id"], "app-id");
        assert_eq!(out.len(), 2, "a node alone announces nothing: {out:?}");
    }
    sim
}

impl Sim {
    /// The webhook events every shard handed to the bridge, as (kind, body JSON).
    fn hooks(&mut self) -> Vec<(crate::app::WebhookEventType, Value)> {
        let mut hooks = Vec::new();
        for shard in 0..self.shards.len() {
            for message in self.link_output(shard) {
                match message {
                    LinkMessage::Hook(event) => {
                        assert_eq!(event.app_id, "app-id");
                        let body: Value = serde_json::from_slice(&event.body).unwrap();
                        assert_eq!(body["channel"], event.channel.as_str());
                        assert_eq!(body["name"], event.kind.name());
                        hooks.push((event.kind, body));
                    }
                    other => panic!("only webhook events expected: {other:?}"),
                }
            }
        }
        hooks
    }
}

// ------------------------------------------------------- subscription counts (webhook state)

/// A node alone whose app wants only `subscription_count` (and `channel_occupied`, to show the
/// two kinds do not mix), linked on every shard.
fn count_sim(shard_count: u16) -> Sim {
    use crate::app::{WebhookEventType, WebhookTarget};
    let mut sim = Sim::new_mode(shard_count, true, false, |app| {
        app.webhooks.enabled = true;
        app.webhooks.targets.push(WebhookTarget {
            url: "http://127.0.0.1:9/counts".into(),
            event_types: vec![
                WebhookEventType::SubscriptionCount,
                WebhookEventType::ChannelOccupied,
            ],
            channel_name_starts_with: None,
            channel_name_ends_with: None,
            headers: Vec::new(),
        });
    });
    for shard in 0..usize::from(shard_count) {
        sim.shards[shard].handle_link_up();
        assert_eq!(sim.link_output(shard).len(), 2, "Hello and the settings");
    }
    sim
}

impl Sim {
    /// The subscription counts each shard reported: (shard, channel, count), in order.
    fn counts(&mut self) -> Vec<(usize, String, u64)> {
        let mut counts = Vec::new();
        for shard in 0..self.shards.len() {
            for message in self.link_output(shard) {
                let event = match message {
                    LinkMessage::Hook(event) => event,
                    LinkMessage::Hello { .. } | LinkMessage::WebhookConfig(_) => continue,
                    other => panic!("only webhook events expected: {other:?}"),
                };
                if event.kind != crate::app::WebhookEventType::SubscriptionCount {
                    continue;
                }
                let body: Value = serde_json::from_slice(&event.body).unwrap();
                assert_eq!(body["name"], "subscription_count");
                assert_eq!(body["channel"], event.channel.as_str());
                let count = body["subscription_count"].as_u64().unwrap();
                counts.push((shard, event.channel, count));
            }
        }
        counts
    }
}
