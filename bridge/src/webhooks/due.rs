//! Webhook events of a cluster (several nodes on one Redis): the member and occupancy events
//! that the presence scripts return (first joins) or put in the delayed set (last leaves)
//! become [`HookEvent`]s for the webhook task, and the due task takes the delayed leaves whose
//! 3 s passed without a rejoin anywhere. The scripts decide cluster-wide and atomically, so each
//! event is made by exactly one bridge. With the Redis queue the scripts queue the events
//! themselves (in the same atomic step) and nothing comes back here.

use std::sync::Arc;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::counters::BridgeCounters;
use crate::redis::connect::{self, RedisClient, RedisConnection};
use crate::redis::layout::{webhook_due_key, ScriptKeys};
use crate::redis::scripts::{Hooks, Scripts};
use crate::webhooks::events::forward;
use crate::webhooks::task::WebhookInput;
use tokio::sync::{mpsc, watch};

/// How often the delayed leaves are checked.
const DUE_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Most delayed leaves taken by one script run (the task runs again at once when it got that
/// many).
const DUE_BATCH_MAX: usize = 512;
/// Longest wait for Redis.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs until the webhook task is gone: takes due leaves from Redis every
/// [`DUE_POLL_INTERVAL`] (every bridge does; the script gives each to one). Starts once the
/// engine's webhook settings are in (`configured`), so that nothing taken is routed without
/// them.
pub async fn run_due(
    client: RedisClient,
    keys: ScriptKeys,
    webhooks: mpsc::Sender<WebhookInput>,
    mut configured: watch::Receiver<bool>,
    counters: Arc<BridgeCounters>,
) {
    if configured.wait_for(|known| *known).await.is_err() {
        return;
    }
    let mut scripts = Scripts::new(&keys);
    let mut connection: Option<RedisConnection> = None;
    let mut backoff = Backoff::for_redis();
    let limit = DUE_BATCH_MAX.to_string();
    let delayed = webhook_due_key(&keys.prefix);
    loop {
        if webhooks.is_closed() {
            return;
        }
        let Some(open) = connection.as_mut() else {
            match connect::open(&client, REDIS_TIMEOUT, REDIS_TIMEOUT).await {
                Ok(opened) => {
                    backoff.reset();
                    connection = Some(opened);
                }
                Err(err) => {
                    tracing::debug!("webhook due task: cannot connect to redis: {err}");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
            continue;
        };
        let taken = tokio::time::timeout(
            REDIS_TIMEOUT,
            scripts
                .take_due
                .run::<(usize, Hooks)>(open, &[&delayed], &[limit.as_bytes()]),
        )
        .await;
        match taken {
            Ok(Ok((taken, hooks))) => {
                // With the Redis queue the script queued them itself (`hooks` is empty).
                let full = taken >= DUE_BATCH_MAX;
                forward(hooks, true, &webhooks, &counters);
                if full {
                    continue; // more are due right now
                }
            }
            Ok(Err(err)) => {
                tracing::debug!("webhook due task: {err}");
                connection = None;
            }
            Err(_) => connection = None,
        }
        tokio::time::sleep(DUE_POLL_INTERVAL).await;
    }
}
