//! One connection's life: slow consumers, pings and timeouts, drain, readiness and the connection
//! quota.

use super::*;

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
