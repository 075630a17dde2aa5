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

use crate::backoff::Backoff;
use crate::counters::{self, BridgeCounters};
use crate::redis::connect::{self, RedisClient, RedisConnection};
use crate::redis::layout::{is_sharded_channel, slot_of};
use bytes::Bytes;
use tokio::sync::mpsc;

/// Capacity of the publish queue, in messages.
pub const PUBLISH_QUEUE_MESSAGES_MAX: usize = 65_536;
/// Most PUBLISH commands in one pipeline.
const BATCH_MESSAGES_MAX: usize = 1_024;
/// A batch stops growing once its payloads reach this size (one frame can be 2 MiB).
const BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for a pipeline's answers; generous so that a busy machine does not make a
/// healthy Redis look dead (the library's default is 500 ms).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// How long Redis keeps a cache channel's last event (specs/pusher.md §5: 30 minutes).
pub const CACHE_TTL_MS: u64 = 30 * 60 * 1000;

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
    let mut connection: Option<RedisConnection> = None;
    let mut backoff = Backoff::for_redis();
    let mut failing = false;
    let mut batch: Vec<Outbound> = Vec::with_capacity(BATCH_MESSAGES_MAX);
    while let Some(first) = queue.recv().await {
        let mut batch_bytes = first.payload.len();
        batch.push(first);
        while batch.len() < BATCH_MESSAGES_MAX && batch_bytes < BATCH_BYTES_MAX {
            match queue.try_recv() {
                Ok(outbound) => {
                    batch_bytes += outbound.payload.len();
                    batch.push(outbound);
                }
                Err(_) => break,
            }
        }
        let (failed, error) = match connection.as_mut() {
            Some(open) => publish(open, &layout, &batch).await,
            None => match connect::open(&client, CONNECT_TIMEOUT, RESPONSE_TIMEOUT).await {
                Ok(mut open) => {
                    let outcome = publish(&mut open, &layout, &batch).await;
                    connection = Some(open);
                    outcome
                }
                Err(err) => (batch.len(), Some(err)),
            },
        };
        counters::add(&counters.publishes_relayed, (batch.len() - failed) as u64);
        counters.drops.publish_failed.add(failed as u64);
        match error {
            None => {
                backoff.reset();
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
                connection = None;
                let delay = backoff.next_delay();
                if failing {
                    tracing::debug!(
                        retry_in_ms = delay.as_millis(),
                        "redis publish failed: {err}"
                    );
                } else {
                    failing = true;
                    tracing::warn!(
                        retry_in_ms = delay.as_millis(),
                        "redis publish failed: {err}"
                    );
                }
                // Publishes arriving meanwhile wait in the bounded queue or are dropped there.
                tokio::time::sleep(delay).await;
            }
        }
        batch.clear();
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
            .arg(CACHE_TTL_MS)
            .ignore();
    }
    pipeline
        .cmd(command)
        .arg(&outbound.redis_channel)
        .arg(&outbound.payload[..])
        .ignore();
}
