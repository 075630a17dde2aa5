//! Hostile clients against the real binary: one socket that sends forever and never reads must
//! not grow the server's memory (RSS read from `/proc`) past a bound, whatever it sends (pipelined
//! HTTP requests, WebSocket pings, echo frames, subscribe churn); the server keeps serving
//! everyone else. HTTP framing that a proxy could read differently (RFC 9112 §6) gets one answer
//! and a close, and a closed socket's lingering read ends even when the peer trickles bytes; a
//! client that stops reading and reads again gets everything it asked for.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{http_get, read_http_response, tcp_connect, ReadOutcome, Server, WsClient};
use serde_json::json;

/// How much a flood may grow the server's RSS: far above what its bounded queues hold (an
/// outbound cap of 1 MiB, a read buffer, a few replies), far below what an unbounded queue
/// reaches in a few seconds (the flood below writes hundreds of megabytes of requests).
const RSS_GROWTH_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Longest a flood goes on: long enough for an unbounded queue to show, short for CI.
const FLOOD_FOR: Duration = Duration::from_secs(4);
/// Bytes of input a flood sends at most.
const FLOOD_BYTES_MAX: usize = 512 * 1024 * 1024;

/// The server's resident set, in bytes.
fn rss_bytes(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// What a flood did: input bytes the server took, and whether it stopped taking them (our
/// writes timed out: the server no longer reads a socket whose output is stuck).
struct Flood {
    sent: usize,
    stalled: bool,
}

/// Writes `chunk` again and again on `stream` and never reads, until the server stops taking
/// input for a second, [`FLOOD_FOR`] passes, [`FLOOD_BYTES_MAX`] are sent, or the server closes.
/// Returns the largest RSS seen meanwhile.
fn flood(server: &Server, stream: &mut TcpStream, chunk: &[u8]) -> (Flood, u64) {
    stream
        .set_write_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let started = Instant::now();
    let mut sent = 0usize;
    let mut stuck_since: Option<Instant> = None;
    let mut rss_max = rss_bytes(server);
    let mut last_sample = Instant::now();
    while started.elapsed() < FLOOD_FOR && sent < FLOOD_BYTES_MAX {
        match stream.write(chunk) {
            Ok(0) => break,
            Ok(n) => {
                sent += n;
                stuck_since = None;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let since = *stuck_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_secs(1) {
                    rss_max = rss_max.max(rss_bytes(server));
                    return (
                        Flood {
                            sent,
                            stalled: true,
                        },
                        rss_max,
                    );
                }
            }
            Err(_) => break, // the server closed the socket: also a bound
        }
        if last_sample.elapsed() >= Duration::from_millis(100) {
            rss_max = rss_max.max(rss_bytes(server));
            last_sample = Instant::now();
        }
    }
    rss_max = rss_max.max(rss_bytes(server));
    (
        Flood {
            sent,
            stalled: false,
        },
        rss_max,
    )
}

/// Runs one flood from a fresh socket and checks the bound and that the server still serves
/// others while the flooding socket stays open.
fn assert_flood_is_bounded(server: &Server, what: &str, mut stream: TcpStream, chunk: &[u8]) {
    let before = rss_bytes(server);
    let (flood, rss_max) = flood(server, &mut stream, chunk);
    let growth = rss_max.saturating_sub(before);
    assert!(
        growth <= RSS_GROWTH_BYTES_MAX,
        "{what}: RSS grew by {} MiB (from {} MiB) after {} MiB of input that was never answered \
         by a read; the bound is {} MiB",
        growth >> 20,
        before >> 20,
        flood.sent >> 20,
        RSS_GROWTH_BYTES_MAX >> 20
    );
    assert_eq!(
        http_get(server.addr, "/ready").status,
        200,
        "{what}: the server must keep serving other clients"
    );
    eprintln!(
        "{what}: {} MiB sent, stalled: {}, RSS {} → max {} MiB",
        flood.sent >> 20,
        flood.stalled,
        before >> 20,
        rss_max >> 20
    );
    drop(stream);
}

/// `n` copies of `one`, as one write.
fn repeated(one: &[u8], n: usize) -> Vec<u8> {
    one.iter().copied().cycle().take(one.len() * n).collect()
}

#[test]
fn pipelined_http_requests_never_read_stay_bounded() {
    let server = Server::start(&[]);
    for path in ["/metrics", "/ready", "/nothing-here"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let chunk = repeated(request.as_bytes(), 2048);
        let stream = tcp_connect(server.addr);
        assert_flood_is_bounded(&server, &format!("pipelined GET {path}"), stream, &chunk);
    }
}

#[test]
fn websocket_pings_never_read_stay_bounded() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    let ping = client.frame_bytes(true, 0x9, &[b'p'; 125]);
    let chunk = repeated(&ping, 512);
    let stream = client.stream.try_clone().unwrap();
    assert_flood_is_bounded(&server, "125-byte pings", stream, &chunk);
}

#[test]
fn echo_frames_never_read_stay_bounded() {
    let server = Server::start(&["--echo-path", "/echo"]);
    let mut client = WsClient::connect(server.addr, "/echo");
    let text = client.frame_bytes(true, 0x1, &[b'e'; 16 * 1024]);
    let chunk = repeated(&text, 16);
    let stream = client.stream.try_clone().unwrap();
    assert_flood_is_bounded(&server, "16 KiB echo frames", stream, &chunk);
}

#[test]
fn subscribe_churn_never_read_stays_bounded() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    let mut chunk = Vec::new();
    for n in 0..200 {
        let channel = format!("churn-{n}");
        let subscribe = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
        let unsubscribe = json!({"event": "pusher:unsubscribe", "data": {"channel": channel}});
        let ping = json!({"event": "pusher:ping", "data": {}});
        for message in [subscribe, unsubscribe, ping] {
            chunk.extend(client.frame_bytes(true, 0x1, message.to_string().as_bytes()));
        }
    }
    let stream = client.stream.try_clone().unwrap();
    assert_flood_is_bounded(
        &server,
        "subscribe / unsubscribe / ping churn",
        stream,
        &chunk,
    );
}

/// Reads one response and then expects the server to close: no second answer.
fn expect_one_answer_then_close(server: &Server, request: &[u8]) -> u16 {
    let mut stream = tcp_connect(server.addr);
    stream.write_all(request).unwrap();
    let mut rest = Vec::new();
    let response = read_http_response(&mut stream, &mut rest).unwrap();
    assert_eq!(
        response.header("connection").as_deref(),
        Some("close"),
        "the answer says the connection closes: {}",
        response.head
    );
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut more = Vec::new();
    let _ = stream.read_to_end(&mut more);
    rest.extend(more);
    assert!(
        !String::from_utf8_lossy(&rest).contains("HTTP/1.1"),
        "a second answer followed: {:?}",
        String::from_utf8_lossy(&rest)
    );
    response.status
}

#[test]
fn transfer_encoding_is_refused_with_one_answer_and_a_close() {
    let server = Server::start(&[]);
    // Content-Length says the body is the `0\r\n\r\n`; chunked says it ended there too, but a
    // proxy that frames by one and a server by the other disagree on where the next request is.
    let smuggled = b"POST /apps/test-app/events HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\n\
Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /ready HTTP/1.1\r\nHost: x\r\n\r\n";
    let status = expect_one_answer_then_close(&server, smuggled);
    assert_eq!(status, 501, "Transfer-Encoding is not implemented");
    let chunked_only = b"POST /apps/test-app/events HTTP/1.1\r\nHost: x\r\n\
Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /ready HTTP/1.1\r\n\r\n";
    assert_eq!(expect_one_answer_then_close(&server, chunked_only), 501);
    let obfuscated = b"GET /ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n\
GET /ready HTTP/1.1\r\n\r\n";
    assert_eq!(expect_one_answer_then_close(&server, obfuscated), 501);
}

#[test]
fn conflicting_content_lengths_get_400_and_a_close() {
    let server = Server::start(&[]);
    let request = b"POST /apps/test-app/events HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\
Content-Length: 40\r\n\r\nabcGET /ready HTTP/1.1\r\n\r\n";
    assert_eq!(expect_one_answer_then_close(&server, request), 400);
}

#[test]
fn an_upgrade_with_a_body_is_refused() {
    let server = Server::start(&[]);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 6\r\n\r\nhello!",
        common::pusher_path(common::APP_KEY, Some("7")),
        common::WS_KEY
    );
    assert_eq!(
        expect_one_answer_then_close(&server, request.as_bytes()),
        400
    );
}

#[test]
fn a_lingering_close_ends_even_when_the_peer_trickles_bytes() {
    let server = Server::start(&[]);
    let mut stream = tcp_connect(server.addr);
    stream
        .write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let response = read_http_response(&mut stream, &mut rest).unwrap();
    assert_eq!(response.status, 200);
    // The server half-closed and lingers for our FIN; we never send one, and keep its reads
    // busy with a byte every 200 ms. Its linger has an overall deadline: the socket is closed
    // (our writes then fail) well before we give up.
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(30) {
        if stream.write_all(b"x").is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        closed,
        "the server still holds a socket whose peer trickles bytes after 30 s"
    );
}

/// The answer to an upgrade of the test app's Pusher path with `origin` (none: no header).
fn upgrade_status(server: &Server, origin: Option<&str>) -> (u16, Vec<u8>) {
    let path = common::pusher_path(common::APP_KEY, Some("7"));
    let mut request = common::upgrade_request(&path, common::WS_KEY, "13");
    if let Some(origin) = origin {
        request.insert_str(request.len() - 2, &format!("Origin: {origin}\r\n"));
    }
    let mut stream = tcp_connect(server.addr);
    stream.write_all(request.as_bytes()).unwrap();
    let mut rest = Vec::new();
    let response = read_http_response(&mut stream, &mut rest).unwrap();
    (response.status, response.body)
}

#[test]
fn an_upgrade_from_an_origin_the_app_does_not_allow_is_refused() {
    let server = Server::start(&[
        "--app-allowed-origins",
        "https://app.example.com,*.example.org",
    ]);
    for origin in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "http://app.example.com",
        "null",
    ] {
        let (status, body) = upgrade_status(&server, Some(origin));
        assert_eq!(status, 403, "Origin {origin}");
        assert!(String::from_utf8_lossy(&body).contains("origin not allowed"));
    }
    for origin in [
        Some("https://app.example.com"),
        Some("https://a.example.org"),
        None,
    ] {
        assert_eq!(upgrade_status(&server, origin).0, 101, "Origin {origin:?}");
    }
    let metrics = http_get(server.addr, "/metrics").body_text();
    let refused: u64 = metrics
        .lines()
        .filter(|line| line.starts_with("ringcast_origin_refused_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(refused, 4, "counted over the shards: {metrics}");
    // Without a list every origin may connect (the default).
    let open = Server::start(&[]);
    assert_eq!(upgrade_status(&open, Some("https://evil.example")).0, 101);
}

#[test]
fn auth_offload_forwarding_cookies_without_an_allow_list_does_not_start() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "--port",
            "0",
            "--app-id",
            "a",
            "--app-key",
            "k",
            "--app-secret",
            "s",
            "--app-channel-authorization-url",
            "http://127.0.0.1:9/auth",
            "--app-channel-authorization-headers",
            "Cookie",
        ])
        .env_clear()
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "it must not start: {stderr}");
    assert!(stderr.contains("needs --app-allowed-origins"), "{stderr}");
}

/// A client that stops reading until the server stops taking its input (its output to the
/// client is stuck), then reads again, gets every answer it asked for: the server's input and
/// output both resume by themselves, with nothing new queued for the connection. (The partial
/// write that once left such a socket without a waker showed in compat 24's relay flood; here
/// the stuck write is usually a whole one, so this guards the resume, not that race.)
#[test]
fn a_client_that_stops_reading_then_reads_again_gets_every_answer() {
    let server = Server::start(&["--echo-path", "/echo"]);
    // Each round a new connection, as the kernel's buffers differ from one to the next.
    for round in 0..4 {
        let mut client = WsClient::connect(server.addr, "/echo");
        let payload = vec![b'a' + round as u8; 16 * 1024];
        let frame = client.frame_bytes(true, 0x1, &payload);
        client
            .stream
            .set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        // Send until the server stops reading us (its output to us is stuck).
        let mut sent = 0usize;
        while sent < 4096 && client.send_raw(&frame).is_ok() {
            sent += 1;
        }
        assert!(
            sent < 4096,
            "round {round}: the server never stopped taking input"
        );
        // Read again: every complete frame sent comes back, then nothing is left waiting.
        let mut echoed = 0usize;
        while echoed < sent {
            match client.read_frame_within(Duration::from_secs(5)) {
                ReadOutcome::Frame(frame) if frame.opcode == 0x1 => {
                    assert_eq!(frame.payload.len(), payload.len());
                    echoed += 1;
                }
                ReadOutcome::Frame(frame) => {
                    panic!(
                        "round {round}: opcode {} after {echoed} echoes",
                        frame.opcode
                    )
                }
                other => panic!(
                    "round {round}: {echoed} of {sent} echoes, then {other:?}: the server \
                     stopped writing to a socket that reads again"
                ),
            }
        }
    }
}
