//! One connection's life: slow consumers, pings and timeouts, drain, readiness and the connection
//! quota.

use super::*;
use crate::dialect::Published;

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
        sim.shards[0].publish(
            0,
            "feed",
            Published::pusher_only(frame_bytes.clone()),
            None,
            sim.now_ms,
        );
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
        Published::pusher_only(frame::encode_text(big.as_bytes())),
        None,
        sim.now_ms,
    );
    let small = frame::encode_text(br#"{"event":"small","channel":"feed","data":"z"}"#);
    for _ in 0..5_000 {
        sim.shards[0].publish(
            0,
            "feed",
            Published::pusher_only(small.clone()),
            None,
            sim.now_ms,
        );
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

/// The bytes queued for a connection in the core.
fn queued(sim: &Sim, client: Client) -> usize {
    sim.shards[client.shard].conns[client.key as usize].outbound_bytes
}

/// Takes a connection's output while the core holds its input back, handing the held bytes
/// back each time (as the shell does), until nothing is held; returns every byte taken and the
/// most ever queued at once.
fn drain_held(sim: &mut Sim, client: Client) -> (Vec<u8>, usize) {
    let mut taken = Vec::new();
    let mut queued_max = queued(sim, client);
    loop {
        sim.settle();
        queued_max = queued_max.max(queued(sim, client));
        taken.extend(sim.raw_output(client));
        match sim.shards[client.shard].input_state(client.key) {
            InputState::Held => {
                let now_ms = sim.now_ms;
                sim.shards[client.shard].handle_bytes(client.key, &[], now_ms);
            }
            InputState::Paused => sim.settle(),
            InputState::Read => return (taken, queued_max),
        }
    }
}

/// Counts the HTTP responses in `bytes` and checks their status.
fn count_responses(bytes: &[u8], status: &str) -> usize {
    let text = String::from_utf8_lossy(bytes);
    let count = text.matches("HTTP/1.1 ").count();
    assert_eq!(
        text.matches(&format!("HTTP/1.1 {status}")).count(),
        count,
        "{text:.300}"
    );
    count
}

#[test]
fn pipelined_requests_wait_for_a_reader_and_are_all_answered_in_order() {
    let mut sim = Sim::new(1, |_| {});
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let client = Client { shard: 0, key };
    let requests = "GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5_000);
    sim.shards[0].handle_bytes(key, requests.as_bytes(), sim.now_ms);
    // The client reads nothing: the core answered until its output passed the pause and holds
    // the rest of the requests back instead of queueing 5,000 answers.
    let pause = crate::limits::INPUT_PAUSE_OUTBOUND_BYTES.min(64 * 1024 / 2);
    let one_answer = 200;
    assert!(
        queued(&sim, client) <= pause + one_answer,
        "{}",
        queued(&sim, client)
    );
    assert_eq!(sim.shards[0].input_state(key), InputState::Paused);
    let (taken, queued_max) = drain_held(&mut sim, client);
    assert!(queued_max <= pause + one_answer, "{queued_max}");
    assert_eq!(
        count_responses(&taken, "404"),
        5_000,
        "every request is answered once"
    );
}

#[test]
fn pipelined_questions_to_other_shards_are_answered_one_after_another() {
    let mut sim = Sim::new(2, |_| {});
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let client = Client { shard: 0, key };
    let requests = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(300);
    sim.shards[0].handle_bytes(key, requests.as_bytes(), sim.now_ms);
    // `/metrics` asks every shard; while it waits the socket is not read at all.
    assert_eq!(sim.shards[0].input_state(key), InputState::Paused);
    let (taken, _) = drain_held(&mut sim, client);
    assert_eq!(
        count_responses(&taken, "200"),
        300,
        "the requests after the first are not lost"
    );
}

#[test]
fn pings_from_a_client_that_never_reads_are_held_back() {
    let mut sim = Sim::new(1, |_| {});
    let (client, _) = sim.connect(0);
    let ping = masked_frame(frame::opcode::PING, &[b'p'; 125]);
    let pings: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 10_000)
        .collect();
    sim.shards[0].handle_bytes(client.key, &pings, sim.now_ms);
    let pause = crate::limits::INPUT_PAUSE_OUTBOUND_BYTES.min(64 * 1024 / 2);
    assert!(queued(&sim, client) <= pause + 127);
    assert_eq!(sim.shards[0].input_state(client.key), InputState::Paused);
    let (taken, _) = drain_held(&mut sim, client);
    let pongs = parse_frames(&taken).len();
    assert_eq!(
        pongs, 10_000,
        "every ping is answered once the client reads"
    );
}

#[test]
fn an_echo_reader_that_falls_behind_is_closed_with_1008() {
    let mut sim = Sim::new(1, |_| {});
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let client = Client { shard: 0, key };
    let upgrade = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    sim.shards[0].handle_bytes(key, upgrade.as_bytes(), sim.now_ms);
    assert!(String::from_utf8_lossy(&sim.raw_output(client)).starts_with("HTTP/1.1 101"));
    // The socket is full; 20 KiB queued (under the pause), then a 50 KiB message passes the
    // 64 KiB cap: the queue is dropped for a policy-violation close.
    sim.shards[0].set_write_blocked(key, true);
    let mut input = masked_frame(frame::opcode::TEXT, &[b'a'; 20 * 1024]);
    input.extend(masked_frame(frame::opcode::TEXT, &[b'b'; 50 * 1024]));
    sim.shards[0].handle_bytes(key, &input, sim.now_ms);
    let out = sim.output(client);
    assert!(matches!(out.as_slice(), [Out::Close(1008)]), "{out:?}");
    assert_eq!(sim.shards[0].stats().slow_consumer_disconnects, 1);
}

#[test]
fn transfer_encoding_and_upgrades_with_a_body_get_one_answer_and_a_close() {
    let mut sim = Sim::new(1, |_| {});
    for (request, status) in [
        (
            "POST /apps/app-id/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\
             Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /ready HTTP/1.1\r\n\r\n",
            "501",
        ),
        (
            "GET /ready HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\nGET /ready HTTP/1.1\r\n\r\n",
            "501",
        ),
        (
            "GET /app/k HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Content-Length: 2\r\n\r\nhi",
            "400",
        ),
    ] {
        let key = sim.shards[0].handle_accept(sim.now_ms);
        sim.shards[0].handle_bytes(key, request.as_bytes(), sim.now_ms);
        let mut out = BytesMut::new();
        let state = sim.shards[0].take_output(key, &mut out, 1 << 20);
        assert_eq!(state, OutputState::Finished, "closed after the answer");
        assert_eq!(count_responses(&out, status), 1, "one answer: {request:?}");
        assert!(String::from_utf8_lossy(&out).contains("Connection: close"));
    }
}

#[test]
fn ready_is_503_while_a_shard_of_the_node_is_not_running() {
    let mut sim = Sim::new(2, |_| {});
    assert_eq!(sim.raw_http(0, "GET /ready HTTP/1.1\r\n\r\n").0, 200);
    sim.shards[0].set_node_running(false);
    let (status, body) = sim.raw_http(0, "GET /ready HTTP/1.1\r\n\r\n");
    assert_eq!(status, 503);
    assert_eq!(body["reason"], "a shard is not running");
    sim.shards[0].set_node_running(true);
    assert_eq!(sim.raw_http(0, "GET /ready HTTP/1.1\r\n\r\n").0, 200);
}

#[cfg(debug_assertions)]
#[test]
fn the_fault_trigger_panics_the_shard_and_only_when_enabled() {
    let mut sim = Sim::new(1, |_| {});
    let (client, _) = sim.connect(0);
    let trigger = masked_frame(frame::opcode::TEXT, br#"{"event":"ringcast:test_panic"}"#);
    let now_ms = sim.now_ms;
    let shard = &mut sim.shards[0];
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shard.handle_bytes(client.key, &trigger, now_ms);
    }));
    assert!(panicked.is_err(), "the enabled trigger panics");
    // Not enabled (every release build, and debug builds without the variable): an unknown
    // event like any other.
    let mut quiet = Sim::new(1, |_| {});
    quiet.shards[0].settings.fault_trigger = false;
    let (client, _) = quiet.connect(0);
    quiet.send(client, serde_json::json!({"event": "ringcast:test_panic"}));
    let events = quiet.events(client);
    assert_eq!(names(&events), ["pusher:error"]);
}
