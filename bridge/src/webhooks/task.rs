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
use crate::webhooks::batch::{Backlog, BacklogCharge, SettleToken, WebhookBatch};
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

/// A queue into the webhook pipeline (the webhook task's, or the Redis queue producer's),
/// bounded by messages and, for events, by bytes: while its reader is stuck (Redis away, with
/// the Redis queue) large client events must not pile up without bound.
#[derive(Debug, Clone)]
pub struct WebhookInbox {
    sender: mpsc::Sender<Charged>,
    bytes: Backlog,
}

/// Why [`WebhookInbox::try_send`] did not queue an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxRefused {
    /// Full by count or by bytes: the caller counts the drop.
    Full,
    /// The reader is gone.
    Closed,
}

/// One input with the bytes it holds in its inbox (given back once it was taken).
#[derive(Debug)]
pub struct Charged {
    /// The input.
    pub input: WebhookInput,
    _charge: Option<BacklogCharge>,
}

/// An inbox of at most `messages_max` inputs and `bytes_max` bytes of events, and its reader.
pub fn webhook_inbox(
    messages_max: usize,
    bytes_max: usize,
) -> (WebhookInbox, mpsc::Receiver<Charged>) {
    let (sender, receiver) = mpsc::channel(messages_max);
    let inbox = WebhookInbox {
        sender,
        bytes: Backlog::new(bytes_max),
    };
    (inbox, receiver)
}

impl WebhookInbox {
    /// Queues an event without waiting: `Full` when the inbox is full by count or by bytes
    /// (the caller counts the drop).
    pub fn try_send(&self, input: WebhookInput) -> Result<(), InboxRefused> {
        let bytes = match &input {
            WebhookInput::Event(event) | WebhookInput::Due(event) => {
                event.body.len() + event.channel.len()
            }
            WebhookInput::Config(_) | WebhookInput::Queued { .. } => 0,
        };
        let Some(charge) = self.bytes.charge(bytes) else {
            return Err(InboxRefused::Full);
        };
        let charged = Charged {
            input,
            _charge: Some(charge),
        };
        self.sender.try_send(charged).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => InboxRefused::Full,
            mpsc::error::TrySendError::Closed(_) => InboxRefused::Closed,
        })
    }

    /// Queues an input, waiting for room by count. Settings and Redis queue entries go this
    /// way; they are not counted in bytes (entries are bounded by the consumer's in-flight
    /// count, and wait safely in Redis). `Err` when the reader is gone.
    pub async fn send(&self, input: WebhookInput) -> Result<(), WebhookInput> {
        let charged = Charged {
            input,
            _charge: None,
        };
        self.sender.send(charged).await.map_err(|err| err.0.input)
    }

    /// The reader is gone.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// The ids of the apps the router has webhook settings for; `None` until the engine's settings
/// are in. The Redis queue's consumer reads these apps' streams, the due task takes these apps'
/// leaves and lists them in Redis.
pub type AppsWatch = watch::Receiver<Option<Arc<Vec<String>>>>;

/// Runs until every sender of `inputs` is gone. `apps` is set after every settings document
/// (see [`AppsWatch`]).
pub async fn run_webhooks(
    mut router: WebhookRouter,
    mut inputs: mpsc::Receiver<Charged>,
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
                    Ok(input) => input.map(|c| Some(c.input)),
                    Err(_) => Some(None), // a deadline came
                }
            }
            None => inputs.recv().await.map(|c| Some(c.input)),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ringcast_core::app::WebhookEventType;

    fn event(body_bytes: usize) -> WebhookInput {
        WebhookInput::Event(HookEvent {
            app_id: "1".into(),
            channel: "c".into(),
            kind: WebhookEventType::ClientEvent,
            body: Bytes::from(vec![b'x'; body_bytes]),
        })
    }

    #[test]
    fn the_inbox_refuses_events_past_its_bytes_and_takes_more_once_they_are_read() {
        let (inbox, mut reader) = webhook_inbox(100, 1_000);
        inbox.try_send(event(600)).unwrap();
        assert!(
            inbox.try_send(event(600)) == Err(InboxRefused::Full),
            "601 + 601 bytes do not fit in 1000"
        );
        inbox.try_send(event(300)).unwrap();
        drop(reader.try_recv().unwrap()); // the 600-byte event is taken and handled
        inbox.try_send(event(600)).unwrap();
        assert_eq!(reader.len(), 2);
    }

    #[test]
    fn settings_are_never_refused_for_their_size() {
        let (inbox, mut reader) = webhook_inbox(100, 10);
        inbox
            .try_send(WebhookInput::Config(Bytes::from(vec![b'{'; 1_000])))
            .unwrap();
        assert!(matches!(
            reader.try_recv().unwrap().input,
            WebhookInput::Config(_)
        ));
    }
}
