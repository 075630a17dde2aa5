//! Relay rooms over the shards: a room's connections on different shards share one state at
//! the room's owner; the seed's walkthrough, direct messages, leave notices, rooms apart.

use serde_json::json;

use super::*;

impl Sim {
    /// A relay client on `shard` in `room` (`None`: the app's default room).
    fn connect_relay(&mut self, shard: usize, room: Option<&str>) -> Client {
        let key = self.shards[shard].handle_accept(self.now_ms);
        let client = Client { shard, key };
        let query = room.map_or(String::new(), |r| format!("?room={r}"));
        let request = format!(
            "GET /relay/{KEY}{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        self.shards[shard].handle_bytes(key, request.as_bytes(), self.now_ms);
        let raw = self.raw_output(client);
        assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 101"));
        client
    }

    fn relay_send(&mut self, client: Client, text: &str) {
        let bytes = masked_frame(frame::opcode::TEXT, text.as_bytes());
        self.shards[client.shard].handle_bytes(client.key, &bytes, self.now_ms);
        self.settle();
    }
}

#[test]
fn a_room_spans_the_shards_as_the_seed_walks_through_it() {
    let mut sim = Sim::new(2, |_| {});
    let bob = sim.connect_relay(0, None);
    let server = sim.connect_relay(1, None);
    sim.relay_send(bob, r#"{"connect": "client"}"#);
    assert_eq!(sim.events(bob), [json!({"client_id":1,"server_data":{}})]);
    sim.relay_send(bob, r#"{"data": {"name": "Bob", "x": 12, "y": 16}}"#);
    sim.relay_send(server, r#"{"connect": "server"}"#);
    assert_eq!(
        sim.events(server),
        [json!({"client_id":1,"client_data":{"name":"Bob","x":12,"y":16}})]
    );
    assert_eq!(sim.events(bob), [json!({"server_data":{}})]);
    sim.relay_send(server, r#"{"data": {"map_id": "1"}}"#);
    assert_eq!(sim.events(bob), [json!({"server_data":{"map_id":"1"}})]);
    sim.relay_send(server, r#"{"client_id": 1, "data": {"secret": "s"}}"#);
    assert_eq!(sim.events(bob), [json!({"server_data":{"secret":"s"}})]);
    // Not stored: a new client sees the merged server data only.
    let alice = sim.connect_relay(1, None);
    sim.relay_send(alice, r#"{"connect":"client"}"#);
    assert_eq!(
        sim.events(alice),
        [json!({"client_id":2,"server_data":{"map_id":"1"}})]
    );
    assert_eq!(
        sim.events(server),
        [json!({"client_id":2,"client_data":{}})]
    );
    // To a client that is not there: nobody gets it (the original broadcast it).
    sim.relay_send(server, r#"{"client_id": 7, "data": {"x": 1}}"#);
    sim.relay_send(server, r#"{"client_id": "seven", "data": {"x": 1}}"#);
    assert!(sim.events(bob).is_empty() && sim.events(alice).is_empty());
    // Leaving: a client's leave reaches the server, the server's every client.
    sim.shards[0].handle_closed(bob.key);
    sim.settle();
    assert_eq!(sim.events(server), [json!({"client_disconnect":1})]);
    sim.shards[1].handle_closed(server.key);
    sim.settle();
    assert_eq!(sim.events(alice), [json!({"server_disconnect":true})]);
    let ignored: u64 = sim
        .shards
        .iter()
        .map(|s| s.stats().relay_messages_ignored)
        .sum();
    assert_eq!(ignored, 2, "the absent and the non-numeric client id");
    // The open relay connection counts in its dialect's gauge.
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    sim.shards[0].handle_bytes(key, request.as_bytes(), sim.now_ms);
    sim.settle();
    let text = String::from_utf8(sim.raw_output(Client { shard: 0, key })).unwrap();
    assert!(
        text.contains("ringcast_dialect_connections{shard=\"1\",dialect=\"relay\"} 1"),
        "{text}"
    );
}

#[test]
fn rooms_are_apart_and_garbage_is_ignored() {
    let mut sim = Sim::new(2, |_| {});
    let a = sim.connect_relay(0, Some("one"));
    let b = sim.connect_relay(1, Some("two"));
    let server = sim.connect_relay(1, Some("one"));
    sim.relay_send(server, r#"{"connect":"server"}"#);
    sim.relay_send(a, r#"{"connect":"client"}"#);
    sim.relay_send(b, r#"{"connect":"client"}"#);
    assert_eq!(
        sim.events(b),
        [json!({"client_id":1,"server_data":{}})],
        "its own room"
    );
    assert_eq!(
        sim.events(server),
        [json!({"client_id":1,"client_data":{}})]
    );
    for garbage in [
        "nope",
        "[]",
        r#"{"data":[1]}"#,
        r#"{"connect":"robot"}"#,
        r#"{"x":1}"#,
    ] {
        sim.relay_send(a, garbage);
    }
    let bytes = masked_frame(frame::opcode::BINARY, b"\x01");
    sim.shards[0].handle_bytes(a.key, &bytes, sim.now_ms);
    sim.settle();
    assert!(sim.events(server).is_empty());
    assert_eq!(sim.shards[0].stats().relay_messages_ignored, 6);
    // The connection stays and still works.
    sim.relay_send(a, r#"{"data":{"ok":true}}"#);
    assert_eq!(
        sim.events(server),
        [json!({"client_id":1,"client_data":{"ok":true}})]
    );
    // A room name past its bound is refused before the upgrade.
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let long = "r".repeat(crate::limits::RELAY_ROOM_NAME_BYTES_MAX + 1);
    let request = format!(
        "GET /relay/{KEY}?room={long} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    sim.shards[0].handle_bytes(key, request.as_bytes(), sim.now_ms);
    let raw = sim.raw_output(Client { shard: 0, key });
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 400"));
}

fn relay_upgrade_from(origin: &str) -> String {
    format!(
        "GET /relay/{KEY}?room=o HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    )
}

#[test]
fn hostile_peers_are_refused_or_bounded() {
    let mut sim = Sim::new(2, |app| {
        app.allowed_origins =
            crate::origin::AllowedOrigins::parse(["https://game.example.com"]).unwrap();
    });
    // A page of another site gets no socket.
    sim.assert_only_allowed_origin_upgrades("https://game.example.com", relay_upgrade_from);
    // A message split into single bytes is one message.
    let server = sim.connect_relay(1, Some("o"));
    sim.relay_send(server, r#"{"connect":"server"}"#);
    let client = sim.connect_relay(0, Some("o"));
    let connect = masked_frame(frame::opcode::TEXT, br#"{"connect":"client"}"#);
    for byte in &connect {
        sim.shards[0].handle_bytes(client.key, std::slice::from_ref(byte), sim.now_ms);
    }
    sim.settle();
    assert_eq!(
        sim.events(client),
        [json!({"client_id":1,"server_data":{}})]
    );
    sim.events(server);
    // A server that never reads while a client floods: what is queued for it stays under the
    // outbound cap (it is cut as a slow consumer), and the client is told it left.
    sim.shards[1].set_write_blocked(server.key, true);
    let update = format!(r#"{{"data":{{"pad":"{}"}}}}"#, "x".repeat(8 * 1024));
    for _ in 0..200 {
        sim.relay_send(client, &update);
    }
    let raw = sim.raw_output(server);
    assert!(raw.len() <= 64 * 1024 + 16, "{} bytes queued", raw.len());
    assert!(
        parse_frames(&raw).contains(&Out::Close(1008)),
        "cut as a slow consumer"
    );
    sim.shards[1].handle_closed(server.key);
    sim.settle();
    assert_eq!(sim.events(client), [json!({"server_disconnect":true})]);
}
