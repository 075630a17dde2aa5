//! Node liveness for presence: refreshes this node's heartbeat key every TTL/3, and once a
//! second looks for nodes whose heartbeat expired (killed, frozen, cut off) and reaps them —
//! their members leave, with `member_removed` where no other node holds the user — under a
//! short lock so that one bridge does it. The reap script is idempotent, so a lock that expires
//! mid-way costs nothing but a second run. On shutdown the node reaps itself.

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::repair::PresenceRepair;
use crate::limits::{
    REAP_INTERVAL_MS, REAP_LOCK_MS, REAP_NODES_PER_ROUND_MAX, REDIS_COMMAND_TIMEOUT_MS,
    REDIS_CONNECT_TIMEOUT_MS,
};
use crate::redis::connect::{self, RedisClient, RedisConnection};
use crate::redis::layout::{heartbeat_key, keys_hash_key, nodes_key, reap_lock_key, NodeKeys};
use crate::redis::scripts::Scripts;
use crate::redis::session::RedisSession;
use tokio::time::{timeout, Instant};

/// Runs forever: heartbeat every `ttl / 3`, reaper every second.
pub async fn run_liveness(
    client: RedisClient,
    keys: NodeKeys,
    ttl: Duration,
    repair: Arc<PresenceRepair>,
) {
    let mut scripts = Scripts::new(&keys.script_keys());
    // Paced by the reaper's interval, not by the backoff: the heartbeat must not go stale.
    let mut session = RedisSession::for_state(client, "presence liveness").paced_by_caller();
    let heartbeat_every = ttl / 3;
    let mut next_heartbeat = Instant::now();
    let mut next_reap = Instant::now();
    let mut failing = false;
    let mut registered_before = false;
    loop {
        tokio::time::sleep_until(next_heartbeat.min(next_reap)).await;
        let Some(open) = session.connection().await else {
            let reason = session.connect_error().unwrap_or("not connected");
            log_failure(&mut failing, &format!("cannot connect: {reason}"));
            repair.mark_all_lost();
            next_heartbeat = Instant::now() + Duration::from_millis(REAP_INTERVAL_MS);
            next_reap = next_heartbeat;
            continue;
        };
        let now = Instant::now();
        let mut result = Ok(());
        if now >= next_heartbeat {
            next_heartbeat = now + heartbeat_every;
            result = heartbeat(open, &keys, ttl, &mut registered_before).await;
        }
        if result.is_ok() && now >= next_reap {
            next_reap = now + Duration::from_millis(REAP_INTERVAL_MS);
            result = reap_dead(open, &keys, &mut scripts).await;
        }
        match result {
            Ok(()) => {
                if failing {
                    failing = false;
                    tracing::info!("presence liveness: redis back");
                }
                // Redis answers: what was lost meanwhile is restated now.
                repair.redis_answered();
            }
            Err(err) => {
                session.failed();
                log_failure(&mut failing, &err.to_string());
                repair.mark_all_lost();
            }
        }
    }
}

fn log_failure(failing: &mut bool, reason: &str) {
    if *failing {
        tracing::debug!("presence liveness: {reason}");
    } else {
        *failing = true;
        tracing::warn!("presence liveness: {reason}");
    }
}

/// Refreshes the heartbeat and the node's place in the node set. Finding the node missing from
/// the set after it was there means other nodes reaped it while it was alive (its heartbeat
/// lapsed, e.g. Redis was out of reach for longer than the TTL): its members are gone from the
/// cluster until the engine resyncs, which the link protocol cannot ask for yet — so it is
/// logged loudly.
async fn heartbeat(
    connection: &mut RedisConnection,
    keys: &NodeKeys,
    ttl: Duration,
    registered_before: &mut bool,
) -> redis::RedisResult<()> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let mut pipeline = redis::pipe();
    pipeline
        .cmd("SET")
        .arg(keys.heartbeat())
        .arg(1)
        .arg("PX")
        .arg(ttl_ms)
        .ignore()
        .cmd("SADD")
        .arg(keys.nodes())
        .arg(keys.node_id);
    let (added,): (u64,) = with_timeout(pipeline.query_async(connection)).await?;
    if added == 1 && *registered_before {
        tracing::error!(
            "this node was reaped while alive (heartbeat lapsed); its presence members are \
             missing from the cluster until its engine shards resync"
        );
    }
    *registered_before = true;
    Ok(())
}

/// Reaps every node of the set whose heartbeat is gone.
async fn reap_dead(
    connection: &mut RedisConnection,
    keys: &NodeKeys,
    scripts: &mut Scripts,
) -> redis::RedisResult<()> {
    let nodes: Vec<String> = with_timeout(
        redis::cmd("SRANDMEMBER")
            .arg(keys.nodes())
            .arg(REAP_NODES_PER_ROUND_MAX)
            .query_async(connection),
    )
    .await?;
    for node in nodes {
        let Ok(node_id) = node.parse::<u64>() else {
            tracing::warn!(
                node,
                "presence: ignoring a malformed node id in the node set"
            );
            continue;
        };
        if node_id == keys.node_id {
            // Our own heartbeat may lapse under load; the next refresh restores it.
            continue;
        }
        let alive: bool = with_timeout(
            redis::cmd("EXISTS")
                .arg(heartbeat_key(&keys.prefix, node_id))
                .query_async(connection),
        )
        .await?;
        if alive {
            continue;
        }
        let locked: Option<String> = with_timeout(
            redis::cmd("SET")
                .arg(reap_lock_key(&keys.prefix, node_id))
                .arg(keys.node_id)
                .arg("NX")
                .arg("PX")
                .arg(REAP_LOCK_MS)
                .query_async(connection),
        )
        .await?;
        if locked.is_none() {
            continue;
        }
        let reaped = reap(connection, scripts, &keys.prefix, node_id, false).await?;
        if reaped {
            tracing::info!(node_id, "presence: reaped a dead node's members");
        }
    }
    Ok(())
}

/// Runs the reap script for `node_id`; `force` reaps even a live node (our own shutdown).
async fn reap(
    connection: &mut RedisConnection,
    scripts: &mut Scripts,
    prefix: &str,
    node_id: u64,
    force: bool,
) -> redis::RedisResult<bool> {
    let node = node_id.to_string();
    let keys_hash = keys_hash_key(prefix, node_id);
    let nodes = nodes_key(prefix);
    let heartbeat = heartbeat_key(prefix, node_id);
    let force_flag: &[u8] = if force { b"1" } else { b"0" };
    with_timeout(scripts.reap.run::<bool>(
        connection,
        &[&keys_hash, &nodes, &heartbeat],
        &[node.as_bytes(), force_flag],
    ))
    .await
}

/// Graceful shutdown: this node's members leave the cluster now rather than after the TTL.
pub async fn reap_self(client: &RedisClient, keys: &NodeKeys) -> redis::RedisResult<()> {
    let mut connection = connect::open(
        client,
        Duration::from_millis(REDIS_CONNECT_TIMEOUT_MS),
        Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
    )
    .await?;
    let mut scripts = Scripts::new(&keys.script_keys());
    reap(
        &mut connection,
        &mut scripts,
        &keys.prefix,
        keys.node_id,
        true,
    )
    .await?;
    Ok(())
}

async fn with_timeout<T>(
    future: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match timeout(Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS), future).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "redis did not answer in time",
        ))),
    }
}
