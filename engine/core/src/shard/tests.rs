//! Multi-shard simulation: several `Shard`s wired together by in-memory FIFO rings and a
//! virtual clock, driven by scripted clients speaking real WebSocket bytes. Checks the
//! cross-shard protocols (interest acks, owner-routed presence and cache, watchlists) and the
//! timers without any runtime.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;
use serde_json::Value;

use super::message::ShardMessage;
use super::{OutputState, Shard, ShardSettings};
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
#[derive(Debug)]
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

#[test]
fn socket_ids_name_their_shard() {
    let mut sim = Sim::new(3, |_| {});
    let (_, id) = sim.connect(2);
    assert!(id.split('.').next().unwrap().ends_with("02"), "{id}");
    assert_eq!(sim.shards[0].parse_socket_id(&id), Some((2, 1)));
    assert_eq!(sim.shards[0].parse_socket_id("1.2"), None);
}

#[test]
fn subscription_is_confirmed_after_every_shard_acked_interest() {
    let mut sim = Sim::new(2, |_| {});
    let (a, _) = sim.connect(0);
    sim.send(
        a,
        serde_json::json!({"event":"pusher:subscribe","data":{"channel":"news"}}),
    );
    let events = sim.events(a);
    assert_eq!(names(&events), ["pusher_internal:subscription_succeeded"]);
    // Shard 1 learned the interest before the confirmation, so its publishes reach shard 0.
    sim.shards[1].publish(
        0,
        "news",
        frame::encode_text(br#"{"event":"x","channel":"news","data":"1"}"#),
        None,
        sim.now_ms,
    );
    sim.settle();
    assert_eq!(names(&sim.events(a)), ["x"]);
}

#[test]
fn presence_across_shards_counts_users_not_connections() {
    let mut sim = Sim::new(2, |_| {});
    let (alice, alice_id) = sim.connect(0);
    let (bob, bob_id) = sim.connect(1);
    let (bob_tab2, bob_tab2_id) = sim.connect(0);
    let channel = "presence-room";

    let events = sim.join_presence(alice, &alice_id, channel, "alice");
    let data = data_of(&events[0]);
    assert_eq!(data["presence"]["count"], 1);

    let events = sim.join_presence(bob, &bob_id, channel, "bob");
    let data = data_of(&events[0]);
    assert_eq!(data["presence"]["count"], 2);
    assert_eq!(data["presence"]["hash"]["alice"]["name"], "alice");
    let alice_saw = sim.events(alice);
    assert_eq!(names(&alice_saw), ["pusher_internal:member_added"]);
    assert_eq!(data_of(&alice_saw[0])["user_id"], "bob");

    // Bob's second tab (other shard): no member_added for anyone.
    let events = sim.join_presence(bob_tab2, &bob_tab2_id, channel, "bob");
    assert_eq!(data_of(&events[0])["presence"]["count"], 2);
    assert!(sim.events(alice).is_empty());
    assert!(sim.events(bob).is_empty());

    // Closing one of Bob's tabs is not a leave; closing the last one is, exactly once.
    sim.shards[1].handle_closed(bob.key);
    sim.settle();
    assert!(sim.events(alice).is_empty());
    sim.send(
        bob_tab2,
        serde_json::json!({"event":"pusher:unsubscribe","data":{"channel":channel}}),
    );
    let alice_saw = sim.events(alice);
    assert_eq!(names(&alice_saw), ["pusher_internal:member_removed"]);
    assert_eq!(data_of(&alice_saw[0])["user_id"], "bob");
}

#[test]
fn presence_member_limit_refuses_new_users_only() {
    let mut sim = Sim::new(2, |app| app.max_presence_members_per_channel = 1);
    let (a, a_id) = sim.connect(0);
    let (a2, a2_id) = sim.connect(1);
    let (b, b_id) = sim.connect(1);
    assert_eq!(
        names(&sim.join_presence(a, &a_id, "presence-x", "a")),
        ["pusher_internal:subscription_succeeded"]
    );
    assert_eq!(
        names(&sim.join_presence(a2, &a2_id, "presence-x", "a")),
        ["pusher_internal:subscription_succeeded"]
    );
    let refused = sim.join_presence(b, &b_id, "presence-x", "b");
    assert_eq!(names(&refused), ["pusher:subscription_error"]);
    assert_eq!(data_of(&refused[0])["status"], 4100);
    // The refused user never counted: a leave of the real member still works.
    sim.shards[1].handle_closed(a2.key);
    sim.shards[0].handle_closed(a.key);
    sim.settle();
    let (c, c_id) = sim.connect(0);
    assert_eq!(
        names(&sim.join_presence(c, &c_id, "presence-x", "c")),
        ["pusher_internal:subscription_succeeded"]
    );
}

#[test]
fn client_events_cross_shards_and_are_not_echoed() {
    let mut sim = Sim::new(2, |app| app.enable_client_messages = true);
    let (a, a_id) = sim.connect(0);
    let (b, b_id) = sim.connect(1);
    for (client, id) in [(a, &a_id), (b, &b_id)] {
        let token = auth::channel_auth_token(KEY, SECRET, id, "private-chat", None);
        sim.subscribe(client, "private-chat", Some(token), None);
        assert_eq!(
            names(&sim.events(client)),
            ["pusher_internal:subscription_succeeded"]
        );
    }
    sim.send(
        a,
        serde_json::json!({"event":"client-typing","channel":"private-chat","data":{"who":"a"}}),
    );
    assert!(sim.events(a).is_empty(), "never echoed to the sender");
    let got = sim.events(b);
    assert_eq!(names(&got), ["client-typing"]);
    assert_eq!(got[0]["data"]["who"], "a");
    assert!(got[0].get("user_id").is_none());
}

#[test]
fn client_events_refused_without_flag_on_public_and_over_rate() {
    let mut sim = Sim::new(1, |app| {
        app.enable_client_messages = true;
        app.max_client_events_per_second = 2;
    });
    let (a, a_id) = sim.connect(0);
    sim.send(
        a,
        serde_json::json!({"event":"client-x","channel":"public","data":{}}),
    );
    let refused = sim.events(a);
    assert_eq!(data_of(&refused[0])["code"], 4301);
    let token = auth::channel_auth_token(KEY, SECRET, &a_id, "private-a", None);
    sim.subscribe(a, "private-a", Some(token), None);
    sim.events(a);
    for _ in 0..2 {
        sim.send(
            a,
            serde_json::json!({"event":"client-x","channel":"private-a","data":{}}),
        );
    }
    assert!(sim.events(a).is_empty());
    sim.send(
        a,
        serde_json::json!({"event":"client-x","channel":"private-a","data":{}}),
    );
    assert_eq!(data_of(&sim.events(a)[0])["code"], 4301);
    sim.tick(1);
    sim.send(
        a,
        serde_json::json!({"event":"client-x","channel":"private-a","data":{}}),
    );
    assert!(sim.events(a).is_empty(), "a new second opens a new window");

    let mut sim = Sim::new(1, |_| {});
    let (b, b_id) = sim.connect(0);
    let token = auth::channel_auth_token(KEY, SECRET, &b_id, "private-a", None);
    sim.subscribe(b, "private-a", Some(token), None);
    sim.events(b);
    sim.send(
        b,
        serde_json::json!({"event":"client-x","channel":"private-a","data":{}}),
    );
    assert_eq!(data_of(&sim.events(b)[0])["code"], 4301, "app flag off");
}

#[test]
fn cache_channel_answers_miss_then_last_event() {
    let mut sim = Sim::new(2, |_| {});
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "cache-prices", None, None);
    assert_eq!(
        names(&sim.events(a)),
        [
            "pusher_internal:subscription_succeeded",
            "pusher:cache_miss"
        ]
    );
    let event = br#"{"event":"price","channel":"cache-prices","data":"42"}"#;
    sim.shards[1].publish(
        0,
        "cache-prices",
        frame::encode_text(event),
        None,
        sim.now_ms,
    );
    sim.settle();
    assert_eq!(names(&sim.events(a)), ["price"]);
    let (b, _) = sim.connect(1);
    sim.subscribe(b, "cache-prices", None, None);
    let got = sim.events(b);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded", "price"]
    );
}

#[test]
fn publish_excludes_the_given_socket() {
    let mut sim = Sim::new(2, |_| {});
    let (a, a_id) = sim.connect(0);
    let (b, _) = sim.connect(1);
    for c in [a, b] {
        sim.subscribe(c, "news", None, None);
        sim.events(c);
    }
    sim.shards[1].publish(
        0,
        "news",
        frame::encode_text(br#"{"event":"x","channel":"news","data":"1"}"#),
        Some(&a_id),
        sim.now_ms,
    );
    sim.settle();
    assert!(sim.events(a).is_empty());
    assert_eq!(names(&sim.events(b)), ["x"]);
}

#[test]
fn auth_failures_are_subscription_errors() {
    let mut sim = Sim::new(1, |_| {});
    let (a, a_id) = sim.connect(0);
    sim.subscribe(
        a,
        "private-x",
        Some(format!("{KEY}:{}", "0".repeat(64))),
        None,
    );
    let got = sim.events(a);
    assert_eq!(names(&got), ["pusher:subscription_error"]);
    assert_eq!(data_of(&got[0])["status"], 401);
    sim.subscribe(a, "private-x", None, None);
    assert_eq!(data_of(&sim.events(a)[0])["status"], 401);
    sim.subscribe(a, "bad#name", None, None);
    assert_eq!(data_of(&sim.events(a)[0])["type"], "InvalidChannel");
    // The same token for another socket is refused.
    let token = auth::channel_auth_token(KEY, SECRET, "1.1", "private-x", None);
    sim.subscribe(a, "private-x", Some(token), None);
    assert_eq!(names(&sim.events(a)), ["pusher:subscription_error"]);
    let token = auth::channel_auth_token(KEY, SECRET, &a_id, "private-encrypted-x", None);
    sim.subscribe(a, "private-encrypted-x", Some(token), None);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"]
    );
}

#[test]
fn slow_consumer_is_cut_with_4100_and_others_keep_receiving() {
    let mut sim = Sim::new(1, |_| {});
    let (slow, _) = sim.connect(0);
    let (fast, _) = sim.connect(0);
    for c in [slow, fast] {
        sim.subscribe(c, "feed", None, None);
        sim.events(c);
    }
    let payload = format!(
        r#"{{"event":"x","channel":"feed","data":"{}"}}"#,
        "y".repeat(1000)
    );
    let frame_bytes = frame::encode_text(payload.as_bytes());
    // The slow reader's socket is full (the shell reports a partial write); the fast one's is not.
    sim.shards[0].set_write_blocked(slow.key, true);
    let mut fast_got = 0;
    for _ in 0..100 {
        sim.shards[0].publish(0, "feed", frame_bytes.clone(), None, sim.now_ms);
        fast_got += sim.events(fast).len(); // the fast reader drains every time
    }
    assert_eq!(fast_got, 100);
    let slow_out = sim.output(slow);
    assert!(
        matches!(slow_out.last(), Some(Out::Close(4100))),
        "{slow_out:?}"
    );
    assert!(slow_out.len() < 100, "queue was dropped, not delivered");
    assert_eq!(sim.shards[0].stats().slow_consumer_disconnects, 1);
}

#[test]
fn a_reader_that_keeps_up_is_never_cut_whatever_the_burst() {
    let mut sim = Sim::new(1, |_| {});
    let (reader, _) = sim.connect(0);
    sim.subscribe(reader, "feed", None, None);
    sim.events(reader);
    // 64 KiB cap; one frame bigger than it and a burst of many in one turn, socket not full.
    let big = format!(
        r#"{{"event":"big","channel":"feed","data":"{}"}}"#,
        "y".repeat(100_000)
    );
    sim.shards[0].publish(
        0,
        "feed",
        frame::encode_text(big.as_bytes()),
        None,
        sim.now_ms,
    );
    let small = frame::encode_text(br#"{"event":"small","channel":"feed","data":"z"}"#);
    for _ in 0..5_000 {
        sim.shards[0].publish(0, "feed", small.clone(), None, sim.now_ms);
    }
    let got = sim.events(reader);
    assert_eq!(got.len(), 5_001);
    assert_eq!(sim.shards[0].stats().slow_consumer_disconnects, 0);
}

#[test]
fn server_pings_after_activity_timeout_and_closes_4201_without_reply() {
    let mut sim = Sim::new(1, |app| app.activity_timeout_s = 5);
    let (a, _) = sim.connect(0);
    let (b, _) = sim.connect(0);
    sim.tick(5);
    assert_eq!(names(&sim.events(a)), ["pusher:ping"]);
    assert_eq!(names(&sim.events(b)), ["pusher:ping"]);
    sim.send(b, serde_json::json!({"event":"pusher:pong","data":{}}));
    sim.tick(crate::limits::PONG_GRACE_S);
    let out = sim.output(a);
    assert!(matches!(out.last(), Some(Out::Close(4201))), "{out:?}");
    let b_out = sim.output(b);
    assert!(
        !b_out.iter().any(|o| matches!(o, Out::Close(_))),
        "{b_out:?}"
    );
}

#[test]
fn timers_never_fire_early() {
    let mut sim = Sim::new(1, |app| app.activity_timeout_s = 1);
    sim.now_ms = 1_900; // connect late in a second
    let (a, _) = sim.connect(0);
    for shard in &mut sim.shards {
        shard.handle_tick(2_100); // a tick 200 ms later: a whole-second clock would fire here
    }
    assert!(sim.events(a).is_empty(), "pinged 200 ms after connecting");
    for shard in &mut sim.shards {
        shard.handle_tick(2_900);
    }
    assert_eq!(names(&sim.events(a)), ["pusher:ping"]);
}

#[test]
fn unauthorized_connections_close_4009_after_timeout() {
    let mut sim = Sim::new(1, |app| {
        app.require_channel_authorization = true;
        app.authorization_timeout_s = 2;
    });
    let (idle, _) = sim.connect(0);
    let (authed, authed_id) = sim.connect(0);
    let token = auth::channel_auth_token(KEY, SECRET, &authed_id, "private-a", None);
    sim.subscribe(authed, "private-a", Some(token), None);
    sim.events(authed);
    sim.tick(2);
    let out = sim.output(idle);
    assert!(matches!(out.last(), Some(Out::Close(4009))), "{out:?}");
    assert!(sim.output(authed).is_empty());
}

#[test]
fn signin_watchlist_and_server_to_user_across_shards() {
    let mut sim = Sim::new(2, |_| {});
    let (watcher, watcher_id) = sim.connect(0);
    let user_data = r#"{"id":"w","watchlist":["u"]}"#;
    let token = auth::signin_token(KEY, SECRET, &watcher_id, user_data);
    sim.send(
        watcher,
        serde_json::json!({"event":"pusher:signin","data":{"auth":token,"user_data":user_data}}),
    );
    let got = sim.events(watcher);
    assert_eq!(names(&got), ["pusher:signin_success"]);
    assert_eq!(data_of(&got[0])["user_data"], user_data);

    let (u, u_id) = sim.connect(1);
    let u_data = r#"{"id":"u"}"#;
    let token = auth::signin_token(KEY, SECRET, &u_id, u_data);
    sim.send(
        u,
        serde_json::json!({"event":"pusher:signin","data":{"auth":token,"user_data":u_data}}),
    );
    let got = sim.events(watcher);
    assert_eq!(names(&got), ["pusher_internal:watchlist_events"]);
    assert_eq!(data_of(&got[0])["events"][0]["name"], "online");
    assert_eq!(data_of(&got[0])["events"][0]["user_ids"][0], "u");

    // pusher-js's own server-to-user subscription is confirmed; someone else's is refused.
    sim.subscribe(u, "#server-to-user-u", None, None);
    assert_eq!(
        names(&sim.events(u)),
        [
            "pusher:signin_success",
            "pusher_internal:subscription_succeeded"
        ]
    );
    sim.subscribe(watcher, "#server-to-user-u", None, None);
    assert_eq!(names(&sim.events(watcher)), ["pusher:subscription_error"]);

    sim.shards[0].publish_to_user(
        0,
        "u",
        frame::encode_text(br##"{"event":"hello","channel":"#server-to-user-u","data":"{}"}"##),
        sim.now_ms,
    );
    sim.settle();
    assert_eq!(names(&sim.events(u)), ["hello"]);
    assert!(sim.events(watcher).is_empty());

    sim.shards[0].terminate_user(0, "u", sim.now_ms);
    sim.settle();
    let out = sim.output(u);
    assert!(matches!(out.last(), Some(Out::Close(4009))), "{out:?}");
    let got = sim.events(watcher);
    assert_eq!(data_of(&got[0])["events"][0]["name"], "offline");
}

#[test]
fn bad_signin_closes_4009() {
    let mut sim = Sim::new(1, |_| {});
    let (a, _) = sim.connect(0);
    sim.send(a, serde_json::json!({"event":"pusher:signin","data":{"auth":"app-key:00","user_data":"{\"id\":\"x\"}"}}));
    let out = sim.output(a);
    assert!(
        matches!(out.first(), Some(Out::Text(v)) if v["data"]["code"] == 4009),
        "{out:?}"
    );
    assert!(matches!(out.last(), Some(Out::Close(4009))), "{out:?}");
}

#[test]
fn drain_sends_4200_to_everyone() {
    let mut sim = Sim::new(2, |_| {});
    let (a, _) = sim.connect(0);
    let (b, _) = sim.connect(1);
    for shard in &mut sim.shards {
        shard.handle_drain(1);
    }
    for c in [a, b] {
        let out = sim.output(c);
        assert!(
            matches!(&out[0], Out::Text(v) if v["data"]["code"] == 4200),
            "{out:?}"
        );
        assert!(matches!(out.last(), Some(Out::Close(4200))), "{out:?}");
    }
    assert!(sim.shards[0].is_draining());
}

#[test]
fn ready_says_503_while_draining_on_open_http_connections() {
    let mut sim = Sim::new(1, |_| {});
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let http = Client { shard: 0, key };
    let ask = b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n";
    sim.shards[0].handle_bytes(key, ask, sim.now_ms);
    let reply = String::from_utf8(sim.raw_output(http)).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    sim.shards[0].handle_drain(sim.now_ms);
    assert_eq!(
        sim.shards[0].draining_connection_count(),
        0,
        "idle keep-alive does not hold the drain"
    );
    sim.shards[0].handle_bytes(key, ask, sim.now_ms);
    let reply = String::from_utf8(sim.raw_output(http)).unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("connection: close"),
        "{reply}"
    );
}

#[test]
fn connection_quota_is_node_wide() {
    let mut sim = Sim::new(2, |app| app.max_connections = 1);
    let (a, _) = sim.connect(0);
    let key = sim.shards[1].handle_accept(sim.now_ms);
    let request = format!(
        "GET /app/{KEY} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    sim.shards[1].handle_bytes(key, request.as_bytes(), sim.now_ms);
    let raw = sim.raw_output(Client { shard: 1, key });
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains("4004"), "{text}");
    sim.shards[0].handle_closed(a.key);
    sim.connect(1); // admitted again once the first left
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

#[test]
fn rest_publish_reaches_every_shard_and_honours_socket_exclusion() {
    let mut sim = Sim::new(2, |_| {});
    let (a, a_id) = sim.connect(0);
    let (b, _) = sim.connect(1);
    for c in [a, b] {
        sim.subscribe(c, "news", None, None);
        sim.events(c);
    }
    let body = r#"{"name":"headline","channels":["news"],"data":"{\"t\":1}"}"#;
    let (status, reply) = sim.rest(1, "POST", "/apps/app-id/events", &[], body);
    assert_eq!((status, reply), (200, serde_json::json!({})));
    for c in [a, b] {
        let got = sim.events(c);
        assert_eq!(names(&got), ["headline"]);
        assert_eq!(
            got[0]["data"], "{\"t\":1}",
            "data relayed as the same string"
        );
    }
    let deliveries: u64 = sim.shards.iter().map(|s| s.stats().deliveries).sum();
    assert_eq!(deliveries, 2, "one delivery per subscriber, on each shard");
    let body = format!(r#"{{"name":"x","channel":"news","data":"d","socket_id":"{a_id}"}}"#);
    sim.rest(0, "POST", "/apps/app-id/events", &[], &body);
    assert!(sim.events(a).is_empty(), "excluded socket");
    assert_eq!(names(&sim.events(b)), ["x"]);
}

#[test]
fn rest_channel_queries_count_over_all_shards() {
    let mut sim = Sim::new(2, |_| {});
    let (a, a_id) = sim.connect(0);
    let (b, b_id) = sim.connect(1);
    let (c, c_id) = sim.connect(1);
    sim.join_presence(a, &a_id, "presence-room", "alice");
    sim.join_presence(b, &b_id, "presence-room", "bob");
    sim.join_presence(c, &c_id, "presence-room", "bob");
    sim.subscribe(a, "news", None, None);

    let (status, reply) = sim.rest(0, "GET", "/apps/app-id/channels", &[], "");
    assert_eq!(status, 200);
    assert_eq!(
        reply,
        serde_json::json!({"channels": {"news": {}, "presence-room": {}}})
    );

    let (_, reply) = sim.rest(
        1,
        "GET",
        "/apps/app-id/channels",
        &[("filter_by_prefix", "presence-"), ("info", "user_count")],
        "",
    );
    assert_eq!(
        reply,
        serde_json::json!({"channels": {"presence-room": {"user_count": 2}}})
    );

    let (status, _) = sim.rest(
        1,
        "GET",
        "/apps/app-id/channels",
        &[("info", "user_count")],
        "",
    );
    assert_eq!(status, 400, "user_count needs the presence- prefix");

    let (_, reply) = sim.rest(
        0,
        "GET",
        "/apps/app-id/channels/presence-room",
        &[("info", "user_count,subscription_count")],
        "",
    );
    assert_eq!(
        reply,
        serde_json::json!({"occupied": true, "user_count": 2, "subscription_count": 3})
    );

    let (_, reply) = sim.rest(1, "GET", "/apps/app-id/channels/empty", &[], "");
    assert_eq!(reply, serde_json::json!({"occupied": false}));

    let (_, reply) = sim.rest(
        1,
        "GET",
        "/apps/app-id/channels/presence-room/users",
        &[],
        "",
    );
    let mut ids: Vec<String> = reply["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["alice", "bob"]);
    let (status, _) = sim.rest(1, "GET", "/apps/app-id/channels/news/users", &[], "");
    assert_eq!(status, 400);

    let body = r#"{"name":"x","channels":["presence-room","news"],"data":"d","info":"user_count,subscription_count"}"#;
    let (_, reply) = sim.rest(1, "POST", "/apps/app-id/events", &[], body);
    assert_eq!(
        reply,
        serde_json::json!({"channels": {
            "news": {"subscription_count": 1},
            "presence-room": {"user_count": 2, "subscription_count": 3}
        }})
    );
}

#[test]
fn rest_cache_channel_info_and_fill() {
    let mut sim = Sim::new(2, |_| {});
    let body = r#"{"name":"price","channel":"cache-ticker","data":"42"}"#;
    sim.rest(0, "POST", "/apps/app-id/events", &[], body);
    let (_, reply) = sim.rest(
        1,
        "GET",
        "/apps/app-id/channels/cache-ticker",
        &[("info", "cache")],
        "",
    );
    assert_eq!(reply["occupied"], false);
    assert_eq!(reply["cache"]["data"], "42");
    assert!(reply["cache"]["ttl"].as_u64().unwrap() > 0);
    let (a, _) = sim.connect(1);
    sim.subscribe(a, "cache-ticker", None, None);
    let got = sim.events(a);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded", "price"]
    );
}

#[test]
fn rest_batch_is_validated_whole_before_sending() {
    let mut sim = Sim::new(2, |_| {});
    let (a, _) = sim.connect(1);
    sim.subscribe(a, "news", None, None);
    sim.events(a);
    let bad = r#"{"batch":[{"name":"ok","channel":"news","data":"1"},{"name":"bad","channel":"bad#name","data":"2"}]}"#;
    let (status, reply) = sim.rest(0, "POST", "/apps/app-id/batch_events", &[], bad);
    assert_eq!(status, 400, "{reply}");
    assert!(
        sim.events(a).is_empty(),
        "nothing sent from a refused batch"
    );
    let good = r#"{"batch":[{"name":"one","channel":"news","data":"1"},{"name":"two","channel":"news","data":"2","info":"subscription_count"}]}"#;
    let (status, reply) = sim.rest(0, "POST", "/apps/app-id/batch_events", &[], good);
    assert_eq!(status, 200);
    assert_eq!(
        reply,
        serde_json::json!({"batch": [{}, {"subscription_count": 1}]})
    );
    assert_eq!(names(&sim.events(a)), ["one", "two"]);
}

#[test]
fn rest_refusals_have_their_status() {
    let mut sim = Sim::new(1, |app| {
        app.max_event_payload_kb = 1;
        app.max_backend_events_per_second = 2;
    });
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    sim.events(a);
    let big = format!(
        r#"{{"name":"x","channel":"news","data":"{}"}}"#,
        "y".repeat(2000)
    );
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], &big).0, 413);
    assert!(sim.events(a).is_empty());
    assert_eq!(sim.rest(0, "POST", "/apps/nope/events", &[], "{}").0, 404);
    assert_eq!(
        sim.rest(0, "POST", "/apps/app-id/events", &[], "{not json")
            .0,
        400
    );
    // Bad signature, stale timestamp, wrong body_md5.
    let body = r#"{"name":"x","channel":"news","data":"1"}"#;
    let q = crate::pusher::rest::sign_query(
        "POST",
        "/apps/app-id/events",
        &[],
        body.as_bytes(),
        KEY,
        "wrong",
        UNIX_NOW,
    );
    let req = format!(
        "POST /apps/app-id/events?{q} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(sim.raw_http(0, &req).0, 401);
    let q = crate::pusher::rest::sign_query(
        "POST",
        "/apps/app-id/events",
        &[],
        body.as_bytes(),
        KEY,
        SECRET,
        UNIX_NOW - 601,
    );
    let req = format!(
        "POST /apps/app-id/events?{q} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(sim.raw_http(0, &req).0, 401);
    let q = crate::pusher::rest::sign_query(
        "POST",
        "/apps/app-id/events",
        &[],
        br#"{"other":1}"#,
        KEY,
        SECRET,
        UNIX_NOW,
    );
    let req = format!(
        "POST /apps/app-id/events?{q} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(sim.raw_http(0, &req).0, 401);
    assert!(sim.events(a).is_empty());
    // Rate limit: two per second.
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 200);
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 200);
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 429);
}

#[test]
fn rest_terminate_and_server_to_user() {
    let mut sim = Sim::new(2, |_| {});
    let (u, u_id) = sim.connect(1);
    let data = r#"{"id":"u7"}"#;
    let token = auth::signin_token(KEY, SECRET, &u_id, data);
    sim.send(
        u,
        serde_json::json!({"event":"pusher:signin","data":{"auth":token,"user_data":data}}),
    );
    sim.events(u);
    let body = r##"{"name":"note","channel":"#server-to-user-u7","data":"hi"}"##;
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 200);
    let got = sim.events(u);
    assert_eq!(names(&got), ["note"]);
    assert_eq!(got[0]["channel"], "#server-to-user-u7");
    let (status, _) = sim.rest(
        0,
        "POST",
        "/apps/app-id/users/u7/terminate_connections",
        &[],
        "{}",
    );
    assert_eq!(status, 200);
    // The Python SDK's path (no /apps/{id}: the signed key names the app) works too.
    let (status, _) = sim.rest(1, "POST", "/users/u7/terminate_connections", &[], "{}");
    assert_eq!(status, 200);
    let out = sim.output(u);
    assert!(matches!(out.last(), Some(Out::Close(4009))), "{out:?}");
}

#[test]
fn metrics_gather_every_shard() {
    let mut sim = Sim::new(2, |_| {});
    sim.connect(0);
    sim.connect(1);
    let (status, _) = {
        let key = sim.shards[1].handle_accept(sim.now_ms);
        sim.shards[1].handle_bytes(key, b"GET /metrics HTTP/1.1\r\n\r\n", sim.now_ms);
        sim.settle();
        let text = String::from_utf8(sim.raw_output(Client { shard: 1, key })).unwrap();
        assert!(
            text.contains("ringcast_connections{shard=\"0\",app=\"app-id\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ringcast_connections{shard=\"1\",app=\"app-id\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ringcast_handshake_seconds_count{shard=\"0\"} 1"),
            "{text}"
        );
        (text[9..12].parse::<u16>().unwrap(), ())
    };
    assert_eq!(status, 200);
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

#[test]
fn a_linked_first_subscriber_waits_for_the_bridge() {
    let mut sim = Sim::new_with(2, true, |_| {});
    sim.shards[0].handle_link_up();
    let hello = sim.link_output(0);
    assert!(matches!(
        hello[0],
        LinkMessage::Hello {
            version: link::VERSION,
            shard: 0,
            shard_count: 2,
            cluster: true
        }
    ));
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    assert!(
        sim.events(a).is_empty(),
        "not confirmed before the bridge answers"
    );
    let seq = sim.announced_seq(0, "news");
    // An answer to an older announcement changes nothing.
    sim.confirm(0, "news", seq.wrapping_sub(1));
    assert!(sim.events(a).is_empty());
    sim.confirm(0, "news", seq);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"]
    );
    // A second local subscriber does not announce again; the last one leaving withdraws.
    let (b, _) = sim.connect(0);
    sim.subscribe(b, "news", None, None);
    assert_eq!(
        names(&sim.events(b)),
        ["pusher_internal:subscription_succeeded"]
    );
    assert!(sim.link_output(0).is_empty());
    for c in [a, b] {
        sim.send(
            c,
            serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}),
        );
    }
    assert_eq!(
        sim.link_output(0),
        [LinkMessage::Unsubscribe {
            app_id: "app-id".into(),
            channel: "news".into()
        }]
    );
}

#[test]
fn without_a_link_subscriptions_go_on_and_the_link_resyncs_when_it_comes() {
    let mut sim = Sim::new_with(1, true, |_| {});
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"],
        "link down: no wait"
    );
    assert!(
        sim.link_output(0).is_empty(),
        "nothing queued while the link is down"
    );
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    assert!(matches!(out[0], LinkMessage::Hello { .. }));
    assert!(matches!(out[1], LinkMessage::WebhookConfig(_)));
    assert!(
        matches!(&out[2], LinkMessage::Subscribe { channel, .. } if channel == "news"),
        "{out:?}"
    );
    // The link goes down while a subscription waits for the bridge: it goes on at once.
    let (b, _) = sim.connect(0);
    sim.subscribe(b, "sports", None, None);
    assert!(sim.events(b).is_empty());
    sim.shards[0].handle_link_down();
    assert_eq!(
        names(&sim.events(b)),
        ["pusher_internal:subscription_succeeded"]
    );
}

#[test]
fn local_publishes_go_up_and_remote_events_come_down_with_exclusion() {
    let mut sim = Sim::new_with(2, true, |_| {});
    for shard in 0..2 {
        sim.shards[shard].handle_link_up();
        sim.link_output(shard);
    }
    let (a, a_id) = sim.connect(0);
    let (b, _) = sim.connect(1);
    for (c, shard) in [(a, 0), (b, 1)] {
        sim.subscribe(c, "news", None, None);
        let seq = sim.announced_seq(shard, "news");
        sim.confirm(shard, "news", seq);
        sim.events(c);
    }
    // REST publish naming a socket of another node: delivered here, forwarded with the id.
    let body = r#"{"name":"n","channel":"news","data":"d","socket_id":"99.1"}"#;
    assert_eq!(sim.rest(1, "POST", "/apps/app-id/events", &[], body).0, 200);
    assert_eq!(names(&sim.events(a)), ["n"]);
    let up = sim.link_output(1);
    let [LinkMessage::Publish(event)] = up.as_slice() else {
        panic!("{up:?}")
    };
    assert_eq!(
        (
            event.app_id.as_str(),
            event.channel.as_str(),
            event.except_socket_id.as_str()
        ),
        ("app-id", "news", "99.1")
    );
    assert!(
        sim.link_output(0).is_empty(),
        "only the receiving shard forwards"
    );
    sim.events(b);
    // An event from another node excluding our socket a: b gets it, a does not, and it is
    // not sent back up.
    let frame = frame::encode_text(br#"{"event":"remote","channel":"news","data":"r"}"#);
    for shard in 0..2 {
        sim.link_in(
            shard,
            LinkMessage::Deliver(ChannelEvent {
                app_id: "app-id".into(),
                channel: "news".into(),
                except_socket_id: a_id.clone(),
                frame: frame.clone(),
            }),
        );
    }
    assert!(sim.events(a).is_empty());
    assert_eq!(names(&sim.events(b)), ["remote"]);
    assert!(sim.link_output(0).is_empty() && sim.link_output(1).is_empty());
    assert_eq!(sim.shards[1].stats().link_events_in, 1);
}

#[test]
fn member_events_are_not_publishes_and_link_down_publishes_are_counted() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    sim.linked_presence_join("u1");
    let (_, _, _) = sim.linked_presence_join("u2");
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    assert!(
        out.iter().all(|m| !matches!(m, LinkMessage::Publish(_))),
        "member events are not publishes: {out:?}"
    );
    sim.shards[0].handle_link_down();
    let body = r#"{"name":"n","channel":"presence-room","data":"d"}"#;
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 200);
    assert!(sim.link_output(0).is_empty());
    assert_eq!(sim.shards[0].stats().link_publishes_dropped, 1);
}

#[test]
fn an_unanswered_announcement_times_out_and_the_subscriber_goes_on() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    assert!(sim.link_output(0).len() == 1);
    sim.tick(1);
    assert!(sim.events(a).is_empty(), "still waiting after 1 s");
    sim.tick(2);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"],
        "goes on without the bridge after the timeout"
    );
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

#[test]
fn linked_presence_asks_the_cluster_for_members_and_reports_first_join_and_last_leave() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    let hello = sim.link_output(0);
    assert_eq!(hello.last(), Some(&LinkMessage::ResyncDone), "{hello:?}");

    let (a, _, query) = sim.linked_presence_join("alice");
    assert!(
        sim.events(a).is_empty(),
        "no answer before the cluster's member list"
    );
    // Bob is a member on another node; the snapshot may predate alice's own join.
    sim.link_in(
        0,
        LinkMessage::MembersSnapshot(
            room(),
            query,
            vec![link_member("bob", "{\"name\":\"bob\"}")],
        ),
    );
    let got = sim.events(a);
    assert_eq!(names(&got), ["pusher_internal:subscription_succeeded"]);
    let presence = &data_of(&got[0])["presence"];
    assert_eq!(presence["count"], 2);
    assert_eq!(presence["hash"]["bob"]["name"], "bob");
    assert_eq!(presence["hash"]["alice"]["name"], "alice");

    // The node's first join of alice went to the bridge, not to local subscribers.
    let (b, _, query) = sim.linked_presence_join("carol");
    let up: Vec<LinkMessage> = Vec::new();
    let _ = up;
    sim.link_in(0, LinkMessage::MembersSnapshot(room(), query, Vec::new()));
    sim.events(b);
    assert!(
        sim.events(a).is_empty(),
        "member_added comes from the cluster, not the owner"
    );

    // The cluster's events reach local subscribers, never the joining user's own connections.
    sim.link_in(
        0,
        LinkMessage::MemberAdded(room(), link_member("carol", "{\"name\":\"carol\"}")),
    );
    assert_eq!(names(&sim.events(a)), ["pusher_internal:member_added"]);
    assert!(sim.events(b).is_empty(), "carol's own connection");
    sim.link_in(0, LinkMessage::MemberRemoved(room(), "bob".into()));
    assert_eq!(names(&sim.events(a)), ["pusher_internal:member_removed"]);
    assert_eq!(names(&sim.events(b)), ["pusher_internal:member_removed"]);

    // Carol's last connection leaves: reported to the bridge, nothing delivered locally.
    sim.send(
        b,
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}),
    );
    let out = sim.link_output(0);
    assert!(
        out.contains(&LinkMessage::MemberLeave(room(), "carol".into())),
        "{out:?}"
    );
    assert!(sim.events(a).is_empty());
}

#[test]
fn linked_presence_falls_back_to_the_node_when_the_bridge_is_silent_or_gone() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let (a, _, _) = sim.linked_presence_join("alice");
    assert!(sim.events(a).is_empty());
    sim.tick(3);
    let got = sim.events(a);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded"],
        "answered after the timeout"
    );
    assert_eq!(data_of(&got[0])["presence"]["count"], 1);

    let (b, _, _) = sim.linked_presence_join("bob");
    sim.shards[0].handle_link_down();
    sim.settle();
    let got = sim.events(b);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded"],
        "answered when the link went"
    );
    assert_eq!(data_of(&got[0])["presence"]["count"], 2);
    // Bob's join was handed to the bridge before the link went: the relink below re-sends it.
    assert!(sim.events(a).is_empty());
    // Alone now: a join is answered and announced by the node itself.
    let (d, d_id) = sim.connect(0);
    let got = sim.join_presence(d, &d_id, "presence-room", "dave");
    assert_eq!(data_of(&got[0])["presence"]["count"], 3);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:member_added"],
        "alone again: local events"
    );

    // Relink: the node's members are re-sent for the bridge to reconcile.
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    let resync = out
        .iter()
        .find_map(|m| match m {
            LinkMessage::MembersResync(channel, members) if *channel == room() => Some(members),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{out:?}"));
    let mut users: Vec<&str> = resync.iter().map(|m| m.user_id.as_str()).collect();
    users.sort();
    assert_eq!(users, ["alice", "bob", "dave"]);
    assert_eq!(out.last(), Some(&LinkMessage::ResyncDone));
}

#[test]
fn linked_users_query_answers_with_the_cluster_members() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let (a, _, query) = sim.linked_presence_join("alice");
    sim.link_in(0, LinkMessage::MembersSnapshot(room(), query, Vec::new()));
    sim.events(a);
    sim.link_output(0);

    for s in &mut sim.shards {
        s.set_unix_time(UNIX_NOW);
    }
    let path = "/apps/app-id/channels/presence-room/users";
    let signed = crate::pusher::rest::sign_query("GET", path, &[], b"", KEY, SECRET, UNIX_NOW);
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let request = format!("GET {path}?{signed} HTTP/1.1\r\nHost: x\r\n\r\n");
    sim.shards[0].handle_bytes(key, request.as_bytes(), sim.now_ms);
    sim.settle();
    let http = Client { shard: 0, key };
    assert!(
        sim.raw_output(http).is_empty(),
        "waits for the cluster's members"
    );
    let out = sim.link_output(0);
    let query = out
        .iter()
        .find_map(|m| match m {
            LinkMessage::MembersQuery(channel, query) if *channel == room() => Some(*query),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{out:?}"));
    let members = vec![link_member("alice", "{}"), link_member("bob", "{}")];
    sim.link_in(0, LinkMessage::MembersSnapshot(room(), query, members));
    let text = String::from_utf8(sim.raw_output(http)).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body: Value = serde_json::from_str(&text[text.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"users": [{"id": "alice"}, {"id": "bob"}]})
    );
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

#[test]
fn a_node_alone_reports_occupancy_once_whatever_the_shards() {
    use crate::app::WebhookEventType::{ChannelOccupied, ChannelVacated};
    let mut sim = webhook_sim(2);
    let (a, _) = sim.connect(0);
    let (b, _) = sim.connect(1);
    let (c, _) = sim.connect(1);
    for client in [a, b, c] {
        sim.subscribe(client, "news", None, None);
        assert_eq!(
            names(&sim.events(client)),
            ["pusher_internal:subscription_succeeded"],
            "no wait for the bridge when alone"
        );
    }
    let hooks = sim.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].0, ChannelOccupied);
    assert_eq!(
        hooks[0].1,
        serde_json::json!({"name":"channel_occupied","channel":"news"})
    );
    let unsubscribe =
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}});
    sim.send(a, unsubscribe.clone());
    sim.send(b, unsubscribe.clone());
    assert!(sim.hooks().is_empty(), "c still holds the channel");
    sim.send(c, unsubscribe);
    let hooks = sim.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].0, ChannelVacated);
    // Occupied again: a new event (the bridge cancels the pair if it came within 3 s).
    sim.subscribe(b, "news", None, None);
    assert_eq!(
        sim.hooks().iter().map(|h| h.0).collect::<Vec<_>>(),
        [ChannelOccupied]
    );
}

#[test]
fn a_node_alone_reports_members_client_events_and_cache_misses() {
    use crate::app::WebhookEventType::{
        CacheMiss, ChannelOccupied, ClientEvent, MemberAdded, MemberRemoved,
    };
    let mut sim = webhook_sim(2);
    let (a, a_id) = sim.connect(0);
    let (b, b_id) = sim.connect(1);
    sim.join_presence(a, &a_id, "presence-room", "alice");
    sim.join_presence(b, &b_id, "presence-room", "alice");
    let kinds: Vec<_> = sim.hooks().into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(
        kinds,
        [ChannelOccupied, MemberAdded],
        "two tabs, one member"
    );
    sim.send(
        b,
        serde_json::json!({"event":"client-typing","channel":"presence-room","data":{"who":"b"}}),
    );
    let hooks = sim.hooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].0, ClientEvent);
    assert_eq!(
        hooks[0].1,
        serde_json::json!({"name":"client_event","channel":"presence-room",
            "event":"client-typing","data":"{\"who\":\"b\"}","socket_id":b_id,"user_id":"alice"})
    );
    sim.send(
        b,
        serde_json::json!({"event":"client-s","channel":"presence-room","data":"as is"}),
    );
    assert_eq!(
        sim.hooks()[0].1["data"],
        "as is",
        "string data is not quoted twice"
    );
    let unsubscribe =
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}});
    sim.send(a, unsubscribe.clone());
    assert!(sim.hooks().is_empty(), "alice still has a tab");
    sim.send(b, unsubscribe);
    let hooks = sim.hooks();
    let removed: Vec<_> = hooks.iter().filter(|h| h.0 == MemberRemoved).collect();
    assert_eq!(removed.len(), 1, "{hooks:?}");
    assert_eq!(
        removed[0].1,
        serde_json::json!({"name":"member_removed","channel":"presence-room","user_id":"alice"})
    );
    sim.subscribe(a, "cache-prices", None, None);
    let kinds: Vec<_> = sim.hooks().into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(kinds, [ChannelOccupied, CacheMiss]);
}

#[test]
fn webhook_events_wait_for_the_bridge_and_apps_without_webhooks_make_none() {
    let mut sim = webhook_sim(1);
    sim.shards[0].handle_link_down();
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    assert!(sim.link_output(0).is_empty(), "nothing written while down");
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    assert!(matches!(out[0], LinkMessage::Hello { .. }));
    assert!(matches!(out[1], LinkMessage::WebhookConfig(_)));
    assert!(
        matches!(&out[2], LinkMessage::Hook(e) if e.channel == "news"),
        "the occupancy seen while the bridge was away follows the Hello: {out:?}"
    );
    assert_eq!(out.len(), 3);

    // No webhook wanted: the bridge hears so, and nothing else follows the greeting.
    let mut quiet = Sim::new_mode(1, true, false, |app| app.enable_client_messages = true);
    quiet.shards[0].handle_link_up();
    let out = quiet.link_output(0);
    assert!(
        matches!(&out[..], [LinkMessage::Hello { .. }, LinkMessage::WebhookConfig(config)]
            if &config[..] == b"{\"apps\":[]}"),
        "{out:?}"
    );
    let (q, _) = quiet.connect(0);
    quiet.subscribe(q, "news", None, None);
    assert!(quiet.link_output(0).is_empty());
}

#[test]
fn several_nodes_report_occupancy_as_state_and_members_through_the_bridge() {
    use crate::app::WebhookEventType::ChannelOccupied;
    let mut sim = Sim::new_mode(1, true, true, |app| {
        let hooks = &mut app.webhooks;
        hooks.enabled = true;
        hooks.url = Some("http://127.0.0.1:9/hooks".into());
        hooks.channel_vacated = true; // only vacated wanted: occupied still goes (it cancels)
        hooks.member_removed = true;
    });
    // Link down: the node serves alone and keeps no occupancy events for later.
    let (a, a_id) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    sim.join_presence(a, &a_id, "presence-room", "alice");
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    let hook_channels: Vec<(usize, &str)> = out
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match m {
            LinkMessage::Hook(e) if e.kind == ChannelOccupied => Some((i, e.channel.as_str())),
            LinkMessage::Hook(e) => panic!("only occupancy is stated: {e:?}"),
            _ => None,
        })
        .collect();
    let mut channels: Vec<&str> = hook_channels.iter().map(|(_, c)| *c).collect();
    channels.sort_unstable();
    assert_eq!(
        channels,
        ["news", "presence-room"],
        "the node's occupancy: {out:?}"
    );
    let done = out
        .iter()
        .position(|m| matches!(m, LinkMessage::ResyncDone))
        .unwrap();
    assert!(
        hook_channels.iter().all(|(i, _)| *i < done),
        "stated before ResyncDone: {out:?}"
    );
    // Linked: a new channel is reported at once; a member's join goes to the bridge as state.
    let (b, b_id) = sim.connect(0);
    sim.subscribe(b, "sports", None, None);
    let out = sim.link_output(0);
    let [LinkMessage::Hook(hook), LinkMessage::Subscribe { seq, .. }] = &out[..] else {
        panic!("occupancy and the announcement: {out:?}")
    };
    assert_eq!(
        (hook.kind, hook.channel.as_str()),
        (ChannelOccupied, "sports")
    );
    sim.confirm(0, "sports", *seq);
    sim.subscribe(
        b,
        "presence-room",
        Some(auth::channel_auth_token(
            KEY,
            SECRET,
            &b_id,
            "presence-room",
            Some("{\"user_id\":\"bob\"}"),
        )),
        Some("{\"user_id\":\"bob\"}"),
    );
    let out = sim.link_output(0);
    assert!(
        out.iter()
            .any(|m| matches!(m, LinkMessage::MemberJoin(_, member) if member.user_id == "bob")),
        "{out:?}"
    );
    assert!(
        !out.iter().any(|m| matches!(m, LinkMessage::Hook(_))),
        "member webhooks are the bridge's business with several nodes: {out:?}"
    );
}

#[test]
fn several_nodes_take_the_cache_from_the_cluster_and_send_user_commands_on() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let last = frame::encode_text(br#"{"event":"price","channel":"cache-p","data":"7"}"#);
    // The node's own cache has an older event; the cluster's answer wins.
    sim.shards[0].publish(
        0,
        "cache-p",
        frame::encode_text(br#"{"event":"price","channel":"cache-p","data":"1"}"#),
        None,
        sim.now_ms,
    );
    sim.settle();
    sim.link_output(0);
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "cache-p", None, None);
    let seq = sim
        .link_output(0)
        .into_iter()
        .find_map(|m| match m {
            LinkMessage::Subscribe { seq, .. } => Some(seq),
            _ => None,
        })
        .unwrap();
    sim.confirm(0, "cache-p", seq);
    assert!(
        sim.events(a).is_empty(),
        "waits for the cluster's last event"
    );
    let out = sim.link_output(0);
    let [LinkMessage::CacheQuery {
        channel, query_id, ..
    }] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(channel, "cache-p");
    sim.link_in(
        0,
        LinkMessage::CacheAnswer {
            query_id: *query_id,
            frame: last,
        },
    );
    let got = sim.events(a);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded", "price"]
    );
    assert_eq!(got[1]["data"], "7");
    // Nothing in the cluster: a miss. And a link lost while waiting: the node's own cache.
    let (b, _) = sim.connect(0);
    sim.subscribe(b, "cache-q", None, None);
    let out = sim.link_output(0);
    let seq = out
        .iter()
        .find_map(|m| match m {
            LinkMessage::Subscribe { seq, .. } => Some(*seq),
            _ => None,
        })
        .unwrap();
    sim.confirm(0, "cache-q", seq);
    let query_id = sim
        .link_output(0)
        .into_iter()
        .find_map(|m| match m {
            LinkMessage::CacheQuery { query_id, .. } => Some(query_id),
            _ => None,
        })
        .unwrap();
    sim.link_in(
        0,
        LinkMessage::CacheAnswer {
            query_id,
            frame: bytes::Bytes::new(),
        },
    );
    assert_eq!(
        names(&sim.events(b)),
        [
            "pusher_internal:subscription_succeeded",
            "pusher:cache_miss"
        ]
    );
    let (c, _) = sim.connect(0);
    sim.subscribe(c, "cache-p", None, None);
    assert!(sim.events(c).is_empty());
    sim.shards[0].handle_link_down();
    sim.settle();
    let got = sim.events(c);
    assert_eq!(got[1]["data"], "1", "alone: the node's own last event");

    // Server-to-user and terminate go on to the other nodes.
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    sim.shards[0].terminate_user(0, "tom", sim.now_ms);
    sim.shards[0].publish_to_user(0, "ann", frame::encode_text(b"{}"), sim.now_ms);
    let out = sim.link_output(0);
    assert!(
        matches!(&out[..], [
            LinkMessage::UserCommand { user_id: tom, action: link::UserAction::Terminate, .. },
            LinkMessage::UserCommand { user_id: ann, action: link::UserAction::Deliver(_), .. },
        ] if tom == "tom" && ann == "ann"),
        "{out:?}"
    );
}

#[test]
fn auth_offload_asks_the_endpoint_and_checks_its_answer() {
    use crate::link::AuthOutcome;
    let mut sim = Sim::new_mode(1, true, false, |app| {
        app.channel_authorization_url = Some("http://127.0.0.1:9/auth".into());
    });
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let (a, a_id) = sim.connect(0);
    let ask = |sim: &mut Sim, channel: &str| -> u32 {
        sim.subscribe(a, channel, None, None);
        let out = sim.link_output(0);
        match &out[..] {
            [LinkMessage::AuthRequest(request)] => {
                assert_eq!(request.channel, channel);
                assert_eq!(request.socket_id, a_id);
                request.request_id
            }
            other => panic!("{other:?}"),
        }
    };
    // Granted with a good signature: subscribed as if the client had sent it.
    let id = ask(&mut sim, "private-ok");
    assert!(sim.events(a).is_empty(), "waits for the endpoint");
    let auth = auth::channel_auth_token(KEY, SECRET, &a_id, "private-ok", None);
    let granted = AuthOutcome::Granted {
        auth,
        channel_data: String::new(),
    };
    sim.link_in(
        0,
        LinkMessage::AuthResponse {
            request_id: id,
            outcome: granted,
        },
    );
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"]
    );
    // A forged answer fails like a forged client auth; a refusal keeps its status.
    let id = ask(&mut sim, "private-forged");
    let forged = AuthOutcome::Granted {
        auth: format!("{KEY}:{}", "0".repeat(64)),
        channel_data: String::new(),
    };
    sim.link_in(
        0,
        LinkMessage::AuthResponse {
            request_id: id,
            outcome: forged,
        },
    );
    let got = sim.events(a);
    assert_eq!(names(&got), ["pusher:subscription_error"]);
    assert_eq!(data_of(&got[0])["status"], 401);
    let id = ask(&mut sim, "private-denied");
    let refused = AuthOutcome::Refused {
        status: 403,
        reason: "authorization endpoint answered 403".into(),
    };
    sim.link_in(
        0,
        LinkMessage::AuthResponse {
            request_id: id,
            outcome: refused,
        },
    );
    assert_eq!(data_of(&sim.events(a)[0])["status"], 403);
    // Unsubscribed while waiting: the late answer changes nothing.
    let id = ask(&mut sim, "private-left");
    sim.send(
        a,
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "private-left"}}),
    );
    let auth = auth::channel_auth_token(KEY, SECRET, &a_id, "private-left", None);
    let late = AuthOutcome::Granted {
        auth,
        channel_data: String::new(),
    };
    sim.link_in(
        0,
        LinkMessage::AuthResponse {
            request_id: id,
            outcome: late,
        },
    );
    assert!(sim.events(a).is_empty());
    // The bridge goes away while one waits: 503 at once; without it, 401 as before.
    ask(&mut sim, "private-orphan");
    sim.shards[0].handle_link_down();
    sim.settle();
    let got = sim.events(a);
    assert_eq!(data_of(&got[0])["status"], 503);
    sim.subscribe(a, "private-alone", None, None);
    assert_eq!(data_of(&sim.events(a)[0])["status"], 401);
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

#[test]
fn each_shard_reports_its_latest_count_once_per_tick_and_never_for_presence() {
    let mut sim = count_sim(2);
    let (a, a_id) = sim.connect(0);
    let (b, _) = sim.connect(1);
    let (c, _) = sim.connect(1);
    for client in [a, b, c] {
        sim.subscribe(client, "news", None, None);
    }
    sim.join_presence(a, &a_id, "presence-room", "alice");
    assert!(sim.counts().is_empty(), "counts wait for the tick");
    sim.tick(1);
    let mut counts = sim.counts();
    counts.sort();
    assert_eq!(
        counts,
        [(0, "news".to_owned(), 1), (1, "news".to_owned(), 2)],
        "each shard's own count; presence channels have none"
    );
    sim.tick(1);
    assert!(sim.counts().is_empty(), "nothing changed, nothing said");

    // A burst on one shard: many changes, one report with the final count.
    let unsubscribe =
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}});
    let mut burst = Vec::new();
    for _ in 0..20 {
        let (client, _) = sim.connect(0);
        sim.subscribe(client, "news", None, None);
        burst.push(client);
    }
    for client in &burst[..5] {
        sim.send(*client, unsubscribe.clone());
    }
    sim.tick(1);
    assert_eq!(sim.counts(), [(0, "news".to_owned(), 16)]);

    // Up and back down within one tick is still reported: the bridge may have a stale value.
    sim.send(b, unsubscribe.clone());
    sim.subscribe(b, "news", None, None);
    sim.send(c, unsubscribe.clone());
    sim.tick(1);
    assert_eq!(sim.counts(), [(1, "news".to_owned(), 1)]);
    // The last one leaves: 0 is a count too.
    sim.send(b, unsubscribe);
    sim.tick(1);
    assert_eq!(sim.counts(), [(1, "news".to_owned(), 0)]);
}

#[test]
fn a_new_link_hears_every_count_and_a_down_link_keeps_none() {
    let mut sim = count_sim(1);
    let (a, _) = sim.connect(0);
    let (b, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    sim.subscribe(b, "news", None, None);
    sim.subscribe(b, "private-x", None, None); // refused: no auth, so never counted
    sim.subscribe(a, "sports", None, None);
    sim.shards[0].handle_link_down();
    sim.tick(1);
    assert!(sim.link_output(0).is_empty(), "nothing written while down");
    sim.send(
        a,
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "sports"}}),
    );
    sim.tick(1);
    sim.shards[0].handle_link_up();
    let mut counts = sim.counts();
    assert_eq!(
        counts,
        [("news".to_owned(), 2)]
            .map(|(channel, count)| (0, channel, count))
            .to_vec(),
        "the resync states what the shard holds now"
    );
    sim.tick(1);
    counts = sim.counts();
    assert!(
        counts.is_empty(),
        "changes while down were not kept: {counts:?}"
    );
}

#[test]
fn apps_that_do_not_want_counts_make_no_reports() {
    let mut sim = webhook_sim(2);
    let (a, _) = sim.connect(0);
    let (b, _) = sim.connect(1);
    sim.subscribe(a, "news", None, None);
    sim.subscribe(b, "news", None, None);
    sim.tick(2);
    let kinds: Vec<_> = sim.hooks().into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(
        kinds,
        [crate::app::WebhookEventType::ChannelOccupied],
        "every other kind is on, but not subscription_count"
    );
}
