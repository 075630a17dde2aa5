//! Garbage input: ~50 connections sending random bytes, truncated frames, huge length headers
//! and random JSON (from a seeded PRNG, so every run sends the same bytes). Afterwards the
//! server must still be running and serve a fresh client.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{encode_frame, op, pusher_path, tcp_connect, Prng, Server, WsClient, APP_KEY};

const SEED: u64 = 0x05EE_D0FC_0FFE;
const CONNECTIONS: usize = 50;

/// A random JSON value, nested up to `depth`.
fn random_json(rng: &mut Prng, depth: u32) -> String {
    let strings = [
        "pusher:subscribe",
        "pusher:ping",
        "pusher:signin",
        "pusher_internal:x",
        "client-x",
        "private-a",
        "presence-b",
        "cache-c",
        "",
        "\u{0}",
        "é€🎉",
        "\\\"",
    ];
    match rng.below(if depth == 0 { 5 } else { 8 }) {
        0 => "null".into(),
        1 => ["true", "false"][rng.below(2) as usize].into(),
        2 => format!("{}", rng.next_u64() as i64),
        3 => format!("{}e{}", rng.below(1000), rng.below(400) as i64 - 200),
        4 => serde_json::to_string(strings[rng.below(strings.len() as u64) as usize]).unwrap(),
        5 | 6 => {
            let n = rng.below(5);
            let keys = [
                "event",
                "channel",
                "data",
                "auth",
                "channel_data",
                "user_data",
                "x",
            ];
            let fields: Vec<String> = (0..n)
                .map(|_| {
                    let key = keys[rng.below(keys.len() as u64) as usize];
                    format!("\"{key}\":{}", random_json(rng, depth - 1))
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        _ => {
            let n = rng.below(4);
            let items: Vec<String> = (0..n).map(|_| random_json(rng, depth - 1)).collect();
            format!("[{}]", items.join(","))
        }
    }
}

/// What one garbage connection sends (after its handshake, if any).
fn garbage(rng: &mut Prng, kind: u64, upgraded: bool) -> Vec<u8> {
    let mask = Some([0x11, 0x22, 0x33, 0x44]);
    match kind {
        // Random bytes instead of an HTTP request.
        0 => {
            let n = 1 + rng.below(3000) as usize;
            rng.bytes(n)
        }
        // A random HTTP-ish request head.
        1 => {
            let methods = ["GET", "POST", "PUT", "\u{0}", "GET GET", ""];
            let paths = [
                "/",
                "/ready",
                "/app/test-key",
                "/apps/x/events",
                "*",
                "/%%%",
            ];
            let mut head = format!(
                "{} {} HTTP/1.{}\r\n",
                methods[rng.below(methods.len() as u64) as usize],
                paths[rng.below(paths.len() as u64) as usize],
                rng.below(3)
            );
            for _ in 0..rng.below(6) {
                let n = rng.below(40) as usize;
                let value = rng.bytes(n);
                head.push_str("X-R: ");
                head.push_str(&String::from_utf8_lossy(&value).replace(['\r', '\n'], " "));
                head.push_str("\r\n");
            }
            if rng.below(2) == 0 {
                head.push_str(&format!("Content-Length: {}\r\n", rng.next_u64()));
            }
            head.push_str("\r\n");
            head.into_bytes()
        }
        // Random bytes after a successful upgrade.
        2 => {
            let n = 1 + rng.below(3000) as usize;
            rng.bytes(n)
        }
        // A truncated frame: the header promises more than is sent.
        3 => {
            let payload = rng.bytes(200);
            let mut frame = encode_frame(true, 0, op::TEXT, &payload, mask);
            frame.truncate(2 + rng.below(100) as usize);
            frame
        }
        // Huge length headers (64-bit lengths, top bit set or not).
        4 => {
            let mut frame = vec![0x80 | (rng.below(3) as u8), 0x80 | 127];
            let len = match rng.below(3) {
                0 => u64::MAX,
                1 => 1 << 62,
                _ => rng.next_u64(),
            };
            frame.extend_from_slice(&len.to_be_bytes());
            frame.extend_from_slice(&[1, 2, 3, 4]);
            let n = rng.below(64) as usize;
            frame.extend(rng.bytes(n));
            frame
        }
        // Random JSON messages as valid masked text frames, plus deep nesting.
        _ => {
            let mut out = Vec::new();
            for _ in 0..1 + rng.below(20) {
                let text = if rng.below(10) == 0 {
                    let depth = 1 + rng.below(5000) as usize;
                    format!("{}{}", "[".repeat(depth), "]".repeat(depth / 2))
                } else {
                    random_json(rng, 4)
                };
                out.extend(encode_frame(true, 0, op::TEXT, text.as_bytes(), mask));
            }
            // Sometimes valid subscribes with random auth.
            if rng.below(2) == 0 && upgraded {
                let channel = ["private-x", "presence-y", "cache-z", "private-encrypted-w"]
                    [rng.below(4) as usize];
                let auth = format!("{APP_KEY}:{:x}", rng.next_u64());
                let msg = serde_json::json!({
                    "event": "pusher:subscribe",
                    "data": {"channel": channel, "auth": auth, "channel_data": random_json(rng, 2)}
                });
                out.extend(encode_frame(
                    true,
                    0,
                    op::TEXT,
                    msg.to_string().as_bytes(),
                    mask,
                ));
            }
            out
        }
    }
}

#[test]
fn garbage_input_does_not_hurt_the_server() {
    let mut server = Server::start(&["--max-message-size", "65536"]);
    let mut rng = Prng::new(SEED);
    let mut open = Vec::new();
    for i in 0..CONNECTIONS {
        let kind = rng.below(6);
        let mut client = match kind {
            0 | 1 => None,
            _ if rng.below(2) == 0 => Some(WsClient::pusher(server.addr)),
            _ => Some(WsClient::connect(
                server.addr,
                &pusher_path(APP_KEY, Some(["7", "5", "9"][rng.below(3) as usize])),
            )),
        };
        let bytes = garbage(&mut rng, kind, client.is_some());
        // Write in a few random pieces; the server may close at any point (errors ignored).
        let mut stream = match client.take() {
            Some(client) => client.stream,
            None => tcp_connect(server.addr),
        };
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let n = (1 + rng.below(rest.len() as u64)) as usize;
            if stream.write_all(&rest[..n]).is_err() {
                break;
            }
            rest = &rest[n..];
        }
        // Keep some open (half-finished frames held by the server), drop others at once.
        if i % 2 == 0 {
            open.push(stream);
        }
    }
    // Let the server chew, then a fresh client must be served normally.
    std::thread::sleep(Duration::from_millis(500));
    drop(open);
    assert!(server.is_running(), "the server died:\n{}", server.log());
    let mut fresh = WsClient::pusher(server.addr);
    fresh.ping_pong();
    fresh.subscribe_ok("private-after-garbage", None);
    fresh.ping_pong();
    assert_eq!(common::http_get(server.addr, "/ready").status, 200);
    assert!(server.is_running(), "the server died:\n{}", server.log());
    let log = server.log();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
}
