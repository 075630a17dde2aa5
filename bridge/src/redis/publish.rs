//! The Redis publisher task: drains the bounded publish queue in batches and sends each batch
//! as one pipeline of PUBLISH commands on one connection — one round trip per batch, and the
//! order in which the node's shards published is the order Redis sees. On a Redis Cluster a
//! pipeline must stay in one hash slot: a batch goes as one pipeline per slot, all at once (one
//! channel's messages share a slot, so their order holds), with SPUBLISH for the sharded
//! channels. A batch Redis does not take is dropped (and counted), and the connection is
//! reopened with backoff; nothing queues up beyond the bounded queue meanwhile.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::counters::{self, BridgeCounters};
use crate::limits::{
    PUBLISH_BATCH_BYTES_MAX, PUBLISH_BATCH_MESSAGES_MAX, REDIS_CONNECT_TIMEOUT_MS,
    REDIS_PUBLISH_TIMEOUT_MS,
};
use crate::redis::connect::{RedisClient, RedisConnection};
use crate::redis::layout::{is_sharded_channel, slot_of};
use crate::redis::session::RedisSession;
use bytes::Bytes;
use ringcast_core::limits::CACHE_TTL_S;
use tokio::sync::mpsc;

/// One message for Redis.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Redis channel name.
    pub redis_channel: String,
    /// The envelope.
    pub payload: Bytes,
    /// A cache channel's event: stored under this key (with the frame) before it is published,
    /// as the channel's last event for 30 minutes.
    pub cache: Option<(String, Bytes)>,
}

/// How the publisher names its commands on a Redis Cluster.
pub struct PublishLayout {
    /// The prefix of the pub/sub channels (tells message channels from the others).
    pub prefix: String,
    /// The cluster has sharded pub/sub (set by the subscriber, which finds out).
    pub sharded: Arc<AtomicBool>,
}

/// Runs until every sender of `queue` is gone.
pub async fn run_publisher(
    client: RedisClient,
    layout: PublishLayout,
    mut queue: mpsc::Receiver<Outbound>,
    counters: Arc<BridgeCounters>,
) {
    let mut session = RedisSession::new(
        client,
        "redis publisher",
        Duration::from_millis(REDIS_CONNECT_TIMEOUT_MS),
        Duration::from_millis(REDIS_PUBLISH_TIMEOUT_MS),
    );
    let mut failing = false;
    let mut batch: Vec<Outbound> = Vec::with_capacity(PUBLISH_BATCH_MESSAGES_MAX);
    while let Some(first) = queue.recv().await {
        let mut batch_bytes = first.payload.len();
        batch.push(first);
        while batch.len() < PUBLISH_BATCH_MESSAGES_MAX && batch_bytes < PUBLISH_BATCH_BYTES_MAX {
            match queue.try_recv() {
                Ok(outbound) => {
                    batch_bytes += outbound.payload.len();
                    batch.push(outbound);
                }
                Err(_) => break,
            }
        }
        let Some(open) = session.connection().await else {
            // Dropped, counted: publishes arriving meanwhile wait in the bounded queue.
            counters.drops.publish_failed.add(batch.len() as u64);
            let reason = session.connect_error().unwrap_or("waiting to reconnect");
            log_failure(&mut failing, session.retry_in(), reason);
            session.wait_retry().await;
            batch.clear();
            continue;
        };
        let (failed, error) = publish(open, &layout, &batch).await;
        counters::add(&counters.publishes_relayed, (batch.len() - failed) as u64);
        counters.drops.publish_failed.add(failed as u64);
        match error {
            None => {
                session.succeeded();
                if failing {
                    failing = false;
                    tracing::info!("redis publishing resumed");
                }
            }
            // Some masters of a cluster took their share: the connection works (the library
            // reconnects the others); the failed share is dropped.
            Some(err) if failed < batch.len() => {
                if !failing {
                    failing = true;
                    tracing::warn!(failed, "redis cluster publish partly failed: {err}");
                }
            }
            Some(err) => {
                session.failed();
                log_failure(&mut failing, session.retry_in(), &err.to_string());
                // Publishes arriving meanwhile wait in the bounded queue or are dropped there.
                session.wait_retry().await;
            }
        }
        batch.clear();
    }
}

/// Logs a failed publish: a warning when publishing starts failing, then at debug level.
fn log_failure(failing: &mut bool, retry_in: Duration, reason: &str) {
    let retry_in_ms = retry_in.as_millis();
    if *failing {
        tracing::debug!(retry_in_ms, "redis publish failed: {reason}");
    } else {
        *failing = true;
        tracing::warn!(retry_in_ms, "redis publish failed: {reason}");
    }
}

/// Sends `batch`; answers how many of its messages Redis did not take, and why.
async fn publish(
    connection: &mut RedisConnection,
    layout: &PublishLayout,
    batch: &[Outbound],
) -> (usize, Option<redis::RedisError>) {
    let RedisConnection::Cluster(_) = connection else {
        let mut pipeline = redis::Pipeline::with_capacity(batch.len());
        for outbound in batch {
            add_publish(&mut pipeline, "PUBLISH", outbound);
        }
        return match pipeline.query_async::<()>(connection).await {
            Ok(()) => (0, None),
            Err(err) => (batch.len(), Some(err)),
        };
    };
    let sharded = layout.sharded.load(Ordering::Relaxed);
    // Per slot: the pipeline and how many messages it carries.
    let mut by_slot: HashMap<u16, (redis::Pipeline, usize), ahash::RandomState> =
        HashMap::default();
    for outbound in batch {
        let command = if sharded && is_sharded_channel(&layout.prefix, &outbound.redis_channel) {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let slot = slot_of(outbound.redis_channel.as_bytes());
        let (pipeline, messages) = by_slot.entry(slot).or_default();
        add_publish(pipeline, command, outbound);
        *messages += 1;
    }
    let sends = by_slot.into_values().map(|(pipeline, messages)| {
        let mut connection = connection.clone();
        async move { (messages, pipeline.query_async::<()>(&mut connection).await) }
    });
    let mut failed = 0;
    let mut error = None;
    for (messages, result) in futures_util::future::join_all(sends).await {
        if let Err(err) = result {
            failed += messages;
            error.get_or_insert(err);
        }
    }
    (failed, error)
}

/// Adds the commands of `outbound` to `pipeline`: the cache SET (same slot as its channel), then
/// the publish.
fn add_publish(pipeline: &mut redis::Pipeline, command: &str, outbound: &Outbound) {
    if let Some((key, frame)) = &outbound.cache {
        pipeline
            .cmd("SET")
            .arg(key)
            .arg(&frame[..])
            .arg("PX")
            .arg(CACHE_TTL_S * 1_000)
            .ignore();
    }
    pipeline
        .cmd(command)
        .arg(&outbound.redis_channel)
        .arg(&outbound.payload[..])
        .ignore();
}
