//! Timeouts never fire early: with a timeout of T seconds, the server must not ping, close or
//! refuse before T seconds have passed. Each test opens connections staggered over one second
//! (so they start at different points of any once-a-second sweep) and measures, from *before*
//! connecting, how long each lived. A correct server starts its clock after our measurement
//! starts, so every lifetime is at least T however slow the machine is; no upper bound is
//! asserted beyond the read timeout.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{tcp_connect, Server, WsClient};

const CONNECTIONS: u32 = 10;
const STAGGER: Duration = Duration::from_millis(100);
const ONE_SECOND: Duration = Duration::from_secs(1);

/// Runs `measure` on `CONNECTIONS` threads started `STAGGER` apart; returns the lifetimes.
fn staggered(measure: impl Fn() -> Duration + Sync) -> Vec<Duration> {
    let mut lifetimes = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CONNECTIONS)
            .map(|i| {
                let measure = &measure;
                scope.spawn(move || {
                    std::thread::sleep(STAGGER * i);
                    measure()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    lifetimes.sort();
    lifetimes
}

fn assert_none_early(what: &str, lifetimes: &[Duration], timeout: Duration) {
    let early: Vec<_> = lifetimes.iter().filter(|d| **d < timeout).collect();
    assert!(
        early.is_empty(),
        "{what} fired before its {timeout:?} timeout for {} of {} connections; \
         lifetimes: {lifetimes:?}",
        early.len(),
        lifetimes.len()
    );
}

#[test]
fn authorization_timeout_never_closes_a_connection_early() {
    let server = Server::start(&[
        "--app-require-channel-authorization",
        "true",
        "--app-authorization-timeout-seconds",
        "1",
    ]);
    let lifetimes = staggered(|| {
        let start = Instant::now();
        let mut client = WsClient::pusher(server.addr);
        let error = client.wait_for_event("pusher:error", Duration::from_secs(15));
        let lifetime = start.elapsed();
        assert_eq!(error["data"]["code"], 4009, "{error}");
        lifetime
    });
    assert_none_early("the 4009 authorization timeout", &lifetimes, ONE_SECOND);
}

#[test]
fn activity_timeout_never_pings_early() {
    let server = Server::start(&["--app-activity-timeout", "1"]);
    let lifetimes = staggered(|| {
        let start = Instant::now();
        let mut client = WsClient::pusher(server.addr);
        client.wait_for_event("pusher:ping", Duration::from_secs(15));
        start.elapsed()
    });
    assert_none_early("the server's pusher:ping", &lifetimes, ONE_SECOND);
}

#[test]
fn handshake_timeout_never_closes_early() {
    let server = Server::start(&["--handshake-timeout", "1"]);
    let lifetimes = staggered(|| {
        let start = Instant::now();
        let mut stream = tcp_connect(server.addr);
        std::io::Write::write_all(&mut stream, b"GET / HTTP/1.1\r\nHost: t\r\n").unwrap();
        let mut sink = [0u8; 1024];
        loop {
            match stream.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!(
                        "the half request was still open after {:?}",
                        start.elapsed()
                    )
                }
                Err(_) => break, // reset: closed as well
            }
        }
        start.elapsed()
    });
    assert_none_early("the handshake timeout", &lifetimes, ONE_SECOND);
}
