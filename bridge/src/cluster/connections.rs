//! `app_max_connections` across nodes, the bridge's side. Once a second the engine reports the
//! node's open connections per app (only apps with a limit); this task writes them to Redis
//! under the node (`{prefix}#connections#{node}`, expiring with the heartbeat TTL, so a dead
//! node's connections stop counting by themselves), reads the other live nodes' and hands their
//! sums to every linked shard. Admission is therefore cluster-wide within about a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::counters::BridgeCounters;
use crate::limits::{CONNECTIONS_EXCHANGE_INTERVAL_MS, REDIS_COMMAND_TIMEOUT_MS};
use crate::links::HubInput;
use crate::redis::connect::{RedisClient, RedisConnection};
use crate::redis::layout::connections_key;
use crate::redis::layout::nodes_key;
use crate::redis::session::RedisSession;
use ringcast_core::link::LinkMessage;
use tokio::sync::{mpsc, watch};

/// Where the links leave the engine's latest counts (app id, open connections) for the task.
pub type ReportedCounts = Arc<watch::Sender<Vec<(String, u64)>>>;

/// Runs until the hub is gone. `reported` holds the engine's latest counts.
pub async fn run_connections(
    client: RedisClient,
    prefix: String,
    node_id: u64,
    ttl: Duration,
    mut reported: watch::Receiver<Vec<(String, u64)>>,
    hub: mpsc::WeakSender<HubInput>,
    counters: Arc<BridgeCounters>,
) {
    // Paced by the exchange interval, not by the backoff.
    let mut session = RedisSession::for_state(client, "connection counts").paced_by_caller();
    let mut ticker = tokio::time::interval(Duration::from_millis(CONNECTIONS_EXCHANGE_INTERVAL_MS));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    loop {
        ticker.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let ours = reported.borrow_and_update().clone();
        if ours.is_empty() {
            continue; // no app with a limit (or nothing reported yet)
        }
        let Some(open) = session.connection().await else {
            continue;
        };
        match exchange(open, &prefix, node_id, ttl_ms, &ours).await {
            Ok(elsewhere) => {
                let message = LinkMessage::ConnectionCounts(elsewhere);
                if hub.try_send(HubInput::ToAllLinks(message)).is_err() {
                    counters.drops.hub_queue_full.add(1);
                }
            }
            Err(err) => {
                tracing::debug!("connection counts: {err}");
                session.failed();
            }
        }
    }
}

/// Writes this node's counts and returns the other live nodes' sums per app.
async fn exchange(
    connection: &mut RedisConnection,
    prefix: &str,
    node_id: u64,
    ttl_ms: u64,
    ours: &[(String, u64)],
) -> redis::RedisResult<Vec<(String, u64)>> {
    let key = connections_key(prefix, node_id);
    let mut write = redis::pipe();
    write.atomic().cmd("DEL").arg(&key).ignore();
    write.cmd("HSET").arg(&key);
    for (app_id, count) in ours {
        write.arg(app_id).arg(*count);
    }
    write.ignore().cmd("PEXPIRE").arg(&key).arg(ttl_ms).ignore();
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(nodes_key(prefix))
        .query_async(connection)
        .await?;
    timed(write.query_async::<()>(connection)).await?;
    let others: Vec<u64> = nodes
        .iter()
        .filter_map(|n| n.parse::<u64>().ok())
        .filter(|n| *n != node_id)
        .collect();
    let mut sums: HashMap<String, u64> = ours.iter().map(|(app, _)| (app.clone(), 0)).collect();
    if !others.is_empty() {
        let mut read = redis::pipe();
        for other in &others {
            read.cmd("HGETALL").arg(connections_key(prefix, *other));
        }
        let hashes: Vec<Vec<(String, u64)>> = timed(read.query_async(connection)).await?;
        for (app_id, count) in hashes.into_iter().flatten() {
            if let Some(sum) = sums.get_mut(&app_id) {
                *sum = sum.saturating_add(count);
            }
        }
    }
    Ok(sums.into_iter().collect())
}

async fn timed<T>(
    future: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS), future).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "redis did not answer in time",
        ))),
    }
}
