//! HTTP on the engine port: health, readiness, 404s, upgrade rejections (400, 404, 426), the
//! header size limit (431) and the handshake timeout.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use common::{http_get, http_raw, tcp_connect, upgrade_request, Server, WsClient, READ_TIMEOUT};

#[test]
fn get_root_is_200_ok() {
    let server = Server::start(&[]);
    let response = http_get(server.addr, "/");
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.body_text().trim(), "OK");
}

#[test]
fn get_ready_is_200_with_ready_true() {
    let server = Server::start(&[]);
    let response = http_get(server.addr, "/ready");
    assert_eq!(response.status, 200, "{}", response.head);
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["ready"], true, "{body}");
}

#[test]
fn unknown_path_is_404() {
    let server = Server::start(&[]);
    for path in ["/nope", "/app", "/apps/1/unknown", "/ready/x"] {
        let response = http_get(server.addr, path);
        assert_eq!(response.status, 404, "GET {path}: {}", response.head);
    }
}

#[test]
fn http_keep_alive_serves_several_requests_on_one_connection() {
    let server = Server::start(&[]);
    let mut stream = tcp_connect(server.addr);
    let mut rest = Vec::new();
    for path in ["/", "/ready", "/missing", "/"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let response = common::read_http_response(&mut stream, &mut rest).unwrap();
        let want = if path == "/missing" { 404 } else { 200 };
        assert_eq!(response.status, want, "GET {path}: {}", response.head);
    }
}

#[test]
fn upgrade_to_unknown_path_is_404_and_not_upgraded() {
    let server = Server::start(&[]);
    for path in ["/nope", "/app/", "/app/test-key/extra", "/echo"] {
        let response = http_raw(
            server.addr,
            upgrade_request(path, common::WS_KEY, "13").as_bytes(),
        );
        assert_eq!(response.status, 404, "upgrade on {path}: {}", response.head);
        assert!(
            response.header("sec-websocket-accept").is_none(),
            "a 404 must not carry an accept key: {}",
            response.head
        );
    }
}

#[test]
fn upgrade_with_bad_or_missing_key_is_400() {
    let server = Server::start(&[]);
    let path = common::pusher_path(common::APP_KEY, Some("7"));
    for key in ["not-a-key", "dGhlIHNhbXBsZSBub25jZQ", "AAAA"] {
        let response = http_raw(server.addr, upgrade_request(&path, key, "13").as_bytes());
        assert_eq!(response.status, 400, "key {key:?}: {}", response.head);
    }
    let no_key = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    let response = http_raw(server.addr, no_key.as_bytes());
    assert_eq!(response.status, 400, "missing key: {}", response.head);
    let no_connection_upgrade = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        common::WS_KEY
    );
    let response = http_raw(server.addr, no_connection_upgrade.as_bytes());
    assert_eq!(
        response.status, 400,
        "no Connection: Upgrade: {}",
        response.head
    );
}

#[test]
fn websocket_handshake_without_upgrade_websocket_is_400() {
    // The notes: a bad upgrade (… bad Upgrade/Connection headers) → 400. A request to the
    // Pusher endpoint carrying a WebSocket key and version but no `Upgrade: websocket` is such
    // a bad upgrade.
    let server = Server::start(&[]);
    let path = common::pusher_path(common::APP_KEY, Some("7"));
    for upgrade_line in ["", "Upgrade: h2c\r\n"] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\n{upgrade_line}Connection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            common::WS_KEY
        );
        let response = http_raw(server.addr, request.as_bytes());
        assert_eq!(
            response.status, 400,
            "upgrade with {upgrade_line:?} instead of `Upgrade: websocket`: {}",
            response.head
        );
    }
}

#[test]
fn upgrade_with_version_8_is_426_advertising_13() {
    let server = Server::start(&[]);
    let path = common::pusher_path(common::APP_KEY, Some("7"));
    let response = http_raw(
        server.addr,
        upgrade_request(&path, common::WS_KEY, "8").as_bytes(),
    );
    assert_eq!(response.status, 426, "{}", response.head);
    assert_eq!(
        response.header("sec-websocket-version").as_deref(),
        Some("13"),
        "{}",
        response.head
    );
    // The same client retrying with 13 is accepted.
    let mut client = WsClient::pusher_on(server.addr, &path);
    client.ping_pong();
}

#[test]
fn oversized_request_headers_are_431() {
    let server = Server::start(&[]);
    let big = "x".repeat(9 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\nConnection: close\r\n\r\n");
    let response = http_raw(server.addr, request.as_bytes());
    assert_eq!(response.status, 431, "{}", response.head);
    // Same on an upgrade request.
    let path = common::pusher_path(common::APP_KEY, Some("7"));
    let upgrade = upgrade_request(&path, common::WS_KEY, "13").replacen(
        "\r\n\r\n",
        &format!("\r\nX-Big: {big}\r\n\r\n"),
        1,
    );
    let response = http_raw(server.addr, upgrade.as_bytes());
    assert_eq!(response.status, 431, "{}", response.head);
    // A head that never ends is answered 431 once it passes the limit.
    let endless = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}");
    let response = http_raw(server.addr, endless.as_bytes());
    assert_eq!(response.status, 431, "{}", response.head);
    // Headers just under the limit are fine.
    let fine = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "x".repeat(7 * 1024)
    );
    assert_eq!(http_raw(server.addr, fine.as_bytes()).status, 200);
}

#[test]
fn handshake_timeout_closes_a_socket_that_sent_half_a_request() {
    let server = Server::start(&["--handshake-timeout", "1"]);
    let mut stream = tcp_connect(server.addr);
    let path = common::pusher_path(common::APP_KEY, Some("7"));
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n").as_bytes())
        .unwrap();
    // The server must close the socket on its own (read returns 0 or the connection resets);
    // no complete request ever arrives.
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match std::io::Read::read(&mut stream, &mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!(
                    "the half-finished handshake was still open after {READ_TIMEOUT:?} \
                     with --handshake-timeout 1"
                )
            }
            Err(_) => break, // reset: closed as well
        }
    }
    assert!(
        !received.starts_with(b"HTTP/1.1 101"),
        "a half request must not be upgraded: {}",
        common::lossy(&received)
    );
    // A complete request on a fresh connection still works.
    assert_eq!(http_get(server.addr, "/").status, 200);
}
