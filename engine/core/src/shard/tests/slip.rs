//! WebSocket-over-HTTP on the shards, the bridge played by the test: the upgrade waits for the
//! backend's answer, the answer's commands run in order, a connection's calls are bounded (its
//! input waits), failures close or refuse with the right code, the control API, commands for a
//! connection of another shard, the one channel space with Pusher.

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::link::{SlipCall, SlipOutcome};

const TARGET: &str = "http://127.0.0.1:9/backend";

/// A node alone with its bridge (up), two shards, the app's backend at [`TARGET`].
fn slip_sim(shard_count: u16) -> Sim {
    let mut sim = Sim::new_mode(shard_count, true, false, |app| {
        app.slip_target_url = Some(TARGET.to_owned());
    });
    for shard in 0..shard_count as usize {
        sim.shards[shard].handle_link_up();
        sim.link_output(shard);
    }
    sim
}

/// What a WebSocket-over-HTTP client got: raw text frames and close codes.
#[derive(Debug, PartialEq)]
enum Got {
    Text(String),
    Close(u16),
}

fn slip_upgrade() -> String {
    format!(
        "GET /slip/{KEY} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         X-Device: d1\r\n\r\n"
    )
}

fn accept(id: &str) -> Value {
    json!({"type":"ACCEPT","connectionId":id})
}

fn answered(body: Value) -> SlipOutcome {
    SlipOutcome::Answered {
        status: 200,
        body: Bytes::from(body.to_string()),
    }
}

impl Sim {
    /// Starts an upgrade on `/slip/{key}`: returns the client and the open event's call.
    fn slip_open(&mut self, shard: usize) -> (Client, SlipCall) {
        let key = self.shards[shard].handle_accept(self.now_ms);
        let client = Client { shard, key };
        let peer = std::net::IpAddr::from([10, 1, 2, 3]);
        self.shards[shard].set_peer_ip(key, peer);
        self.shards[shard].handle_bytes(key, slip_upgrade().as_bytes(), self.now_ms);
        self.settle();
        assert!(
            self.raw_output(client).is_empty(),
            "no 101 before the backend says so"
        );
        let mut calls = self.slip_calls(shard);
        assert_eq!(calls.len(), 1, "{calls:?}");
        (client, calls.remove(0))
    }

    /// A client the backend accepted (with `more` commands after the ACCEPT), and its id; what
    /// came with the 101 is taken.
    fn slip_accepted(&mut self, shard: usize, more: &[Value]) -> (Client, String) {
        let (client, call) = self.slip_open(shard);
        let id = call.connection_id.clone();
        let mut events = vec![accept(&id)];
        events.extend_from_slice(more);
        self.slip_answer(shard, call.call_id, answered(json!({ "events": events })));
        let raw = self.raw_output(client);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        (client, id)
    }

    fn slip_calls(&mut self, shard: usize) -> Vec<SlipCall> {
        self.link_output(shard)
            .into_iter()
            .filter_map(|m| match m {
                LinkMessage::SlipCall(call) => Some(call),
                _ => None,
            })
            .collect()
    }

    fn slip_answer(&mut self, shard: usize, call_id: u32, outcome: SlipOutcome) {
        self.link_in(shard, LinkMessage::SlipAnswer { call_id, outcome });
    }

    fn slip_send(&mut self, client: Client, text: &str) {
        let bytes = masked_frame(frame::opcode::TEXT, text.as_bytes());
        self.shards[client.shard].handle_bytes(client.key, &bytes, self.now_ms);
        self.settle();
    }

    /// Frames the client got since the last look.
    fn slip_got(&mut self, client: Client) -> Vec<Got> {
        raw_frames(&self.raw_output(client))
    }

    /// The HTTP status the upgrade got.
    fn upgrade_status(&mut self, client: Client) -> u16 {
        let raw = self.raw_output(client);
        String::from_utf8_lossy(&raw)[9..12].parse().unwrap()
    }

    fn control(&mut self, shard: usize, token: Option<&str>, body: &str) -> (u16, String) {
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!(
            "POST /slip/{KEY}/control HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let key = self.shards[shard].handle_accept(self.now_ms);
        self.shards[shard].handle_bytes(key, request.as_bytes(), self.now_ms);
        self.settle();
        let raw = self.raw_output(Client { shard, key });
        let text = String::from_utf8(raw).unwrap();
        let status = text[9..12].parse().unwrap();
        (
            status,
            text[text.find("\r\n\r\n").unwrap() + 4..].to_owned(),
        )
    }
}

fn raw_frames(mut bytes: &[u8]) -> Vec<Got> {
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let (len, header) = match bytes[1] & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            n => (n as usize, 2),
        };
        let payload = &bytes[header..header + len];
        match opcode {
            1 => frames.push(Got::Text(String::from_utf8(payload.to_vec()).unwrap())),
            8 => frames.push(Got::Close(u16::from_be_bytes([payload[0], payload[1]]))),
            _ => {}
        }
        bytes = &bytes[header + len..];
    }
    frames
}

fn control_token(audience: &str, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"aud": audience, "iss": "slip-sockets", "iat": 1}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn body_of(call: &SlipCall) -> Value {
    serde_json::from_slice(&call.body).unwrap()
}

#[test]
fn the_upgrade_waits_for_the_backend_and_the_answer_runs_in_order() {
    let mut sim = slip_sim(2);
    let (client, call) = sim.slip_open(0);
    assert_eq!(call.url, TARGET);
    assert_eq!(call.secret, SECRET, "the app's secret by default");
    let id = call.connection_id.clone();
    let body = body_of(&call);
    assert_eq!(body["connectionId"], json!(id));
    assert_eq!(body["events"], json!([{"type":"OPEN","connectionId":id}]));
    assert_eq!(body["metadata"]["headers"]["x-device"], "d1");
    assert_eq!(
        body["metadata"]["ip"], "10.1.2.3",
        "the address the socket came from"
    );
    let answer = json!({"events":[
        {"type":"SUBSCRIBE","connectionId":id,"channel":"room"},
        accept(&id),
        {"type":"TEXT","connectionId":id,"data":"welcome \"in\""},
        {"type":"SET_METADATA","connectionId":id,"metadata":{"user":7}},
    ]});
    sim.slip_answer(0, call.call_id, answered(answer));
    let raw = sim.raw_output(client);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let head_end = text.find("\r\n\r\n").unwrap() + 4;
    assert_eq!(
        raw_frames(&raw[head_end..]),
        [Got::Text("welcome \"in\"".into())],
        "raw text, no envelope"
    );
    // The subscription listed before the ACCEPT ran after it: a REST publish reaches it, its
    // string data as the raw text.
    let publish = json!({"name":"e","channels":["room"],"data":"hello"}).to_string();
    assert_eq!(
        sim.rest(1, "POST", "/apps/app-id/events", &[], &publish).0,
        200
    );
    assert_eq!(sim.slip_got(client), [Got::Text("hello".into())]);
    // A message goes to the backend with the metadata the backend set.
    sim.slip_send(client, "ping?");
    let calls = sim.slip_calls(0);
    assert_eq!(calls.len(), 1);
    let body = body_of(&calls[0]);
    assert_eq!(body["metadata"], json!({"user":7}));
    assert_eq!(
        body["events"],
        json!([{"type":"TEXT","connectionId":id,"data":"ping?"}])
    );
}

#[test]
fn an_upgrade_the_backend_does_not_accept_is_an_http_error() {
    let mut sim = slip_sim(1);
    let bad_body = SlipOutcome::Answered {
        status: 200,
        body: Bytes::from_static(b"{\"events\":[{\"type\":\"JUMP\"}]}"),
    };
    let error_status = SlipOutcome::Answered {
        status: 500,
        body: Bytes::new(),
    };
    let cases = [
        (answered(json!({"events":[]})), 403),
        (error_status, 502),
        (bad_body, 502),
        (SlipOutcome::Failed("request timed out".into()), 502),
    ];
    for (outcome, status) in cases {
        let (client, call) = sim.slip_open(0);
        sim.slip_answer(0, call.call_id, outcome);
        assert_eq!(sim.upgrade_status(client), status);
    }
    // A CLOSE for the connection before any ACCEPT refuses it too.
    let (client, call) = sim.slip_open(0);
    let id = call.connection_id.clone();
    let answer = json!({"events":[{"type":"CLOSE","connectionId":id}, accept(&id)]});
    sim.slip_answer(0, call.call_id, answered(answer));
    assert_eq!(sim.upgrade_status(client), 403);
    // The link goes down with an open event in flight: refused, not left hanging.
    let (client, _) = sim.slip_open(0);
    sim.shards[0].handle_link_down();
    assert_eq!(sim.upgrade_status(client), 502);
    // Without the bridge nothing can be asked: 503 at once.
    let key = sim.shards[0].handle_accept(sim.now_ms);
    sim.shards[0].handle_bytes(key, slip_upgrade().as_bytes(), sim.now_ms);
    assert_eq!(sim.upgrade_status(Client { shard: 0, key }), 503);
    let stats = sim.shards[0].stats();
    assert_eq!(stats.slip_upgrades_refused, 7);
}

#[test]
fn a_backend_that_never_answers_the_open_event_gets_a_gateway_timeout() {
    let mut sim = slip_sim(1);
    let (client, _) = sim.slip_open(0);
    sim.tick(11); // past the handshake timeout
    assert_eq!(sim.upgrade_status(client), 504);
}

#[test]
fn a_connection_has_a_bounded_number_of_calls_and_its_input_waits() {
    let mut sim = slip_sim(1);
    let (client, _) = sim.slip_accepted(0, &[]);
    let max = crate::limits::SLIP_CALLS_PER_CONNECTION_MAX;
    let mut bytes = Vec::new();
    for n in 0..max + 5 {
        bytes.extend(masked_frame(
            frame::opcode::TEXT,
            format!("m{n}").as_bytes(),
        ));
    }
    sim.shards[0].handle_bytes(client.key, &bytes, sim.now_ms);
    let calls = sim.slip_calls(0);
    assert_eq!(calls.len(), max, "the rest waits unread");
    assert_eq!(sim.shards[0].input_state(client.key), InputState::Paused);
    // One answer frees one slot; the shell hands the held bytes back.
    sim.slip_answer(0, calls[0].call_id, answered(json!({"events":[]})));
    assert_eq!(sim.shards[0].input_state(client.key), InputState::Held);
    sim.shards[0].handle_bytes(client.key, &[], sim.now_ms);
    let next = sim.slip_calls(0);
    assert_eq!(next.len(), 1);
    assert_eq!(body_of(&next[0])["events"][0]["data"], format!("m{max}"));
    let texts: Vec<Value> = calls
        .iter()
        .map(|c| body_of(c)["events"][0]["data"].clone())
        .collect();
    let expected: Vec<Value> = (0..max).map(|n| json!(format!("m{n}"))).collect();
    assert_eq!(texts, expected, "in order");
}

#[test]
fn a_message_the_backend_did_not_take_closes_the_connection_and_close_is_reported() {
    let mut sim = slip_sim(2);
    let (a, a_id) = sim.slip_accepted(0, &[]);
    let (b, b_id) = sim.slip_accepted(1, &[]);
    sim.slip_got(b);
    sim.slip_send(a, "hello");
    let call = sim.slip_calls(0).remove(0);
    let error = SlipOutcome::Answered {
        status: 503,
        body: Bytes::new(),
    };
    sim.slip_answer(0, call.call_id, error);
    assert_eq!(sim.slip_got(a), [Got::Close(1011)]);
    // Its close reaches the backend, whose answer still runs: here a text to the other client,
    // on the other shard.
    sim.shards[0].handle_closed(a.key);
    sim.settle();
    let close = sim.slip_calls(0).remove(0);
    assert_eq!(
        body_of(&close)["events"],
        json!([{"type":"CLOSE","connectionId":a_id}])
    );
    let answer = json!({"events":[{"type":"TEXT","connectionId":b_id,"data":"a left"}]});
    sim.slip_answer(0, close.call_id, answered(answer));
    assert_eq!(sim.slip_got(b), [Got::Text("a left".into())]);
    // A binary message is not WebSocket-over-HTTP.
    let bytes = masked_frame(frame::opcode::BINARY, b"\x00\x01");
    sim.shards[1].handle_bytes(b.key, &bytes, sim.now_ms);
    assert_eq!(sim.slip_got(b), [Got::Close(1003)]);
}

#[test]
fn the_control_api_checks_its_token_and_runs_every_command_or_none() {
    let mut sim = slip_sim(2);
    let (a, a_id) = sim.slip_accepted(0, &[]);
    let (p, _) = sim.connect(1);
    sim.subscribe(p, "room", None, None);
    sim.events(p);
    let good = control_token("ControlEvent", SECRET);
    for token in [
        None,
        Some(control_token("WebSocketEvent", SECRET)),
        Some(control_token("ControlEvent", "wrong")),
    ] {
        let (status, body) = sim.control(1, token.as_deref(), r#"{"events":[]}"#);
        assert_eq!((status, body.as_str()), (403, "Invalid token"));
    }
    // One unusable command: nothing runs.
    let invalid = json!({"events":[
        {"type":"TEXT","connectionId":a_id,"data":"never"},
        {"type":"ACCEPT","connectionId":a_id}
    ]});
    let (status, body) = sim.control(1, Some(&good), &invalid.to_string());
    assert_eq!(
        (status, body.as_str()),
        (400, r#"{"message": "invalid commands"}"#)
    );
    assert!(sim.slip_got(a).is_empty());
    // Through shard 1 to a connection of shard 0, then channel commands.
    let commands = json!({"events":[
        {"type":"POLL_FOR_CONNECTION","connectionId":a_id,"timeout":1000},
        {"type":"SUBSCRIBE","connectionId":a_id,"channel":"room"},
        {"type":"TEXT","connectionId":a_id,"data":"joined"},
        {"type":"SUBSCRIBE","connectionId":a_id,"channel":"private-no"},
        {"type":"TEXT","connectionId":"4242999.1","data":"nobody"},
    ]});
    let (status, body) = sim.control(1, Some(&good), &commands.to_string());
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"message": "processed successfully"}"#)
    );
    assert_eq!(sim.slip_got(a), [Got::Text("joined".into())]);
    let publish = json!({"events":[{"type":"PUBLISH_TEXT","channelId":"room","data":"to all"}]});
    assert_eq!(sim.control(1, Some(&good), &publish.to_string()).0, 200);
    assert_eq!(sim.slip_got(a), [Got::Text("to all".into())]);
    assert_eq!(
        sim.events(p),
        [json!({"event":"message","channel":"room","data":"to all"})],
        "the Pusher subscriber gets it as a message event"
    );
    // CLOSE_CHANNEL closes the channel's WebSocket-over-HTTP subscribers only.
    let close = json!({"events":[{"type":"CLOSE_CHANNEL","channelId":"room"}]});
    assert_eq!(sim.control(1, Some(&good), &close.to_string()).0, 200);
    assert_eq!(sim.slip_got(a), [Got::Close(1000)]);
    assert!(sim.output(p).is_empty(), "the Pusher subscriber stays");
    let refused = sim
        .shards
        .iter()
        .map(|s| s.stats().slip_commands_refused)
        .sum::<u64>();
    assert_eq!(refused, 2, "the private channel and the unknown connection");
}

#[test]
fn unsubscribe_and_oversized_metadata() {
    let mut sim = slip_sim(1);
    let (a, id) = sim.slip_accepted(
        0,
        &[json!({"type":"SUBSCRIBE","connectionId":"x","channel":"room"})],
    );
    let good = control_token("ControlEvent", SECRET);
    let big = "x".repeat(crate::limits::SLIP_METADATA_BYTES_MAX);
    let commands = json!({"events":[
        {"type":"SUBSCRIBE","connectionId":id,"channel":"room"},
        {"type":"SET_METADATA","connectionId":id,"metadata":{"small":1}},
        {"type":"SET_METADATA","connectionId":id,"metadata":{"big":big}},
    ]});
    assert_eq!(sim.control(0, Some(&good), &commands.to_string()).0, 200);
    let publish = json!({"name":"e","channels":["room"],"data":{"n":1}}).to_string();
    sim.rest(0, "POST", "/apps/app-id/events", &[], &publish);
    assert_eq!(
        sim.slip_got(a),
        [Got::Text("{\"n\":1}".into())],
        "object data as its JSON"
    );
    sim.slip_send(a, "t");
    let call = sim.slip_calls(0).remove(0);
    assert_eq!(
        body_of(&call)["metadata"],
        json!({"small":1}),
        "the big one refused"
    );
    let leave = json!({"events":[{"type":"UNSUBSCRIBE","connectionId":id,"channel":"room"}]});
    assert_eq!(sim.control(0, Some(&good), &leave.to_string()).0, 200);
    sim.rest(0, "POST", "/apps/app-id/events", &[], &publish);
    assert!(sim.slip_got(a).is_empty());
}

#[test]
fn commands_for_other_nodes_go_through_the_bridge_and_come_back_to_their_shard() {
    // One node of several: shard 0 holds the connection.
    let mut sim = Sim::new_mode(2, true, true, |app| {
        app.slip_target_url = Some(TARGET.to_owned());
    });
    for shard in 0..2 {
        sim.shards[shard].handle_link_up();
        sim.link_output(shard);
    }
    let (a, a_id) = sim.slip_accepted(0, &[]);
    sim.link_output(0);
    let good = control_token("ControlEvent", SECRET);
    let commands = json!({"events":[
        {"type":"TEXT","connectionId":"777700.3","data":"elsewhere"},
        {"type":"CLOSE_CHANNEL","channelId":"room"},
        {"type":"TEXT","connectionId":a_id,"data":"here"},
    ]});
    assert_eq!(sim.control(1, Some(&good), &commands.to_string()).0, 200);
    assert_eq!(sim.slip_got(a), [Got::Text("here".into())]);
    let forwarded: Vec<LinkMessage> = sim
        .link_output(1)
        .into_iter()
        .filter(|m| matches!(m, LinkMessage::SlipCommands { .. }))
        .collect();
    let [LinkMessage::SlipCommands { app_id, commands }] = &forwarded[..] else {
        panic!("{forwarded:?}")
    };
    assert_eq!(app_id, "app-id");
    let sent: Value = serde_json::from_slice(commands).unwrap();
    assert_eq!(
        sent["events"],
        json!([
            {"type":"TEXT","connectionId":"777700.3","data":"elsewhere"},
            {"type":"CLOSE_CHANNEL","channelId":"room"},
        ]),
        "the unknown connection's and the channel's, not the local one's"
    );
    // From another node: every shard gets it, the connection's own shard runs it.
    let incoming = json!({"events":[{"type":"TEXT","connectionId":a_id,"data":"from afar"}]});
    for shard in 0..2 {
        let message = LinkMessage::SlipCommands {
            app_id: "app-id".into(),
            commands: Bytes::from(incoming.to_string()),
        };
        sim.link_in(shard, message);
    }
    assert_eq!(sim.slip_got(a), [Got::Text("from afar".into())], "once");
    // A PUBLISH_TEXT goes to the other nodes marked as one, so they frame it as this node does.
    let publish = json!({"events":[{"type":"PUBLISH_TEXT","channelId":"news","data":"d"}]});
    let (p, _) = sim.connect(1);
    sim.subscribe(p, "news", None, None);
    sim.link_output(1);
    assert_eq!(sim.control(1, Some(&good), &publish.to_string()).0, 200);
    let published: Vec<LinkMessage> = (0..2).flat_map(|shard| sim.link_output(shard)).collect();
    let [LinkMessage::Publish(event)] = &published[..] else {
        panic!("{published:?}")
    };
    assert_eq!(event.part, Some(crate::link::DialectPart::SlipText));
}

#[test]
fn large_messages_to_a_backend_that_never_answers_are_bounded_in_bytes() {
    let mut sim = slip_sim(1);
    // Every byte a control character: JSON escapes each as six.
    let message = "\u{1}".repeat(60 * 1024);
    let mut sent_bytes = 0usize;
    let mut closed_busy = 0;
    // 16 calls of about 370 KiB per connection: the bound is reached on the 12th connection.
    for _ in 0..16 {
        let (client, _) = sim.slip_accepted(0, &[]);
        for _ in 0..crate::limits::SLIP_CALLS_PER_CONNECTION_MAX {
            sim.slip_send(client, &message);
        }
        sent_bytes += sim
            .slip_calls(0)
            .iter()
            .map(|c| c.body.len())
            .sum::<usize>();
        if sim.slip_got(client).contains(&Got::Close(1013)) {
            closed_busy += 1;
        }
    }
    assert!(
        sent_bytes <= crate::limits::PENDING_SLIP_CALL_BYTES_MAX,
        "{sent_bytes} bytes held for the backend"
    );
    assert!(
        closed_busy > 0,
        "past the bound a message closes its connection (1013)"
    );
}

#[test]
fn another_origin_gets_no_socket_and_a_split_message_is_one_event() {
    let mut sim = Sim::new_mode(1, true, false, |app| {
        app.slip_target_url = Some(TARGET.to_owned());
        app.allowed_origins =
            crate::origin::AllowedOrigins::parse(["https://app.example.com"]).unwrap();
    });
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    // Refused before the backend hears of it.
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let request = slip_upgrade().replace("\r\n\r\n", "\r\nOrigin: https://evil.example\r\n\r\n");
    sim.shards[0].handle_bytes(key, request.as_bytes(), sim.now_ms);
    assert_eq!(sim.upgrade_status(Client { shard: 0, key }), 403);
    assert!(sim.slip_calls(0).is_empty(), "the backend is not asked");
    // Without an Origin (a device, an SDK) the upgrade goes on; a text message split into
    // single bytes reaches the backend as one event.
    let (client, _) = sim.slip_accepted(0, &[]);
    let bytes = masked_frame(frame::opcode::TEXT, b"one message");
    for byte in &bytes {
        sim.shards[0].handle_bytes(client.key, std::slice::from_ref(byte), sim.now_ms);
    }
    let calls = sim.slip_calls(0);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(body_of(&calls[0])["events"][0]["data"], "one message");
}
