//! Subscribing across shards: socket ids, interest acks, client events, cache channels, publish
//! exclusion and auth failures.

use super::*;
use crate::dialect::Published;
use crate::shard::owner::OwnerState;

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
        Published::pusher_only(frame::encode_text(
            br#"{"event":"x","channel":"news","data":"1"}"#,
        )),
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
        Published::pusher_only(frame::encode_text(event)),
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
        Published::pusher_only(frame::encode_text(
            br#"{"event":"x","channel":"news","data":"1"}"#,
        )),
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

#[test]
fn a_shard_at_its_most_channels_refuses_a_new_one_but_not_a_known_one() {
    let mut sim = Sim::new(1, |_| {});
    sim.shards[0].registry.set_channels_max(2);
    let (a, _) = sim.connect(0);
    let (b, _) = sim.connect(0);
    for channel in ["one", "two"] {
        sim.subscribe(a, channel, None, None);
    }
    assert_eq!(sim.events(a).len(), 2);
    sim.subscribe(b, "three", None, None);
    let refused = sim.events(b);
    assert_eq!(names(&refused), ["pusher:subscription_error"]);
    assert_eq!(data_of(&refused[0])["status"], 4100);
    assert_eq!(sim.shards[0].stats().channels_refused, 1);
    // A channel the shard holds already costs nothing more: joining it is fine.
    sim.subscribe(b, "two", None, None);
    assert_eq!(
        names(&sim.events(b)),
        ["pusher_internal:subscription_succeeded"]
    );
    // Once one is gone there is room again.
    sim.send(
        a,
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "one"}}),
    );
    sim.subscribe(b, "three", None, None);
    assert_eq!(
        names(&sim.events(b)),
        ["pusher_internal:subscription_succeeded"]
    );
}

#[test]
fn cached_events_past_the_shards_bound_in_bytes_are_not_kept() {
    let mut sim = Sim::new(1, |_| {});
    sim.shards[0].owner = OwnerState::with_cache_bytes_max(1, 250);
    let event = |channel: &str| {
        let json = format!(
            r#"{{"event":"e","channel":"{channel}","data":"{}"}}"#,
            "x".repeat(60)
        );
        frame::encode_text(json.as_bytes())
    };
    for channel in ["cache-a", "cache-b", "cache-c"] {
        sim.shards[0].publish(
            0,
            channel,
            Published::pusher_only(event(channel)),
            None,
            sim.now_ms,
        );
    }
    sim.settle();
    assert_eq!(
        sim.shards[0].stats().cache_events_refused,
        1,
        "the third does not fit"
    );
    let (c, _) = sim.connect(0);
    sim.subscribe(c, "cache-a", None, None);
    assert_eq!(
        names(&sim.events(c)),
        ["pusher_internal:subscription_succeeded", "e"]
    );
    sim.subscribe(c, "cache-c", None, None);
    assert_eq!(
        names(&sim.events(c)),
        [
            "pusher_internal:subscription_succeeded",
            "pusher:cache_miss"
        ]
    );
    // Replacing a kept event fits in the space it frees.
    sim.shards[0].publish(
        0,
        "cache-a",
        Published::pusher_only(event("cache-a")),
        None,
        sim.now_ms,
    );
    sim.settle();
    assert_eq!(sim.shards[0].stats().cache_events_refused, 1);
}
