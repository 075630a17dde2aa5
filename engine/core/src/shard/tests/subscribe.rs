//! Subscribing across shards: socket ids, interest acks, client events, cache channels, publish
//! exclusion and auth failures.

use super::*;

#[test]
fn socket_ids_name_their_shard() {
    let mut sim = Sim::new(3, |_| {});
    let (_, id) = sim.connect(2);
    assert!(id.split('.').next().unwrap().ends_with("02"), "{id}");
    assert_eq!(sim.shards[0].parse_socket_id(&id), Some((2, 1)));
    assert_eq!(sim.shards[0].parse_socket_id("1.2"), None);
}

#[test]
fn subscription_is_confirmed_after_every_shard_acked_interest() {
    let mut sim = Sim::new(2, |_| {});
    let (a, _) = sim.connect(0);
    sim.send(
        a,
        serde_json::json!({"event":"pusher:subscribe","data":{"channel":"news"}}),
    );
    let events = sim.events(a);
    assert_eq!(names(&events), ["pusher_internal:subscription_succeeded"]);
    // Shard 1 learned the interest before the confirmation, so its publishes reach shard 0.
    sim.shards[1].publish(
        0,
        "news",
        frame::encode_text(br#"{"event":"x","channel":"news","data":"1"}"#),
        None,
        sim.now_ms,
    );
    sim.settle();
    assert_eq!(names(&sim.events(a)), ["x"]);
}

#[test]
fn client_events_cross_shards_and_are_not_echoed() {
    let mut sim = Sim::new(2, |app| app.enable_client_messages = true);
    let (a, a_id) = sim.connect(0);
    let (b, b_id) = sim.connect(1);
    for (client, id) in [(a, &a_id), (b, &b_id)] {
        let token = auth::channel_auth_token(KEY, SECRET, id, "private-chat", None);
        sim.subscribe(client, "private-chat", Some(token), None);
        assert_eq!(
            names(&sim.events(client)),
            ["pusher_internal:subscription_succeeded"]
        );
    }
    sim.send(
        a,
        serde_json::json!({"event":"client-typing","channel":"private-chat","data":{"who":"a"}}),
    );
    assert!(sim.events(a).is_empty(), "never echoed to the sender");
    let got = sim.events(b);
    assert_eq!(names(&got), ["client-typing"]);
    assert_eq!(got[0]["data"]["who"], "a");
    assert!(got[0].get("user_id").is_none());
}

#[test]
fn client_events_refused_without_flag_on_public_and_over_rate() {
    let mut sim = Sim::new(1, |app| {
        app.enable_client_messages = true;
        app.max_client_events_per_second = 2;
    });
    let (a, a_id) = sim.connect(0);
    sim.send(
        a,
        serde_json::json!({"event":"client-x","channel":"public","data":{}}),
    );
    let refused = sim.events(a);
    assert_eq!(data_of(&refused[0])["code"], 4301);
    let token = auth::channel_auth_token(KEY, SECRET, &a_id, "private-a", None);
    sim.subscribe(a, "private-a", Some(token), None);
    sim.events(a);
    for _ in 0..2 {
        sim.send(
            a,
            serde_json::json!({"event":"client-x","channel":"private-a","data":{}}),
        );
    }
    assert!(sim.events(a).is_empty());
    sim.send(
        a,
        serde_json::json!({"event":"client-x","channel":"private-a","data":{}}),
    );
    assert_eq!(data_of(&sim.events(a)[0])["code"], 4301);
    sim.tick(1);
    sim.send(
        a,
        serde_json::json!({"event":"client-x","channel":"private-a","data":{}}),
    );
    assert!(sim.events(a).is_empty(), "a new second opens a new window");

    let mut sim = Sim::new(1, |_| {});
    let (b, b_id) = sim.connect(0);
    let token = auth::channel_auth_token(KEY, SECRET, &b_id, "private-a", None);
    sim.subscribe(b, "private-a", Some(token), None);
    sim.events(b);
    sim.send(
        b,
        serde_json::json!({"event":"client-x","channel":"private-a","data":{}}),
    );
    assert_eq!(data_of(&sim.events(b)[0])["code"], 4301, "app flag off");
}

#[test]
fn cache_channel_answers_miss_then_last_event() {
    let mut sim = Sim::new(2, |_| {});
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "cache-prices", None, None);
    assert_eq!(
        names(&sim.events(a)),
        [
            "pusher_internal:subscription_succeeded",
            "pusher:cache_miss"
        ]
    );
    let event = br#"{"event":"price","channel":"cache-prices","data":"42"}"#;
    sim.shards[1].publish(
        0,
        "cache-prices",
        frame::encode_text(event),
        None,
        sim.now_ms,
    );
    sim.settle();
    assert_eq!(names(&sim.events(a)), ["price"]);
    let (b, _) = sim.connect(1);
    sim.subscribe(b, "cache-prices", None, None);
    let got = sim.events(b);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded", "price"]
    );
}

#[test]
fn publish_excludes_the_given_socket() {
    let mut sim = Sim::new(2, |_| {});
    let (a, a_id) = sim.connect(0);
    let (b, _) = sim.connect(1);
    for c in [a, b] {
        sim.subscribe(c, "news", None, None);
        sim.events(c);
    }
    sim.shards[1].publish(
        0,
        "news",
        frame::encode_text(br#"{"event":"x","channel":"news","data":"1"}"#),
        Some(&a_id),
        sim.now_ms,
    );
    sim.settle();
    assert!(sim.events(a).is_empty());
    assert_eq!(names(&sim.events(b)), ["x"]);
}

#[test]
fn auth_failures_are_subscription_errors() {
    let mut sim = Sim::new(1, |_| {});
    let (a, a_id) = sim.connect(0);
    sim.subscribe(
        a,
        "private-x",
        Some(format!("{KEY}:{}", "0".repeat(64))),
        None,
    );
    let got = sim.events(a);
    assert_eq!(names(&got), ["pusher:subscription_error"]);
    assert_eq!(data_of(&got[0])["status"], 401);
    sim.subscribe(a, "private-x", None, None);
    assert_eq!(data_of(&sim.events(a)[0])["status"], 401);
    sim.subscribe(a, "bad#name", None, None);
    assert_eq!(data_of(&sim.events(a)[0])["type"], "InvalidChannel");
    // The same token for another socket is refused.
    let token = auth::channel_auth_token(KEY, SECRET, "1.1", "private-x", None);
    sim.subscribe(a, "private-x", Some(token), None);
    assert_eq!(names(&sim.events(a)), ["pusher:subscription_error"]);
    let token = auth::channel_auth_token(KEY, SECRET, &a_id, "private-encrypted-x", None);
    sim.subscribe(a, "private-encrypted-x", Some(token), None);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"]
    );
}
