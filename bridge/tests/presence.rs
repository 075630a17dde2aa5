//! End-to-end tests of cluster-wide presence: real `redis-server`, real bridges (nodes), fake
//! engine shards. "Nothing arrived" is checked with barriers, as in `redis_relay.rs`: a later
//! member event that Redis must deliver after any unwanted one, so the first message read
//! decides. A `MembersQuery` on a link doubles as a sync point: its bridge answers it only after
//! every presence message the link sent before it reached Redis.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast_core::link::{LinkMessage, Member, PresenceChannel};

use common::{Cluster, Shard, APP};

const NODE_A: u64 = 1001;
const NODE_B: u64 = 2002;
const NODE_C: u64 = 3003;
const ROOM: &str = "presence-room";
/// Heartbeat TTL of the bridges in the node-death tests.
const TTL_MS: u64 = 2_000;
const TTL_ARGS: &[&str] = &["--presence-ttl-ms", "2000"];

fn room() -> PresenceChannel {
    PresenceChannel {
        app_id: APP.into(),
        channel: ROOM.into(),
    }
}

fn member(user_id: &str) -> Member {
    Member {
        user_id: user_id.into(),
        user_info: Bytes::from(format!("{{\"name\":\"{user_id}\"}}")),
    }
}

fn join(shard: &mut Shard, user_id: &str) {
    shard.send(&LinkMessage::MemberJoin(room(), member(user_id)));
}

fn leave(shard: &mut Shard, user_id: &str) {
    shard.send(&LinkMessage::MemberLeave(room(), user_id.into()));
}

/// The room's cluster members as `shard`'s bridge answers a query, sorted by user id. Fails if
/// anything else arrives first.
fn query(shard: &mut Shard, query_id: u32) -> Vec<Member> {
    shard.send(&LinkMessage::MembersQuery(room(), query_id));
    match shard.recv() {
        LinkMessage::MembersSnapshot(channel, id, mut members) => {
            assert_eq!((channel, id), (room(), query_id));
            members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
            members
        }
        other => panic!("expected the snapshot of query {query_id}, got {other:?}"),
    }
}

fn members(user_ids: &[&str]) -> Vec<Member> {
    user_ids.iter().map(|user_id| member(user_id)).collect()
}

fn expect_added(shards: &mut [&mut Shard], user_id: &str) {
    for shard in shards {
        assert_eq!(
            shard.recv(),
            LinkMessage::MemberAdded(room(), member(user_id))
        );
    }
}

fn expect_removed(shards: &mut [&mut Shard], user_id: &str) {
    for shard in shards {
        assert_eq!(
            shard.recv(),
            LinkMessage::MemberRemoved(room(), user_id.into())
        );
    }
}

/// A linked shard 0 (of 1) of `node` with interest in the room.
fn room_shard(socket: &std::path::Path, node: u64, seq: u32) -> Shard {
    let mut shard = Shard::linked(socket, 0, 1, node);
    shard.subscribe(ROOM, seq);
    shard
}

/// Redis and three bridges (nodes A, B, C, short TTL), each with a shard in the room.
fn three_nodes(test: &str) -> (Cluster, Shard, Shard, Shard) {
    let mut cluster = Cluster::new(test);
    cluster.start_redis();
    let socket_a = cluster.start_bridge_with("a", NODE_A, TTL_ARGS);
    let socket_b = cluster.start_bridge_with("b", NODE_B, TTL_ARGS);
    let socket_c = cluster.start_bridge_with("c", NODE_C, TTL_ARGS);
    let a = room_shard(&socket_a, NODE_A, 1);
    let b = room_shard(&socket_b, NODE_B, 2);
    let c = room_shard(&socket_c, NODE_C, 3);
    (cluster, a, b, c)
}

#[test]
fn member_events_are_emitted_once_per_cluster_wide_first_join_and_last_leave() {
    let (_cluster, mut a, mut b, mut c) = three_nodes("presence-once");

    // (a) First join in the cluster: everyone, the joining node included, hears it once.
    join(&mut a, "u1");
    expect_added(&mut [&mut a, &mut b, &mut c], "u1");

    // The same user on a second node, then leaving the first: the cluster still has u1.
    join(&mut b, "u1");
    assert_eq!(query(&mut b, 1), members(&["u1"]));
    leave(&mut a, "u1");
    assert_eq!(query(&mut a, 2), members(&["u1"]));
    // (b) Any node answers with the cluster's members.
    assert_eq!(query(&mut c, 3), members(&["u1"]));
    // Barrier: nothing about u1 came before this.
    join(&mut c, "barrier-1");
    expect_added(&mut [&mut a, &mut b, &mut c], "barrier-1");

    // Last leave in the cluster.
    leave(&mut b, "u1");
    expect_removed(&mut [&mut a, &mut b, &mut c], "u1");
    join(&mut a, "barrier-2");
    expect_added(&mut [&mut a, &mut b, &mut c], "barrier-2");
    assert_eq!(query(&mut c, 4), members(&["barrier-1", "barrier-2"]));

    // A leave of a user never joined changes nothing.
    leave(&mut b, "nobody");
    assert_eq!(query(&mut b, 5), members(&["barrier-1", "barrier-2"]));
    join(&mut b, "barrier-3");
    expect_added(&mut [&mut a, &mut b, &mut c], "barrier-3");
}

#[test]
fn a_killed_nodes_members_are_removed_once_within_the_ttl() {
    let (mut cluster, mut a, mut b, mut c) = three_nodes("presence-kill");

    join(&mut b, "u2");
    expect_added(&mut [&mut a, &mut b, &mut c], "u2");
    // Held on B and on A: must survive B's death.
    join(&mut b, "shared");
    expect_added(&mut [&mut a, &mut b, &mut c], "shared");
    join(&mut a, "shared");
    assert_eq!(query(&mut a, 1), members(&["shared", "u2"]));
    // Let B's heartbeat be written at least once.
    std::thread::sleep(Duration::from_millis(TTL_MS / 2));

    // (c) kill -9: no goodbye; the other nodes' reapers notice the expired heartbeat.
    let killed_at = Instant::now();
    cluster.signal_bridge("b", "KILL");
    expect_removed(&mut [&mut a, &mut c], "u2");
    let took = killed_at.elapsed();
    // TTL, plus up to one reaper round, plus slack for a loaded machine.
    assert!(
        took < Duration::from_millis(TTL_MS + 1_000 + 3_000),
        "u2 removed only after {took:?}"
    );
    // Past the reap lock's lifetime: a second reaper run would have to emit nothing.
    std::thread::sleep(Duration::from_secs(6));
    join(&mut c, "barrier");
    expect_added(&mut [&mut a, &mut c], "barrier");
    assert_eq!(query(&mut c, 2), members(&["barrier", "shared"]));
}

#[test]
fn a_restarted_nodes_resync_removes_only_what_its_shard_no_longer_holds() {
    let mut cluster = Cluster::new("presence-resync");
    cluster.start_redis();
    let socket_a = cluster.start_bridge_with("a", NODE_A, TTL_ARGS);
    let socket_b = cluster.start_bridge_with("b", NODE_B, TTL_ARGS);
    let mut a = room_shard(&socket_a, NODE_A, 1);
    let mut b = room_shard(&socket_b, NODE_B, 2);
    join(&mut b, "u3");
    expect_added(&mut [&mut a, &mut b], "u3");
    join(&mut b, "u4");
    expect_added(&mut [&mut a, &mut b], "u4");

    // (d) The bridge dies and comes back at once with the same node id, before its heartbeat
    // expires; its shard reconnects and tells what it holds now.
    cluster.signal_bridge("b", "KILL");
    let socket_b2 = cluster.start_bridge_with("b2", NODE_B, TTL_ARGS);
    let mut b2 = room_shard(&socket_b2, NODE_B, 3);
    b2.send(&LinkMessage::MembersResync(room(), members(&["u3"])));
    b2.send(&LinkMessage::ResyncDone);
    expect_removed(&mut [&mut a], "u4");
    // u3 was not re-added: the barrier is next.
    join(&mut a, "barrier");
    expect_added(&mut [&mut a], "barrier");
    assert_eq!(query(&mut a, 1), members(&["barrier", "u3"]));

    // A shard that mentions nothing after its Hello holds nothing any more.
    drop(b2);
    let mut b3 = Shard::linked(&socket_b2, 0, 1, NODE_B);
    b3.send(&LinkMessage::ResyncDone);
    expect_removed(&mut [&mut a], "u3");
}

#[test]
fn a_stopping_node_removes_its_members_at_once() {
    let mut cluster = Cluster::new("presence-term");
    cluster.start_redis();
    // The default TTL (10 s): only the node's own cleanup can be this quick.
    let socket_a = cluster.start_bridge("a", NODE_A);
    let socket_b = cluster.start_bridge("b", NODE_B);
    let mut a = room_shard(&socket_a, NODE_A, 1);
    let mut b = room_shard(&socket_b, NODE_B, 2);
    join(&mut b, "u5");
    expect_added(&mut [&mut a, &mut b], "u5");

    // (e) SIGTERM.
    let stopped_at = Instant::now();
    cluster.signal_bridge("b", "TERM");
    expect_removed(&mut [&mut a], "u5");
    let took = stopped_at.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "u5 removed only after {took:?}"
    );
    assert_eq!(query(&mut a, 1), members(&[]));
}

#[test]
fn a_members_query_is_answered_even_when_redis_is_down() {
    let mut cluster = Cluster::new("presence-no-redis");
    cluster.start_redis();
    let socket_a = cluster.start_bridge("a", NODE_A);
    let mut a = room_shard(&socket_a, NODE_A, 1);
    join(&mut a, "u6");
    expect_added(&mut [&mut a], "u6");
    cluster.kill_redis();
    // The engine must not wait forever: an empty answer (logged and counted) comes instead.
    let asked_at = Instant::now();
    assert_eq!(query(&mut a, 1), members(&[]));
    let took = asked_at.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "answered only after {took:?}"
    );
}
