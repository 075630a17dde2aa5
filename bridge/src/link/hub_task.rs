//! The task that owns the [`Hub`]: it takes link events and Redis messages from one bounded
//! queue, in order, and carries out what the hub decides — commands for the Redis subscriber,
//! deliveries to link writer queues — and passes the bridge's counters on to every link. Being the
//! single owner of the state, it needs no locks.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use ringcast_core::link::{BridgeStats, LinkMessage};
use tokio::sync::mpsc;

use crate::cluster::query::QueryInput;
use crate::counters::BridgeCounters;
use crate::link::hub::{Hub, RemoteMessage};
use crate::links::{HubInput, LinkWriter};
use crate::redis::subscribe::SubscriberCommand;

/// Runs until every sender of `inputs` is gone or the subscriber task ended.
pub async fn run_hub(
    mut hub: Hub<LinkWriter>,
    mut inputs: mpsc::Receiver<HubInput>,
    subscriber: mpsc::Sender<SubscriberCommand<LinkWriter>>,
    queries: Option<mpsc::Sender<QueryInput>>,
    counters: Arc<BridgeCounters>,
) {
    let mut malformed_total: u64 = 0;
    while let Some(input) = inputs.recv().await {
        let commands = match input {
            HubInput::Attach {
                shard,
                link_id,
                writer,
            } => {
                let commands = hub.attach(shard, link_id, writer);
                counters.links.store(link_count(&hub), Ordering::Relaxed);
                commands
            }
            HubInput::Detach { shard, link_id } => {
                let commands = hub.detach(shard, link_id);
                counters.links.store(link_count(&hub), Ordering::Relaxed);
                commands
            }
            HubInput::Subscribe {
                shard,
                link_id,
                app_id,
                channel,
                seq,
            } => hub.subscribe(shard, link_id, app_id, channel, seq),
            HubInput::Unsubscribe {
                shard,
                link_id,
                app_id,
                channel,
            } => hub.unsubscribe(shard, link_id, app_id, channel),
            HubInput::Remote(payload) => {
                route_remote(
                    &hub,
                    payload,
                    queries.as_ref(),
                    &counters,
                    &mut malformed_total,
                );
                Vec::new()
            }
            HubInput::ToAllLinks(message) => {
                send_to(hub.all_links(), &message, &counters);
                Vec::new()
            }
            HubInput::Stats(stats) => {
                let message = LinkMessage::Stats(BridgeStats {
                    links: link_count(&hub),
                    ..stats
                });
                for writer in hub.all_links() {
                    // Skipped, not counted, for a link that is behind: the next one follows in a
                    // second, and a backlog is no place for counters.
                    let _ = writer.try_send(message.clone());
                }
                Vec::new()
            }
        };
        for command in commands {
            // Waiting here is safe: the subscriber never waits on the hub (it drops instead).
            if subscriber.send(command).await.is_err() {
                tracing::error!("redis subscriber task ended; hub stops");
                return;
            }
        }
    }
}

/// Delivers what a Redis message means for this node: to the shards that want it, or to the
/// query task.
fn route_remote(
    hub: &Hub<LinkWriter>,
    payload: Bytes,
    queries: Option<&mpsc::Sender<QueryInput>>,
    counters: &BridgeCounters,
    malformed_total: &mut u64,
) {
    match hub.route_remote(payload) {
        RemoteMessage::Deliver { event, shard_mask } => {
            send_to(
                hub.links_in(shard_mask),
                &LinkMessage::Deliver(event),
                counters,
            );
        }
        RemoteMessage::Member {
            message,
            shard_mask,
        } => send_to(hub.links_in(shard_mask), &message, counters),
        RemoteMessage::User(message) => send_to(hub.all_links(), &message, counters),
        RemoteMessage::Query(payload) => {
            if let Some(queries) = queries {
                let engine = hub.all_links().next().cloned();
                // A question dropped here is answered by the asker's wait.
                let _ = queries.try_send(QueryInput::Remote { payload, engine });
            }
        }
        RemoteMessage::OwnNode | RemoteMessage::NoInterest => {}
        RemoteMessage::Malformed(err) => {
            *malformed_total += 1;
            tracing::debug!(malformed_total, "ignoring malformed redis message: {err}");
        }
    }
}

/// Queues `message` on every link of `links` without waiting: a shard that does not keep up
/// loses messages (counted) rather than making the whole node wait for it.
fn send_to<'a>(
    links: impl Iterator<Item = &'a LinkWriter>,
    message: &LinkMessage,
    counters: &BridgeCounters,
) {
    for writer in links {
        if let Err(mpsc::error::TrySendError::Full(_)) = writer.try_send(message.clone()) {
            counters.drops.delivery_queue_full.add(1);
        }
    }
}

/// Engine shards linked right now.
fn link_count(hub: &Hub<LinkWriter>) -> u16 {
    u16::try_from(hub.all_links().count()).unwrap_or(u16::MAX)
}

/// A node alone (no Redis): the hub's commands need no subscriber. Acknowledgements are
/// answered at once (an engine that announces channels does not wait for nothing), Redis
/// subscriptions are skipped. Runs until the hub is gone.
pub async fn run_without_redis(
    mut commands: mpsc::Receiver<SubscriberCommand<LinkWriter>>,
    counters: Arc<BridgeCounters>,
) {
    while let Some(command) = commands.recv().await {
        if let SubscriberCommand::Ack { link, message } = command {
            if let Err(mpsc::error::TrySendError::Full(_)) = link.try_send(message) {
                counters.drops.ack_queue_full.add(1);
            }
        }
    }
}
