//! Socket.IO (Ekko) clients on the shards: rooms in the one channel space with Pusher,
//! framings encoded once per dialect, presence rooms, the admin room, acknowledgements.

use bytes::Bytes;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::dialect::Published;
use crate::socketio::rooms;

const NS: &str = "/app-id";

fn token(admin: bool) -> String {
    encode(
        &Header::default(),
        &json!({"appName": "app-id", "admin": admin, "iat": 1}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// The text frames a client was sent, as strings (Engine.IO packets are not all JSON).
fn texts(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut bytes = bytes;
    while bytes.len() >= 2 {
        let (len, header) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        if bytes[0] & 0x0f == 1 {
            out.push(String::from_utf8(bytes[header..header + len].to_vec()).unwrap());
        }
        bytes = &bytes[header + len..];
    }
    out
}

/// The events (`42…`) and acks (`43…`) of the app's namespace among a client's packets.
#[derive(Debug, PartialEq)]
enum Packet {
    Event(String, Value),
    Ack(u64, Value),
    Other(String),
}

fn packets(texts: Vec<String>) -> Vec<Packet> {
    texts
        .into_iter()
        .map(|text| {
            if let Some(rest) = text.strip_prefix(&format!("42{NS},")) {
                let v: Value = serde_json::from_str(rest).unwrap();
                return Packet::Event(v[0].as_str().unwrap().to_owned(), v[1].clone());
            }
            if let Some(rest) = text.strip_prefix(&format!("43{NS},")) {
                let split = rest.find('[').unwrap();
                let v: Value = serde_json::from_str(&rest[split..]).unwrap();
                return Packet::Ack(rest[..split].parse().unwrap(), v[0].clone());
            }
            Packet::Other(text)
        })
        .collect()
}

impl Sim {
    /// A Socket.IO client on `shard` that joined the app's namespace.
    fn connect_socketio(&mut self, shard: usize, uuid: &str, admin: bool) -> Client {
        let key = self.shards[shard].handle_accept(self.now_ms);
        let client = Client { shard, key };
        let request = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n";
        self.shards[shard].handle_bytes(key, request.as_bytes(), self.now_ms);
        let raw = self.raw_output(client);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        let auth = json!({"jwt": token(admin), "uuid": uuid});
        self.send_socketio(client, &format!("40{NS},{auth}"));
        let answers = texts(&self.raw_output(client));
        assert!(
            answers
                .iter()
                .any(|t| t.starts_with(&format!("40{NS},{{\"sid\""))),
            "{answers:?}"
        );
        client
    }

    fn send_socketio(&mut self, client: Client, text: &str) {
        let bytes = masked_frame(frame::opcode::TEXT, text.as_bytes());
        self.shards[client.shard].handle_bytes(client.key, &bytes, self.now_ms);
        self.settle();
    }

    fn emit(&mut self, client: Client, ack: Option<u64>, name: &str, payload: Value) {
        let ack = ack.map(|id| id.to_string()).unwrap_or_default();
        let body = json!([name, payload]);
        self.send_socketio(client, &format!("42{NS},{ack}{body}"));
    }

    fn socketio_packets(&mut self, client: Client) -> Vec<Packet> {
        let raw = self.raw_output(client);
        packets(texts(&raw))
    }
}

fn ok() -> Value {
    json!({"ok": true})
}

#[test]
fn pusher_and_socketio_share_channels_both_ways_across_shards() {
    let mut sim = Sim::new(2, |_| {});
    let (pusher, _) = sim.connect(0);
    sim.subscribe(pusher, "news", None, None);
    sim.events(pusher);
    let sio = sim.connect_socketio(1, "u1", false);
    sim.socketio_packets(sio);
    sim.emit(
        sio,
        Some(1),
        "subscribe",
        json!({"channels": ["news"], "uuid": "u1"}),
    );
    assert_eq!(sim.socketio_packets(sio), vec![Packet::Ack(1, ok())]);

    // A Pusher publish (as the REST API makes one) on shard 0 reaches the Socket.IO client.
    let message = Published::pusher_event("greet", "news", "\"hello\"", None);
    sim.shards[0].publish(0, "news", message, None, sim.now_ms);
    sim.settle();
    assert_eq!(
        sim.socketio_packets(sio),
        vec![Packet::Event(
            "message".into(),
            json!({"channel": "news", "message": "hello", "event": "greet"})
        )]
    );
    assert_eq!(
        sim.events(pusher),
        vec![json!({"event": "greet", "channel": "news", "data": "hello"})]
    );

    // A Socket.IO publish reaches the Pusher subscriber and the publisher itself.
    let payload = json!({"channel": "news", "message": {"text": "hi"}, "uuid": "u1"});
    sim.emit(sio, Some(2), "publish", payload.clone());
    assert_eq!(
        sim.socketio_packets(sio),
        vec![
            Packet::Event("message".into(), payload),
            Packet::Ack(2, ok())
        ]
    );
    assert_eq!(
        sim.events(pusher),
        vec![json!({"event": "message", "channel": "news", "data": {"text": "hi"}})]
    );
}

#[test]
fn each_framing_is_encoded_once_for_every_subscriber_on_every_shard() {
    let mut sim = Sim::new(2, |_| {});
    let mut sio = Vec::new();
    let mut pusher = Vec::new();
    for shard in [0, 1, 0, 1] {
        let client = sim.connect_socketio(shard, "u", false);
        sim.emit(client, None, "subscribe", json!({"channels": ["news"]}));
        sim.socketio_packets(client);
        sio.push(client);
        let (p, _) = sim.connect(shard);
        sim.subscribe(p, "news", None, None);
        sim.events(p);
        pusher.push(p);
    }
    let message = Published::pusher_event("e", "news", "{\"n\":1}", None);
    sim.shards[0].publish(0, "news", message, None, sim.now_ms);
    sim.settle();
    let last_frame = |sim: &Sim, c: &Client| -> Bytes {
        sim.shards[c.shard].conns[c.key as usize]
            .outbound
            .back()
            .unwrap()
            .clone()
    };
    let sio_frames: Vec<Bytes> = sio.iter().map(|c| last_frame(&sim, c)).collect();
    let pusher_frames: Vec<Bytes> = pusher.iter().map(|c| last_frame(&sim, c)).collect();
    for frames in [&sio_frames, &pusher_frames] {
        for frame in frames.iter() {
            assert_eq!(frame.as_ptr(), frames[0].as_ptr(), "one shared encoding");
        }
    }
    assert_ne!(sio_frames[0], pusher_frames[0]);
}

#[test]
fn presence_rooms_announce_joins_and_leaves_with_event_names() {
    let mut sim = Sim::new(2, |_| {});
    let a = sim.connect_socketio(0, "ua", false);
    sim.emit(
        a,
        Some(1),
        "subscribe",
        json!({"channels": ["room"], "withPresence": true}),
    );
    let joined = |uuid: &str| {
        Packet::Event(
            "presence".into(),
            json!({"eventName": "joined", "channel": "room", "presenceChannel": "room_presence", "uuid": uuid}),
        )
    };
    let got = sim.socketio_packets(a);
    assert!(
        got.contains(&joined("ua")),
        "the joiner hears its own joined: {got:?}"
    );
    assert!(got.contains(&Packet::Ack(1, ok())), "{got:?}");

    let b = sim.connect_socketio(1, "ub", false);
    sim.emit(
        b,
        None,
        "subscribe",
        json!({"channels": ["room"], "withPresence": true, "uuid": "ub2"}),
    );
    assert!(sim.socketio_packets(b).contains(&joined("ub2")));
    assert_eq!(sim.socketio_packets(a), vec![joined("ub2")]);

    // b's connection goes away: a hears that it left.
    sim.shards[1].handle_closed(b.key);
    sim.settle();
    assert_eq!(
        sim.socketio_packets(a),
        vec![Packet::Event(
            "presence".into(),
            json!({"eventName": "left", "channel": "room", "presenceChannel": "room_presence", "uuid": "ub2"}),
        )]
    );

    // a unsubscribes: it is out of both rooms; publishes to them no longer reach it.
    sim.emit(a, Some(2), "unsubscribe", json!({"channels": ["room"]}));
    assert_eq!(sim.socketio_packets(a), vec![Packet::Ack(2, ok())]);
    let c = sim.connect_socketio(1, "uc", false);
    sim.emit(
        c,
        None,
        "publish",
        json!({"channel": "room_presence", "message": 1}),
    );
    sim.emit(c, None, "publish", json!({"channel": "room", "message": 2}));
    assert_eq!(sim.socketio_packets(a), vec![]);
    for shard in &sim.shards {
        assert!(shard.registry.channel(0, "room").is_none());
        assert!(shard.registry.channel(0, "room_presence").is_none());
    }
}

#[test]
fn admins_hear_status_and_others_may_not_join_the_admin_room() {
    let mut sim = Sim::new(2, |_| {});
    let admin = sim.connect_socketio(0, "boss", true);
    sim.socketio_packets(admin);
    let user = sim.connect_socketio(1, "u1", false);
    sim.emit(user, Some(1), "subscribe", json!({"channels": ["admin"]}));
    let got = sim.socketio_packets(user);
    assert!(
        matches!(&got[..], [Packet::Ack(1, v)] if v["ok"] == false),
        "{got:?}"
    );
    sim.emit(user, None, "subscribe", json!({"channels": ["news"]}));
    sim.send_socketio(user, &format!("41{NS},"));
    let status: Vec<Value> = sim
        .socketio_packets(admin)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Event(name, v) if name == "status" => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(
        status,
        vec![
            json!({"uuid": "u1", "admin": false, "app": "app-id", "event": "connection"}),
            json!({"uuid": "u1", "admin": false, "app": "app-id", "event": "joined", "channel": "news"}),
            json!({"uuid": "u1", "admin": false, "app": "app-id", "event": "disconnect"}),
        ]
    );
    // The admin's own subscribe to "admin" is a no-op that succeeds.
    sim.emit(admin, Some(5), "subscribe", json!({"channels": ["admin"]}));
    assert_eq!(sim.socketio_packets(admin), vec![Packet::Ack(5, ok())]);
}

#[test]
fn refusals_keep_the_connection_and_change_nothing() {
    let mut sim = Sim::new(1, |_| {});
    let client = sim.connect_socketio(0, "u", false);
    sim.socketio_packets(client);
    // Never joined: a no-op, as is a missing list (Ekko's server crashed on both).
    sim.emit(
        client,
        Some(1),
        "unsubscribe",
        json!({"channels": ["nope"]}),
    );
    sim.emit(client, Some(2), "unsubscribe", json!({}));
    assert_eq!(
        sim.socketio_packets(client),
        vec![Packet::Ack(1, ok()), Packet::Ack(2, ok())]
    );
    // One bad name refuses the whole subscribe: nothing is joined.
    sim.emit(
        client,
        None,
        "subscribe",
        json!({"channels": ["fine", "private-x"]}),
    );
    let got = sim.socketio_packets(client);
    assert!(
        matches!(&got[..], [Packet::Event(name, _)] if name == "error"),
        "{got:?}"
    );
    assert!(sim.shards[0].registry.channel(0, "fine").is_none());
    sim.emit(
        client,
        None,
        "publish",
        json!({"channel": "presence-x", "message": 1}),
    );
    sim.emit(client, None, "nonsense", json!({}));
    let got = sim.socketio_packets(client);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got
        .iter()
        .all(|p| matches!(p, Packet::Event(name, _) if name == "error")));
    // Still served.
    sim.emit(client, Some(3), "subscribe", json!({"channels": ["fine"]}));
    assert_eq!(sim.socketio_packets(client), vec![Packet::Ack(3, ok())]);
}

#[test]
fn a_connection_holds_a_bounded_number_of_rooms() {
    let mut sim = Sim::new(1, |_| {});
    let client = sim.connect_socketio(0, "u", false);
    sim.socketio_packets(client);
    let max = crate::limits::SUBSCRIPTIONS_PER_CONNECTION_MAX;
    let channels: Vec<String> = (0..max).map(|i| format!("c{i}")).collect();
    sim.emit(client, Some(1), "subscribe", json!({"channels": channels}));
    assert_eq!(sim.socketio_packets(client), vec![Packet::Ack(1, ok())]);
    sim.emit(
        client,
        Some(2),
        "subscribe",
        json!({"channels": ["one-more"]}),
    );
    let got = sim.socketio_packets(client);
    assert!(
        matches!(&got[..], [Packet::Ack(2, v)] if v["error"] == "Too many subscriptions on this connection"),
        "{got:?}"
    );
}

#[test]
fn socketio_events_cross_nodes_with_their_socketio_part_and_pusher_events_get_one() {
    use crate::link::{ChannelEvent, LinkMessage, SocketIoEvent};
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let client = sim.connect_socketio(0, "u1", false);
    sim.socketio_packets(client);
    sim.emit(client, Some(1), "subscribe", json!({"channels": ["news"]}));
    // The room waits for the bridge like a Pusher subscription: the ack comes once it answers.
    assert_eq!(sim.socketio_packets(client), vec![]);
    // Besides the announcement, the admin room's status events go to the other nodes.
    let up = sim.link_output(0);
    let seq = up
        .iter()
        .find_map(|m| match m {
            LinkMessage::Subscribe { channel, seq, .. } if channel == "news" => Some(*seq),
            _ => None,
        })
        .unwrap();
    let statuses = up
        .iter()
        .filter(|m| matches!(m, LinkMessage::Publish(e) if e.channel == rooms::ADMIN_CHANNEL))
        .count();
    assert_eq!(statuses, 2, "connection and joined: {up:?}");
    sim.confirm(0, "news", seq);
    assert_eq!(sim.socketio_packets(client), vec![Packet::Ack(1, ok())]);

    // A Socket.IO publish goes up with its Socket.IO part and its Pusher frame.
    let payload = json!({"channel": "news", "message": {"a": 1}, "uuid": "u1"});
    sim.emit(client, None, "publish", payload.clone());
    sim.socketio_packets(client);
    let up = sim.link_output(0);
    let [LinkMessage::Publish(event)] = &up[..] else {
        panic!("{up:?}")
    };
    let Some(crate::link::DialectPart::SocketIo(socketio)) = &event.part else {
        panic!("{event:?}")
    };
    assert_eq!(socketio.event, "message");
    let args: Value = serde_json::from_slice(&socketio.args_json).unwrap();
    assert_eq!(args, payload);
    let pusher: Value = serde_json::from_slice(&event.frame[2..]).unwrap();
    assert_eq!(
        pusher,
        json!({"event": "message", "channel": "news", "data": {"a": 1}})
    );

    // Down from another node: a Socket.IO event arrives as it was sent; a Pusher event (its
    // frame only) in the Socket.IO framing.
    let remote_args = br#"{"channel":"news","message":"from B","uuid":"b"}"#;
    sim.link_in(
        0,
        LinkMessage::Deliver(ChannelEvent {
            app_id: "app-id".into(),
            channel: "news".into(),
            except_socket_id: String::new(),
            frame: frame::encode_text(br#"{"event":"message","channel":"news","data":"from B"}"#),
            part: Some(crate::link::DialectPart::SocketIo(SocketIoEvent {
                event: "message".into(),
                args_json: Bytes::from_static(remote_args),
            })),
        }),
    );
    sim.link_in(
        0,
        LinkMessage::Deliver(ChannelEvent {
            app_id: "app-id".into(),
            channel: "news".into(),
            except_socket_id: String::new(),
            frame: frame::encode_text(
                br#"{"event":"price","channel":"news","data":"{\"usd\":3}"}"#,
            ),
            part: None,
        }),
    );
    assert_eq!(
        sim.socketio_packets(client),
        vec![
            Packet::Event(
                "message".into(),
                json!({"channel": "news", "message": "from B", "uuid": "b"})
            ),
            Packet::Event(
                "message".into(),
                json!({"channel": "news", "message": "{\"usd\":3}", "event": "price"})
            ),
        ]
    );
}
