//! Which tasks a bridge runs and how their queues connect: the hub, the webhook pipeline, the
//! Redis tasks of a cluster node (or the stand-ins of a node alone), auth offload, channel
//! functions and the link server on top. [`start`] spawns them all; [`Node::stop`] ends them in
//! the order that keeps a leaving node from re-adding state, then removes the node's presence
//! members.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cluster::connections::{run_connections, ReportedCounts};
use crate::cluster::count_task::run_counts;
use crate::cluster::liveness::{reap_self, run_liveness};
use crate::cluster::presence::{run_presence, PresenceInput, PresenceSetup};
use crate::cluster::query::{run_queries, QueryInput};
use crate::cluster::repair::PresenceRepair;
use crate::counters::BridgeCounters;
use crate::limits::{
    AUTH_QUEUE_REQUESTS_MAX, COUNT_QUEUE_MESSAGES_MAX, FUNCTION_QUEUE_REQUESTS_MAX,
    HUB_QUEUE_MESSAGES_MAX, PRESENCE_QUEUE_MESSAGES_MAX, PRESENCE_REPAIR_GRACE_MS,
    PUBLISH_QUEUE_MESSAGES_MAX, QUERY_QUEUE_MESSAGES_MAX, SHUTDOWN_REAP_TIMEOUT_MS,
    SLIP_QUEUE_REQUESTS_MAX, SUBSCRIBER_QUEUE_COMMANDS_MAX, WEBHOOK_BATCH_QUEUE_BATCHES_MAX,
    WEBHOOK_QUEUE_BYTES_MAX, WEBHOOK_QUEUE_MESSAGES_MAX,
};
use crate::link::hub::Hub;
use crate::link::hub_task::{run_hub, run_without_redis};
use crate::link::server::{serve_links, LinkContext};
use crate::link::stats_task::run_stats;
use crate::links::{HubInput, LinkWriter};
use crate::outbound::auth::{auth_limits, run_auth, AuthQueue};
use crate::outbound::functions::{function_limits, run_functions, FunctionQueue};
use crate::outbound::http::OutboundHttp;
use crate::outbound::slip::{run_slip, slip_limits, SlipQueue};
use crate::redis::connect::RedisClient;
use crate::redis::layout::{key_prefix, query_channel, user_command_channel, NodeKeys};
use crate::redis::publish::{run_publisher, Outbound, PublishLayout};
use crate::redis::subscribe::{run_subscriber, SubscriberCommand};
use crate::redis::subscribe_cluster::{run_cluster_subscriber, ClusterSubscriberSetup};
use crate::webhooks::due::run_due;
use crate::webhooks::queue::{run_consumer, run_producer};
use crate::webhooks::router::WebhookRouter;
use crate::webhooks::sender::{run_sender, RetryPolicy};
use crate::webhooks::task::{run_webhooks, webhook_inbox, AppsWatch, WebhookInbox};

/// What the tasks are started with, parsed and checked.
pub struct NodeSetup {
    /// This node's id.
    pub node_id: u64,
    /// `--redis-prefix`.
    pub redis_prefix: String,
    /// Redis, or `None` for a node alone.
    pub client: Option<RedisClient>,
    /// Webhook events wait in Redis (`--webhook-queue redis`).
    pub redis_webhook_queue: bool,
    /// `--presence-ttl-ms`.
    pub presence_ttl: Duration,
    /// The outbound HTTP client of webhooks.
    pub webhook_http: OutboundHttp,
}

/// A started bridge: what [`Node::stop`] needs to end it.
pub struct Node {
    links_task: JoinHandle<()>,
    /// Tasks that write this node's presence state (stopped before its members are removed).
    cluster_tasks: Vec<JoinHandle<()>>,
    client: Option<RedisClient>,
    node_keys: NodeKeys,
    counters: Arc<BridgeCounters>,
}

/// The queues of the Redis tasks the links talk to (none on a node alone).
#[derive(Default)]
struct ClusterQueues {
    publisher: Option<mpsc::Sender<Outbound>>,
    presence: Option<mpsc::Sender<PresenceInput>>,
    connection_counts: Option<ReportedCounts>,
    tasks: Vec<JoinHandle<()>>,
}

/// Spawns every task of the bridge on the current runtime and serves the links on `listener`.
pub fn start(setup: NodeSetup, listener: UnixListener) -> Result<Node, String> {
    // Auth offload gets a client of its own: its deadlines and body bound are those of an answer
    // a subscriber waits for, not a webhook's (reqwest fixes timeouts per client).
    let auth_http = OutboundHttp::new(auth_limits())
        .map_err(|err| format!("cannot set up auth offload HTTP: {err}"))?;
    // Channel functions too: a published message waits for each call (2 s at most).
    let function_http = OutboundHttp::new(function_limits())
        .map_err(|err| format!("cannot set up channel functions HTTP: {err}"))?;
    // WebSocket-over-HTTP too: an upgrade waits for its open event's call (5 s at most).
    let slip_http = OutboundHttp::new(slip_limits())
        .map_err(|err| format!("cannot set up WebSocket-over-HTTP: {err}"))?;
    let counters = Arc::new(BridgeCounters::new());
    let node_keys = NodeKeys {
        prefix: key_prefix(&setup.redis_prefix),
        channel_prefix: setup.redis_prefix.clone(),
        node_id: setup.node_id,
        redis_queue: setup.redis_webhook_queue,
    };
    let (hub_sender, hub_queue) = mpsc::channel(HUB_QUEUE_MESSAGES_MAX);
    let (subscriber_sender, subscriber_queue) = mpsc::channel(SUBSCRIBER_QUEUE_COMMANDS_MAX);
    let (query_sender, query_queue) = mpsc::channel(QUERY_QUEUE_MESSAGES_MAX);
    let queries = setup.client.as_ref().map(|_| query_sender.clone());
    if setup.client.is_some() {
        subscribe_control_channels(&subscriber_sender, &setup.redis_prefix)?;
    }
    tokio::spawn(run_hub(
        Hub::new(setup.node_id, setup.redis_prefix.clone()),
        hub_queue,
        subscriber_sender,
        queries.clone(),
        Arc::clone(&counters),
    ));
    let (configured, configured_watch) = watch::channel(None);
    let webhook_sender = start_webhooks(
        &setup,
        &node_keys,
        configured,
        configured_watch.clone(),
        &counters,
    );
    let presence_repair = Arc::new(PresenceRepair::new(PRESENCE_REPAIR_GRACE_MS));
    let cluster = match &setup.client {
        Some(client) => start_cluster(
            client,
            &setup,
            &node_keys,
            CommonQueues {
                subscriber: subscriber_queue,
                hub: &hub_sender,
                queries: query_queue,
                webhooks: &webhook_sender,
                configured: configured_watch,
                repair: &presence_repair,
            },
            &counters,
        ),
        None => {
            tokio::spawn(run_without_redis(subscriber_queue, Arc::clone(&counters)));
            tokio::spawn(run_stats(
                Arc::clone(&counters),
                hub_sender.downgrade(),
                None,
            ));
            ClusterQueues::default()
        }
    };
    let (counts_sender, counts_queue) = mpsc::channel(COUNT_QUEUE_MESSAGES_MAX);
    tokio::spawn(run_counts(
        counts_queue,
        webhook_sender.clone(),
        cluster.presence.clone(),
        Arc::clone(&counters),
    ));
    let (auth_sender, auth_jobs) = mpsc::channel(AUTH_QUEUE_REQUESTS_MAX);
    tokio::spawn(run_auth(auth_jobs, auth_http, Arc::clone(&counters.auth)));
    let (function_sender, function_jobs) = mpsc::channel(FUNCTION_QUEUE_REQUESTS_MAX);
    tokio::spawn(run_functions(
        function_jobs,
        function_http,
        Arc::clone(&counters.functions),
    ));
    let (slip_sender, slip_jobs) = mpsc::channel(SLIP_QUEUE_REQUESTS_MAX);
    tokio::spawn(run_slip(slip_jobs, slip_http, Arc::clone(&counters.slip)));
    let links_task = tokio::spawn(serve_links(
        listener,
        LinkContext {
            node_id: setup.node_id,
            redis_prefix: Arc::from(setup.redis_prefix.as_str()),
            hub: hub_sender,
            publisher: cluster.publisher,
            presence: cluster.presence,
            webhooks: webhook_sender,
            subscription_counts: counts_sender,
            queries,
            connection_counts: cluster.connection_counts,
            auth: AuthQueue::new(auth_sender, Arc::clone(&counters.auth)),
            functions: FunctionQueue::new(function_sender, Arc::clone(&counters.functions)),
            slip: SlipQueue::new(slip_sender, Arc::clone(&counters.slip)),
            counters: Arc::clone(&counters),
            presence_repair,
        },
    ));
    Ok(Node {
        links_task,
        cluster_tasks: cluster.tasks,
        client: setup.client,
        node_keys,
        counters,
    })
}

/// Every node hears the others' user commands (server-to-user events, terminations) and
/// channels questions.
fn subscribe_control_channels(
    subscriber: &mpsc::Sender<SubscriberCommand<LinkWriter>>,
    redis_prefix: &str,
) -> Result<(), String> {
    for channel in [
        user_command_channel(redis_prefix),
        query_channel(redis_prefix),
    ] {
        subscriber
            .try_send(SubscriberCommand::Subscribe(channel))
            .map_err(|_| "cannot queue the control subscriptions".to_owned())?;
    }
    Ok(())
}

/// The webhook pipeline: sender, router task, and with `--webhook-queue redis` the Redis
/// queue's producer and consumer in between. Returns the queue webhook events go to.
fn start_webhooks(
    setup: &NodeSetup,
    node_keys: &NodeKeys,
    configured: watch::Sender<Option<Arc<Vec<String>>>>,
    configured_watch: AppsWatch,
    counters: &Arc<BridgeCounters>,
) -> WebhookInbox {
    let (webhook_batches, webhook_batch_queue) = mpsc::channel(WEBHOOK_BATCH_QUEUE_BATCHES_MAX);
    let (router_sender, router_queue) =
        webhook_inbox(WEBHOOK_QUEUE_MESSAGES_MAX, WEBHOOK_QUEUE_BYTES_MAX);
    tokio::spawn(run_sender(
        webhook_batch_queue,
        setup.webhook_http.clone(),
        RetryPolicy::default(),
        Arc::clone(&counters.webhooks),
    ));
    tokio::spawn(run_webhooks(
        WebhookRouter::new(setup.node_id, run_id()),
        router_queue,
        webhook_batches,
        configured,
        Arc::clone(counters),
    ));
    // Webhook events go to the router directly, or through the Redis queue.
    match (&setup.client, node_keys.redis_queue) {
        (Some(client), true) => {
            let (producer_sender, producer_queue) =
                webhook_inbox(WEBHOOK_QUEUE_MESSAGES_MAX, WEBHOOK_QUEUE_BYTES_MAX);
            tokio::spawn(run_producer(
                client.clone(),
                node_keys.script_keys(),
                producer_queue,
                router_sender.clone(),
                Arc::clone(counters),
            ));
            tokio::spawn(run_consumer(
                client.clone(),
                node_keys.prefix.clone(),
                setup.node_id.to_string(),
                router_sender,
                configured_watch,
            ));
            producer_sender
        }
        _ => router_sender,
    }
}

/// Queues made before the cluster tasks start, which they take or feed.
struct CommonQueues<'a> {
    subscriber: mpsc::Receiver<SubscriberCommand<LinkWriter>>,
    hub: &'a mpsc::Sender<HubInput>,
    queries: mpsc::Receiver<QueryInput>,
    webhooks: &'a WebhookInbox,
    configured: AppsWatch,
    repair: &'a Arc<PresenceRepair>,
}

/// The Redis tasks of a node in a cluster: subscriber, publisher, stats, presence, delayed
/// leaves, liveness, channels queries and connection counts.
fn start_cluster(
    client: &RedisClient,
    setup: &NodeSetup,
    node_keys: &NodeKeys,
    queues: CommonQueues<'_>,
    counters: &Arc<BridgeCounters>,
) -> ClusterQueues {
    let (publisher_sender, publisher_queue) = mpsc::channel(PUBLISH_QUEUE_MESSAGES_MAX);
    // Whether the cluster has sharded pub/sub (Redis 7+): the subscriber finds out, the
    // publisher follows.
    let sharded = Arc::new(AtomicBool::new(client.is_cluster()));
    match client {
        RedisClient::Single(single) => tokio::spawn(run_subscriber(
            single.clone(),
            queues.subscriber,
            queues.hub.clone(),
            Arc::clone(counters),
        )),
        RedisClient::Cluster {
            seeds,
            root_certificate,
        } => tokio::spawn(run_cluster_subscriber(
            ClusterSubscriberSetup {
                seeds: seeds.clone(),
                root_certificate: root_certificate.clone(),
                prefix: setup.redis_prefix.clone(),
                sharded: Arc::clone(&sharded),
            },
            queues.subscriber,
            queues.hub.clone(),
            Arc::clone(counters),
        )),
    };
    tokio::spawn(run_publisher(
        client.clone(),
        PublishLayout {
            prefix: setup.redis_prefix.clone(),
            sharded,
        },
        publisher_queue,
        Arc::clone(counters),
    ));
    tokio::spawn(run_stats(
        Arc::clone(counters),
        queues.hub.downgrade(),
        Some(publisher_sender.downgrade()),
    ));
    let (presence_sender, presence_queue) = mpsc::channel(PRESENCE_QUEUE_MESSAGES_MAX);
    let (listed, listed_watch) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(run_presence(
            PresenceSetup {
                client: client.clone(),
                keys: node_keys.clone(),
                ttl: setup.presence_ttl,
                webhooks: queues.webhooks.clone(),
                counters: Arc::clone(counters),
                repair: Arc::clone(queues.repair),
                listed: listed_watch,
            },
            presence_queue,
        )),
        tokio::spawn(run_due(
            client.clone(),
            node_keys.script_keys(),
            queues.webhooks.clone(),
            queues.configured,
            listed,
            Arc::clone(counters),
        )),
        tokio::spawn(run_liveness(
            client.clone(),
            node_keys.clone(),
            setup.presence_ttl,
            Arc::clone(queues.repair),
        )),
    ];
    tokio::spawn(run_queries(
        client.clone(),
        setup.redis_prefix.clone(),
        setup.node_id,
        queues.queries,
        publisher_sender.clone(),
        Arc::clone(counters),
    ));
    let (counts_sender, counts_watch) = watch::channel(Vec::new());
    tokio::spawn(run_connections(
        client.clone(),
        node_keys.prefix.clone(),
        setup.node_id,
        setup.presence_ttl,
        counts_watch,
        queues.hub.downgrade(),
        Arc::clone(counters),
    ));
    ClusterQueues {
        publisher: Some(publisher_sender),
        presence: Some(presence_sender),
        connection_counts: Some(Arc::new(counts_sender)),
        tasks,
    }
}

impl Node {
    /// Ends the node: nothing may re-add members or refresh the heartbeat after it left, so the
    /// links and the presence tasks stop first; then its members are removed (bounded by
    /// [`SHUTDOWN_REAP_TIMEOUT_MS`]) and the final counts logged.
    pub async fn stop(self, why: &str) {
        self.links_task.abort();
        for task in self.cluster_tasks {
            task.abort();
        }
        if let Some(client) = &self.client {
            match tokio::time::timeout(
                Duration::from_millis(SHUTDOWN_REAP_TIMEOUT_MS),
                reap_self(client, &self.node_keys),
            )
            .await
            {
                Ok(Ok(())) => tracing::info!("presence members of this node removed"),
                Ok(Err(err)) => tracing::warn!("cannot remove this node's presence members: {err}"),
                Err(_) => tracing::warn!("removing this node's presence members timed out"),
            }
        }
        log_totals(&self.counters, why);
    }
}

/// The last log line: what was dropped, delivered and refused over the bridge's life.
fn log_totals(counters: &BridgeCounters, why: &str) {
    let drops = &counters.drops;
    let webhooks = &counters.webhooks;
    let auth = &counters.auth;
    let functions = &counters.functions;
    tracing::info!(
        dropped_publish_queue_full = drops.publish_queue_full.total(),
        dropped_publish_failed = drops.publish_failed.total(),
        dropped_delivery_queue_full = drops.delivery_queue_full.total(),
        dropped_ack_queue_full = drops.ack_queue_full.total(),
        dropped_hub_queue_full = drops.hub_queue_full.total(),
        failed_presence = drops.presence_failed.total(),
        webhook_events_delivered = webhooks.events_delivered.load(Ordering::Relaxed),
        webhook_events_given_up = webhooks.events_given_up.load(Ordering::Relaxed),
        webhook_events_dropped = webhooks.events_dropped_queue_full.load(Ordering::Relaxed),
        webhook_events_pending = webhooks.events_pending.load(Ordering::Relaxed),
        auth_granted = auth.granted.load(Ordering::Relaxed),
        auth_refused = auth.refused.load(Ordering::Relaxed),
        auth_failed = auth.failed.load(Ordering::Relaxed),
        auth_shed = auth.shed.load(Ordering::Relaxed),
        function_pipelines_done = functions.done.load(Ordering::Relaxed),
        function_pipelines_failed = functions.failed.load(Ordering::Relaxed),
        function_pipelines_shed = functions.shed.load(Ordering::Relaxed),
        function_replies_dropped = functions.replies_dropped.load(Ordering::Relaxed),
        slip_calls_answered = counters.slip.answered.load(Ordering::Relaxed),
        slip_calls_failed = counters.slip.failed.load(Ordering::Relaxed),
        slip_calls_shed = counters.slip.shed.load(Ordering::Relaxed),
        slip_replies_dropped = counters.slip.replies_dropped.load(Ordering::Relaxed),
        "{why}: stopped"
    );
}

/// Different for every start of the bridge (the process id and the clock, hashed with a random
/// key): keeps webhook event ids unique when a node's bridge restarts.
fn run_id() -> u32 {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    ahash::RandomState::new().hash_one((std::process::id(), now_ns)) as u32
}
