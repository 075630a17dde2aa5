//! The cluster's subscription count of a channel, for `subscription_count` webhooks with several
//! nodes: each node's bridge writes its node's count (coalesced by `subscription_counts`) into
//! Redis with one script that also sums the live nodes' counts atomically, and sends the event
//! with that sum. So every change anywhere makes one event from the node where it happened, and
//! each event carries the cluster's count as of that change.
//!
//! A count Redis does not take is dropped (logged): the channel's next change corrects it. A
//! dead node's counts leave the sum once it is reaped (at the channel's next change).

use std::sync::Arc;
use std::time::Duration;

use ringcast_core::app::WebhookEventType;
use ringcast_core::link::HookEvent;
use ringcast_core::webhook_config::subscription_count_body;
use tokio::sync::mpsc;

use crate::backoff::Backoff;
use crate::envelope::redis_channel_name;
use crate::presence_scripts::{subscriptions_key, NodeKeys, Scripts};
use crate::redis_connect::{self, RedisClient, RedisConnection};
use crate::stats::{add, BridgeCounters};
use crate::subscription_counts::NodeCount;
use crate::webhook_task::WebhookInput;

/// Capacity of the task's queue, in node counts.
pub const CLUSTER_COUNT_QUEUE_MAX: usize = 65_536;
/// Longest wait for Redis.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs until every sender of `inputs` is gone.
pub async fn run_cluster_counts(
    client: RedisClient,
    keys: NodeKeys,
    presence_ttl: Duration,
    mut inputs: mpsc::Receiver<NodeCount>,
    webhooks: mpsc::Sender<WebhookInput>,
    counters: Arc<BridgeCounters>,
) {
    let mut scripts = Scripts::new(&keys.script_keys());
    let mut connection: Option<RedisConnection> = None;
    let mut backoff = Backoff::for_redis();
    let node_id = keys.node_id.to_string();
    let ttl_ms = presence_ttl.as_millis().to_string();
    let (nodes, heartbeat) = (keys.nodes(), keys.heartbeat());
    while let Some(count) = inputs.recv().await {
        let open = match connection.as_mut() {
            Some(open) => open,
            None => {
                match redis_connect::open(&client, REDIS_TIMEOUT, REDIS_TIMEOUT).await {
                    Ok(opened) => {
                        backoff.reset();
                        connection.insert(opened)
                    }
                    Err(err) => {
                        tracing::warn!(
                            channel = %count.channel,
                            "subscription count not summed: cannot connect to redis: {err}"
                        );
                        // Counts arriving meanwhile wait in the bounded queue.
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                }
            }
        };
        let counts_key = subscriptions_key(&redis_channel_name(
            &keys.prefix,
            &count.app_id,
            &count.channel,
        ));
        let node_count = count.total.to_string();
        let summed = tokio::time::timeout(
            REDIS_TIMEOUT,
            scripts.subscription_count.run::<u64>(
                open,
                &[&counts_key, &nodes, &heartbeat],
                &[node_id.as_bytes(), node_count.as_bytes(), ttl_ms.as_bytes()],
            ),
        )
        .await;
        let total = match summed {
            Ok(Ok(total)) => total,
            Ok(Err(err)) => {
                tracing::warn!(channel = %count.channel, "subscription count not summed: {err}");
                connection = None;
                continue;
            }
            Err(_) => {
                tracing::warn!(channel = %count.channel, "subscription count not summed: redis timed out");
                connection = None;
                continue;
            }
        };
        let body = subscription_count_body(&count.channel, total);
        let event = HookEvent {
            app_id: count.app_id,
            channel: count.channel,
            kind: WebhookEventType::SubscriptionCount,
            body: body.into(),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) =
            webhooks.try_send(WebhookInput::Event(event))
        {
            add(&counters.webhooks.events_dropped_queue_full, 1);
        }
    }
}
