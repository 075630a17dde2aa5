//! Graceful shutdown: SIGTERM tells every Pusher connection (on every shard) to reconnect with
//! `pusher:error` 4200 and a close frame 4200, then the process exits 0 — when all connections
//! are gone, or after `--drain-timeout` when a client does not answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::{pusher_clients_on_both_shards, read_http_response, Server, WsClient};

/// Generous bound for the process to exit after its last connection left / its drain timeout.
const EXIT_WAIT: Duration = Duration::from_secs(30);

#[test]
fn sigterm_sends_4200_to_every_client_and_exits_0() {
    let mut server = Server::start(&[]);
    let mut clients = pusher_clients_on_both_shards(server.addr, 3);
    for client in &mut clients {
        client.subscribe_ok("private-drain", None);
    }
    assert_eq!(common::http_get(server.addr, "/ready").status, 200);
    server.sigterm();
    for client in &mut clients {
        client.expect_pusher_close(4200);
    }
    for client in &mut clients {
        client.send_close(4200, "");
        client.expect_eof();
    }
    let status = server
        .wait_exit(EXIT_WAIT)
        .unwrap_or_else(|| panic!("still running after draining:\n{}", server.log()));
    assert!(status.success(), "exit status {status}:\n{}", server.log());
}

#[test]
fn drain_timeout_bounds_the_wait_for_a_client_that_never_answers() {
    let mut server = Server::start(&["--drain-timeout", "3"]);
    let mut clients = pusher_clients_on_both_shards(server.addr, 2);
    // An HTTP keep-alive connection open before the signal.
    let mut http = common::tcp_connect(server.addr);
    http.write_all(b"GET /ready HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        read_http_response(&mut http, &mut rest).unwrap().status,
        200
    );

    server.sigterm();
    // Both shards are draining once both clients (one per shard) got their 4200.
    for client in &mut clients {
        client.expect_pusher_close(4200);
    }
    // Nobody answers the close. /ready is now 503 if the server still answers at all (its
    // listeners close on drain, so a refused or closed connection is fine too), never 200.
    for _ in 0..5 {
        if let Some(status) = ready_status_if_reachable(&server) {
            assert_eq!(status, 503, "/ready answered {status} while draining");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The idle keep-alive connection was finished by the drain, or answers 503.
    if http
        .write_all(b"GET /ready HTTP/1.1\r\nHost: t\r\n\r\n")
        .is_ok()
    {
        if let Ok(response) = read_http_response(&mut http, &mut rest) {
            assert_eq!(
                response.status, 503,
                "keep-alive /ready during drain: {}",
                response.head
            );
        }
    }
    let status = server.wait_exit(EXIT_WAIT).unwrap_or_else(|| {
        panic!(
            "still running long after --drain-timeout 3:\n{}",
            server.log()
        )
    });
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    drop(clients);
}

#[test]
fn a_new_pusher_connection_during_drain_is_refused_or_told_to_reconnect() {
    let mut server = Server::start(&["--drain-timeout", "3"]);
    let mut clients = pusher_clients_on_both_shards(server.addr, 2);
    server.sigterm();
    for client in &mut clients {
        client.expect_pusher_close(4200);
    }
    // Either nothing listens any more (refused / reset / closed), or the upgrade is answered
    // and the new client is told 4200 at once.
    let path = common::pusher_path(common::APP_KEY, Some("7"));
    if let Ok(mut late) = WsClient::upgrade(server.addr, &path) {
        late.expect_pusher_close(4200);
    }
    let status = server
        .wait_exit(EXIT_WAIT)
        .expect("still running after the drain timeout");
    assert!(status.success(), "exit status {status}:\n{}", server.log());
}

/// `GET /ready` status, or `None` when the connection is refused or closed without an answer.
fn ready_status_if_reachable(server: &Server) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(server.addr).ok()?;
    stream.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /ready HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut rest = Vec::new();
    read_http_response(&mut stream, &mut rest)
        .ok()
        .map(|r| r.status)
}
