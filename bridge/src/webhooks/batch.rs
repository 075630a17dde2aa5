//! The types every webhook stage passes along: where an app's webhooks go
//! ([`WebhookTarget`]), a batch of events for one request ([`WebhookBatch`]), and the share of a
//! Redis queue entry a batch must settle before the entry is acknowledged ([`SettleToken`]).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::outbound::http::url_host;

/// Where and how an app's webhooks are sent.
#[derive(Clone)]
pub struct WebhookTarget {
    /// App id: the key of the per-app concurrency bound.
    pub app_id: String,
    /// Absolute http:// or https:// URL of the receiver.
    pub url: String,
    /// Sent as `X-Pusher-Key`.
    pub app_key: String,
    /// HMAC key of `X-Pusher-Signature`; never sent, never logged.
    pub app_secret: String,
    /// Extra headers of this webhook; reserved names are dropped.
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for WebhookTarget {
    // Hand-written so that the secret and header values (often credentials) never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WebhookTarget")
            .field("app_id", &self.app_id)
            .field("url_host", &url_host(&self.url))
            .field("app_key", &self.app_key)
            .field("app_secret", &"<redacted>")
            .field("header_names", &header_names)
            .finish()
    }
}

/// Events of one app to deliver in one request.
#[derive(Debug)]
pub struct WebhookBatch {
    /// The receiver.
    pub target: Arc<WebhookTarget>,
    /// Each a complete JSON object text, spliced raw into `"events"`.
    pub events: Vec<Bytes>,
    /// Settled once the batch is delivered or given up (the Redis queue acknowledges its
    /// entries then); a batch dropped before that leaves its entries to be delivered again.
    pub settle: Vec<SettleToken>,
    /// The batch's bytes in the webhook backlog, given back when the batch is dropped
    /// (delivered, given up); set by the webhook task as it hands the batch to the sender.
    pub charge: Option<BacklogCharge>,
}

impl WebhookBatch {
    /// The bytes of its events.
    pub fn bytes(&self) -> usize {
        self.events.iter().map(Bytes::len).sum()
    }
}

/// The bytes of webhook events in batches the sender holds (queued, in flight, awaiting a
/// retry): while a receiver is down, this is where events pile up, so it is bounded in bytes
/// (a batch over the bound is dropped, counted).
#[derive(Debug, Clone)]
pub struct Backlog {
    bytes: Arc<AtomicUsize>,
    bytes_max: usize,
}

impl Backlog {
    /// An empty backlog of at most `bytes_max` bytes.
    pub fn new(bytes_max: usize) -> Self {
        Backlog {
            bytes: Arc::new(AtomicUsize::new(0)),
            bytes_max,
        }
    }

    /// Bytes held now.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// Takes `bytes` for a batch, or `None` when they would pass the bound.
    pub fn charge(&self, bytes: usize) -> Option<BacklogCharge> {
        let mut held = self.bytes.load(Ordering::Acquire);
        loop {
            let next = held
                .checked_add(bytes)
                .filter(|next| *next <= self.bytes_max)?;
            match self
                .bytes
                .compare_exchange_weak(held, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some(BacklogCharge {
                        backlog: self.clone(),
                        bytes,
                    })
                }
                Err(now) => held = now,
            }
        }
    }
}

/// Bytes taken from a [`Backlog`]; given back on drop.
#[derive(Debug)]
pub struct BacklogCharge {
    backlog: Backlog,
    bytes: usize,
}

impl Drop for BacklogCharge {
    fn drop(&mut self) {
        self.backlog.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Where settled entries go, and how many entries are held in the bridge: the consumer makes
/// every entry's [`SettleToken`] here.
#[derive(Debug, Clone)]
pub struct AckQueue {
    acks: mpsc::Sender<(Arc<str>, String)>,
    /// Entries with a share still out; an entry leaves it when its last share is gone,
    /// settled or dropped (so a dropped entry does not hold room for ever).
    held: Arc<AtomicUsize>,
}

impl AckQueue {
    /// Settled entries go to `acks` (the acker's queue, stream key and entry id).
    pub fn new(acks: mpsc::Sender<(Arc<str>, String)>) -> Self {
        AckQueue {
            acks,
            held: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Entries held now (read and not yet settled or dropped).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// The first share of entry `id` of `stream`.
    pub fn token(&self, stream: Arc<str>, id: String) -> SettleToken {
        self.held.fetch_add(1, Ordering::AcqRel);
        SettleToken {
            entry: Arc::new(Entry {
                stream,
                id,
                unsettled: AtomicUsize::new(1),
                queue: self.clone(),
            }),
        }
    }
}

/// One entry's share in a batch. The entry is acknowledged when every share was settled; a
/// share dropped unsettled (the bridge stopped, a queue was full, the app is not known here)
/// leaves the entry pending, to be delivered again.
#[derive(Debug)]
pub struct SettleToken {
    entry: Arc<Entry>,
}

#[derive(Debug)]
struct Entry {
    /// The stream the entry is in.
    stream: Arc<str>,
    id: String,
    unsettled: AtomicUsize,
    queue: AckQueue,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.queue.held.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SettleToken {
    /// Another share (for another batch).
    pub fn share(&self) -> SettleToken {
        self.entry.unsettled.fetch_add(1, Ordering::AcqRel);
        SettleToken {
            entry: Arc::clone(&self.entry),
        }
    }

    /// This share is done; the last one acknowledges the entry.
    pub fn settle(self) {
        if self.entry.unsettled.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The acker's queue has room for every entry held; a full or stopped acker leaves
            // the entry pending, which is safe (delivered again).
            let ack = (Arc::clone(&self.entry.stream), self.entry.id.clone());
            let _ = self.entry.queue.acks.try_send(ack);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_refuses_past_its_bound_and_charges_come_back_on_drop() {
        let backlog = Backlog::new(100);
        let first = backlog.charge(60);
        assert!(first.is_some());
        assert!(backlog.charge(41).is_none(), "60 + 41 is past 100");
        let second = backlog.charge(40);
        assert!(second.is_some(), "exactly the bound fits");
        assert_eq!(backlog.bytes(), 100);
        drop(first);
        assert_eq!(backlog.bytes(), 40);
        drop(second);
        assert_eq!(backlog.bytes(), 0);
        assert!(backlog.charge(usize::MAX).is_none(), "no overflow");
    }
}
