//! Presence across shards (users, not connections; member limits) and sign-in with watchlists and
//! server-to-user events.

use super::*;

#[test]
fn presence_across_shards_counts_users_not_connections() {
    let mut sim = Sim::new(2, |_| {});
    let (alice, alice_id) = sim.connect(0);
    let (bob, bob_id) = sim.connect(1);
    let (bob_tab2, bob_tab2_id) = sim.connect(0);
    let channel = "presence-room";

    let events = sim.join_presence(alice, &alice_id, channel, "alice");
    let data = data_of(&events[0]);
    assert_eq!(data["presence"]["count"], 1);

    let events = sim.join_presence(bob, &bob_id, channel, "bob");
    let data = data_of(&events[0]);
    assert_eq!(data["presence"]["count"], 2);
    assert_eq!(data["presence"]["hash"]["alice"]["name"], "alice");
    let alice_saw = sim.events(alice);
    assert_eq!(names(&alice_saw), ["pusher_internal:member_added"]);
    assert_eq!(data_of(&alice_saw[0])["user_id"], "bob");

    // Bob's second tab (other shard): no member_added for anyone.
    let events = sim.join_presence(bob_tab2, &bob_tab2_id, channel, "bob");
    assert_eq!(data_of(&events[0])["presence"]["count"], 2);
    assert!(sim.events(alice).is_empty());
    assert!(sim.events(bob).is_empty());

    // Closing one of Bob's tabs is not a leave; closing the last one is, exactly once.
    sim.shards[1].handle_closed(bob.key);
    sim.settle();
    assert!(sim.events(alice).is_empty());
    sim.send(
        bob_tab2,
        serde_json::json!({"event":"pusher:unsubscribe","data":{"channel":channel}}),
    );
    let alice_saw = sim.events(alice);
    assert_eq!(names(&alice_saw), ["pusher_internal:member_removed"]);
    assert_eq!(data_of(&alice_saw[0])["user_id"], "bob");
}

#[test]
fn presence_member_limit_refuses_new_users_only() {
    let mut sim = Sim::new(2, |app| app.max_presence_members_per_channel = 1);
    let (a, a_id) = sim.connect(0);
    let (a2, a2_id) = sim.connect(1);
    let (b, b_id) = sim.connect(1);
    assert_eq!(
        names(&sim.join_presence(a, &a_id, "presence-x", "a")),
        ["pusher_internal:subscription_succeeded"]
    );
    assert_eq!(
        names(&sim.join_presence(a2, &a2_id, "presence-x", "a")),
        ["pusher_internal:subscription_succeeded"]
    );
    let refused = sim.join_presence(b, &b_id, "presence-x", "b");
    assert_eq!(names(&refused), ["pusher:subscription_error"]);
    assert_eq!(data_of(&refused[0])["status"], 4100);
    // The refused user never counted: a leave of the real member still works.
    sim.shards[1].handle_closed(a2.key);
    sim.shards[0].handle_closed(a.key);
    sim.settle();
    let (c, c_id) = sim.connect(0);
    assert_eq!(
        names(&sim.join_presence(c, &c_id, "presence-x", "c")),
        ["pusher_internal:subscription_succeeded"]
    );
}

#[test]
fn signin_watchlist_and_server_to_user_across_shards() {
    let mut sim = Sim::new(2, |_| {});
    let (watcher, watcher_id) = sim.connect(0);
    let user_data = r#"{"id":"w","watchlist":["u"]}"#;
    let token = auth::signin_token(KEY, SECRET, &watcher_id, user_data);
    sim.send(
        watcher,
        serde_json::json!({"event":"pusher:signin","data":{"auth":token,"user_data":user_data}}),
    );
    let got = sim.events(watcher);
    assert_eq!(names(&got), ["pusher:signin_success"]);
    assert_eq!(data_of(&got[0])["user_data"], user_data);

    let (u, u_id) = sim.connect(1);
    let u_data = r#"{"id":"u"}"#;
    let token = auth::signin_token(KEY, SECRET, &u_id, u_data);
    sim.send(
        u,
        serde_json::json!({"event":"pusher:signin","data":{"auth":token,"user_data":u_data}}),
    );
    let got = sim.events(watcher);
    assert_eq!(names(&got), ["pusher_internal:watchlist_events"]);
    assert_eq!(data_of(&got[0])["events"][0]["name"], "online");
    assert_eq!(data_of(&got[0])["events"][0]["user_ids"][0], "u");

    // pusher-js's own server-to-user subscription is confirmed; someone else's is refused.
    sim.subscribe(u, "#server-to-user-u", None, None);
    assert_eq!(
        names(&sim.events(u)),
        [
            "pusher:signin_success",
            "pusher_internal:subscription_succeeded"
        ]
    );
    sim.subscribe(watcher, "#server-to-user-u", None, None);
    assert_eq!(names(&sim.events(watcher)), ["pusher:subscription_error"]);

    sim.shards[0].publish_to_user(
        0,
        "u",
        frame::encode_text(br##"{"event":"hello","channel":"#server-to-user-u","data":"{}"}"##),
        sim.now_ms,
    );
    sim.settle();
    assert_eq!(names(&sim.events(u)), ["hello"]);
    assert!(sim.events(watcher).is_empty());

    sim.shards[0].terminate_user(0, "u", sim.now_ms);
    sim.settle();
    let out = sim.output(u);
    assert!(matches!(out.last(), Some(Out::Close(4009))), "{out:?}");
    let got = sim.events(watcher);
    assert_eq!(data_of(&got[0])["events"][0]["name"], "offline");
}

#[test]
fn bad_signin_closes_4009() {
    let mut sim = Sim::new(1, |_| {});
    let (a, _) = sim.connect(0);
    sim.send(a, serde_json::json!({"event":"pusher:signin","data":{"auth":"app-key:00","user_data":"{\"id\":\"x\"}"}}));
    let out = sim.output(a);
    assert!(
        matches!(out.first(), Some(Out::Text(v)) if v["data"]["code"] == 4009),
        "{out:?}"
    );
    assert!(matches!(out.last(), Some(Out::Close(4009))), "{out:?}");
}

#[test]
fn a_shard_at_its_most_presence_members_refuses_new_users_in_any_channel() {
    let mut sim = Sim::new(1, |_| {});
    sim.shards[0].owner.set_members_max(2);
    let (a, a_id) = sim.connect(0);
    let (b, b_id) = sim.connect(0);
    let (c, c_id) = sim.connect(0);
    for (client, id, channel, user) in
        [(a, &a_id, "presence-x", "a"), (b, &b_id, "presence-y", "b")]
    {
        assert_eq!(
            names(&sim.join_presence(client, id, channel, user)),
            ["pusher_internal:subscription_succeeded"]
        );
    }
    let refused = sim.join_presence(c, &c_id, "presence-z", "c");
    assert_eq!(names(&refused), ["pusher:subscription_error"]);
    assert_eq!(data_of(&refused[0])["status"], 4100);
    // A member that leaves makes room.
    sim.shards[0].handle_closed(a.key);
    sim.settle();
    let (d, d_id) = sim.connect(0);
    assert_eq!(
        names(&sim.join_presence(d, &d_id, "presence-z", "d")),
        ["pusher_internal:subscription_succeeded"]
    );
}
