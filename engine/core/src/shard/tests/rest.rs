//! The REST API over the shards: publish, channel queries, cache info, batches, refusals, terminate
//! and metrics.

use super::*;

#[test]
fn rest_publish_reaches_every_shard_and_honours_socket_exclusion() {
    let mut sim = Sim::new(2, |_| {});
    let (a, a_id) = sim.connect(0);
    let (b, _) = sim.connect(1);
    for c in [a, b] {
        sim.subscribe(c, "news", None, None);
        sim.events(c);
    }
    let body = r#"{"name":"headline","channels":["news"],"data":"{\"t\":1}"}"#;
    let (status, reply) = sim.rest(1, "POST", "/apps/app-id/events", &[], body);
    assert_eq!((status, reply), (200, serde_json::json!({})));
    for c in [a, b] {
        let got = sim.events(c);
        assert_eq!(names(&got), ["headline"]);
        assert_eq!(
            got[0]["data"], "{\"t\":1}",
            "data relayed as the same string"
        );
    }
    let deliveries: u64 = sim.shards.iter().map(|s| s.stats().deliveries).sum();
    assert_eq!(deliveries, 2, "one delivery per subscriber, on each shard");
    let body = format!(r#"{{"name":"x","channel":"news","data":"d","socket_id":"{a_id}"}}"#);
    sim.rest(0, "POST", "/apps/app-id/events", &[], &body);
    assert!(sim.events(a).is_empty(), "excluded socket");
    assert_eq!(names(&sim.events(b)), ["x"]);
}

#[test]
fn rest_channel_queries_count_over_all_shards() {
    let mut sim = Sim::new(2, |_| {});
    let (a, a_id) = sim.connect(0);
    let (b, b_id) = sim.connect(1);
    let (c, c_id) = sim.connect(1);
    sim.join_presence(a, &a_id, "presence-room", "alice");
    sim.join_presence(b, &b_id, "presence-room", "bob");
    sim.join_presence(c, &c_id, "presence-room", "bob");
    sim.subscribe(a, "news", None, None);

    let (status, reply) = sim.rest(0, "GET", "/apps/app-id/channels", &[], "");
    assert_eq!(status, 200);
    assert_eq!(
        reply,
        serde_json::json!({"channels": {"news": {}, "presence-room": {}}})
    );

    let (_, reply) = sim.rest(
        1,
        "GET",
        "/apps/app-id/channels",
        &[("filter_by_prefix", "presence-"), ("info", "user_count")],
        "",
    );
    assert_eq!(
        reply,
        serde_json::json!({"channels": {"presence-room": {"user_count": 2}}})
    );

    let (status, _) = sim.rest(
        1,
        "GET",
        "/apps/app-id/channels",
        &[("info", "user_count")],
        "",
    );
    assert_eq!(status, 400, "user_count needs the presence- prefix");

    let (_, reply) = sim.rest(
        0,
        "GET",
        "/apps/app-id/channels/presence-room",
        &[("info", "user_count,subscription_count")],
        "",
    );
    assert_eq!(
        reply,
        serde_json::json!({"occupied": true, "user_count": 2, "subscription_count": 3})
    );

    let (_, reply) = sim.rest(1, "GET", "/apps/app-id/channels/empty", &[], "");
    assert_eq!(reply, serde_json::json!({"occupied": false}));

    let (_, reply) = sim.rest(
        1,
        "GET",
        "/apps/app-id/channels/presence-room/users",
        &[],
        "",
    );
    let mut ids: Vec<String> = reply["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, ["alice", "bob"]);
    let (status, _) = sim.rest(1, "GET", "/apps/app-id/channels/news/users", &[], "");
    assert_eq!(status, 400);

    let body = r#"{"name":"x","channels":["presence-room","news"],"data":"d","info":"user_count,subscription_count"}"#;
    let (_, reply) = sim.rest(1, "POST", "/apps/app-id/events", &[], body);
    assert_eq!(
        reply,
        serde_json::json!({"channels": {
            "news": {"subscription_count": 1},
            "presence-room": {"user_count": 2, "subscription_count": 3}
        }})
    );
}

#[test]
fn rest_cache_channel_info_and_fill() {
    let mut sim = Sim::new(2, |_| {});
    let body = r#"{"name":"price","channel":"cache-ticker","data":"42"}"#;
    sim.rest(0, "POST", "/apps/app-id/events", &[], body);
    let (_, reply) = sim.rest(
        1,
        "GET",
        "/apps/app-id/channels/cache-ticker",
        &[("info", "cache")],
        "",
    );
    assert_eq!(reply["occupied"], false);
    assert_eq!(reply["cache"]["data"], "42");
    assert!(reply["cache"]["ttl"].as_u64().unwrap() > 0);
    let (a, _) = sim.connect(1);
    sim.subscribe(a, "cache-ticker", None, None);
    let got = sim.events(a);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded", "price"]
    );
}

#[test]
fn rest_batch_is_validated_whole_before_sending() {
    let mut sim = Sim::new(2, |_| {});
    let (a, _) = sim.connect(1);
    sim.subscribe(a, "news", None, None);
    sim.events(a);
    let bad = r#"{"batch":[{"name":"ok","channel":"news","data":"1"},{"name":"bad","channel":"bad#name","data":"2"}]}"#;
    let (status, reply) = sim.rest(0, "POST", "/apps/app-id/batch_events", &[], bad);
    assert_eq!(status, 400, "{reply}");
    assert!(
        sim.events(a).is_empty(),
        "nothing sent from a refused batch"
    );
    let good = r#"{"batch":[{"name":"one","channel":"news","data":"1"},{"name":"two","channel":"news","data":"2","info":"subscription_count"}]}"#;
    let (status, reply) = sim.rest(0, "POST", "/apps/app-id/batch_events", &[], good);
    assert_eq!(status, 200);
    assert_eq!(
        reply,
        serde_json::json!({"batch": [{}, {"subscription_count": 1}]})
    );
    assert_eq!(names(&sim.events(a)), ["one", "two"]);
}

#[test]
fn rest_refusals_have_their_status() {
    let mut sim = Sim::new(1, |app| {
        app.max_event_payload_kb = 1;
        app.max_backend_events_per_second = 2;
    });
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    sim.events(a);
    let big = format!(
        r#"{{"name":"x","channel":"news","data":"{}"}}"#,
        "y".repeat(2000)
    );
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], &big).0, 413);
    assert!(sim.events(a).is_empty());
    assert_eq!(sim.rest(0, "POST", "/apps/nope/events", &[], "{}").0, 404);
    assert_eq!(
        sim.rest(0, "POST", "/apps/app-id/events", &[], "{not json")
            .0,
        400
    );
    // Bad signature, stale timestamp, wrong body_md5.
    let body = r#"{"name":"x","channel":"news","data":"1"}"#;
    let q = crate::pusher::rest::sign_query(
        "POST",
        "/apps/app-id/events",
        &[],
        body.as_bytes(),
        KEY,
        "wrong",
        UNIX_NOW,
    );
    let req = format!(
        "POST /apps/app-id/events?{q} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(sim.raw_http(0, &req).0, 401);
    let q = crate::pusher::rest::sign_query(
        "POST",
        "/apps/app-id/events",
        &[],
        body.as_bytes(),
        KEY,
        SECRET,
        UNIX_NOW - 601,
    );
    let req = format!(
        "POST /apps/app-id/events?{q} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(sim.raw_http(0, &req).0, 401);
    let q = crate::pusher::rest::sign_query(
        "POST",
        "/apps/app-id/events",
        &[],
        br#"{"other":1}"#,
        KEY,
        SECRET,
        UNIX_NOW,
    );
    let req = format!(
        "POST /apps/app-id/events?{q} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(sim.raw_http(0, &req).0, 401);
    assert!(sim.events(a).is_empty());
    // Rate limit: two per second.
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 200);
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 200);
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 429);
}

#[test]
fn rest_terminate_and_server_to_user() {
    let mut sim = Sim::new(2, |_| {});
    let (u, u_id) = sim.connect(1);
    let data = r#"{"id":"u7"}"#;
    let token = auth::signin_token(KEY, SECRET, &u_id, data);
    sim.send(
        u,
        serde_json::json!({"event":"pusher:signin","data":{"auth":token,"user_data":data}}),
    );
    sim.events(u);
    let body = r##"{"name":"note","channel":"#server-to-user-u7","data":"hi"}"##;
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 200);
    let got = sim.events(u);
    assert_eq!(names(&got), ["note"]);
    assert_eq!(got[0]["channel"], "#server-to-user-u7");
    let (status, _) = sim.rest(
        0,
        "POST",
        "/apps/app-id/users/u7/terminate_connections",
        &[],
        "{}",
    );
    assert_eq!(status, 200);
    // The Python SDK's path (no /apps/{id}: the signed key names the app) works too.
    let (status, _) = sim.rest(1, "POST", "/users/u7/terminate_connections", &[], "{}");
    assert_eq!(status, 200);
    let out = sim.output(u);
    assert!(matches!(out.last(), Some(Out::Close(4009))), "{out:?}");
}

#[test]
fn metrics_gather_every_shard() {
    let mut sim = Sim::new(2, |_| {});
    sim.connect(0);
    sim.connect(1);
    let (status, _) = {
        let key = sim.shards[1].handle_accept(sim.now_ms);
        sim.shards[1].handle_bytes(key, b"GET /metrics HTTP/1.1\r\n\r\n", sim.now_ms);
        sim.settle();
        let text = String::from_utf8(sim.raw_output(Client { shard: 1, key })).unwrap();
        assert!(
            text.contains("ringcast_connections{shard=\"0\",app=\"app-id\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ringcast_connections{shard=\"1\",app=\"app-id\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ringcast_handshake_seconds_count{shard=\"0\"} 1"),
            "{text}"
        );
        (text[9..12].parse::<u16>().unwrap(), ())
    };
    assert_eq!(status, 200);
}
