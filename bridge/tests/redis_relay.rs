//! End-to-end test of the bridge with real parts: a real `redis-server`, real `ringcast-bridge`
//! processes, and fake engine shards speaking the link protocol over Unix sockets. Negative
//! checks ("X did not arrive") use barriers instead of sleeps: a later message that must arrive
//! after X if X were delivered at all, so the first message read decides. The bridge's
//! once-a-second `Stats` messages are skipped by every read except the ones that look for them.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast_core::link::{ChannelEvent, LinkMessage, VERSION};

use common::{Cluster, Received, Shard, APP, PATIENCE};

const NODE_A: u64 = 1001;
const NODE_B: u64 = 2002;
/// How soon after Hello a link must get its first `Stats` (they come once a second).
const FIRST_STATS_WITHIN: Duration = Duration::from_secs(3);

fn event(channel: &str, text: &str) -> ChannelEvent {
    let mut frame = vec![0x81, text.len() as u8];
    frame.extend_from_slice(text.as_bytes());
    ChannelEvent {
        app_id: APP.into(),
        channel: channel.into(),
        except_socket_id: "123.456".into(),
        frame: Bytes::from(frame),
        part: None,
    }
}

#[test]
fn publishes_reach_only_other_nodes_subscribed_shards_in_order() {
    let mut cluster = Cluster::new("relay");
    cluster.start_redis();
    let socket_a = cluster.start_bridge("a", NODE_A);
    let socket_b = cluster.start_bridge("b", NODE_B);
    let mut a0 = Shard::linked(&socket_a, 0, 2, NODE_A);
    let mut a1 = Shard::linked(&socket_a, 1, 2, NODE_A);
    let mut b0 = Shard::linked(&socket_b, 0, 2, NODE_B);
    let mut b1 = Shard::linked(&socket_b, 1, 2, NODE_B);
    a0.subscribe("room", 1);
    a1.subscribe("room", 2);
    b0.subscribe("room", 3);
    b1.subscribe("barrier", 4);

    let x = event("room", "x");
    a0.publish(&x);
    b0.expect_delivery(&x);

    // Node A must not get its own X back: Y, published by B after X went through Redis, is the
    // first thing A's shards see.
    let y = event("room", "y");
    b1.publish(&y);
    a0.expect_delivery(&y);
    a1.expect_delivery(&y);

    // B1 never subscribed to "room": the barrier A0 published after X comes first.
    let barrier = event("barrier", "after x");
    a0.publish(&barrier);
    b1.expect_delivery(&barrier);

    // Node B must not re-deliver its own Y to B0: Z, published after Y went through, is next.
    let z = event("room", "z");
    a0.publish(&z);
    b0.expect_delivery(&z);

    // After Unsubscribe nothing more arrives. The Subscribed for "barrier-2" proves the bridge
    // processed the Unsubscribe before it.
    b0.send(&LinkMessage::Unsubscribe {
        app_id: APP.into(),
        channel: "room".into(),
    });
    b0.subscribe("barrier-2", 5);
    a0.publish(&event("room", "after unsubscribe"));
    let barrier_2 = event("barrier-2", "after w");
    a0.publish(&barrier_2);
    b0.expect_delivery(&barrier_2);

    // Order of many publishes from one link is kept.
    b0.subscribe("order", 6);
    let ordered: Vec<ChannelEvent> = (0..1_000)
        .map(|i| event("order", &format!("m{i}")))
        .collect();
    for published in &ordered {
        a0.publish(published);
    }
    for published in &ordered {
        b0.expect_delivery(published);
    }
}

#[test]
fn bad_hellos_close_the_link_and_redis_down_does_not_block() {
    // No Redis at all: the bridge must start anyway and keep answering.
    let mut cluster = Cluster::new("hello");
    let socket = cluster.start_bridge("a", NODE_A);
    let bad_hellos = [
        LinkMessage::Hello {
            version: VERSION + 1,
            shard: 0,
            shard_count: 1,
            cluster: true,
        },
        LinkMessage::Hello {
            version: VERSION,
            shard: 2,
            shard_count: 2,
            cluster: true,
        },
        LinkMessage::Hello {
            version: VERSION,
            shard: 0,
            shard_count: 65,
            cluster: true,
        },
        LinkMessage::Subscribe {
            app_id: APP.into(),
            channel: "room".into(),
            seq: 1,
        },
    ];
    for bad in &bad_hellos {
        let mut shard = Shard::connect(&socket);
        shard.send(bad);
        match shard.recv_within(PATIENCE) {
            Received::Closed => {}
            other => panic!("after {bad:?} the link should close, got {other:?}"),
        }
    }
    // A good Hello on the same bridge still works, and a Subscribe is answered although Redis
    // is unreachable (the engine must not hang).
    let mut shard = Shard::linked(&socket, 63, 64, NODE_A);
    shard.subscribe("room", 7);
}

#[test]
fn relaying_resumes_after_redis_restarts() {
    let mut cluster = Cluster::new("restart");
    cluster.start_redis();
    let socket_a = cluster.start_bridge("a", NODE_A);
    let socket_b = cluster.start_bridge("b", NODE_B);
    let mut a0 = Shard::linked(&socket_a, 0, 1, NODE_A);
    let mut b0 = Shard::linked(&socket_b, 0, 1, NODE_B);
    b0.subscribe("room", 1);
    let before = event("room", "before");
    a0.publish(&before);
    b0.expect_delivery(&before);

    cluster.kill_redis();
    // Subscribing during the outage is answered, and takes effect once Redis is back.
    b0.subscribe("joined-during-outage", 2);
    cluster.start_redis();

    for channel in ["room", "joined-during-outage"] {
        let deadline = Instant::now() + PATIENCE;
        let mut attempt = 0;
        loop {
            assert!(
                Instant::now() < deadline,
                "no publish on {channel} got through after the Redis restart"
            );
            attempt += 1;
            a0.publish(&event(channel, &format!("retry {attempt}")));
            match b0.recv_within(Duration::from_millis(250)) {
                Received::Message(LinkMessage::Deliver(got)) => {
                    assert_eq!(got.channel, channel);
                    break;
                }
                Received::Nothing => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        // Retries that were still in flight arrive later; drain them before the next channel.
        while let Received::Message(_) = b0.recv_within(Duration::from_millis(500)) {}
    }
    let stats = b0.wait_for_stats("redis back", |stats| stats.redis_connected);
    assert_eq!(stats.redis_reconnects, 1, "{stats:?}");
}

#[test]
fn every_link_gets_the_bridge_stats_every_second() {
    let mut cluster = Cluster::new("stats");
    cluster.start_redis();
    let socket = cluster.start_bridge("a", NODE_A);
    let mut a0 = Shard::linked(&socket, 0, 2, NODE_A);
    let first = a0.recv_stats_within(FIRST_STATS_WITHIN);
    assert!(first.links >= 1, "{first:?}");
    // The subscriber connected at start-up, before the link; a loaded machine gets some slack.
    let before = a0.wait_for_stats("redis connected", |stats| stats.redis_connected);
    assert_eq!(before.redis_reconnects, 0, "{before:?}");

    // A second shard gets them too, and is counted.
    let mut a1 = Shard::linked(&socket, 1, 2, NODE_A);
    a1.recv_stats_within(FIRST_STATS_WITHIN);
    a1.wait_for_stats("2 links", |stats| stats.links == 2);

    // Publishes relayed go up, and so do messages received: Redis hands the node its own
    // publish back, which counts before the own-node filter drops it.
    a0.subscribe("room", 1);
    a0.publish(&event("room", "counted"));
    let after = a0.wait_for_stats("the publish relayed and received", |stats| {
        stats.publishes_relayed > before.publishes_relayed
            && stats.messages_received > before.messages_received
    });
    assert!(after.redis_connected, "{after:?}");
    assert_eq!(after.publishes_dropped, 0, "{after:?}");
    assert_eq!(after.deliveries_dropped, 0, "{after:?}");
}
