//! Several nodes through the bridge link: announcements and their acks, publishes up and down,
//! presence, cache, user commands and auth offload.

use super::*;
use crate::dialect::Published;

#[test]
fn a_linked_first_subscriber_waits_for_the_bridge() {
    let mut sim = Sim::new_with(2, true, |_| {});
    sim.shards[0].handle_link_up();
    let hello = sim.link_output(0);
    assert!(matches!(
        hello[0],
        LinkMessage::Hello {
            version: link::VERSION,
            shard: 0,
            shard_count: 2,
            cluster: true
        }
    ));
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    assert!(
        sim.events(a).is_empty(),
        "not confirmed before the bridge answers"
    );
    let seq = sim.announced_seq(0, "news");
    // An answer to an older announcement changes nothing.
    sim.confirm(0, "news", seq.wrapping_sub(1));
    assert!(sim.events(a).is_empty());
    sim.confirm(0, "news", seq);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"]
    );
    // A second local subscriber does not announce again; the last one leaving withdraws.
    let (b, _) = sim.connect(0);
    sim.subscribe(b, "news", None, None);
    assert_eq!(
        names(&sim.events(b)),
        ["pusher_internal:subscription_succeeded"]
    );
    assert!(sim.link_output(0).is_empty());
    for c in [a, b] {
        sim.send(
            c,
            serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}}),
        );
    }
    assert_eq!(
        sim.link_output(0),
        [LinkMessage::Unsubscribe {
            app_id: "app-id".into(),
            channel: "news".into()
        }]
    );
}

#[test]
fn without_a_link_subscriptions_go_on_and_the_link_resyncs_when_it_comes() {
    let mut sim = Sim::new_with(1, true, |_| {});
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"],
        "link down: no wait"
    );
    assert!(
        sim.link_output(0).is_empty(),
        "nothing queued while the link is down"
    );
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    assert!(matches!(out[0], LinkMessage::Hello { .. }));
    assert!(matches!(out[1], LinkMessage::WebhookConfig(_)));
    assert!(
        matches!(&out[2], LinkMessage::Subscribe { channel, .. } if channel == "news"),
        "{out:?}"
    );
    // The link goes down while a subscription waits for the bridge: it goes on at once.
    let (b, _) = sim.connect(0);
    sim.subscribe(b, "sports", None, None);
    assert!(sim.events(b).is_empty());
    sim.shards[0].handle_link_down();
    assert_eq!(
        names(&sim.events(b)),
        ["pusher_internal:subscription_succeeded"]
    );
}

#[test]
fn local_publishes_go_up_and_remote_events_come_down_with_exclusion() {
    let mut sim = Sim::new_with(2, true, |_| {});
    for shard in 0..2 {
        sim.shards[shard].handle_link_up();
        sim.link_output(shard);
    }
    let (a, a_id) = sim.connect(0);
    let (b, _) = sim.connect(1);
    for (c, shard) in [(a, 0), (b, 1)] {
        sim.subscribe(c, "news", None, None);
        let seq = sim.announced_seq(shard, "news");
        sim.confirm(shard, "news", seq);
        sim.events(c);
    }
    // REST publish naming a socket of another node: delivered here, forwarded with the id.
    let body = r#"{"name":"n","channel":"news","data":"d","socket_id":"99.1"}"#;
    assert_eq!(sim.rest(1, "POST", "/apps/app-id/events", &[], body).0, 200);
    assert_eq!(names(&sim.events(a)), ["n"]);
    let up = sim.link_output(1);
    let [LinkMessage::Publish(event)] = up.as_slice() else {
        panic!("{up:?}")
    };
    assert_eq!(
        (
            event.app_id.as_str(),
            event.channel.as_str(),
            event.except_socket_id.as_str()
        ),
        ("app-id", "news", "99.1")
    );
    assert!(
        sim.link_output(0).is_empty(),
        "only the receiving shard forwards"
    );
    sim.events(b);
    // An event from another node excluding our socket a: b gets it, a does not, and it is
    // not sent back up.
    let frame = frame::encode_text(br#"{"event":"remote","channel":"news","data":"r"}"#);
    for shard in 0..2 {
        sim.link_in(
            shard,
            LinkMessage::Deliver(ChannelEvent {
                app_id: "app-id".into(),
                channel: "news".into(),
                except_socket_id: a_id.clone(),
                frame: frame.clone(),
                part: None,
            }),
        );
    }
    assert!(sim.events(a).is_empty());
    assert_eq!(names(&sim.events(b)), ["remote"]);
    assert!(sim.link_output(0).is_empty() && sim.link_output(1).is_empty());
    assert_eq!(sim.shards[1].stats().link_events_in, 1);
}

#[test]
fn member_events_are_not_publishes_and_link_down_publishes_are_counted() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    sim.linked_presence_join("u1");
    let (_, _, _) = sim.linked_presence_join("u2");
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    assert!(
        out.iter().all(|m| !matches!(m, LinkMessage::Publish(_))),
        "member events are not publishes: {out:?}"
    );
    sim.shards[0].handle_link_down();
    let body = r#"{"name":"n","channel":"presence-room","data":"d"}"#;
    assert_eq!(sim.rest(0, "POST", "/apps/app-id/events", &[], body).0, 200);
    assert!(sim.link_output(0).is_empty());
    assert_eq!(sim.shards[0].stats().link_publishes_dropped, 1);
}

#[test]
fn an_unanswered_announcement_times_out_and_the_subscriber_goes_on() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    assert!(sim.link_output(0).len() == 1);
    sim.tick(1);
    assert!(sim.events(a).is_empty(), "still waiting after 1 s");
    sim.tick(2);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"],
        "goes on without the bridge after the timeout"
    );
}

#[test]
fn linked_presence_asks_the_cluster_for_members_and_reports_first_join_and_last_leave() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    let hello = sim.link_output(0);
    assert_eq!(hello.last(), Some(&LinkMessage::ResyncDone), "{hello:?}");

    let (a, _, query) = sim.linked_presence_join("alice");
    assert!(
        sim.events(a).is_empty(),
        "no answer before the cluster's member list"
    );
    // Bob is a member on another node; the snapshot may predate alice's own join.
    sim.link_in(
        0,
        LinkMessage::MembersSnapshot(
            room(),
            query,
            vec![link_member("bob", "{\"name\":\"bob\"}")],
        ),
    );
    let got = sim.events(a);
    assert_eq!(names(&got), ["pusher_internal:subscription_succeeded"]);
    let presence = &data_of(&got[0])["presence"];
    assert_eq!(presence["count"], 2);
    assert_eq!(presence["hash"]["bob"]["name"], "bob");
    assert_eq!(presence["hash"]["alice"]["name"], "alice");

    // The node's first join of alice went to the bridge, not to local subscribers.
    let (b, _, query) = sim.linked_presence_join("carol");
    let up: Vec<LinkMessage> = Vec::new();
    let _ = up;
    sim.link_in(0, LinkMessage::MembersSnapshot(room(), query, Vec::new()));
    sim.events(b);
    assert!(
        sim.events(a).is_empty(),
        "member_added comes from the cluster, not the owner"
    );

    // The cluster's events reach local subscribers, never the joining user's own connections.
    sim.link_in(
        0,
        LinkMessage::MemberAdded(room(), link_member("carol", "{\"name\":\"carol\"}")),
    );
    assert_eq!(names(&sim.events(a)), ["pusher_internal:member_added"]);
    assert!(sim.events(b).is_empty(), "carol's own connection");
    sim.link_in(0, LinkMessage::MemberRemoved(room(), "bob".into()));
    assert_eq!(names(&sim.events(a)), ["pusher_internal:member_removed"]);
    assert_eq!(names(&sim.events(b)), ["pusher_internal:member_removed"]);

    // Carol's last connection leaves: reported to the bridge, nothing delivered locally.
    sim.send(
        b,
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}),
    );
    let out = sim.link_output(0);
    assert!(
        out.contains(&LinkMessage::MemberLeave(room(), "carol".into())),
        "{out:?}"
    );
    assert!(sim.events(a).is_empty());
}

#[test]
fn linked_presence_falls_back_to_the_node_when_the_bridge_is_silent_or_gone() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let (a, _, _) = sim.linked_presence_join("alice");
    assert!(sim.events(a).is_empty());
    sim.tick(3);
    let got = sim.events(a);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded"],
        "answered after the timeout"
    );
    assert_eq!(data_of(&got[0])["presence"]["count"], 1);

    let (b, _, _) = sim.linked_presence_join("bob");
    sim.shards[0].handle_link_down();
    sim.settle();
    let got = sim.events(b);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded"],
        "answered when the link went"
    );
    assert_eq!(data_of(&got[0])["presence"]["count"], 2);
    // Bob's join was handed to the bridge before the link went: the relink below re-sends it.
    assert!(sim.events(a).is_empty());
    // Alone now: a join is answered and announced by the node itself.
    let (d, d_id) = sim.connect(0);
    let got = sim.join_presence(d, &d_id, "presence-room", "dave");
    assert_eq!(data_of(&got[0])["presence"]["count"], 3);
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:member_added"],
        "alone again: local events"
    );

    // Relink: the node's members are re-sent for the bridge to reconcile.
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    let resync = out
        .iter()
        .find_map(|m| match m {
            LinkMessage::MembersResync(channel, members) if *channel == room() => Some(members),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{out:?}"));
    let mut users: Vec<&str> = resync.iter().map(|m| m.user_id.as_str()).collect();
    users.sort();
    assert_eq!(users, ["alice", "bob", "dave"]);
    assert_eq!(out.last(), Some(&LinkMessage::ResyncDone));
}

#[test]
fn linked_users_query_answers_with_the_cluster_members() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let (a, _, query) = sim.linked_presence_join("alice");
    sim.link_in(0, LinkMessage::MembersSnapshot(room(), query, Vec::new()));
    sim.events(a);
    sim.link_output(0);

    for s in &mut sim.shards {
        s.set_unix_time(UNIX_NOW);
    }
    let path = "/apps/app-id/channels/presence-room/users";
    let signed = crate::pusher::rest::sign_query("GET", path, &[], b"", KEY, SECRET, UNIX_NOW);
    let key = sim.shards[0].handle_accept(sim.now_ms);
    let request = format!("GET {path}?{signed} HTTP/1.1\r\nHost: x\r\n\r\n");
    sim.shards[0].handle_bytes(key, request.as_bytes(), sim.now_ms);
    sim.settle();
    let http = Client { shard: 0, key };
    assert!(
        sim.raw_output(http).is_empty(),
        "waits for the cluster's members"
    );
    let out = sim.link_output(0);
    let query = out
        .iter()
        .find_map(|m| match m {
            LinkMessage::MembersQuery(channel, query) if *channel == room() => Some(*query),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{out:?}"));
    let members = vec![link_member("alice", "{}"), link_member("bob", "{}")];
    sim.link_in(0, LinkMessage::MembersSnapshot(room(), query, members));
    let text = String::from_utf8(sim.raw_output(http)).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body: Value = serde_json::from_str(&text[text.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"users": [{"id": "alice"}, {"id": "bob"}]})
    );
}

#[test]
fn several_nodes_take_the_cache_from_the_cluster_and_send_user_commands_on() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let last = frame::encode_text(br#"{"event":"price","channel":"cache-p","data":"7"}"#);
    // The node's own cache has an older event; the cluster's answer wins.
    sim.shards[0].publish(
        0,
        "cache-p",
        Published::pusher_only(frame::encode_text(
            br#"{"event":"price","channel":"cache-p","data":"1"}"#,
        )),
        None,
        sim.now_ms,
    );
    sim.settle();
    sim.link_output(0);
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "cache-p", None, None);
    let seq = sim
        .link_output(0)
        .into_iter()
        .find_map(|m| match m {
            LinkMessage::Subscribe { seq, .. } => Some(seq),
            _ => None,
        })
        .unwrap();
    sim.confirm(0, "cache-p", seq);
    assert!(
        sim.events(a).is_empty(),
        "waits for the cluster's last event"
    );
    let out = sim.link_output(0);
    let [LinkMessage::CacheQuery {
        channel, query_id, ..
    }] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(channel, "cache-p");
    sim.link_in(
        0,
        LinkMessage::CacheAnswer {
            query_id: *query_id,
            frame: last,
        },
    );
    let got = sim.events(a);
    assert_eq!(
        names(&got),
        ["pusher_internal:subscription_succeeded", "price"]
    );
    assert_eq!(got[1]["data"], "7");
    // Nothing in the cluster: a miss. And a link lost while waiting: the node's own cache.
    let (b, _) = sim.connect(0);
    sim.subscribe(b, "cache-q", None, None);
    let out = sim.link_output(0);
    let seq = out
        .iter()
        .find_map(|m| match m {
            LinkMessage::Subscribe { seq, .. } => Some(*seq),
            _ => None,
        })
        .unwrap();
    sim.confirm(0, "cache-q", seq);
    let query_id = sim
        .link_output(0)
        .into_iter()
        .find_map(|m| match m {
            LinkMessage::CacheQuery { query_id, .. } => Some(query_id),
            _ => None,
        })
        .unwrap();
    sim.link_in(
        0,
        LinkMessage::CacheAnswer {
            query_id,
            frame: bytes::Bytes::new(),
        },
    );
    assert_eq!(
        names(&sim.events(b)),
        [
            "pusher_internal:subscription_succeeded",
            "pusher:cache_miss"
        ]
    );
    let (c, _) = sim.connect(0);
    sim.subscribe(c, "cache-p", None, None);
    assert!(sim.events(c).is_empty());
    sim.shards[0].handle_link_down();
    sim.settle();
    let got = sim.events(c);
    assert_eq!(got[1]["data"], "1", "alone: the node's own last event");

    // Server-to-user and terminate go on to the other nodes.
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    sim.shards[0].terminate_user(0, "tom", sim.now_ms);
    sim.shards[0].publish_to_user(0, "ann", frame::encode_text(b"{}"), sim.now_ms);
    let out = sim.link_output(0);
    assert!(
        matches!(&out[..], [
            LinkMessage::UserCommand { user_id: tom, action: link::UserAction::Terminate, .. },
            LinkMessage::UserCommand { user_id: ann, action: link::UserAction::Deliver(_), .. },
        ] if tom == "tom" && ann == "ann"),
        "{out:?}"
    );
}

#[test]
fn auth_offload_asks_the_endpoint_and_checks_its_answer() {
    use crate::link::AuthOutcome;
    let mut sim = Sim::new_mode(1, true, false, |app| {
        app.channel_authorization_url = Some("http://127.0.0.1:9/auth".into());
    });
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let (a, a_id) = sim.connect(0);
    let ask = |sim: &mut Sim, channel: &str| -> u32 {
        sim.subscribe(a, channel, None, None);
        let out = sim.link_output(0);
        match &out[..] {
            [LinkMessage::AuthRequest(request)] => {
                assert_eq!(request.channel, channel);
                assert_eq!(request.socket_id, a_id);
                request.request_id
            }
            other => panic!("{other:?}"),
        }
    };
    // Granted with a good signature: subscribed as if the client had sent it.
    let id = ask(&mut sim, "private-ok");
    assert!(sim.events(a).is_empty(), "waits for the endpoint");
    let auth = auth::channel_auth_token(KEY, SECRET, &a_id, "private-ok", None);
    let granted = AuthOutcome::Granted {
        auth,
        channel_data: String::new(),
    };
    sim.link_in(
        0,
        LinkMessage::AuthResponse {
            request_id: id,
            outcome: granted,
        },
    );
    assert_eq!(
        names(&sim.events(a)),
        ["pusher_internal:subscription_succeeded"]
    );
    // A forged answer fails like a forged client auth; a refusal keeps its status.
    let id = ask(&mut sim, "private-forged");
    let forged = AuthOutcome::Granted {
        auth: format!("{KEY}:{}", "0".repeat(64)),
        channel_data: String::new(),
    };
    sim.link_in(
        0,
        LinkMessage::AuthResponse {
            request_id: id,
            outcome: forged,
        },
    );
    let got = sim.events(a);
    assert_eq!(names(&got), ["pusher:subscription_error"]);
    assert_eq!(data_of(&got[0])["status"], 401);
    let id = ask(&mut sim, "private-denied");
    let refused = AuthOutcome::Refused {
        status: 403,
        reason: "authorization endpoint answered 403".into(),
    };
    sim.link_in(
        0,
        LinkMessage::AuthResponse {
            request_id: id,
            outcome: refused,
        },
    );
    assert_eq!(data_of(&sim.events(a)[0])["status"], 403);
    // Unsubscribed while waiting: the late answer changes nothing.
    let id = ask(&mut sim, "private-left");
    sim.send(
        a,
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "private-left"}}),
    );
    let auth = auth::channel_auth_token(KEY, SECRET, &a_id, "private-left", None);
    let late = AuthOutcome::Granted {
        auth,
        channel_data: String::new(),
    };
    sim.link_in(
        0,
        LinkMessage::AuthResponse {
            request_id: id,
            outcome: late,
        },
    );
    assert!(sim.events(a).is_empty());
    // The bridge goes away while one waits: 503 at once; without it, 401 as before.
    ask(&mut sim, "private-orphan");
    sim.shards[0].handle_link_down();
    sim.settle();
    let got = sim.events(a);
    assert_eq!(data_of(&got[0])["status"], 503);
    sim.subscribe(a, "private-alone", None, None);
    assert_eq!(data_of(&sim.events(a)[0])["status"], 401);
}

#[test]
fn one_connection_cannot_fill_the_shards_table_of_offloaded_authorizations() {
    use crate::limits::AUTHS_PER_CONNECTION_MAX;
    let mut sim = Sim::new_mode(1, true, false, |app| {
        app.channel_authorization_url = Some("http://127.0.0.1:9/auth".into());
    });
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    let (greedy, _) = sim.connect(0);
    // The endpoint never answers; the client keeps subscribing without auth.
    for n in 0..AUTHS_PER_CONNECTION_MAX + 5 {
        sim.subscribe(greedy, &format!("private-{n}"), None, None);
    }
    let asked = sim
        .link_output(0)
        .iter()
        .filter(|m| matches!(m, LinkMessage::AuthRequest(_)))
        .count();
    assert_eq!(
        asked, AUTHS_PER_CONNECTION_MAX,
        "at most this many wait per connection"
    );
    let refused = sim.events(greedy);
    assert_eq!(
        refused.len(),
        5,
        "each one past the bound is answered at once"
    );
    for event in &refused {
        assert_eq!(data_of(event)["status"], 429, "{event:?}");
    }
    // Everyone else's subscriptions are still offloaded.
    let (other, _) = sim.connect(0);
    sim.subscribe(other, "private-mine", None, None);
    let out = sim.link_output(0);
    assert!(
        matches!(&out[..], [LinkMessage::AuthRequest(r)] if r.channel == "private-mine"),
        "{out:?}"
    );
}

#[test]
fn a_full_link_queue_costs_a_relink_and_the_resync_restates_the_member() {
    let mut sim = Sim::new_with(1, true, |_| {});
    sim.shards[0].handle_link_up();
    sim.link_output(0);
    // The bridge stops reading: the shard's queue for it fills with publishes (bounded).
    let frame = frame::encode_text(br#"{"event":"e","channel":"news","data":"x"}"#);
    for _ in 0..crate::limits::LINK_QUEUE_MAX + 10 {
        sim.shards[0].publish(
            0,
            "news",
            Published::pusher_only(frame.clone()),
            None,
            sim.now_ms,
        );
    }
    assert!(
        sim.shards[0].stats().link_publishes_dropped >= 10,
        "publishes are best effort"
    );
    assert!(
        !sim.shards[0].take_link_relink(),
        "a publish is no reason to relink"
    );
    // A presence join now: the cluster must learn it, and the queue has no room.
    let (c, id) = sim.connect(0);
    let data = r#"{"user_id":"ada","user_info":{"name":"Ada"}}"#;
    let token = auth::channel_auth_token(KEY, SECRET, &id, "presence-room", Some(data));
    sim.subscribe(c, "presence-room", Some(token), Some(data));
    assert!(
        sim.shards[0].take_link_relink(),
        "the shell is told to end the link"
    );
    assert!(!sim.shards[0].take_link_relink(), "once");
    assert_eq!(sim.shards[0].stats().link_relinks, 1);
    // The shell ends the link: the node goes on alone (the join is answered from its own
    // members), then links again and restates everything, the new member included.
    sim.shards[0].handle_link_down();
    sim.settle();
    let events = sim.events(c);
    assert!(
        names(&events).contains(&"pusher_internal:subscription_succeeded".to_owned()),
        "{events:?}"
    );
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    let restated = out.iter().any(|m| {
        matches!(m, LinkMessage::MembersResync(channel, members)
            if *channel == room() && members.iter().any(|member| member.user_id == "ada"))
    });
    assert!(restated, "{out:?}");
    assert!(out.iter().any(
        |m| matches!(m, LinkMessage::Subscribe { channel, .. } if channel == "presence-room")
    ));
}
