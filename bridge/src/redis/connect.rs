//! Which Redis the bridge talks to — one server, or a Redis Cluster through seed nodes — and
//! opening connections to it with explicit timeouts, for every task of the bridge that talks to
//! Redis (the library's default response timeout would be too short on a busy machine, and the
//! cluster client has none: a silent Redis would hold a task forever). The tasks use
//! [`RedisConnection`] the same way for both; what differs (sharded pub/sub, pipelines per slot)
//! is decided where it matters, from [`RedisClient::is_cluster`].

use std::time::Duration;

use redis::aio::{AsyncPushSender, ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, TlsCertificates, Value};

/// Where Redis is.
#[derive(Clone)]
pub enum RedisClient {
    /// One server (possibly behind a proxy).
    Single(redis::Client),
    /// A Redis Cluster: the URLs of some of its nodes (the rest is discovered).
    Cluster {
        /// Seed node URLs.
        seeds: Vec<String>,
        /// The PEM of a private certificate authority for `rediss://` seeds.
        root_certificate: Option<Vec<u8>>,
    },
}

/// A connection to a server or to a whole cluster; commands and single-slot pipelines go to the
/// right master.
#[derive(Clone)]
pub enum RedisConnection {
    /// To one server.
    Single(MultiplexedConnection),
    /// To a cluster.
    Cluster(ClusterConnection),
}

impl RedisClient {
    /// Whether this is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisClient::Cluster { .. })
    }
}

/// A cluster client builder for the seeds, with these timeouts.
fn cluster_builder(
    seeds: &[String],
    root_certificate: Option<&[u8]>,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> ClusterClientBuilder {
    let builder = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
        .connection_timeout(connect_timeout)
        .response_timeout(response_timeout)
        // Bounds a whole command, redirects and retries included.
        .overall_response_timeout(Some(response_timeout * 2));
    match root_certificate {
        Some(pem) => builder.certs(TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        }),
        None => builder,
    }
}

/// A connection to `client`'s Redis that gives up connecting after `connect_timeout` and on any
/// answer after `response_timeout`.
pub async fn open(
    client: &RedisClient,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> redis::RedisResult<RedisConnection> {
    match client {
        RedisClient::Single(client) => {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(response_timeout));
            let connection = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            Ok(RedisConnection::Single(connection))
        }
        RedisClient::Cluster {
            seeds,
            root_certificate,
        } => {
            let cluster = cluster_builder(
                seeds,
                root_certificate.as_deref(),
                connect_timeout,
                response_timeout,
            )
            .build()?;
            Ok(RedisConnection::Cluster(
                cluster.get_async_connection().await?,
            ))
        }
    }
}

/// A RESP3 connection to the cluster `seeds` whose pushes (pub/sub messages, subscription
/// changes, disconnections) go to `pushes`, which must never block.
pub async fn open_cluster_subscriber(
    seeds: &[String],
    root_certificate: Option<&[u8]>,
    connect_timeout: Duration,
    response_timeout: Duration,
    pushes: impl AsyncPushSender,
) -> redis::RedisResult<ClusterConnection> {
    cluster_builder(seeds, root_certificate, connect_timeout, response_timeout)
        // Pushes, and so sharded pub/sub, exist in RESP3 only.
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(pushes)
        .build()?
        .get_async_connection()
        .await
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(connection) => connection.req_packed_command(cmd),
            RedisConnection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            RedisConnection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(connection) => connection.get_db(),
            RedisConnection::Cluster(connection) => connection.get_db(),
        }
    }
}
