//! The Pusher Channels v7 socket protocol as a client sees it: connection admission and refusal
//! codes, ping/pong, error handling that keeps the connection, subscriptions of every channel
//! type with auth, presence, cache channels, client events across shards, sign-in, the
//! server's activity ping and the authorization timeout.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use serde_json::{json, Value};

use common::{
    data_of, is_socket_id, op, pusher_on_other_shard, pusher_path, sign_channel, Server, WsClient,
    APP_KEY, APP_SECRET,
};

fn client_events_server(extra: &[&str]) -> Server {
    let mut args = vec!["--app-enable-client-messages", "true"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// The `data` of a `subscription_error`, checked for the documented shape.
fn subscription_error(client: &mut WsClient, channel: &str) -> Value {
    let error = client.expect_event("pusher:subscription_error");
    assert_eq!(error["channel"], channel, "{error}");
    assert!(
        error["data"].is_string(),
        "data must be a JSON string: {error}"
    );
    let data = data_of(&error);
    assert!(
        data["type"].is_string() && data["error"].is_string(),
        "{error}"
    );
    data
}

// ------------------------------------------------------------------------------ connection

#[test]
fn connection_established_has_the_documented_shape() {
    let server = Server::start(&[]);
    let mut client = WsClient::connect(server.addr, &pusher_path(APP_KEY, Some("7")));
    let frame = client.next_frame();
    assert_eq!(
        (frame.opcode, frame.fin),
        (op::TEXT, true),
        "{}",
        frame.describe()
    );
    let envelope: Value = serde_json::from_slice(&frame.payload).unwrap();
    assert_eq!(
        envelope["event"], "pusher:connection_established",
        "{envelope}"
    );
    let data = envelope["data"]
        .as_str()
        .unwrap_or_else(|| panic!("data must be a JSON string: {envelope}"));
    let data: Value = serde_json::from_str(data).unwrap();
    let socket_id = data["socket_id"].as_str().unwrap();
    assert!(
        is_socket_id(socket_id),
        "socket id {socket_id:?} must match ^\\d+\\.\\d+$"
    );
    assert!(
        common::shard_of(socket_id) < 2,
        "shard digits of {socket_id}"
    );
    assert_eq!(data["activity_timeout"], 120, "{data}");
    // Two connections never share a socket id.
    let other = WsClient::pusher(server.addr);
    assert_ne!(other.socket_id, socket_id);
}

#[test]
fn missing_protocol_is_7_and_5_to_7_are_accepted() {
    let server = Server::start(&[]);
    for protocol in [None, Some("5"), Some("6"), Some("7")] {
        let mut client = WsClient::pusher_on(server.addr, &pusher_path(APP_KEY, protocol));
        client.ping_pong();
    }
}

#[test]
fn unknown_app_key_is_4001() {
    let server = Server::start(&[]);
    let mut client = WsClient::connect(server.addr, &pusher_path("no-such-key", Some("7")));
    client.expect_pusher_close(4001);
}

#[test]
fn protocol_4_and_8_are_4007() {
    let server = Server::start(&[]);
    for protocol in ["4", "8", "abc"] {
        let mut client = WsClient::connect(server.addr, &pusher_path(APP_KEY, Some(protocol)));
        client.expect_pusher_close(4007);
        // The client answers the close; the server then closes the TCP connection.
        client.send_close(4007, "");
        client.expect_eof();
    }
}

#[test]
fn app_max_connections_1_refuses_the_second_with_4004_until_the_first_leaves() {
    let server = Server::start(&["--app-max-connections", "1"]);
    let mut first = WsClient::pusher(server.addr);
    let mut second = WsClient::connect(server.addr, &pusher_path(APP_KEY, Some("7")));
    second.expect_pusher_close(4004);
    first.ping_pong();
    first.close_cleanly();
    // The slot is free again once the first connection is gone.
    let mut third = WsClient::pusher(server.addr);
    third.ping_pong();
}

#[test]
fn disabled_app_is_4003() {
    let server = Server::start(&["--app-enabled", "false"]);
    let mut client = WsClient::connect(server.addr, &pusher_path(APP_KEY, Some("7")));
    client.expect_pusher_close(4003);
}

// ------------------------------------------------------------------------------ messages

#[test]
fn pusher_ping_gets_pusher_pong() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    client.ping_pong();
    // data as a string, as some clients send it.
    client.send_text(r#"{"event":"pusher:ping","data":"{}"}"#);
    client.expect_event("pusher:pong");
}

#[test]
fn bad_json_is_an_error_and_the_connection_is_kept() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    for bad in [
        "{not json",
        "",
        "[1,2",
        r#"{"event":"pusher:ping"} trailing"#,
    ] {
        client.send_text(bad);
        let error = client.expect_pusher_error(None);
        assert_eq!(
            error["data"]["message"], "Invalid JSON",
            "for {bad:?}: {error}"
        );
        client.ping_pong();
    }
}

#[test]
fn binary_frame_is_4301_and_the_connection_is_kept() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    client.send_frame(true, op::BINARY, br#"{"event":"pusher:ping","data":{}}"#);
    client.expect_pusher_error(Some(4301));
    client.ping_pong();
}

#[test]
fn client_sent_reserved_events_are_4301_and_the_connection_is_kept() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    for event in [
        "pusher_internal:foo",
        "pusher_internal:subscription_succeeded",
        "pusher:foo",
        "pusher:connection_established",
        "my-event",
    ] {
        client.send_json(&json!({"event": event, "channel": "c", "data": {}}));
        client.expect_pusher_error(Some(4301));
        client.ping_pong();
    }
}

// ------------------------------------------------------------------------------ subscriptions

#[test]
fn subscribe_to_a_public_channel_succeeds() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    let ok = client.subscribe_ok("my-channel", None);
    assert!(ok["data"].is_string(), "data must be a JSON string: {ok}");
    assert_eq!(data_of(&ok), json!({}));
    // data given as a JSON string (older clients) works too.
    client.send_json(&json!({
        "event": "pusher:subscribe",
        "data": json!({"channel": "other-channel"}).to_string()
    }));
    let ok = client.expect_event("pusher_internal:subscription_succeeded");
    assert_eq!(ok["channel"], "other-channel");
}

#[test]
fn private_channel_with_a_wrong_signature_is_a_401_subscription_error() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    let channel = "private-secrets";
    // Signed for another socket id, signed with another secret, no auth at all.
    let wrong = [
        sign_channel("1.1", channel, None),
        format!(
            "{APP_KEY}:{}",
            ringcast_core::pusher::auth::hmac_sha256_hex(
                b"not-the-secret",
                format!("{}:{channel}", client.socket_id).as_bytes()
            )
        ),
        format!("{APP_KEY}:nothex"),
        String::new(),
    ];
    for auth in wrong {
        client.subscribe(channel, Some(&auth), None);
        let data = subscription_error(&mut client, channel);
        assert_eq!(data["type"], "AuthError", "{data}");
        assert_eq!(data["status"], 401, "{data}");
        client.ping_pong();
    }
    // The right signature still works afterwards.
    client.subscribe_ok(channel, None);
}

#[test]
fn private_encrypted_channel_with_a_valid_signature_succeeds() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    let ok = client.subscribe_ok("private-encrypted-vault", None);
    assert_eq!(data_of(&ok), json!({}));
}

#[test]
fn presence_channel_reports_members_and_member_added() {
    let server = Server::start(&[]);
    let channel = "presence-room";
    let mut ann = WsClient::pusher(server.addr);
    let ann_data = r#"{"user_id":"u1","user_info":{"name":"Ann"}}"#;
    let ok = ann.subscribe_ok(channel, Some(ann_data));
    assert!(ok["data"].is_string(), "data must be a JSON string: {ok}");
    assert_eq!(
        data_of(&ok),
        json!({"presence": {"ids": ["u1"], "hash": {"u1": {"name": "Ann"}}, "count": 1}}),
        "{ok}"
    );
    // A second user, on the other shard, sees both; the first is told about the second.
    let mut bob = pusher_on_other_shard(server.addr, ann.shard());
    let bob_data = r#"{"user_id":"u2","user_info":{"name":"Bob"}}"#;
    let ok = bob.subscribe_ok(channel, Some(bob_data));
    let presence = &data_of(&ok)["presence"];
    assert_eq!(presence["count"], 2, "{ok}");
    let mut ids: Vec<String> = presence["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["u1", "u2"], "{ok}");
    assert_eq!(presence["hash"]["u1"], json!({"name": "Ann"}), "{ok}");
    assert_eq!(presence["hash"]["u2"], json!({"name": "Bob"}), "{ok}");
    let added = ann.expect_event("pusher_internal:member_added");
    assert_eq!(added["channel"], channel);
    assert_eq!(
        data_of(&added),
        json!({"user_id": "u2", "user_info": {"name": "Bob"}}),
        "{added}"
    );
    // Bob leaves: Ann is told.
    bob.send_json(&json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}));
    let removed = ann.expect_event("pusher_internal:member_removed");
    assert_eq!(data_of(&removed)["user_id"], "u2", "{removed}");
}

#[test]
fn presence_member_events_only_for_a_users_first_and_last_connection() {
    let server = Server::start(&[]);
    let channel = "presence-tabs";
    let mut ann = WsClient::pusher(server.addr);
    ann.subscribe_ok(channel, Some(r#"{"user_id":"ann","user_info":{}}"#));
    let bob_data = r#"{"user_id":"bob","user_info":{"tab":1}}"#;
    let mut bob_tab1 = WsClient::pusher(server.addr);
    bob_tab1.subscribe_ok(channel, Some(bob_data));
    let added = ann.expect_event("pusher_internal:member_added");
    assert_eq!(data_of(&added)["user_id"], "bob", "{added}");
    // Bob's second tab, on the other shard than the first: no new member for anyone.
    let mut bob_tab2 = pusher_on_other_shard(server.addr, bob_tab1.shard());
    let ok = bob_tab2.subscribe_ok(channel, Some(bob_data));
    assert_eq!(data_of(&ok)["presence"]["count"], 2, "{ok}");
    ann.ping_pong();
    bob_tab1.ping_pong();
    // The first tab leaves: Bob is still there.
    bob_tab1.close_cleanly();
    ann.ping_pong();
    // The last tab leaves: now Ann is told.
    bob_tab2.send_json(&json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}));
    let removed = ann.expect_event("pusher_internal:member_removed");
    assert_eq!(data_of(&removed)["user_id"], "bob", "{removed}");
}

#[test]
fn presence_without_channel_data_or_with_a_bad_signature_is_refused() {
    let server = Server::start(&[]);
    let channel = "presence-room";
    let mut client = WsClient::pusher(server.addr);
    let auth = sign_channel(&client.socket_id, channel, None);
    client.subscribe(channel, Some(&auth), None);
    assert_eq!(subscription_error(&mut client, channel)["status"], 401);
    // Signed for other channel_data than the one sent.
    let signed = sign_channel(&client.socket_id, channel, Some(r#"{"user_id":"u1"}"#));
    client.subscribe(channel, Some(&signed), Some(r#"{"user_id":"admin"}"#));
    assert_eq!(subscription_error(&mut client, channel)["status"], 401);
    client.ping_pong();
}

#[test]
fn presence_member_limit_refuses_the_second_user() {
    let server = Server::start(&["--app-max-presence-members-per-channel", "1"]);
    let channel = "presence-small";
    let mut first = WsClient::pusher(server.addr);
    first.subscribe_ok(channel, Some(r#"{"user_id":"u1","user_info":{}}"#));
    let mut second = WsClient::pusher(server.addr);
    let data = r#"{"user_id":"u2","user_info":{}}"#;
    let auth = sign_channel(&second.socket_id, channel, Some(data));
    second.subscribe(channel, Some(&auth), Some(data));
    let error = subscription_error(&mut second, channel);
    assert_eq!(error["type"], "LimitReached", "{error}");
    assert_eq!(error["status"], 4100, "{error}");
    second.ping_pong();
    // The first member was not told about a member that never joined.
    first.ping_pong();
}

#[test]
fn cache_channel_succeeds_then_reports_a_cache_miss() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    client.subscribe_ok("cache-prices", None);
    let miss = client.expect_event("pusher:cache_miss");
    assert_eq!(miss["channel"], "cache-prices", "{miss}");
    // Private cache channels too.
    client.subscribe_ok("private-cache-orders", None);
    let miss = client.expect_event("pusher:cache_miss");
    assert_eq!(miss["channel"], "private-cache-orders", "{miss}");
}

#[test]
fn invalid_channel_name_is_a_400_subscription_error() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    for channel in ["bad channel", "has#hash", &"x".repeat(201)] {
        client.subscribe(channel, None, None);
        let data = subscription_error(&mut client, channel);
        assert_eq!(data["type"], "InvalidChannel", "{data}");
        assert_eq!(data["status"], 400, "{data}");
    }
    client.ping_pong();
}

#[test]
fn unsubscribe_from_an_unknown_channel_is_a_no_op() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    client.send_json(&json!({"event": "pusher:unsubscribe", "data": {"channel": "never-joined"}}));
    // Nothing is sent back: the very next frame is the pong to the following ping.
    client.ping_pong();
    // Subscribe, unsubscribe twice, subscribe again.
    client.subscribe_ok("my-channel", None);
    for _ in 0..2 {
        client
            .send_json(&json!({"event": "pusher:unsubscribe", "data": {"channel": "my-channel"}}));
    }
    client.ping_pong();
    client.subscribe_ok("my-channel", None);
}

// ------------------------------------------------------------------------------ client events

#[test]
fn client_event_on_a_public_channel_is_4301_and_the_connection_is_kept() {
    let server = client_events_server(&[]);
    let mut client = WsClient::pusher(server.addr);
    client.subscribe_ok("public-chat", None);
    client.send_json(&json!({"event": "client-typing", "channel": "public-chat", "data": {}}));
    client.expect_pusher_error(Some(4301));
    client.ping_pong();
    // Also on an encrypted channel, and on a channel the client is not subscribed to.
    client.subscribe_ok("private-encrypted-x", None);
    client.send_json(
        &json!({"event": "client-typing", "channel": "private-encrypted-x", "data": {}}),
    );
    client.expect_pusher_error(Some(4301));
    client
        .send_json(&json!({"event": "client-typing", "channel": "private-elsewhere", "data": {}}));
    client.expect_pusher_error(Some(4301));
    client.ping_pong();
}

#[test]
fn oversized_client_events_are_4301_and_the_connection_is_kept() {
    let server = client_events_server(&[]);
    let mut client = WsClient::pusher(server.addr);
    let mut other = WsClient::pusher(server.addr);
    client.subscribe_ok("private-big", None);
    other.subscribe_ok("private-big", None);
    // Payload over the default 10 KB.
    let big = "x".repeat(11 * 1024);
    client.send_json(&json!({"event": "client-big", "channel": "private-big", "data": big}));
    client.expect_pusher_error(Some(4301));
    // Event name over the default 200 characters.
    let name = format!("client-{}", "n".repeat(200));
    client.send_json(&json!({"event": name, "channel": "private-big", "data": {}}));
    client.expect_pusher_error(Some(4301));
    client.ping_pong();
    // Nothing reached the other subscriber; a normal event still does.
    client.send_json(
        &json!({"event": "client-small", "channel": "private-big", "data": {"ok": true}}),
    );
    let got = other.expect_event("client-small");
    assert_eq!(data_of(&got), json!({"ok": true}), "{got}");
}

#[test]
fn client_events_are_refused_when_the_app_does_not_enable_them() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    client.subscribe_ok("private-chat", None);
    client.send_json(&json!({"event": "client-typing", "channel": "private-chat", "data": {}}));
    client.expect_pusher_error(Some(4301));
    client.ping_pong();
}

#[test]
fn client_event_is_delivered_across_shards_and_not_echoed() {
    let server = client_events_server(&[]);
    let channel = "private-chat";
    let mut alice = WsClient::pusher(server.addr);
    let mut bob = pusher_on_other_shard(server.addr, alice.shard());
    assert_ne!(alice.shard(), bob.shard());
    alice.subscribe_ok(channel, None);
    bob.subscribe_ok(channel, None);
    alice.send_json(
        &json!({"event": "client-hello", "channel": channel, "data": {"text": "hi bob"}}),
    );
    let got = bob.expect_event("client-hello");
    assert_eq!(got["channel"], channel, "{got}");
    assert_eq!(data_of(&got), json!({"text": "hi bob"}), "{got}");
    assert!(
        got.get("user_id").is_none(),
        "no user_id on a private channel: {got}"
    );
    // Not echoed to the sender: the next frame Alice sees is her pong.
    alice.ping_pong();
    // The other direction.
    bob.send_json(
        &json!({"event": "client-reply", "channel": channel, "data": {"text": "hi alice"}}),
    );
    let got = alice.expect_event("client-reply");
    assert_eq!(data_of(&got), json!({"text": "hi alice"}), "{got}");
    bob.ping_pong();
}

#[test]
fn client_event_on_presence_carries_the_user_id() {
    let server = client_events_server(&[]);
    let channel = "presence-chat";
    let mut alice = WsClient::pusher(server.addr);
    let mut bob = pusher_on_other_shard(server.addr, alice.shard());
    alice.subscribe_ok(channel, Some(r#"{"user_id":"alice","user_info":{}}"#));
    bob.subscribe_ok(channel, Some(r#"{"user_id":"bob","user_info":{}}"#));
    alice.expect_event("pusher_internal:member_added");
    alice.send_json(&json!({"event": "client-wave", "channel": channel, "data": {}}));
    let got = bob.expect_event("client-wave");
    assert_eq!(got["user_id"], "alice", "{got}");
    alice.ping_pong();
}

#[test]
fn client_events_over_the_rate_limit_are_4301() {
    let server = client_events_server(&["--app-max-client-events-per-second", "2"]);
    let channel = "private-fast";
    let mut sender = WsClient::pusher(server.addr);
    let mut receiver = WsClient::pusher(server.addr);
    sender.subscribe_ok(channel, None);
    receiver.subscribe_ok(channel, None);
    // Ten events in one write: the server reads them at once.
    let mut batch = Vec::new();
    for i in 0..10 {
        let event = json!({"event": "client-tick", "channel": channel, "data": {"i": i}});
        batch.extend(sender.frame_bytes(true, op::TEXT, event.to_string().as_bytes()));
    }
    sender.send_raw(&batch).unwrap();
    sender.send_json(&json!({"event": "pusher:ping", "data": {}}));
    let mut refused = 0;
    loop {
        let frame = sender.next_json();
        match frame["event"].as_str().unwrap() {
            "pusher:error" => {
                assert_eq!(frame["data"]["code"], 4301, "{frame}");
                refused += 1;
            }
            "pusher:pong" => break,
            _ => panic!("unexpected frame for the sender: {frame}"),
        }
    }
    assert!(
        refused >= 1,
        "no event was refused over a limit of 2 per second"
    );
    let delivered = 10 - refused;
    assert!(
        delivered >= 2,
        "the first two events are within the limit ({refused} refused)"
    );
    // The receiver gets exactly the events that were not refused, in order.
    receiver.send_json(&json!({"event": "pusher:ping", "data": {}}));
    let mut got = Vec::new();
    loop {
        let frame = receiver.next_json();
        match frame["event"].as_str().unwrap() {
            "client-tick" => got.push(data_of(&frame)["i"].as_i64().unwrap()),
            "pusher:pong" => break,
            _ => panic!("unexpected frame for the receiver: {frame}"),
        }
    }
    // The receiver's pong may overtake events still in flight; wait for the rest.
    while got.len() < delivered {
        let frame = receiver.expect_event("client-tick");
        got.push(data_of(&frame)["i"].as_i64().unwrap());
    }
    assert_eq!(got.len(), delivered, "{got:?}");
    assert_eq!(&got[..2], &[0, 1], "{got:?}");
    sender.ping_pong();
}

// ------------------------------------------------------------------------------ sign-in

#[test]
fn signin_succeeds_with_a_valid_signature_and_a_bad_one_is_4009() {
    let server = Server::start(&[]);
    let mut client = WsClient::pusher(server.addr);
    let user_data = r#"{"id":"user-1","user_info":{"name":"Ann"}}"#;
    let auth = ringcast_core::pusher::auth::signin_token(
        APP_KEY,
        APP_SECRET,
        &client.socket_id,
        user_data,
    );
    client.send_json(
        &json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}),
    );
    let ok = client.expect_event("pusher:signin_success");
    assert_eq!(data_of(&ok)["user_data"], user_data, "{ok}");
    client.ping_pong();

    let mut bad = WsClient::pusher(server.addr);
    let auth = ringcast_core::pusher::auth::signin_token(APP_KEY, APP_SECRET, "1.2", user_data);
    bad.send_json(
        &json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}),
    );
    bad.expect_pusher_close(4009);
}

// ------------------------------------------------------------------------------ timeouts

#[test]
fn server_pings_after_the_activity_timeout_and_an_answer_keeps_the_connection() {
    let server = Server::start(&["--app-activity-timeout", "1"]);
    let mut client = WsClient::connect(server.addr, &pusher_path(APP_KEY, Some("7")));
    let established = client.expect_event("pusher:connection_established");
    assert_eq!(
        data_of(&established)["activity_timeout"],
        1,
        "{established}"
    );
    // Two rounds: the server pings, the client answers with pusher:pong; the connection stays
    // (the second ping proves it survived the first).
    for round in 0..2 {
        let ping = client.wait_for_event("pusher:ping", Duration::from_secs(15));
        assert_eq!(data_of(&ping), json!({}), "round {round}: {ping}");
        client.send_json(&json!({"event": "pusher:pong", "data": {}}));
    }
    // Still served: our own ping is answered (a further server ping may come first).
    client.send_json(&json!({"event": "pusher:ping", "data": {}}));
    client.wait_for_event("pusher:pong", Duration::from_secs(15));
}

#[test]
fn connection_without_authorization_is_closed_4009_after_the_timeout() {
    let server = Server::start(&[
        "--app-require-channel-authorization",
        "true",
        "--app-authorization-timeout-seconds",
        "1",
    ]);
    let mut idle = WsClient::pusher(server.addr);
    let error = idle.wait_for_event("pusher:error", Duration::from_secs(15));
    assert_eq!(error["data"]["code"], 4009, "{error}");
    idle.expect_close(4009);
    idle.send_close(4009, "");
    idle.expect_eof();
}

#[test]
fn authorized_connections_stay_and_public_subscriptions_do_not_count() {
    // 2 s rather than 1: the server counts whole seconds, so a 1 s timeout may cut a
    // connection a few milliseconds after it opened, before it could subscribe.
    let server = Server::start(&[
        "--app-require-channel-authorization",
        "true",
        "--app-authorization-timeout-seconds",
        "2",
    ]);
    let mut public_only = WsClient::pusher(server.addr);
    let mut private = WsClient::pusher(server.addr);
    let mut presence = WsClient::pusher(server.addr);
    let mut signed_in = WsClient::pusher(server.addr);
    public_only.subscribe_ok("public-only", None);
    private.subscribe_ok("private-ok", None);
    presence.subscribe_ok("presence-ok", Some(r#"{"user_id":"p1","user_info":{}}"#));
    let user_data = r#"{"id":"s1"}"#;
    let auth = ringcast_core::pusher::auth::signin_token(
        APP_KEY,
        APP_SECRET,
        &signed_in.socket_id,
        user_data,
    );
    signed_in.send_json(
        &json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}}),
    );
    signed_in.expect_event("pusher:signin_success");
    // A public subscription does not count as authorization.
    let error = public_only.wait_for_event("pusher:error", Duration::from_secs(15));
    assert_eq!(error["data"]["code"], 4009, "{error}");
    public_only.expect_close(4009);
    // The others stay; wait one more timeout period to be sure, by the server's own clock:
    // a fresh idle connection is cut only after its full timeout, and ours outlive it.
    let mut witness = WsClient::pusher(server.addr);
    witness.wait_for_event("pusher:error", Duration::from_secs(15));
    for client in [&mut private, &mut presence, &mut signed_in] {
        client.ping_pong();
    }
}
