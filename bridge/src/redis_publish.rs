//! The Redis publisher task: drains the bounded publish queue in batches and sends each batch
//! as one pipeline of PUBLISH commands on one connection — one round trip per batch, and the
//! order in which the node's shards published is the order Redis sees. A batch Redis does not
//! take is dropped (and counted), and the connection is reopened with backoff; nothing queues
//! up beyond the bounded queue meanwhile.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use crate::backoff::Backoff;
use crate::redis_connect;
use crate::stats::{self, BridgeCounters};

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

/// Runs until every sender of `queue` is gone.
pub async fn run_publisher(
    client: redis::Client,
    mut queue: mpsc::Receiver<Outbound>,
    counters: Arc<BridgeCounters>,
) {
    let mut connection: Option<MultiplexedConnection> = None;
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
        let result = match connection.as_mut() {
            Some(open) => publish(open, &batch).await,
            None => match redis_connect::open(&client, CONNECT_TIMEOUT, RESPONSE_TIMEOUT).await {
                Ok(mut open) => {
                    let result = publish(&mut open, &batch).await;
                    connection = Some(open);
                    result
                }
                Err(err) => Err(err),
            },
        };
        match result {
            Ok(()) => {
                stats::add(&counters.publishes_relayed, batch.len() as u64);
                backoff.reset();
                if failing {
                    failing = false;
                    tracing::info!("redis publishing resumed");
                }
            }
            Err(err) => {
                counters.drops.publish_failed.add(batch.len() as u64);
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

async fn publish(
    connection: &mut MultiplexedConnection,
    batch: &[Outbound],
) -> redis::RedisResult<()> {
    let mut pipeline = redis::Pipeline::with_capacity(batch.len());
    for outbound in batch {
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
            .cmd("PUBLISH")
            .arg(&outbound.redis_channel)
            .arg(&outbound.payload[..])
            .ignore();
    }
    pipeline.query_async::<()>(connection).await
}
