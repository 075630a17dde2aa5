//! `ringcast-bridge`: the process the engine delegates everything that waits on the network to,
//! so that engine shards never block. It relays publishes between nodes over Redis pub/sub,
//! keeps the cluster-wide presence state (members, node heartbeats, reaping dead nodes) in Redis,
//! and sends the apps' webhooks. A node alone runs it `--without-redis`, for webhooks only.
//! This file owns the command line, the runtime, the socket file and the signals; the work
//! happens in the tasks it starts.

mod backoff;
mod cluster;
mod counters;
mod link;
mod links;
mod outbound;
mod redis;
mod webhooks;

use std::io::IsTerminal;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::cluster::connections::run_connections;
use crate::cluster::count_task::{run_counts, COUNT_INPUT_QUEUE_MAX};
use crate::cluster::liveness::{reap_self, run_liveness};
use crate::cluster::presence::{run_presence, PRESENCE_QUEUE_MESSAGES_MAX};
use crate::cluster::query::{run_queries, QUERY_QUEUE_MAX};
use crate::counters::BridgeCounters;
use crate::link::hub::Hub;
use crate::link::hub_task::{run_hub, run_without_redis, HUB_QUEUE_MESSAGES_MAX};
use crate::link::server::{serve_links, LinkContext};
use crate::link::stats_task::run_stats;
use crate::outbound::auth::{auth_limits, run_auth, AuthQueue, AUTH_QUEUE_MAX};
use crate::outbound::http::{OutboundHttp, OutboundLimits};
use crate::redis::connect::RedisClient;
use crate::redis::layout::{query_channel, user_command_channel, NodeKeys};
use crate::redis::publish::{run_publisher, PublishLayout, PUBLISH_QUEUE_MESSAGES_MAX};
use crate::redis::subscribe::{run_subscriber, SubscriberCommand, SUBSCRIBER_QUEUE_COMMANDS_MAX};
use crate::redis::subscribe_cluster::{run_cluster_subscriber, ClusterSubscriberSetup};
use crate::webhooks::due::run_due;
use crate::webhooks::queue::{run_consumer, run_producer};
use crate::webhooks::router::WebhookRouter;
use crate::webhooks::sender::{run_sender, RetryPolicy, WEBHOOK_QUEUE_BATCHES_MAX};
use crate::webhooks::task::{run_webhooks, WEBHOOK_INPUT_QUEUE_MAX};

/// Longest wait for the node's own presence cleanup on shutdown; past it the other nodes'
/// reapers do it once the heartbeat expires.
const SHUTDOWN_REAP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Exit status for unusable arguments or environment (clap uses it too).
const EXIT_USAGE: u8 = 2;

/// Relays ringcast events between nodes over Redis pub/sub for the engine shards linked to it.
#[derive(Debug, Parser)]
#[command(name = "ringcast-bridge", version, about)]
struct Args {
    /// Unix socket the engine shards link to.
    #[arg(long, value_name = "PATH", default_value = "/tmp/ringcast-bridge.sock")]
    link_socket: PathBuf,
    /// Redis server for pub/sub between nodes; with `--redis-cluster`, one or more nodes of the
    /// cluster, comma-separated (the others are discovered).
    #[arg(long, value_name = "URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Redis is a Redis Cluster: message channels use sharded pub/sub (Redis 7+), state keys
    /// share one hash slot.
    #[arg(long)]
    redis_cluster: bool,
    /// PEM file of the certificate authority that signed the Redis server's certificate
    /// (`rediss://` URLs); without it the public web roots are trusted.
    #[arg(long, value_name = "PATH")]
    redis_tls_ca: Option<PathBuf>,
    /// Prefix of the Redis channel names (`{prefix}#{app_id}#{channel}`).
    #[arg(long, value_name = "P", default_value = "pusher")]
    redis_prefix: String,
    /// This node's id on the cluster; random when not given. Must differ between nodes.
    #[arg(long, value_name = "N")]
    node_id: Option<u64>,
    /// Lifetime of this node's presence heartbeat: a node silent this long is presumed dead
    /// and its presence members are removed.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(300..=3_600_000))]
    presence_ttl_ms: u64,
    /// A node alone: no Redis, no other nodes; the bridge only sends webhooks.
    #[arg(long, conflicts_with_all = ["redis_url", "redis_prefix", "presence_ttl_ms", "webhook_queue", "redis_cluster"])]
    without_redis: bool,
    /// Where webhook events wait for delivery: in this process (lost if it dies), or in Redis
    /// (at-least-once: a receiver outage or a killed bridge loses nothing).
    #[arg(long, value_enum, default_value_t = QueueDriver::Local)]
    webhook_queue: QueueDriver,
    /// Least severe log level printed.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    log_level: LogLevel,
}

/// Values of `--webhook-queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum QueueDriver {
    Local,
    Redis,
}

/// Values of `--log-level`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl From<LogLevel> for tracing::Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::from(args.log_level))
        .with_writer(std::io::stderr)
        // Colours only for a person watching; log files and journals get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let node_id = args
        .node_id
        .unwrap_or_else(|| ahash::RandomState::new().hash_one(std::process::id()));
    if crate::redis::envelope::is_reserved_node_id(node_id) {
        // Its publish envelopes would read as member events; a random id hits it practically
        // never, a given one is refused.
        eprintln!("ringcast-bridge: node id {node_id} is reserved; choose another");
        return ExitCode::from(EXIT_USAGE);
    }
    // rustls on `ring`, the one provider in the tree: installed explicitly, so that no other
    // crate enabling a second provider could make TLS set-up panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Err(message) = crate::redis::layout::check_prefix(&args.redis_prefix) {
        eprintln!("ringcast-bridge: {message}");
        return ExitCode::from(EXIT_USAGE);
    }
    let client = if args.without_redis {
        None
    } else {
        match redis_client(
            &args.redis_url,
            args.redis_tls_ca.as_deref(),
            args.redis_cluster,
        ) {
            Ok(client) => Some(client),
            Err(message) => {
                eprintln!("ringcast-bridge: {message}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    };
    let http = match OutboundHttp::new(OutboundLimits::default()) {
        Ok(http) => http,
        Err(err) => {
            eprintln!("ringcast-bridge: cannot set up outbound HTTP: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(message) = clear_stale_socket(&args.link_socket) {
        eprintln!("ringcast-bridge: {message}");
        return ExitCode::from(EXIT_USAGE);
    }
    // One thread is plenty: the bridge moves bytes and waits; the cores belong to the engine.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ringcast-bridge: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args, node_id, client, http))
}

/// The Redis client for `url` (with `cluster`: a comma-separated list of seed nodes); with
/// `ca_file`, TLS trusts that authority only.
fn redis_client(url: &str, ca_file: Option<&Path>, cluster: bool) -> Result<RedisClient, String> {
    let urls: Vec<&str> = if cluster {
        url.split(',')
            .map(str::trim)
            .filter(|seed| !seed.is_empty())
            .collect()
    } else {
        vec![url]
    };
    if urls.is_empty() {
        return Err("--redis-url names no Redis Cluster node".to_owned());
    }
    let root_certificate =
        match ca_file {
            None => None,
            Some(path) => {
                if let Some(plain) = urls.iter().find(|url| !url.starts_with("rediss://")) {
                    return Err(format!(
                        "--redis-tls-ca needs rediss:// URLs (TLS), not {}",
                        crate::redis::url::without_password(plain)
                    ));
                }
                Some(std::fs::read(path).map_err(|err| {
                    format!("cannot read --redis-tls-ca {}: {err}", path.display())
                })?)
            }
        };
    // Every URL is checked here, so that a typo is a start error rather than a retry loop.
    let mut single = None;
    for url in &urls {
        let shown = crate::redis::url::without_password(url);
        let client = match &root_certificate {
            None => ::redis::Client::open(*url),
            Some(pem) => ::redis::Client::build_with_tls(
                *url,
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
        }
        .map_err(|err| format!("invalid --redis-url {shown}: {err}"))?;
        single = Some(client);
    }
    match single {
        Some(client) if !cluster => Ok(RedisClient::Single(client)),
        _ => Ok(RedisClient::Cluster {
            seeds: urls.into_iter().map(str::to_owned).collect(),
            root_certificate,
        }),
    }
}

/// Removes a socket file left by a bridge that was killed; refuses to touch anything else.
fn clear_stale_socket(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => std::fs::remove_file(path)
            .map_err(|err| format!("cannot remove stale socket {}: {err}", path.display())),
        Ok(_) => Err(format!(
            "{} exists and is not a socket; not replacing it",
            path.display()
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("cannot inspect {}: {err}", path.display())),
    }
}

async fn run(
    args: Args,
    node_id: u64,
    client: Option<RedisClient>,
    http: OutboundHttp,
) -> ExitCode {
    let listener = match UnixListener::bind(&args.link_socket) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "ringcast-bridge: cannot listen on {}: {err}",
                args.link_socket.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("ringcast-bridge: cannot handle signals: {err}");
            remove_socket(&args.link_socket);
            return ExitCode::FAILURE;
        }
    };
    let redis_shown = match &client {
        Some(RedisClient::Single(_)) => crate::redis::url::without_password(&args.redis_url),
        Some(RedisClient::Cluster { seeds, .. }) => {
            let shown: Vec<String> = seeds
                .iter()
                .map(|seed| crate::redis::url::without_password(seed))
                .collect();
            format!("Redis Cluster via {}", shown.join(","))
        }
        None => "none (a node alone: webhooks only)".to_owned(),
    };
    tracing::info!(
        node_id,
        link_socket = %args.link_socket.display(),
        redis_url = %redis_shown,
        "ringcast-bridge started"
    );

    let counters = Arc::new(BridgeCounters::new());
    let (hub_sender, hub_queue) = mpsc::channel(HUB_QUEUE_MESSAGES_MAX);
    let (subscriber_sender, subscriber_queue) = mpsc::channel(SUBSCRIBER_QUEUE_COMMANDS_MAX);
    // Every node hears the others' user commands (server-to-user events, terminations) and
    // channels questions.
    if client.is_some() {
        for channel in [
            user_command_channel(&args.redis_prefix),
            query_channel(&args.redis_prefix),
        ] {
            if subscriber_sender
                .try_send(SubscriberCommand::Subscribe(channel))
                .is_err()
            {
                eprintln!("ringcast-bridge: cannot queue the control subscriptions");
                return ExitCode::FAILURE;
            }
        }
    }
    let (query_sender, query_queue) = mpsc::channel(QUERY_QUEUE_MAX);
    let queries = client.as_ref().map(|_| query_sender.clone());
    tokio::spawn(run_hub(
        Hub::new(node_id, args.redis_prefix.clone()),
        hub_queue,
        subscriber_sender,
        queries.clone(),
        Arc::clone(&counters),
    ));

    let (webhook_batches, webhook_batch_queue) = mpsc::channel(WEBHOOK_QUEUE_BATCHES_MAX);
    let (router_sender, router_queue) = mpsc::channel(WEBHOOK_INPUT_QUEUE_MAX);
    let (configured, configured_watch) = tokio::sync::watch::channel(false);
    tokio::spawn(run_sender(
        webhook_batch_queue,
        http,
        RetryPolicy::default(),
        Arc::clone(&counters.webhooks),
    ));
    tokio::spawn(run_webhooks(
        WebhookRouter::new(node_id, run_id()),
        router_queue,
        webhook_batches,
        configured,
        Arc::clone(&counters),
    ));

    let key_prefix = crate::redis::layout::key_prefix(&args.redis_prefix);
    let node_keys = NodeKeys {
        prefix: key_prefix.clone(),
        channel_prefix: args.redis_prefix.clone(),
        node_id,
        redis_queue: args.webhook_queue == QueueDriver::Redis,
    };
    // Webhook events go to the router directly, or through the Redis queue.
    let webhook_sender = match (&client, node_keys.redis_queue) {
        (Some(client), true) => {
            let (producer_sender, producer_queue) = mpsc::channel(WEBHOOK_INPUT_QUEUE_MAX);
            tokio::spawn(run_producer(
                client.clone(),
                node_keys.script_keys(),
                producer_queue,
                router_sender.clone(),
                Arc::clone(&counters),
            ));
            tokio::spawn(run_consumer(
                client.clone(),
                key_prefix.clone(),
                node_id.to_string(),
                router_sender.clone(),
                configured_watch.clone(),
            ));
            producer_sender
        }
        _ => router_sender.clone(),
    };
    let mut cluster_tasks = Vec::new();
    let mut connection_counts = None;
    let mut publisher = None;
    let mut presence = None;
    match &client {
        Some(client) => {
            let (publisher_sender, publisher_queue) = mpsc::channel(PUBLISH_QUEUE_MESSAGES_MAX);
            // Whether the cluster has sharded pub/sub (Redis 7+): the subscriber finds out, the
            // publisher follows.
            let sharded = Arc::new(AtomicBool::new(client.is_cluster()));
            match client {
                RedisClient::Single(single) => tokio::spawn(run_subscriber(
                    single.clone(),
                    subscriber_queue,
                    hub_sender.clone(),
                    Arc::clone(&counters),
                )),
                RedisClient::Cluster {
                    seeds,
                    root_certificate,
                } => tokio::spawn(run_cluster_subscriber(
                    ClusterSubscriberSetup {
                        seeds: seeds.clone(),
                        root_certificate: root_certificate.clone(),
                        prefix: args.redis_prefix.clone(),
                        sharded: Arc::clone(&sharded),
                    },
                    subscriber_queue,
                    hub_sender.clone(),
                    Arc::clone(&counters),
                )),
            };
            tokio::spawn(run_publisher(
                client.clone(),
                PublishLayout {
                    prefix: args.redis_prefix.clone(),
                    sharded,
                },
                publisher_queue,
                Arc::clone(&counters),
            ));
            tokio::spawn(run_stats(
                Arc::clone(&counters),
                hub_sender.downgrade(),
                Some(publisher_sender.downgrade()),
            ));
            let presence_ttl = std::time::Duration::from_millis(args.presence_ttl_ms);
            let (presence_sender, presence_queue) = mpsc::channel(PRESENCE_QUEUE_MESSAGES_MAX);
            cluster_tasks.push(tokio::spawn(run_presence(
                client.clone(),
                node_keys.clone(),
                presence_ttl,
                presence_queue,
                webhook_sender.clone(),
                Arc::clone(&counters),
            )));
            cluster_tasks.push(tokio::spawn(run_due(
                client.clone(),
                node_keys.script_keys(),
                webhook_sender.clone(),
                configured_watch.clone(),
                Arc::clone(&counters),
            )));
            cluster_tasks.push(tokio::spawn(run_liveness(
                client.clone(),
                node_keys.clone(),
                presence_ttl,
            )));
            tokio::spawn(run_queries(
                client.clone(),
                args.redis_prefix.clone(),
                node_id,
                query_queue,
                publisher_sender.clone(),
                Arc::clone(&counters),
            ));
            let (counts_sender, counts_watch) = tokio::sync::watch::channel(Vec::new());
            tokio::spawn(run_connections(
                client.clone(),
                key_prefix.clone(),
                node_id,
                presence_ttl,
                counts_watch,
                hub_sender.downgrade(),
                Arc::clone(&counters),
            ));
            connection_counts = Some(Arc::new(counts_sender));
            publisher = Some(publisher_sender);
            presence = Some(presence_sender);
        }
        None => {
            tokio::spawn(run_without_redis(subscriber_queue, Arc::clone(&counters)));
            tokio::spawn(run_stats(
                Arc::clone(&counters),
                hub_sender.downgrade(),
                None,
            ));
        }
    }
    // Auth offload gets a client of its own: its deadlines and body bound are those of an answer
    // a subscriber waits for, not a webhook's (reqwest fixes timeouts per client).
    let auth_http = match OutboundHttp::new(auth_limits()) {
        Ok(http) => http,
        Err(err) => {
            eprintln!("ringcast-bridge: cannot set up auth offload HTTP: {err}");
            remove_socket(&args.link_socket);
            return ExitCode::FAILURE;
        }
    };
    let (counts_sender, counts_queue) = mpsc::channel(COUNT_INPUT_QUEUE_MAX);
    tokio::spawn(run_counts(
        counts_queue,
        webhook_sender.clone(),
        presence.clone(),
        Arc::clone(&counters),
    ));
    let auth_counters = Arc::clone(&counters.auth);
    let (auth_sender, auth_jobs) = mpsc::channel(AUTH_QUEUE_MAX);
    tokio::spawn(run_auth(auth_jobs, auth_http, Arc::clone(&auth_counters)));
    let links_task = tokio::spawn(serve_links(
        listener,
        LinkContext {
            node_id,
            redis_prefix: Arc::from(args.redis_prefix.as_str()),
            hub: hub_sender,
            publisher,
            presence,
            webhooks: webhook_sender,
            subscription_counts: counts_sender,
            queries,
            connection_counts,
            auth: AuthQueue::new(auth_sender, Arc::clone(&auth_counters)),
            counters: Arc::clone(&counters),
        },
    ));

    let signal_name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    remove_socket(&args.link_socket);
    // Nothing may re-add members or refresh the heartbeat after the node left.
    links_task.abort();
    for task in cluster_tasks {
        task.abort();
    }
    if let Some(client) = &client {
        match tokio::time::timeout(SHUTDOWN_REAP_TIMEOUT, reap_self(client, &node_keys)).await {
            Ok(Ok(())) => tracing::info!("presence members of this node removed"),
            Ok(Err(err)) => tracing::warn!("cannot remove this node's presence members: {err}"),
            Err(_) => tracing::warn!("removing this node's presence members timed out"),
        }
    }
    let drops = &counters.drops;
    let webhooks = &counters.webhooks;
    tracing::info!(
        dropped_publish_queue_full = drops.publish_queue_full.total(),
        dropped_publish_failed = drops.publish_failed.total(),
        dropped_delivery_queue_full = drops.delivery_queue_full.total(),
        dropped_ack_queue_full = drops.ack_queue_full.total(),
        dropped_hub_queue_full = drops.hub_queue_full.total(),
        dropped_presence_queue_full = drops.presence_queue_full.total(),
        failed_presence = drops.presence_failed.total(),
        webhook_events_delivered = webhooks.events_delivered.load(Ordering::Relaxed),
        webhook_events_given_up = webhooks.events_given_up.load(Ordering::Relaxed),
        webhook_events_dropped = webhooks.events_dropped_queue_full.load(Ordering::Relaxed),
        webhook_events_pending = webhooks.events_pending.load(Ordering::Relaxed),
        auth_granted = auth_counters.granted.load(Ordering::Relaxed),
        auth_refused = auth_counters.refused.load(Ordering::Relaxed),
        auth_failed = auth_counters.failed.load(Ordering::Relaxed),
        auth_shed = auth_counters.shed.load(Ordering::Relaxed),
        "{signal_name}: stopped"
    );
    ExitCode::SUCCESS
}

/// Different for every start of the bridge (the process id and the clock, hashed with a random
/// key): keeps webhook event ids unique when a node's bridge restarts.
fn run_id() -> u32 {
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    ahash::RandomState::new().hash_one((std::process::id(), now_ns)) as u32
}

fn remove_socket(path: &Path) {
    if let Err(err) = std::fs::remove_file(path) {
        tracing::warn!("cannot remove {}: {err}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_lists_seeds_and_each_is_checked() {
        let client =
            redis_client("redis://h1:7001, redis://h2:7002,", None, true).expect("two seeds");
        let RedisClient::Cluster { seeds, .. } = client else {
            panic!("a cluster client");
        };
        assert_eq!(seeds, ["redis://h1:7001", "redis://h2:7002"]);
        assert!(redis_client(" , ", None, true).is_err(), "no seed at all");
        let error = match redis_client("redis://h1:7001,nonsense://x", None, true) {
            Err(error) => error,
            Ok(_) => panic!("a bad seed is a start error"),
        };
        assert!(error.contains("nonsense://x"), "{error}");
        // Without --redis-cluster the URL is one server's.
        assert!(matches!(
            redis_client("redis://h1:7001", None, false),
            Ok(RedisClient::Single(_))
        ));
    }

    #[test]
    fn a_private_ca_needs_tls_seeds() {
        let ca =
            std::env::temp_dir().join(format!("ringcast-bridge-test-ca-{}", std::process::id()));
        std::fs::write(&ca, b"not checked here").expect("temp file");
        let error = match redis_client("rediss://h1:7001,redis://h2:7002", Some(&ca), true) {
            Err(error) => error,
            Ok(_) => panic!("a plain seed with a CA file is a start error"),
        };
        assert!(error.contains("redis://h2:7002"), "{error}");
        let _ = std::fs::remove_file(&ca);
    }
}
