//! Outcome counters of the bridge's outbound calls (auth offload, channel functions, webhook
//! deliveries): kept here, below the parts that add to them, so the counter snapshot needs none
//! of those parts.

use std::sync::atomic::AtomicU64;

/// What became of the authorizations; every request counts in exactly one of the first four.
#[derive(Debug, Default)]
pub struct AuthCounters {
    /// The endpoint granted (2xx with an `auth`).
    pub granted: AtomicU64,
    /// The endpoint refused (non-2xx) or answered without a valid `auth`.
    pub refused: AtomicU64,
    /// The endpoint did not answer (timeout, connect error, broken exchange, unusable URL).
    pub failed: AtomicU64,
    /// Refused by the bridge without asking: queue full or too many in flight.
    pub shed: AtomicU64,
    /// Answers lost because the asking link's queue was full or the link was gone (the
    /// engine's own timeout then answers the subscriber).
    pub replies_dropped: AtomicU64,
}

/// What became of the channel-function pipelines; every request counts in exactly one of the
/// first three.
#[derive(Debug, Default)]
pub struct FunctionCounters {
    /// Every function answered usably; the result went back to the engine.
    pub done: AtomicU64,
    /// A function failed (non-2xx, timeout, connect error, unusable answer): the pipeline
    /// stopped there.
    pub failed: AtomicU64,
    /// Refused by the bridge without calling anything: a bound reached, the pipeline's deadline
    /// passed in its channel's queue, or the asking link gone.
    pub shed: AtomicU64,
    /// Answers lost because the asking link's queue was full or the link was gone (the
    /// engine's own wait then ends the message's pipeline).
    pub replies_dropped: AtomicU64,
}

/// What became of the WebSocket-over-HTTP calls; every call counts in exactly one of the first
/// three.
#[derive(Debug, Default)]
pub struct SlipCounters {
    /// The backend answered (any status: the engine judges the answer).
    pub answered: AtomicU64,
    /// No answer: timeout, connect error, a body over the bound.
    pub failed: AtomicU64,
    /// Refused by the bridge without calling: a bound reached, the call's deadline passed in
    /// its connection's queue, or the asking link gone.
    pub shed: AtomicU64,
    /// Answers lost because the asking link's queue was full or the link was gone (the
    /// engine's own wait then ends the call).
    pub replies_dropped: AtomicU64,
}

/// What the sender did, for the stats reporter.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    /// Events in batches a receiver answered 2xx.
    pub events_delivered: AtomicU64,
    /// Requests answered 2xx.
    pub requests_ok: AtomicU64,
    /// Attempts that failed (non-2xx, connect error, timeout, ...), each counted.
    pub requests_failed: AtomicU64,
    /// Events in batches abandoned after the give-up deadline or an unusable request.
    pub events_given_up: AtomicU64,
    /// Events the producers dropped because the queue was full (counted by the producers).
    pub events_dropped_queue_full: AtomicU64,
    /// Gauge: events in batches held by the sender (queued inside it, in flight, awaiting retry).
    pub events_pending: AtomicU64,
}
