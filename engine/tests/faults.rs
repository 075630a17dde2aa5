//! Faults inside the server: a panic never leaves a half-alive node. The process prints one line
//! and exits with status 70, so its supervisor restarts it and the balancer moves its clients;
//! while a shard is not running `/ready` is not 200. The panic comes from a test-only trigger
//! that debug builds compile in and `RINGCAST_TEST_FAULT_TRIGGER=1` switches on.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{http_get, Server, WsClient};
use serde_json::json;

#[cfg(debug_assertions)]
#[test]
fn a_panicking_shard_ends_the_process_with_one_line_and_status_70() {
    let mut server = Server::start_with_extra_env(&[], &[("RINGCAST_TEST_FAULT_TRIGGER", "1")]);
    assert_eq!(
        http_get(server.addr, "/ready").status,
        200,
        "every shard runs"
    );
    let mut bystander = WsClient::pusher(server.addr);
    bystander.send_json(&json!({"event": "pusher:subscribe", "data": {"channel": "news"}}));
    bystander.expect_event("pusher_internal:subscription_succeeded");
    let mut culprit = WsClient::pusher(server.addr);
    culprit.send_json(&json!({"event": "ringcast:test_panic", "data": {}}));
    let status = server
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("still running after the panic:\n{}", server.log()));
    assert_eq!(status.code(), Some(70), "{}", server.log());
    let log = server.log();
    let fatal: Vec<&str> = log.lines().filter(|l| l.contains("fatal:")).collect();
    assert_eq!(fatal.len(), 1, "one clear line: {log}");
    assert!(
        fatal[0].contains("thread 'shard-") && fatal[0].contains("the test fault trigger"),
        "{}",
        fatal[0]
    );
    // Its clients see the socket end (and reconnect elsewhere) instead of hanging.
    bystander.expect_eof();
}

#[test]
fn without_the_variable_the_trigger_is_an_unknown_event() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    client.send_json(&json!({"event": "ringcast:test_panic", "data": {}}));
    client.expect_pusher_error(Some(4301));
    client.ping_pong();
    assert_eq!(http_get(server.addr, "/ready").status, 200);
}
