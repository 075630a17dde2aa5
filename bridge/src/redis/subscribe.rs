//! The Redis subscriber task: owns the pub/sub connection, carries out the hub's
//! [`SubscriberCommand`]s strictly in order (an acknowledgement leaves only after the SUBSCRIBE
//! queued before it was answered, or failed), hands every received message to the hub, and
//! reconnects with backoff — re-subscribing every wanted channel — whenever the connection is
//! lost. It never waits on the hub, so the hub may wait on it. Handing messages and
//! acknowledgements on and the reconnection schedule are shared with the Redis Cluster
//! subscriber (`redis::subscribe_cluster`).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use ringcast_core::link::LinkMessage;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use crate::counters::{self, BridgeCounters};
use crate::limits::{
    REDIS_SUBSCRIBER_CONNECT_TIMEOUT_MS, REDIS_SUBSCRIBE_TIMEOUT_MS,
    RESUBSCRIBE_CHANNELS_PER_COMMAND_MAX,
};
use crate::links::{HubInput, LinkWriter};
use ringcast_core::backoff::Backoff;

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
    reconnect: Reconnect,
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
        reconnect: Reconnect::new("redis"),
        connected_before: false,
    };
    loop {
        if subscriber.sink.is_none() && Instant::now() >= subscriber.reconnect.at {
            subscriber.connect().await;
        }
        let connected = subscriber.stream.is_some();
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => subscriber.apply(command).await,
                None => return,
            },
            message = next_message(&mut subscriber.stream), if connected => match message {
                Some(payload) => forward_to_hub(&subscriber.hub, &subscriber.counters, payload),
                None => subscriber.lost("connection closed"),
            },
            () = tokio::time::sleep_until(subscriber.reconnect.at), if !connected => {}
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
        match timeout(
            Duration::from_millis(REDIS_SUBSCRIBER_CONNECT_TIMEOUT_MS),
            self.open(),
        )
        .await
        {
            Ok(Ok((sink, stream))) => {
                self.sink = Some(sink);
                self.stream = Some(stream);
                if self.connected_before {
                    counters::add(&self.counters.redis_reconnects, 1);
                }
                self.connected_before = true;
                self.reconnect.succeeded(&self.counters, self.wanted.len());
            }
            Ok(Err(err)) => self.lost(&err.to_string()),
            Err(_) => self.lost("connect timed out"),
        }
    }

    /// A new pub/sub connection subscribed to every wanted channel.
    async fn open(&self) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
        let (mut sink, stream) = self.client.get_async_pubsub().await?.split();
        let wanted: Vec<&String> = self.wanted.iter().collect();
        for names in wanted.chunks(RESUBSCRIBE_CHANNELS_PER_COMMAND_MAX) {
            sink.subscribe(names).await?;
        }
        Ok((sink, stream))
    }

    async fn apply(&mut self, command: SubscriberCommand<LinkWriter>) {
        match command {
            SubscriberCommand::Subscribe(name) => {
                if let Some(sink) = self.sink.as_mut() {
                    match timeout(
                        Duration::from_millis(REDIS_SUBSCRIBE_TIMEOUT_MS),
                        sink.subscribe(&name),
                    )
                    .await
                    {
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
                    match timeout(
                        Duration::from_millis(REDIS_SUBSCRIBE_TIMEOUT_MS),
                        sink.unsubscribe(&name),
                    )
                    .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => self.lost(&err.to_string()),
                        Err(_) => self.lost("UNSUBSCRIBE timed out"),
                    }
                }
            }
            SubscriberCommand::Ack { link, message } => send_ack(&link, message, &self.counters),
        }
    }

    /// The connection failed or was lost: drop it and schedule the next attempt.
    fn lost(&mut self, reason: &str) {
        self.sink = None;
        self.stream = None;
        self.reconnect.failed(&self.counters, reason);
    }
}

/// A message from Redis for the hub; never waits on it (the hub may be waiting on the
/// subscriber's command queue), a full queue drops the message (counted).
pub(crate) fn forward_to_hub(
    hub: &mpsc::Sender<HubInput>,
    counters: &BridgeCounters,
    payload: Bytes,
) {
    counters::add(&counters.messages_received, 1);
    if let Err(mpsc::error::TrySendError::Full(_)) = hub.try_send(HubInput::Remote(payload)) {
        counters.drops.hub_queue_full.add(1);
    }
}

/// A subscription's acknowledgement for its link; a full link queue drops it (counted).
pub(crate) fn send_ack(link: &LinkWriter, message: LinkMessage, counters: &BridgeCounters) {
    if let Err(mpsc::error::TrySendError::Full(_)) = link.try_send(message) {
        counters.drops.ack_queue_full.add(1);
    }
}

/// When a subscriber connects next, and the log of an outage: one warning when Redis becomes
/// unreachable, quiet retries, one line when it is back.
pub(crate) struct Reconnect {
    /// What is connected to, for the log: `redis` or `redis cluster`.
    label: &'static str,
    backoff: Backoff,
    /// When disconnected: the earliest time of the next connection attempt.
    pub(crate) at: Instant,
    /// "unavailable" was logged for this outage.
    in_outage: bool,
}

impl Reconnect {
    pub(crate) fn new(label: &'static str) -> Self {
        Self {
            label,
            backoff: Backoff::reconnect(),
            at: Instant::now(),
            in_outage: false,
        }
    }

    /// A connection was made (`channels` wanted ones are being subscribed).
    pub(crate) fn succeeded(&mut self, counters: &BridgeCounters, channels: usize) {
        self.backoff.reset();
        counters.redis_connected.store(true, Ordering::Relaxed);
        let label = self.label;
        if self.in_outage {
            self.in_outage = false;
            tracing::info!(channels, "{label} reconnected");
        } else {
            tracing::info!("{label} connected");
        }
    }

    /// No connection, or it was lost: the next attempt waits for the backoff.
    pub(crate) fn failed(&mut self, counters: &BridgeCounters, reason: &str) {
        counters.redis_connected.store(false, Ordering::Relaxed);
        let delay = Duration::from_millis(self.backoff.next_delay_ms());
        self.at = Instant::now() + delay;
        let label = self.label;
        if self.in_outage {
            tracing::debug!(
                retry_in_ms = delay.as_millis(),
                "{label} still unavailable: {reason}"
            );
        } else {
            self.in_outage = true;
            tracing::warn!(
                retry_in_ms = delay.as_millis(),
                "{label} unavailable: {reason}"
            );
        }
    }
}

/// Work for the Redis subscriber, carried out strictly in order: an acknowledgement queued after
/// a SUBSCRIBE is sent only once that SUBSCRIBE has been answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriberCommand<L> {
    /// SUBSCRIBE to this Redis channel (and keep it across reconnects).
    Subscribe(String),
    /// UNSUBSCRIBE from this Redis channel.
    Unsubscribe(String),
    /// Send `message` (a `Subscribed`) on `link`.
    Ack {
        /// The link that asked.
        link: L,
        /// The answer.
        message: LinkMessage,
    },
}
