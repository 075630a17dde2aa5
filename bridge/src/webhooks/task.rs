//! The task that owns the [`WebhookRouter`]: it takes the engine's webhook settings and events
//! (and, with Redis, the cluster's member and occupancy events) from one bounded queue, wakes
//! for the router's delays and batch windows, and hands finished batches to the sender's queue
//! without waiting (a full queue drops them, counted: a stuck receiver must not stall the links).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast_core::link::HookEvent;
use tokio::sync::{mpsc, watch};

use crate::counters::BridgeCounters;
use crate::webhooks::batch::{SettleToken, WebhookBatch};
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

/// Runs until every sender of `inputs` is gone. `configured` turns true once the engine's
/// settings are in (the Redis queue's consumer waits for it: an entry routed without them
/// would be dropped as unwanted).
pub async fn run_webhooks(
    mut router: WebhookRouter,
    mut inputs: mpsc::Receiver<WebhookInput>,
    sender: mpsc::Sender<WebhookBatch>,
    configured: watch::Sender<bool>,
    counters: Arc<BridgeCounters>,
) {
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
                        configured.send_replace(true);
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
        for batch in ready {
            let events = batch.events.len() as u64;
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
