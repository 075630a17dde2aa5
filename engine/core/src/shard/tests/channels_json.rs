//! Channels JSON clients on the shards: one channel per connection, sender ids, publish to
//! everyone in the channel then `publishSuccess`, ping / pong, answers to what the server does
//! not take, the one channel space with Pusher, the idle limit.

use serde_json::json;

use super::*;

impl Sim {
    /// A channels JSON client on `shard` (upgrade on `/channels/{key}`).
    fn connect_channels_json(&mut self, shard: usize) -> Client {
        let key = self.shards[shard].handle_accept(self.now_ms);
        let client = Client { shard, key };
        let request = channels_json_upgrade("");
        self.shards[shard].handle_bytes(key, request.as_bytes(), self.now_ms);
        let raw = self.raw_output(client);
        assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 101"));
        client
    }

    fn send_text(&mut self, client: Client, text: &str) {
        let bytes = masked_frame(frame::opcode::TEXT, text.as_bytes());
        self.shards[client.shard].handle_bytes(client.key, &bytes, self.now_ms);
        self.settle();
    }

    fn join(&mut self, client: Client, channel: &str) {
        self.send_text(
            client,
            &json!({"type":"join","channelId":channel}).to_string(),
        );
        assert_eq!(self.events(client), [json!({"type":"joinSuccess"})]);
    }
}

#[test]
fn a_publish_reaches_the_channel_publisher_included_then_succeeds() {
    let mut sim = Sim::new(2, |_| {});
    let a = sim.connect_channels_json(0);
    let b = sim.connect_channels_json(1);
    sim.join(a, "room-1");
    sim.join(b, "room-1");
    sim.send_text(a, r#"{"type":"publish","data":{"z":1,"a":"x"}}"#);
    let to_a = sim.events(a);
    assert_eq!(to_a.len(), 2, "{to_a:?}");
    assert_eq!(to_a[0]["type"], "message");
    assert_eq!(to_a[0]["data"], json!({"z":1,"a":"x"}));
    assert_eq!(
        to_a[1],
        json!({"type":"publishSuccess"}),
        "after the fan-out"
    );
    let sender = to_a[0]["senderId"].as_str().unwrap().to_owned();
    assert_eq!(sender.len(), 21);
    assert!(sender
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'));
    let to_b = sim.events(b);
    assert_eq!(
        to_b,
        [json!({"type":"message","senderId":sender,"data":{"z":1,"a":"x"}})],
        "the other shard's member, the data unchanged"
    );
    // A new join moves the connection, with a new sender id.
    sim.join(a, "room-2");
    sim.send_text(b, r#"{"type":"publish","data":"to room-1"}"#);
    assert!(sim.events(a).is_empty(), "left room-1");
    sim.events(b);
    sim.send_text(a, r#"{"type":"publish","data":1}"#);
    let moved = sim.events(a);
    assert_ne!(moved[0]["senderId"], json!(sender));
    assert!(sim.events(b).is_empty(), "room-2 only");
}

#[test]
fn failures_are_answered_and_the_connection_stays() {
    let mut sim = Sim::new(1, |_| {});
    let a = sim.connect_channels_json(0);
    sim.send_text(a, r#"{"type":"publish","data":1}"#);
    let got = sim.events(a);
    assert_eq!(got[0]["type"], "publishFailure");
    assert!(got[0]["data"].as_str().unwrap().contains("Join"), "{got:?}");
    for bad in [
        r#"{"type":"join"}"#,
        r#"{"type":"join","channelId":""}"#,
        r#"{"type":"join","channelId":42}"#,
        r#"{"type":"join","channelId":"private-x"}"#,
        r#"{"type":"join","channelId":"bad name"}"#,
    ] {
        sim.send_text(a, bad);
        assert_eq!(sim.events(a), [json!({"type":"joinFailure"})], "{bad}");
    }
    sim.send_text(a, r#"{"type":"dance"}"#);
    assert_eq!(sim.events(a)[0]["type"], "error");
    sim.send_text(a, "{not json");
    assert_eq!(sim.events(a)[0]["type"], "error");
    sim.send_text(a, r#"{"type":"ping","data":{"t":7}}"#);
    assert_eq!(sim.events(a), [json!({"type":"pong","data":{"t":7}})]);
    sim.send_text(a, r#"{"type":"ping"}"#);
    assert_eq!(sim.events(a), [json!({"type":"pong"})]);
    sim.join(a, "still-open");
}

#[test]
fn garbage_forever_is_bounded() {
    let mut sim = Sim::new(1, |_| {});
    let a = sim.connect_channels_json(0);
    for _ in 0..crate::limits::CHANNELS_JSON_ERRORS_PER_CONNECTION_MAX {
        sim.send_text(a, "[]");
    }
    let out = sim.output(a);
    assert!(out.contains(&Out::Close(1008)), "{out:?}");
}

#[test]
fn one_channel_space_with_pusher() {
    let mut sim = Sim::new(2, |_| {});
    let cj = sim.connect_channels_json(0);
    sim.join(cj, "news");
    let (p, _) = sim.connect(1);
    sim.subscribe(p, "news", None, None);
    sim.events(p);
    // A Pusher REST publish reaches the channels JSON member from the server.
    let body = json!({"name":"greet","channels":["news"],"data":"hi"}).to_string();
    let (status, _) = sim.rest(1, "POST", "/apps/app-id/events", &[], &body);
    assert_eq!(status, 200);
    assert_eq!(
        sim.events(cj),
        [json!({"type":"message","senderId":"server","data":"hi","event":"greet"})]
    );
    sim.events(p);
    // A channels JSON publish reaches pusher-js as a `message` event, its data unchanged.
    sim.send_text(cj, r#"{"type":"publish","data":{"n":[1,2]}}"#);
    let got = sim.events(p);
    assert_eq!(
        got,
        [json!({"event":"message","channel":"news","data":{"n":[1,2]}})]
    );
}

#[test]
fn idle_connections_are_closed() {
    let mut sim = Sim::new(1, |_| {});
    let a = sim.connect_channels_json(0);
    sim.join(a, "quiet");
    sim.tick(crate::limits::CHANNELS_JSON_IDLE_TIMEOUT_S_DEFAULT - 1);
    assert!(sim.output(a).is_empty());
    sim.tick(2);
    assert_eq!(sim.output(a), [Out::Close(1000)]);
}

#[test]
fn an_unknown_app_key_is_refused_before_the_upgrade() {
    let mut sim = Sim::new(1, |_| {});
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let request =
        "GET /channels/nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    sim.shards[0].handle_bytes(key, request.as_bytes(), sim.now_ms);
    let raw = sim.raw_output(Client { shard: 0, key });
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 404"));
}

#[test]
fn across_nodes_a_publish_keeps_its_sender_id() {
    use crate::link::{ChannelEvent, LinkMessage};
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let a = sim.connect_channels_json(0);
    sim.send_text(a, r#"{"type":"join","channelId":"news"}"#);
    assert!(
        sim.events(a).is_empty(),
        "joined once the node receives the channel"
    );
    let seq = sim.announced_seq(0, "news");
    sim.confirm(0, "news", seq);
    assert_eq!(sim.events(a), [json!({"type":"joinSuccess"})]);
    // Up: the Pusher frame and the sender id.
    sim.send_text(a, r#"{"type":"publish","data":{"x":1}}"#);
    let mine = sim.events(a);
    let sender = mine[0]["senderId"].as_str().unwrap().to_owned();
    let up = sim.link_output(0);
    let [LinkMessage::Publish(event)] = &up[..] else {
        panic!("{up:?}")
    };
    assert_eq!(
        event.part,
        Some(crate::link::DialectPart::ChannelsJson(sender.clone()))
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&event.frame[2..]).unwrap(),
        json!({"event":"message","channel":"news","data":{"x":1}})
    );
    // Down: another node's publish reaches the member with its publisher's sender id.
    let remote = ChannelEvent {
        part: Some(crate::link::DialectPart::ChannelsJson(
            "REMOTEsender000000000".into(),
        )),
        except_socket_id: String::new(),
        ..event.clone()
    };
    sim.link_in(0, LinkMessage::Deliver(remote));
    assert_eq!(
        sim.events(a),
        [json!({"type":"message","senderId":"REMOTEsender000000000","data":{"x":1}})]
    );
}

/// The upgrade request of a channels JSON client, with extra header lines.
fn channels_json_upgrade(extra: &str) -> String {
    format!(
        "GET /channels/{KEY} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

#[test]
fn a_client_that_never_reads_cannot_make_the_server_queue_without_bound() {
    use crate::shard::InputState;
    let mut sim = Sim::new(1, |_| {});
    let a = sim.connect_channels_json(0);
    sim.shards[0].set_write_blocked(a.key, true);
    // 5,000 pings with 200 bytes of data each: 1.1 MB of pongs if every one were answered.
    let data = "x".repeat(200);
    let ping = masked_frame(
        frame::opcode::TEXT,
        format!(r#"{{"type":"ping","data":"{data}"}}"#).as_bytes(),
    );
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 5_000)
        .collect();
    sim.shards[0].handle_bytes(a.key, &flood, sim.now_ms);
    assert_ne!(
        sim.shards[0].input_state(a.key),
        InputState::Read,
        "input is held back"
    );
    let raw = sim.raw_output(a);
    assert!(
        raw.len() < 64 * 1024,
        "{} bytes queued for a client that does not read",
        raw.len()
    );
    let mut pongs = parse_frames(&raw).len();
    // Reading again, the client gets the rest of its answers, in order, none lost.
    sim.shards[0].set_write_blocked(a.key, false);
    for _ in 0..200 {
        sim.shards[0].handle_bytes(a.key, &[], sim.now_ms);
        let more = sim.events(a);
        if more.is_empty() {
            break;
        }
        assert!(more.iter().all(|m| m["type"] == "pong"));
        pongs += more.len();
    }
    assert_eq!(pongs, 5_000, "every ping answered once");
}

#[test]
fn a_message_split_into_single_bytes_is_one_message() {
    let mut sim = Sim::new(1, |_| {});
    let a = sim.connect_channels_json(0);
    let join = masked_frame(
        frame::opcode::TEXT,
        br#"{"type":"join","channelId":"bytes"}"#,
    );
    for byte in &join {
        sim.shards[0].handle_bytes(a.key, std::slice::from_ref(byte), sim.now_ms);
    }
    sim.settle();
    assert_eq!(sim.events(a), [json!({"type":"joinSuccess"})]);
}

#[test]
fn a_page_of_another_site_gets_no_socket() {
    let mut sim = Sim::new(1, |app| {
        app.allowed_origins =
            crate::origin::AllowedOrigins::parse(["https://app.example.com"]).unwrap();
    });
    sim.assert_only_allowed_origin_upgrades("https://app.example.com", |origin| {
        channels_json_upgrade(&format!("Origin: {origin}\r\n"))
    });
}
