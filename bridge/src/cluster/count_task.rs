//! The task that owns the node's [`SubscriptionCounts`]: the link readers hand it each shard's
//! reported counts and each link's end through one bounded queue; it wakes for the counts'
//! intervals and hands every node total on: on a node alone as a `subscription_count` webhook
//! event, with several nodes to the presence task, which sums the nodes' counts in Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::cluster::counts::{NodeCount, SubscriptionCounts};
use crate::cluster::presence::PresenceInput;
use crate::counters::{add, BridgeCounters};
use crate::links::LinkId;
use crate::webhooks::events::count_event;
use crate::webhooks::task::{InboxRefused, WebhookInbox, WebhookInput};

/// What the task reacts to.
#[derive(Debug)]
pub enum CountInput {
    /// A shard's own count of a channel.
    Shard {
        shard: u16,
        link_id: LinkId,
        /// The engine is one node of several.
        cluster: bool,
        app_id: String,
        channel: String,
        count: u64,
    },
    /// A link ended: its shard's counts go.
    LinkGone { shard: u16, link_id: LinkId },
}

/// Runs until every sender of `inputs` is gone.
pub async fn run_counts(
    mut inputs: mpsc::Receiver<CountInput>,
    webhooks: WebhookInbox,
    cluster_sums: Option<mpsc::Sender<PresenceInput>>,
    counters: Arc<BridgeCounters>,
) {
    let mut counts = SubscriptionCounts::new();
    let origin = Instant::now();
    let now_ms = |origin: Instant| origin.elapsed().as_millis() as u64;
    // Every link of one engine says the same; kept for the events that come due later.
    let mut cluster = false;
    let mut refused_logged = 0;
    loop {
        let input = match counts.next_deadline_ms() {
            Some(due_ms) => {
                let wait = Duration::from_millis(due_ms.saturating_sub(now_ms(origin)));
                match tokio::time::timeout(wait, inputs.recv()).await {
                    Ok(None) => return,
                    Ok(Some(input)) => Some(input),
                    Err(_) => None, // an interval ended
                }
            }
            None => match inputs.recv().await {
                Some(input) => Some(input),
                None => return,
            },
        };
        let now = now_ms(origin);
        let mut ready = Vec::new();
        match input {
            Some(CountInput::Shard {
                shard,
                link_id,
                cluster: linked_as_cluster,
                app_id,
                channel,
                count,
            }) => {
                cluster = linked_as_cluster;
                ready
                    .extend(counts.handle_shard_count(shard, link_id, app_id, channel, count, now));
            }
            Some(CountInput::LinkGone { shard, link_id }) => {
                ready.extend(counts.handle_link_gone(shard, link_id, now));
            }
            None => {}
        }
        ready.extend(counts.poll_due(now));
        for total in ready {
            send_node_total(&webhooks, cluster_sums.as_ref(), &counters, cluster, total);
        }
        // Logged the first time and then each time the number doubles: no flood.
        if counts.refused() > refused_logged.max(1) * 2 - 1 {
            refused_logged = counts.refused();
            tracing::warn!(
                refused = refused_logged,
                "too many channels counted for subscription_count webhooks; reports refused"
            );
        }
    }
}

/// Where a node total goes: on a node alone it is the channel's count, an event for the
/// webhook router; with several nodes it goes to be summed with the others' in Redis.
fn send_node_total(
    webhooks: &WebhookInbox,
    cluster_sums: Option<&mpsc::Sender<PresenceInput>>,
    counters: &BridgeCounters,
    cluster: bool,
    total: NodeCount,
) {
    if cluster {
        match cluster_sums {
            Some(sums) => {
                if let Err(mpsc::error::TrySendError::Full(_)) =
                    sums.try_send(PresenceInput::SubscriptionCount(total))
                {
                    add(&counters.webhooks.events_dropped_queue_full, 1);
                }
            }
            // An engine of several nodes always has a bridge with Redis; a bridge run by hand
            // without it cannot know the cluster's count, and sends none.
            None => tracing::debug!(
                channel = %total.channel,
                "subscription count not sent: several nodes but no Redis"
            ),
        }
        return;
    }
    let event = count_event(total.app_id, total.channel, total.total);
    if let Err(InboxRefused::Full) = webhooks.try_send(WebhookInput::Event(event)) {
        add(&counters.webhooks.events_dropped_queue_full, 1);
    }
}
