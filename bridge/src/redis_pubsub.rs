//! The Redis subscriber task: owns the pub/sub connection, carries out the hub's
//! [`SubscriberCommand`]s strictly in order (an acknowledgement leaves only after the SUBSCRIBE
//! queued before it was answered, or failed), hands every received message to the hub, and
//! reconnects with backoff — re-subscribing every wanted channel — whenever the connection is
//! lost. It never waits on the hub, so the hub may wait on it.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use crate::backoff::Backoff;
use crate::hub::SubscriberCommand;
use crate::hub_task::{HubInput, LinkWriter};
use crate::stats::{self, BridgeCounters};

/// Capacity of the subscriber's command queue, in commands.
pub const SUBSCRIBER_QUEUE_COMMANDS_MAX: usize = 65_536;
/// Longest wait for a connection (and its re-subscriptions) before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for Redis to answer one SUBSCRIBE/UNSUBSCRIBE; past it the connection is
/// presumed dead, so an engine shard never waits long for its acknowledgement.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Channels per SUBSCRIBE when re-subscribing after a reconnect, to keep commands modest.
const RESUBSCRIBE_CHANNELS_PER_COMMAND: usize = 1_000;

/// State of the subscriber task.
struct Subscriber {
    client: redis::Client,
    hub: mpsc::Sender<HubInput>,
    counters: Arc<BridgeCounters>,
    /// Every Redis channel some shard wants, mirrored from the commands (which arrive in the
    /// hub's order), so a new connection knows what to subscribe to.
    wanted: HashSet<String, ahash::RandomState>,
    /// Present while connected.
    sink: Option<PubSubSink>,
    /// Present while connected.
    stream: Option<PubSubStream>,
    backoff: Backoff,
    /// When disconnected: the earliest time of the next connection attempt.
    reconnect_at: Instant,
    /// Redis is known to be unreachable: "redis unavailable" was logged for this outage.
    in_outage: bool,
    /// A connection succeeded before: the next success is a reconnect.
    connected_before: bool,
}

/// Runs until the hub drops its command sender.
pub async fn run_subscriber(
    client: redis::Client,
    mut commands: mpsc::Receiver<SubscriberCommand<LinkWriter>>,
    hub: mpsc::Sender<HubInput>,
    counters: Arc<BridgeCounters>,
) {
    let mut subscriber = Subscriber {
        client,
        hub,
        counters,
        wanted: HashSet::default(),
        sink: None,
        stream: None,
        backoff: Backoff::for_redis(),
        reconnect_at: Instant::now(),
        in_outage: false,
        connected_before: false,
    };
    loop {
        if subscriber.sink.is_none() && Instant::now() >= subscriber.reconnect_at {
            subscriber.connect().await;
        }
        let connected = subscriber.stream.is_some();
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => subscriber.apply(command).await,
                None => return,
            },
            message = next_message(&mut subscriber.stream), if connected => match message {
                Some(payload) => subscriber.forward(payload),
                None => subscriber.lost("connection closed"),
            },
            () = tokio::time::sleep_until(subscriber.reconnect_at), if !connected => {}
        }
    }
}

/// The next message's payload; `None` when the connection is gone.
async fn next_message(stream: &mut Option<PubSubStream>) -> Option<Bytes> {
    let message = stream.as_mut()?.next().await?;
    Some(Bytes::copy_from_slice(message.get_payload_bytes()))
}

impl Subscriber {
    async fn connect(&mut self) {
        match timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(Ok((sink, stream))) => {
                self.sink = Some(sink);
                self.stream = Some(stream);
                self.backoff.reset();
                if self.connected_before {
                    stats::add(&self.counters.redis_reconnects, 1);
                }
                self.connected_before = true;
                self.counters.redis_connected.store(true, Ordering::Relaxed);
                if self.in_outage {
                    self.in_outage = false;
                    tracing::info!(channels = self.wanted.len(), "redis reconnected");
                } else {
                    tracing::info!("redis connected");
                }
            }
            Ok(Err(err)) => self.lost(&err.to_string()),
            Err(_) => self.lost("connect timed out"),
        }
    }

    /// A new pub/sub connection subscribed to every wanted channel.
    async fn open(&self) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
        let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
        let wanted: Vec<&String> = self.wanted.iter().collect();
        for names in wanted.chunks(RESUBSCRIBE_CHANNELS_PER_COMMAND) {
            sink.subscribe(names).await?;
        }
        Ok((sink, stream))
    }

    async fn apply(&mut self, command: SubscriberCommand<LinkWriter>) {
        match command {
            SubscriberCommand::Subscribe(name) => {
                if let Some(sink) = self.sink.as_mut() {
                    match timeout(COMMAND_TIMEOUT, sink.subscribe(&name)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => self.lost(&err.to_string()),
                        Err(_) => self.lost("SUBSCRIBE timed out"),
                    }
                }
                // While disconnected the channel is only remembered; the next connection
                // subscribes to it.
                self.wanted.insert(name);
            }
            SubscriberCommand::Unsubscribe(name) => {
                self.wanted.remove(&name);
                if let Some(sink) = self.sink.as_mut() {
                    match timeout(COMMAND_TIMEOUT, sink.unsubscribe(&name)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => self.lost(&err.to_string()),
                        Err(_) => self.lost("UNSUBSCRIBE timed out"),
                    }
                }
            }
            SubscriberCommand::Ack { link, message } => {
                if let Err(mpsc::error::TrySendError::Full(_)) = link.try_send(message) {
                    self.counters.drops.ack_queue_full.add(1);
                }
            }
        }
    }

    fn forward(&self, payload: Bytes) {
        stats::add(&self.counters.messages_received, 1);
        // Never wait on the hub: it may be waiting on this task's command queue.
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.hub.try_send(HubInput::Remote(payload))
        {
            self.counters.drops.hub_queue_full.add(1);
        }
    }

    /// The connection failed or was lost: drop it and schedule the next attempt.
    fn lost(&mut self, reason: &str) {
        self.sink = None;
        self.stream = None;
        self.counters
            .redis_connected
            .store(false, Ordering::Relaxed);
        let delay = self.backoff.next_delay();
        self.reconnect_at = Instant::now() + delay;
        if self.in_outage {
            tracing::debug!(
                retry_in_ms = delay.as_millis(),
                "redis still unavailable: {reason}"
            );
        } else {
            self.in_outage = true;
            tracing::warn!(
                retry_in_ms = delay.as_millis(),
                "redis unavailable: {reason}"
            );
        }
    }
}
