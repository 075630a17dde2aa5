//! The bridge's shared counters — Redis connection state, relayed and received messages, the
//! drop counters, the number of linked shards, webhook, auth and channel-function outcomes — and
//! their [`BridgeStats`] snapshot, which the engine shards receive once a second. The tasks only
//! ever add to them; nothing here waits.

pub mod drops;
pub mod outcomes;

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;

use ringcast_core::link::BridgeStats;

use crate::counters::drops::Drops;
use crate::counters::outcomes::{AuthCounters, FunctionCounters, SlipCounters, WebhookCounters};

/// Every counter of the process, shared by the tasks.
#[derive(Debug)]
pub struct BridgeCounters {
    /// Messages dropped on purpose, by kind.
    pub drops: Drops,
    /// The Redis pub/sub (subscriber) connection is up.
    pub redis_connected: AtomicBool,
    /// Times the subscriber connected again after losing Redis (the first connect not counted).
    pub redis_reconnects: AtomicU64,
    /// PUBLISH commands Redis accepted.
    pub publishes_relayed: AtomicU64,
    /// Messages received from Redis pub/sub, this node's own included.
    pub messages_received: AtomicU64,
    /// Engine shards linked right now (kept by the hub task).
    pub links: AtomicU16,
    /// The webhook sender's outcomes.
    pub webhooks: Arc<WebhookCounters>,
    /// Webhook events delayed or being batched by the webhook task.
    pub webhook_events_held: AtomicU64,
    /// Auth offload outcomes.
    pub auth: Arc<AuthCounters>,
    /// Channel-function pipeline outcomes.
    pub functions: Arc<FunctionCounters>,
    /// WebSocket-over-HTTP call outcomes.
    pub slip: Arc<SlipCounters>,
}

impl BridgeCounters {
    /// Everything at zero, Redis not connected.
    pub fn new() -> Self {
        Self {
            drops: Drops::new(),
            redis_connected: AtomicBool::new(false),
            redis_reconnects: AtomicU64::new(0),
            publishes_relayed: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            links: AtomicU16::new(0),
            webhooks: Arc::new(WebhookCounters::default()),
            webhook_events_held: AtomicU64::new(0),
            auth: Arc::new(AuthCounters::default()),
            functions: Arc::new(FunctionCounters::default()),
            slip: Arc::new(SlipCounters::default()),
        }
    }

    /// The counters as they are now. `publish_queue_depth` is the publisher queue's length,
    /// which only its senders can see.
    pub fn snapshot(&self, publish_queue_depth: usize) -> BridgeStats {
        BridgeStats {
            redis_connected: self.redis_connected.load(Ordering::Relaxed),
            redis_reconnects: self.redis_reconnects.load(Ordering::Relaxed),
            publishes_relayed: self.publishes_relayed.load(Ordering::Relaxed),
            publishes_dropped: self
                .drops
                .publish_queue_full
                .total()
                .saturating_add(self.drops.publish_failed.total()),
            messages_received: self.messages_received.load(Ordering::Relaxed),
            deliveries_dropped: self.drops.delivery_queue_full.total(),
            publish_queue_depth: u32::try_from(publish_queue_depth).unwrap_or(u32::MAX),
            links: self.links.load(Ordering::Relaxed),
            webhook_events_delivered: self.webhooks.events_delivered.load(Ordering::Relaxed),
            webhook_requests_failed: self.webhooks.requests_failed.load(Ordering::Relaxed),
            webhook_events_given_up: self.webhooks.events_given_up.load(Ordering::Relaxed),
            webhook_events_dropped: self
                .webhooks
                .events_dropped_queue_full
                .load(Ordering::Relaxed),
            webhook_events_pending: self
                .webhooks
                .events_pending
                .load(Ordering::Relaxed)
                .saturating_add(self.webhook_events_held.load(Ordering::Relaxed)),
            auth_granted: self.auth.granted.load(Ordering::Relaxed),
            auth_refused: self.auth.refused.load(Ordering::Relaxed),
            auth_failed: self.auth.failed.load(Ordering::Relaxed),
            auth_shed: self.auth.shed.load(Ordering::Relaxed),
            function_pipelines_done: self.functions.done.load(Ordering::Relaxed),
            function_pipelines_failed: self.functions.failed.load(Ordering::Relaxed),
            function_pipelines_shed: self.functions.shed.load(Ordering::Relaxed),
            slip_calls_answered: self.slip.answered.load(Ordering::Relaxed),
            slip_calls_failed: self.slip.failed.load(Ordering::Relaxed),
            slip_calls_shed: self.slip.shed.load(Ordering::Relaxed),
        }
    }
}

/// Adds `count` to a counter.
pub fn add(counter: &AtomicU64, count: u64) {
    counter.fetch_add(count, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_snapshot_is_all_zero() {
        assert_eq!(BridgeCounters::new().snapshot(0), BridgeStats::default());
    }

    #[test]
    fn snapshot_reports_every_counter() {
        let counters = BridgeCounters::new();
        counters.redis_connected.store(true, Ordering::Relaxed);
        add(&counters.redis_reconnects, 2);
        add(&counters.publishes_relayed, 40);
        add(&counters.messages_received, 7);
        counters.links.store(3, Ordering::Relaxed);
        counters.drops.publish_queue_full.add(1);
        counters.drops.publish_failed.add(4);
        counters.drops.delivery_queue_full.add(5);
        // Dropped acknowledgements and Redis messages are not deliveries or publishes.
        counters.drops.ack_queue_full.add(100);
        counters.drops.hub_queue_full.add(100);
        add(&counters.webhooks.events_delivered, 11);
        add(&counters.webhooks.requests_failed, 12);
        add(&counters.webhooks.events_given_up, 13);
        add(&counters.webhooks.events_dropped_queue_full, 14);
        add(&counters.webhooks.events_pending, 15);
        add(&counters.webhook_events_held, 16);
        add(&counters.auth.granted, 17);
        add(&counters.auth.refused, 18);
        add(&counters.auth.failed, 19);
        add(&counters.auth.shed, 20);
        add(&counters.functions.done, 21);
        add(&counters.functions.failed, 22);
        add(&counters.functions.shed, 23);
        add(&counters.slip.answered, 24);
        add(&counters.slip.failed, 25);
        add(&counters.slip.shed, 26);
        add(&counters.slip.replies_dropped, 100);
        // Lost answers are not outcomes of their own (the engine's wait ends those pipelines).
        add(&counters.functions.replies_dropped, 100);
        assert_eq!(
            counters.snapshot(9),
            BridgeStats {
                redis_connected: true,
                redis_reconnects: 2,
                publishes_relayed: 40,
                publishes_dropped: 5,
                messages_received: 7,
                deliveries_dropped: 5,
                publish_queue_depth: 9,
                links: 3,
                webhook_events_delivered: 11,
                webhook_requests_failed: 12,
                webhook_events_given_up: 13,
                webhook_events_dropped: 14,
                webhook_events_pending: 31,
                auth_granted: 17,
                auth_refused: 18,
                auth_failed: 19,
                auth_shed: 20,
                function_pipelines_done: 21,
                function_pipelines_failed: 22,
                function_pipelines_shed: 23,
                slip_calls_answered: 24,
                slip_calls_failed: 25,
                slip_calls_shed: 26,
            }
        );
    }

    #[test]
    fn a_huge_queue_depth_saturates() {
        let depth = usize::try_from(u64::from(u32::MAX) + 1).unwrap_or(usize::MAX);
        assert_eq!(
            BridgeCounters::new().snapshot(depth).publish_queue_depth,
            u32::MAX
        );
    }
}
