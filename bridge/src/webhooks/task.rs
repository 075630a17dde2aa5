//! The task that owns the [`WebhookRouter`]: it takes the engine's webhook settings and events
//! (and, with Redis, the cluster's member and occupancy events) from one bounded queue, wakes
//! for the router's delays and batch windows, and hands finished batches to the sender's queue
//! without waiting (a full queue, or a backlog past [`WEBHOOK_BACKLOG_BYTES_MAX`], drops them,
//! counted: a stuck receiver must not stall the links nor grow the bridge without bound).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast_core::link::HookEvent;
use tokio::sync::{mpsc, watch};

use crate::counters::BridgeCounters;
use crate::limits::WEBHOOK_BACKLOG_BYTES_MAX;
use crate::webhooks::batch::{Backlog, SettleToken, WebhookBatch};
use crate::webhooks::router::WebhookRouter;

/// What the webhook task reacts to.
#[derive(Debug)]
pub enum WebhookInput {
    /// The engine's webhook settings (JSON document, replaces the previous one).
    Config(Bytes),
    /// One event.
    Event(HookEvent),
    /// A leave event whose delay passed in Redis (several nodes): no further delay.
    Due(HookEvent),
    /// An entry of the Redis queue: delays and cancellations already happened.
    Queued {
        /// The event.
        event: HookEvent,
        /// The entry's id: the event's id.
        id: String,
        /// Settled when every batch the event went into is done.
        settle: SettleToken,
    },
}

/// The ids of the apps the router has webhook settings for; `None` until the engine's settings
/// are in. The Redis queue's consumer reads these apps' streams, the due task takes these apps'
/// leaves and lists them in Redis.
pub type AppsWatch = watch::Receiver<Option<Arc<Vec<String>>>>;

/// Runs until every sender of `inputs` is gone. `apps` is set after every settings document
/// (see [`AppsWatch`]).
pub async fn run_webhooks(
    mut router: WebhookRouter,
    mut inputs: mpsc::Receiver<WebhookInput>,
    sender: mpsc::Sender<WebhookBatch>,
    apps: watch::Sender<Option<Arc<Vec<String>>>>,
    counters: Arc<BridgeCounters>,
) {
    let backlog = Backlog::new(WEBHOOK_BACKLOG_BYTES_MAX);
    let origin = Instant::now();
    let now_ms = |origin: Instant| origin.elapsed().as_millis() as u64;
    loop {
        let deadline = router.next_deadline_ms();
        let input = match deadline {
            Some(due_ms) => {
                let wait = Duration::from_millis(due_ms.saturating_sub(now_ms(origin)));
                match tokio::time::timeout(wait, inputs.recv()).await {
                    Ok(input) => input.map(Some),
                    Err(_) => Some(None), // a deadline came
                }
            }
            None => inputs.recv().await.map(Some),
        };
        let Some(input) = input else {
            break;
        };
        let now = now_ms(origin);
        let mut ready = match input {
            Some(WebhookInput::Config(document)) => {
                match router.configure(&document) {
                    Ok(()) => {
                        tracing::debug!("webhook settings received");
                        let known = Arc::new(router.app_ids());
                        apps.send_if_modified(|current| {
                            let changed = current.as_ref() != Some(&known);
                            *current = Some(Arc::clone(&known));
                            changed
                        });
                    }
                    Err(err) => tracing::warn!("{err}"),
                }
                Vec::new()
            }
            Some(WebhookInput::Event(event)) => router.push(event, now),
            Some(WebhookInput::Due(event)) => router.push_due(event, now),
            Some(WebhookInput::Queued { event, id, settle }) => {
                router.push_queued(event, &id, settle, now)
            }
            None => Vec::new(),
        };
        ready.extend(router.tick(now));
        for mut batch in ready {
            let events = batch.events.len() as u64;
            // Past the byte bound the batch is dropped like one that finds the queue full (with
            // the Redis queue its entries stay there, to be delivered again).
            let Some(charge) = backlog.charge(batch.bytes()) else {
                counters
                    .webhooks
                    .events_dropped_queue_full
                    .fetch_add(events, Ordering::Relaxed);
                continue;
            };
            batch.charge = Some(charge);
            if let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(batch) {
                counters
                    .webhooks
                    .events_dropped_queue_full
                    .fetch_add(events, Ordering::Relaxed);
            }
        }
        counters
            .webhook_events_held
            .store(router.held_events() as u64, Ordering::Relaxed);
    }
    // The links are gone: what is still delayed or collected goes out now.
    for batch in router.tick(u64::MAX) {
        let _ = sender.try_send(batch);
    }
}
