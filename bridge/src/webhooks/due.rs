//! The due task of a cluster (several nodes on one Redis): a last leave (`member_removed`,
//! `channel_vacated`) waits in Redis's delayed set for the leave delay; every bridge polls the
//! set and a script hands each due leave to exactly one of them, which passes it to the webhook
//! task (a rejoin anywhere took it out before it was due). With the Redis queue the scripts
//! queue the events themselves (in the same atomic step) and nothing comes back here.

use std::sync::Arc;
use std::time::Duration;

use crate::counters::BridgeCounters;
use crate::limits::{
    REDIS_COMMAND_TIMEOUT_MS, WEBHOOK_DUE_BATCH_MAX, WEBHOOK_DUE_POLL_INTERVAL_MS,
};
use crate::redis::connect::RedisClient;
use crate::redis::layout::{webhook_due_key, ScriptKeys};
use crate::redis::scripts::{Hooks, Scripts};
use crate::redis::session::RedisSession;
use crate::webhooks::events::forward;
use crate::webhooks::task::WebhookInput;
use tokio::sync::{mpsc, watch};

/// Runs until the webhook task is gone: takes due leaves from Redis every
/// [`WEBHOOK_DUE_POLL_INTERVAL_MS`] (every bridge does; the script gives each to one). Starts once the
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
    let mut session = RedisSession::for_state(client, "webhook due task");
    let limit = WEBHOOK_DUE_BATCH_MAX.to_string();
    let delayed = webhook_due_key(&keys.prefix);
    loop {
        if webhooks.is_closed() {
            return;
        }
        let Some(open) = session.connection().await else {
            session.wait_retry().await;
            continue;
        };
        let taken = tokio::time::timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            scripts
                .take_due
                .run::<(usize, Hooks)>(open, &[&delayed], &[limit.as_bytes()]),
        )
        .await;
        match taken {
            Ok(Ok((taken, hooks))) => {
                session.succeeded();
                // With the Redis queue the script queued them itself (`hooks` is empty).
                let full = taken >= WEBHOOK_DUE_BATCH_MAX;
                forward(hooks, true, &webhooks, &counters);
                if full {
                    continue; // more are due right now
                }
            }
            Ok(Err(err)) => {
                tracing::debug!("webhook due task: {err}");
                session.failed();
            }
            Err(_) => session.failed(),
        }
        tokio::time::sleep(Duration::from_millis(WEBHOOK_DUE_POLL_INTERVAL_MS)).await;
    }
}
