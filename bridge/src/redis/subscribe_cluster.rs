//! The Redis subscriber task for a Redis Cluster: one RESP3 cluster connection whose pushes
//! carry the messages; message channels are subscribed with SSUBSCRIBE (sharded pub/sub: a
//! message travels only to the master owning its channel's slot), presence and control channels
//! with classic SUBSCRIBE (see `redis::layout`). The hub's commands are carried out strictly in
//! order, like the single-server subscriber (`redis::subscribe`), and acknowledged after Redis
//! answered (or failed).
//!
//! The library resubscribes after a node's connection comes back, but sends all of a node's
//! sharded channels in one SSUBSCRIBE, which Redis refuses when they span several slots — and
//! drops without a word a sharded subscription whose slot moved. So this task keeps its own
//! wanted set and subscribes again, one channel per command: every wanted channel after a
//! disconnection, and any channel Redis unsubscribed without being asked. Channels Redis
//! refused wait and are retried with backoff; the connection itself stays.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use crate::counters::{self, BridgeCounters};
use crate::limits::{
    CLUSTER_PUSH_QUEUE_MESSAGES_MAX, CLUSTER_RESUBSCRIBE_CONCURRENT_MAX,
    CLUSTER_RESUBSCRIBE_DELAY_MS, CLUSTER_RESUBSCRIBE_ROUND_CHANNELS_MAX,
    REDIS_SUBSCRIBER_CONNECT_TIMEOUT_MS, REDIS_SUBSCRIBE_TIMEOUT_MS,
};
use crate::links::{HubInput, LinkWriter};
use crate::redis::connect::open_cluster_subscriber;
use crate::redis::layout::is_sharded_channel;
use crate::redis::subscribe::{forward_to_hub, send_ack, Reconnect, SubscriberCommand};
use ringcast_core::backoff::Backoff;

/// What the cluster subscriber needs to know.
pub struct ClusterSubscriberSetup {
    /// URLs of some cluster nodes.
    pub seeds: Vec<String>,
    /// PEM of a private certificate authority (TLS).
    pub root_certificate: Option<Vec<u8>>,
    /// The prefix of the pub/sub channels.
    pub prefix: String,
    /// Whether the cluster has sharded pub/sub; cleared here when it has not (Redis < 7).
    pub sharded: Arc<AtomicBool>,
}

/// State of the task.
struct ClusterSubscriber {
    setup: ClusterSubscriberSetup,
    hub: mpsc::Sender<HubInput>,
    counters: Arc<BridgeCounters>,
    /// Every Redis channel some shard wants.
    wanted: HashSet<String, ahash::RandomState>,
    /// Wanted channels not known to be subscribed (after a failure, a disconnection, or an
    /// unrequested unsubscribe).
    pending: HashSet<String, ahash::RandomState>,
    /// When the pending channels are tried next.
    retry_at: Instant,
    retry_backoff: Backoff,
    /// A push other than a message was dropped (queue full): everything is subscribed again.
    lost_push: Arc<AtomicBool>,
    /// Present while connected.
    connection: Option<ClusterConnection>,
    pushes_sender: mpsc::Sender<PushInfo>,
    reconnect: Reconnect,
}

/// Runs until the hub drops its command sender.
pub async fn run_cluster_subscriber(
    setup: ClusterSubscriberSetup,
    mut commands: mpsc::Receiver<SubscriberCommand<LinkWriter>>,
    hub: mpsc::Sender<HubInput>,
    counters: Arc<BridgeCounters>,
) {
    let (pushes_sender, mut pushes) = mpsc::channel(CLUSTER_PUSH_QUEUE_MESSAGES_MAX);
    let now = Instant::now();
    let mut subscriber = ClusterSubscriber {
        setup,
        hub,
        counters,
        wanted: HashSet::default(),
        pending: HashSet::default(),
        retry_at: now,
        retry_backoff: Backoff::reconnect(),
        lost_push: Arc::new(AtomicBool::new(false)),
        connection: None,
        pushes_sender,
        reconnect: Reconnect::new("redis cluster"),
    };
    loop {
        if subscriber.connection.is_none() && Instant::now() >= subscriber.reconnect.at {
            subscriber.connect().await;
        }
        if subscriber.lost_push.swap(false, Ordering::Relaxed) {
            subscriber.resubscribe_all(Duration::ZERO);
        }
        let connected = subscriber.connection.is_some();
        let catching_up = connected && !subscriber.pending.is_empty();
        if catching_up && Instant::now() >= subscriber.retry_at {
            // One round; the next one (if any) competes with the hub's commands below.
            subscriber.catch_up().await;
        }
        let catching_up = connected && !subscriber.pending.is_empty();
        let wake_at = if connected {
            subscriber.retry_at
        } else {
            subscriber.reconnect.at
        };
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => subscriber.apply(command).await,
                None => return,
            },
            Some(push) = pushes.recv() => subscriber.take_push(push),
            () = tokio::time::sleep_until(wake_at), if catching_up || !connected => {}
        }
    }
}

impl ClusterSubscriber {
    async fn connect(&mut self) {
        let sender = self.pushes_sender.clone();
        let lost_push = Arc::clone(&self.lost_push);
        let counters = Arc::clone(&self.counters);
        // Runs inside the library: never blocks; a full queue drops a message (counted), and a
        // dropped notice makes the task subscribe everything again.
        let pushes = move |push: PushInfo| -> Result<(), mpsc::error::TrySendError<PushInfo>> {
            let is_message = matches!(push.kind, PushKind::Message | PushKind::SMessage);
            sender.try_send(push).inspect_err(|_| {
                if is_message {
                    counters.drops.hub_queue_full.add(1);
                } else {
                    lost_push.store(true, Ordering::Relaxed);
                }
            })
        };
        let opened = timeout(
            Duration::from_millis(REDIS_SUBSCRIBER_CONNECT_TIMEOUT_MS),
            open_cluster_subscriber(
                &self.setup.seeds,
                self.setup.root_certificate.as_deref(),
                Duration::from_millis(REDIS_SUBSCRIBER_CONNECT_TIMEOUT_MS),
                Duration::from_millis(REDIS_SUBSCRIBE_TIMEOUT_MS),
                pushes,
            ),
        )
        .await;
        match opened {
            Ok(Ok(connection)) => {
                self.connection = Some(connection);
                self.reconnect.succeeded(&self.counters, self.wanted.len());
                self.resubscribe_all(Duration::ZERO);
            }
            Ok(Err(err)) => self.reconnect.failed(&self.counters, &err.to_string()),
            Err(_) => self.reconnect.failed(&self.counters, "connect timed out"),
        }
    }

    /// Every wanted channel is subscribed again, starting `after` from now.
    fn resubscribe_all(&mut self, after: Duration) {
        self.pending.extend(self.wanted.iter().cloned());
        self.retry_backoff.reset();
        self.retry_at = Instant::now() + after;
    }

    async fn apply(&mut self, command: SubscriberCommand<LinkWriter>) {
        match command {
            SubscriberCommand::Subscribe(name) => {
                let subscribed = match self.connection.clone() {
                    Some(connection) => self.subscribe(connection, &name).await,
                    // The next connection subscribes to it.
                    None => true,
                };
                if !subscribed {
                    self.pending.insert(name.clone());
                }
                self.wanted.insert(name);
            }
            SubscriberCommand::Unsubscribe(name) => {
                self.wanted.remove(&name);
                self.pending.remove(&name);
                if let Some(mut connection) = self.connection.clone() {
                    let sharded = self.uses_sharded(&name);
                    let answer =
                        timeout(Duration::from_millis(REDIS_SUBSCRIBE_TIMEOUT_MS), async {
                            if sharded {
                                connection.sunsubscribe(&name).await
                            } else {
                                connection.unsubscribe(&name).await
                            }
                        })
                        .await;
                    // A failure leaves a subscription Redis may still hold: the hub drops what
                    // arrives for channels nobody wants, so it only costs traffic.
                    if !matches!(answer, Ok(Ok(()))) {
                        tracing::debug!(channel = %name, "redis cluster unsubscribe failed");
                    }
                }
            }
            SubscriberCommand::Ack { link, message } => send_ack(&link, message, &self.counters),
        }
    }

    fn uses_sharded(&self, name: &str) -> bool {
        self.setup.sharded.load(Ordering::Relaxed) && is_sharded_channel(&self.setup.prefix, name)
    }

    /// Subscribes `name` (one channel per command: a sharded subscribe may not span slots);
    /// false when Redis did not confirm it.
    async fn subscribe(&self, connection: ClusterConnection, name: &str) -> bool {
        let sharded = self.uses_sharded(name);
        match subscribe_one(connection.clone(), name, sharded).await {
            Ok(()) => true,
            Err(err) if sharded && is_unknown_command(&err) => {
                self.setup.sharded.store(false, Ordering::Relaxed);
                tracing::warn!(
                    "this Redis Cluster has no sharded pub/sub (Redis 7 or newer has): \
                     using classic pub/sub, which every master relays to every other"
                );
                subscribe_one(connection, name, false).await.is_ok()
            }
            Err(err) => {
                tracing::debug!(channel = %name, "redis cluster subscribe failed: {err}");
                false
            }
        }
    }

    /// Subscribes a round of pending channels; what fails waits for the next round.
    async fn catch_up(&mut self) {
        let Some(connection) = self.connection.clone() else {
            return;
        };
        let round: Vec<String> = self
            .pending
            .iter()
            .take(CLUSTER_RESUBSCRIBE_ROUND_CHANNELS_MAX)
            .cloned()
            .collect();
        let mut failed = 0_usize;
        for chunk in round.chunks(CLUSTER_RESUBSCRIBE_CONCURRENT_MAX) {
            let answers = futures_util::future::join_all(
                chunk
                    .iter()
                    .map(|name| self.subscribe(connection.clone(), name)),
            )
            .await;
            for (name, subscribed) in chunk.iter().zip(answers) {
                if subscribed {
                    self.pending.remove(name);
                } else {
                    failed += 1;
                }
            }
        }
        if failed == 0 {
            self.retry_backoff.reset();
            if self.pending.is_empty() {
                tracing::debug!(
                    channels = self.wanted.len(),
                    "redis cluster subscriptions restored"
                );
            }
        } else {
            let delay = Duration::from_millis(self.retry_backoff.next_delay_ms());
            self.retry_at = Instant::now() + delay;
            tracing::warn!(
                failed,
                retry_in_ms = delay.as_millis(),
                "redis cluster refused some subscriptions; retrying"
            );
        }
    }

    fn take_push(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::Message | PushKind::SMessage => {
                // [channel, payload]
                if let Some(Value::BulkString(payload)) = push.data.into_iter().nth(1) {
                    forward_to_hub(&self.hub, &self.counters, Bytes::from(payload));
                }
            }
            PushKind::Disconnection => {
                counters::add(&self.counters.redis_reconnects, 1);
                tracing::info!("a redis cluster node connection dropped; subscribing again");
                self.resubscribe_all(Duration::from_millis(CLUSTER_RESUBSCRIBE_DELAY_MS));
            }
            PushKind::SUnsubscribe | PushKind::Unsubscribe => {
                // [channel, count]: for a channel still wanted, Redis dropped it on its own
                // (its slot moved to another master).
                if let Some(Value::BulkString(channel)) = push.data.first() {
                    if let Ok(channel) = std::str::from_utf8(channel) {
                        if self.wanted.contains(channel) && !self.pending.contains(channel) {
                            self.pending.insert(channel.to_owned());
                            self.retry_at = self.retry_at.min(
                                Instant::now()
                                    + Duration::from_millis(CLUSTER_RESUBSCRIBE_DELAY_MS),
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

async fn subscribe_one(
    mut connection: ClusterConnection,
    name: &str,
    sharded: bool,
) -> redis::RedisResult<()> {
    let answer = timeout(Duration::from_millis(REDIS_SUBSCRIBE_TIMEOUT_MS), async {
        if sharded {
            connection.ssubscribe(name).await
        } else {
            connection.subscribe(name).await
        }
    })
    .await;
    answer.unwrap_or_else(|_| {
        Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "subscribe timed out",
        )))
    })
}

/// Redis does not know the command (SSUBSCRIBE before Redis 7).
fn is_unknown_command(err: &redis::RedisError) -> bool {
    err.to_string()
        .to_ascii_lowercase()
        .contains("unknown command")
}
