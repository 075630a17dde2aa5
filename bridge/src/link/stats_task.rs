//! The stats task: once a second it snapshots the [`BridgeCounters`], logs the snapshot at debug
//! level and hands it to the hub task, which passes it on to every linked engine shard. It never
//! waits on a queue: while the hub queue is full, that second's stats are skipped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::counters::BridgeCounters;
use crate::limits::STATS_INTERVAL_MS;
use crate::links::HubInput;
use crate::redis::publish::Outbound;

/// Runs until the hub task is gone. Holds only weak senders, so it keeps no queue open.
pub async fn run_stats(
    counters: Arc<BridgeCounters>,
    hub: mpsc::WeakSender<HubInput>,
    publisher: Option<mpsc::WeakSender<Outbound>>,
) {
    let mut ticker = tokio::time::interval(Duration::from_millis(STATS_INTERVAL_MS));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let publish_queue_depth =
            publisher
                .as_ref()
                .and_then(|p| p.upgrade())
                .map_or(0, |publisher| {
                    publisher
                        .max_capacity()
                        .saturating_sub(publisher.capacity())
                });
        let stats = counters.snapshot(publish_queue_depth);
        tracing::debug!(
            redis_connected = stats.redis_connected,
            redis_reconnects = stats.redis_reconnects,
            publishes_relayed = stats.publishes_relayed,
            publishes_dropped = stats.publishes_dropped,
            messages_received = stats.messages_received,
            deliveries_dropped = stats.deliveries_dropped,
            publish_queue_depth = stats.publish_queue_depth,
            links = stats.links,
            webhook_events_delivered = stats.webhook_events_delivered,
            webhook_requests_failed = stats.webhook_requests_failed,
            webhook_events_pending = stats.webhook_events_pending,
            "bridge stats"
        );
        match hub.try_send(HubInput::Stats(stats)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!("hub queue full; skipping this second's stats");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
