//! The bridge's shared counters — Redis connection state, relayed and received messages, the
//! drop counters, the number of linked shards — and their [`BridgeStats`] snapshot, which the
//! engine shards receive once a second. The tasks only ever add to them; nothing here waits.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};

use ringcast_core::link::BridgeStats;

use crate::drop_counter::Drops;

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
