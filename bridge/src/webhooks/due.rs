//! The due task of a node on Redis: a last leave (`member_removed`, `channel_vacated`) waits in
//! its app's delayed set in Redis for the leave delay; every bridge polls the sets of the apps
//! it has webhook settings for, and a script hands each due leave to exactly one of them, which
//! passes it to the webhook task (a rejoin anywhere took it out before it was due). With the
//! Redis queue the scripts queue the events themselves (in the same atomic step) and nothing
//! comes back here.
//!
//! The task also keeps the node's apps listed in Redis (`{prefix}#webhooks#apps`), at once
//! after every settings change and every [`WEBHOOK_APPS_REFRESH_MS`]: the scripts keep leaves
//! and queue events only for listed apps.

use std::sync::Arc;
use std::time::Duration;

use crate::counters::BridgeCounters;
use crate::limits::{
    REDIS_COMMAND_TIMEOUT_MS, WEBHOOK_APPS_REFRESH_MS, WEBHOOK_APPS_TTL_MS, WEBHOOK_DUE_BATCH_MAX,
    WEBHOOK_DUE_POLL_INTERVAL_MS, WEBHOOK_STREAMS_PER_COMMAND_MAX,
};
use crate::redis::connect::{RedisClient, RedisConnection};
use crate::redis::layout::{webhook_apps_key, webhook_due_key, ScriptKeys};
use crate::redis::scripts::{Hooks, Scripts};
use crate::redis::session::RedisSession;
use crate::webhooks::events::forward;
use crate::webhooks::task::{AppsWatch, WebhookInbox};
use tokio::sync::watch;
use tokio::time::Instant;

/// Runs until the webhook task is gone: lists the node's apps and takes their due leaves from
/// Redis every [`WEBHOOK_DUE_POLL_INTERVAL_MS`] (every bridge does; the script gives each to
/// one). Starts once the engine's webhook settings are in (`apps`), so that nothing taken is
/// routed without them. `listed` turns true after the first listing: the presence task waits
/// for it (briefly), so the first joins after a cold start of the cluster make their webhooks.
pub async fn run_due(
    client: RedisClient,
    keys: ScriptKeys,
    webhooks: WebhookInbox,
    mut apps: AppsWatch,
    listed: watch::Sender<bool>,
    counters: Arc<BridgeCounters>,
) {
    if apps.wait_for(Option::is_some).await.is_err() {
        return;
    }
    let mut scripts = Scripts::new(&keys);
    let mut session = RedisSession::for_state(client, "webhook due task");
    let mut known: Arc<Vec<String>> = Arc::default();
    let mut delayed: Vec<String> = Vec::new();
    let mut next_listing = Instant::now();
    let mut first = true;
    loop {
        if webhooks.is_closed() {
            return;
        }
        if std::mem::take(&mut first) || apps.has_changed().unwrap_or(false) {
            known = apps.borrow_and_update().clone().unwrap_or_default();
            delayed = known
                .iter()
                .map(|app| webhook_due_key(&keys.prefix, app))
                .collect();
            next_listing = Instant::now();
        }
        let Some(open) = session.connection().await else {
            session.wait_retry().await;
            continue;
        };
        if Instant::now() >= next_listing {
            match list_apps(open, &mut scripts, &keys, &known).await {
                Ok(()) => {
                    listed.send_replace(true);
                    next_listing = Instant::now() + Duration::from_millis(WEBHOOK_APPS_REFRESH_MS);
                }
                Err(err) => {
                    tracing::debug!("webhook due task: cannot list the apps: {err}");
                    session.failed();
                    session.wait_retry().await;
                    continue;
                }
            }
        }
        let mut full = false;
        for chunk in delayed.chunks(WEBHOOK_STREAMS_PER_COMMAND_MAX) {
            match take_due(open, &mut scripts, chunk).await {
                Ok((taken, hooks)) => {
                    // With the Redis queue the script queued them itself (`hooks` is empty).
                    full |= taken >= WEBHOOK_DUE_BATCH_MAX;
                    forward(hooks, true, &webhooks, &counters);
                }
                Err(err) => {
                    tracing::debug!("webhook due task: {err}");
                    session.failed();
                    break;
                }
            }
        }
        if session.is_connected() {
            session.succeeded();
            if full {
                continue; // more are due right now
            }
        }
        tokio::time::sleep(Duration::from_millis(WEBHOOK_DUE_POLL_INTERVAL_MS)).await;
    }
}

/// Lists `apps` in Redis as wanting webhooks for [`WEBHOOK_APPS_TTL_MS`] more.
async fn list_apps(
    connection: &mut RedisConnection,
    scripts: &mut Scripts,
    keys: &ScriptKeys,
    apps: &[String],
) -> redis::RedisResult<()> {
    let hash = webhook_apps_key(&keys.prefix);
    let ttl = WEBHOOK_APPS_TTL_MS.to_string();
    for chunk in apps.chunks(WEBHOOK_STREAMS_PER_COMMAND_MAX) {
        let mut args: Vec<&[u8]> = Vec::with_capacity(chunk.len() + 1);
        args.push(ttl.as_bytes());
        args.extend(chunk.iter().map(|app| app.as_bytes()));
        within_deadline(
            scripts
                .register_apps
                .run::<i64>(connection, &[&hash], &args),
        )
        .await?;
    }
    Ok(())
}

/// Takes the due leaves of the apps whose delayed sets are `delayed`.
async fn take_due(
    connection: &mut RedisConnection,
    scripts: &mut Scripts,
    delayed: &[String],
) -> redis::RedisResult<(usize, Hooks)> {
    let limit = WEBHOOK_DUE_BATCH_MAX.to_string();
    let keys: Vec<&str> = delayed.iter().map(String::as_str).collect();
    within_deadline(
        scripts
            .take_due
            .run::<(usize, Hooks)>(connection, &keys, &[limit.as_bytes()]),
    )
    .await
}

/// A Redis call that did not answer within [`REDIS_COMMAND_TIMEOUT_MS`] failed.
async fn within_deadline<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS), call).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "no answer in time",
        ))),
    }
}
