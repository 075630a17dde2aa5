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
}

/// One entry's share in a batch. The entry is acknowledged when every share was settled; a
/// share dropped unsettled (the bridge stopped, a queue was full) leaves the entry pending, to
/// be delivered again.
#[derive(Debug)]
pub struct SettleToken {
    entry: Arc<Entry>,
}

#[derive(Debug)]
struct Entry {
    id: String,
    unsettled: AtomicUsize,
    acks: mpsc::Sender<String>,
}

impl SettleToken {
    /// The first share of entry `id`; `acks` is the acker's queue.
    pub fn new(id: String, acks: mpsc::Sender<String>) -> Self {
        SettleToken {
            entry: Arc::new(Entry {
                id,
                unsettled: AtomicUsize::new(1),
                acks,
            }),
        }
    }

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
            // The acker's queue holds every entry in flight, so it has room; a stopped acker
            // leaves the entry pending, which is safe.
            let _ = self.entry.acks.try_send(self.entry.id.clone());
        }
    }
}
