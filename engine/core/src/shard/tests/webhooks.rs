//! Webhook events a node hands to the bridge (occupancy, members, client events, cache misses) and
//! subscription counts.

use super::*;

#[test]
fn a_node_alone_reports_occupancy_once_whatever_the_shards() {
    use crate::app::WebhookEventType::{ChannelOccupied, ChannelVacated};
    let mut sim = webhook_sim(2);
    let (a, _) = sim.connect(0);
    let (b, _) = sim.connect(1);
    let (c, _) = sim.connect(1);
    for client in [a, b, c] {
        sim.subscribe(client, "news", None, None);
        assert_eq!(
            names(&sim.events(client)),
            ["pusher_internal:subscription_succeeded"],
            "no wait for the bridge when alone"
        );
    }
    let hooks = sim.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].0, ChannelOccupied);
    assert_eq!(
        hooks[0].1,
        serde_json::json!({"name":"channel_occupied","channel":"news"})
    );
    let unsubscribe =
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}});
    sim.send(a, unsubscribe.clone());
    sim.send(b, unsubscribe.clone());
    assert!(sim.hooks().is_empty(), "c still holds the channel");
    sim.send(c, unsubscribe);
    let hooks = sim.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].0, ChannelVacated);
    // Occupied again: a new event (the bridge cancels the pair if it came within 3 s).
    sim.subscribe(b, "news", None, None);
    assert_eq!(
        sim.hooks().iter().map(|h| h.0).collect::<Vec<_>>(),
        [ChannelOccupied]
    );
}

#[test]
fn a_node_alone_reports_members_client_events_and_cache_misses() {
    use crate::app::WebhookEventType::{
        CacheMiss, ChannelOccupied, ClientEvent, MemberAdded, MemberRemoved,
    };
    let mut sim = webhook_sim(2);
    let (a, a_id) = sim.connect(0);
    let (b, b_id) = sim.connect(1);
    sim.join_presence(a, &a_id, "presence-room", "alice");
    sim.join_presence(b, &b_id, "presence-room", "alice");
    let kinds: Vec<_> = sim.hooks().into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(
        kinds,
        [ChannelOccupied, MemberAdded],
        "two tabs, one member"
    );
    sim.send(
        b,
        serde_json::json!({"event":"client-typing","channel":"presence-room","data":{"who":"b"}}),
    );
    let hooks = sim.hooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].0, ClientEvent);
    assert_eq!(
        hooks[0].1,
        serde_json::json!({"name":"client_event","channel":"presence-room",
            "event":"client-typing","data":"{\"who\":\"b\"}","socket_id":b_id,"user_id":"alice"})
    );
    sim.send(
        b,
        serde_json::json!({"event":"client-s","channel":"presence-room","data":"as is"}),
    );
    assert_eq!(
        sim.hooks()[0].1["data"],
        "as is",
        "string data is not quoted twice"
    );
    let unsubscribe =
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}});
    sim.send(a, unsubscribe.clone());
    assert!(sim.hooks().is_empty(), "alice still has a tab");
    sim.send(b, unsubscribe);
    let hooks = sim.hooks();
    let removed: Vec<_> = hooks.iter().filter(|h| h.0 == MemberRemoved).collect();
    assert_eq!(removed.len(), 1, "{hooks:?}");
    assert_eq!(
        removed[0].1,
        serde_json::json!({"name":"member_removed","channel":"presence-room","user_id":"alice"})
    );
    sim.subscribe(a, "cache-prices", None, None);
    let kinds: Vec<_> = sim.hooks().into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(kinds, [ChannelOccupied, CacheMiss]);
}

#[test]
fn webhook_events_wait_for_the_bridge_and_apps_without_webhooks_make_none() {
    let mut sim = webhook_sim(1);
    sim.shards[0].handle_link_down();
    let (a, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    assert!(sim.link_output(0).is_empty(), "nothing written while down");
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    assert!(matches!(out[0], LinkMessage::Hello { .. }));
    assert!(matches!(out[1], LinkMessage::WebhookConfig(_)));
    assert!(
        matches!(&out[2], LinkMessage::Hook(e) if e.channel == "news"),
        "the occupancy seen while the bridge was away follows the Hello: {out:?}"
    );
    assert_eq!(out.len(), 3);

    // No webhook wanted: the bridge hears so, and nothing else follows the greeting.
    let mut quiet = Sim::new_mode(1, true, false, |app| app.enable_client_messages = true);
    quiet.shards[0].handle_link_up();
    let out = quiet.link_output(0);
    assert!(
        matches!(&out[..], [LinkMessage::Hello { .. }, LinkMessage::WebhookConfig(config)]
            if &config[..] == b"{\"apps\":[]}"),
        "{out:?}"
    );
    let (q, _) = quiet.connect(0);
    quiet.subscribe(q, "news", None, None);
    assert!(quiet.link_output(0).is_empty());
}

#[test]
fn several_nodes_report_occupancy_as_state_and_members_through_the_bridge() {
    use crate::app::WebhookEventType::ChannelOccupied;
    let mut sim = Sim::new_mode(1, true, true, |app| {
        let hooks = &mut app.webhooks;
        hooks.enabled = true;
        hooks.url = Some("http://127.0.0.1:9/hooks".into());
        hooks.channel_vacated = true; // only vacated wanted: occupied still goes (it cancels)
        hooks.member_removed = true;
    });
    // Link down: the node serves alone and keeps no occupancy events for later.
    let (a, a_id) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    sim.join_presence(a, &a_id, "presence-room", "alice");
    sim.shards[0].handle_link_up();
    let out = sim.link_output(0);
    let hook_channels: Vec<(usize, &str)> = out
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match m {
            LinkMessage::Hook(e) if e.kind == ChannelOccupied => Some((i, e.channel.as_str())),
            LinkMessage::Hook(e) => panic!("only occupancy is stated: {e:?}"),
            _ => None,
        })
        .collect();
    let mut channels: Vec<&str> = hook_channels.iter().map(|(_, c)| *c).collect();
    channels.sort_unstable();
    assert_eq!(
        channels,
        ["news", "presence-room"],
        "the node's occupancy: {out:?}"
    );
    let done = out
        .iter()
        .position(|m| matches!(m, LinkMessage::ResyncDone))
        .unwrap();
    assert!(
        hook_channels.iter().all(|(i, _)| *i < done),
        "stated before ResyncDone: {out:?}"
    );
    // Linked: a new channel is reported at once; a member's join goes to the bridge as state.
    let (b, b_id) = sim.connect(0);
    sim.subscribe(b, "sports", None, None);
    let out = sim.link_output(0);
    let [LinkMessage::Hook(hook), LinkMessage::Subscribe { seq, .. }] = &out[..] else {
        panic!("occupancy and the announcement: {out:?}")
    };
    assert_eq!(
        (hook.kind, hook.channel.as_str()),
        (ChannelOccupied, "sports")
    );
    sim.confirm(0, "sports", *seq);
    sim.subscribe(
        b,
        "presence-room",
        Some(auth::channel_auth_token(
            KEY,
            SECRET,
            &b_id,
            "presence-room",
            Some("{\"user_id\":\"bob\"}"),
        )),
        Some("{\"user_id\":\"bob\"}"),
    );
    let out = sim.link_output(0);
    assert!(
        out.iter()
            .any(|m| matches!(m, LinkMessage::MemberJoin(_, member) if member.user_id == "bob")),
        "{out:?}"
    );
    assert!(
        !out.iter().any(|m| matches!(m, LinkMessage::Hook(_))),
        "member webhooks are the bridge's business with several nodes: {out:?}"
    );
}

#[test]
fn each_shard_reports_its_latest_count_once_per_tick_and_never_for_presence() {
    let mut sim = count_sim(2);
    let (a, a_id) = sim.connect(0);
    let (b, _) = sim.connect(1);
    let (c, _) = sim.connect(1);
    for client in [a, b, c] {
        sim.subscribe(client, "news", None, None);
    }
    sim.join_presence(a, &a_id, "presence-room", "alice");
    assert!(sim.counts().is_empty(), "counts wait for the tick");
    sim.tick(1);
    let mut counts = sim.counts();
    counts.sort();
    assert_eq!(
        counts,
        [(0, "news".to_owned(), 1), (1, "news".to_owned(), 2)],
        "each shard's own count; presence channels have none"
    );
    sim.tick(1);
    assert!(sim.counts().is_empty(), "nothing changed, nothing said");

    // A burst on one shard: many changes, one report with the final count.
    let unsubscribe =
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}});
    let mut burst = Vec::new();
    for _ in 0..20 {
        let (client, _) = sim.connect(0);
        sim.subscribe(client, "news", None, None);
        burst.push(client);
    }
    for client in &burst[..5] {
        sim.send(*client, unsubscribe.clone());
    }
    sim.tick(1);
    assert_eq!(sim.counts(), [(0, "news".to_owned(), 16)]);

    // Up and back down within one tick is still reported: the bridge may have a stale value.
    sim.send(b, unsubscribe.clone());
    sim.subscribe(b, "news", None, None);
    sim.send(c, unsubscribe.clone());
    sim.tick(1);
    assert_eq!(sim.counts(), [(1, "news".to_owned(), 1)]);
    // The last one leaves: 0 is a count too.
    sim.send(b, unsubscribe);
    sim.tick(1);
    assert_eq!(sim.counts(), [(1, "news".to_owned(), 0)]);
}

#[test]
fn a_new_link_hears_every_count_and_a_down_link_keeps_none() {
    let mut sim = count_sim(1);
    let (a, _) = sim.connect(0);
    let (b, _) = sim.connect(0);
    sim.subscribe(a, "news", None, None);
    sim.subscribe(b, "news", None, None);
    sim.subscribe(b, "private-x", None, None); // refused: no auth, so never counted
    sim.subscribe(a, "sports", None, None);
    sim.shards[0].handle_link_down();
    sim.tick(1);
    assert!(sim.link_output(0).is_empty(), "nothing written while down");
    sim.send(
        a,
        serde_json::json!({"event": "pusher:unsubscribe", "data": {"channel": "sports"}}),
    );
    sim.tick(1);
    sim.shards[0].handle_link_up();
    let mut counts = sim.counts();
    assert_eq!(
        counts,
        [("news".to_owned(), 2)]
            .map(|(channel, count)| (0, channel, count))
            .to_vec(),
        "the resync states what the shard holds now"
    );
    sim.tick(1);
    counts = sim.counts();
    assert!(
        counts.is_empty(),
        "changes while down were not kept: {counts:?}"
    );
}

#[test]
fn apps_that_do_not_want_counts_make_no_reports() {
    let mut sim = webhook_sim(2);
    let (a, _) = sim.connect(0);
    let (b, _) = sim.connect(1);
    sim.subscribe(a, "news", None, None);
    sim.subscribe(b, "news", None, None);
    sim.tick(2);
    let kinds: Vec<_> = sim.hooks().into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(
        kinds,
        [crate::app::WebhookEventType::ChannelOccupied],
        "every other kind is on, but not subscription_count"
    );
}
