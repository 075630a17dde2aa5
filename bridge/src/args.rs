//! The bridge's command line, and what it means before anything starts: the node id, the Redis
//! client (one server or a cluster's seeds), each checked here so that a bad value is a start
//! error with a clear message rather than a retry loop.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::limits::{PRESENCE_TTL_MS_DEFAULT, PRESENCE_TTL_MS_MAX, PRESENCE_TTL_MS_MIN};
use crate::redis::connect::{redis_client, RedisClient};
use crate::redis::envelope::is_reserved_node_id;
use crate::redis::layout::check_prefix;

/// Relays ringcast events between nodes over Redis pub/sub for the engine shards linked to it.
#[derive(Debug, Parser)]
#[command(name = "ringcast-bridge", version, about)]
pub struct Args {
    /// Unix socket the engine shards link to.
    #[arg(long, value_name = "PATH", default_value = "/tmp/ringcast-bridge.sock")]
    pub link_socket: PathBuf,
    /// Redis server for pub/sub between nodes; with `--redis-cluster`, one or more nodes of the
    /// cluster, comma-separated (the others are discovered).
    #[arg(long, value_name = "URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Redis is a Redis Cluster: message channels use sharded pub/sub (Redis 7+), state keys
    /// share one hash slot.
    #[arg(long)]
    pub redis_cluster: bool,
    /// PEM file of the certificate authority that signed the Redis server's certificate
    /// (`rediss://` URLs); without it the public web roots are trusted.
    #[arg(long, value_name = "PATH")]
    pub redis_tls_ca: Option<PathBuf>,
    /// Prefix of the Redis channel names (`{prefix}#{app_id}#{channel}`).
    #[arg(long, value_name = "P", default_value = "pusher")]
    pub redis_prefix: String,
    /// This node's id on the cluster; random when not given. Must differ between nodes.
    #[arg(long, value_name = "N")]
    pub node_id: Option<u64>,
    /// Lifetime of this node's presence heartbeat: a node silent this long is presumed dead
    /// and its presence members are removed.
    #[arg(long, value_name = "MS", default_value_t = PRESENCE_TTL_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(PRESENCE_TTL_MS_MIN..=PRESENCE_TTL_MS_MAX))]
    pub presence_ttl_ms: u64,
    /// A node alone: no Redis, no other nodes; the bridge only sends webhooks.
    #[arg(long, conflicts_with_all = ["redis_url", "redis_prefix", "presence_ttl_ms", "webhook_queue", "redis_cluster"])]
    pub without_redis: bool,
    /// Where webhook events wait for delivery: in this process (lost if it dies), or in Redis
    /// (at-least-once: a receiver outage or a killed bridge loses nothing).
    #[arg(long, value_enum, default_value_t = QueueDriver::Local)]
    pub webhook_queue: QueueDriver,
    /// Least severe log level printed.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

/// Values of `--webhook-queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueDriver {
    /// In this process.
    Local,
    /// In Redis.
    Redis,
}

/// Values of `--log-level`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Start, stop and state changes.
    Info,
    /// Everything, per message.
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

impl Args {
    /// This node's id: the one given, or a random one; a reserved id is refused.
    pub fn node_id(&self) -> Result<u64, String> {
        let node_id = self
            .node_id
            .unwrap_or_else(|| ahash::RandomState::new().hash_one(std::process::id()));
        if is_reserved_node_id(node_id) {
            // Its publish envelopes would read as member events; a random id hits it practically
            // never, a given one is refused.
            return Err(format!("node id {node_id} is reserved; choose another"));
        }
        Ok(node_id)
    }

    /// The Redis client, `None` for a node alone (`--without-redis`).
    pub fn redis_client(&self) -> Result<Option<RedisClient>, String> {
        check_prefix(&self.redis_prefix)?;
        if self.without_redis {
            return Ok(None);
        }
        redis_client(
            &self.redis_url,
            self.redis_tls_ca.as_deref(),
            self.redis_cluster,
        )
        .map(Some)
    }
}
