//! Which Redis the bridge talks to — one server, or a Redis Cluster through seed nodes — and
//! opening connections to it with explicit timeouts, for every task of the bridge that talks to
//! Redis (the library's default response timeout would be too short on a busy machine, and the
//! cluster client has none: a silent Redis would hold a task forever). The tasks use
//! [`RedisConnection`] the same way for both; what differs (sharded pub/sub, pipelines per slot)
//! is decided where it matters, from [`RedisClient::is_cluster`].

use std::path::Path;
use std::time::Duration;

use crate::redis::url::without_password;
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
    /// Where this client goes, for the log: `url` (as given) or the cluster's seeds, with any
    /// password hidden.
    pub fn shown(&self, url: &str) -> String {
        match self {
            RedisClient::Single(_) => without_password(url),
            RedisClient::Cluster { seeds, .. } => {
                let shown: Vec<String> = seeds.iter().map(|seed| without_password(seed)).collect();
                format!("Redis Cluster via {}", shown.join(","))
            }
        }
    }

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

/// The Redis client for `url` (with `cluster`: a comma-separated list of seed nodes); with
/// `ca_file`, TLS trusts that authority only.
pub fn redis_client(
    url: &str,
    ca_file: Option<&Path>,
    cluster: bool,
) -> Result<RedisClient, String> {
    let urls: Vec<&str> = if cluster {
        url.split(',')
            .map(str::trim)
            .filter(|seed| !seed.is_empty())
            .collect()
    } else {
        vec![url]
    };
    if urls.is_empty() {
        return Err("the Redis URL names no Redis Cluster node".to_owned());
    }
    let root_certificate =
        match ca_file {
            None => None,
            Some(path) => {
                if let Some(plain) = urls.iter().find(|url| !url.starts_with("rediss://")) {
                    return Err(format!(
                        "--redis-tls-ca needs rediss:// URLs (TLS), not {}",
                        without_password(plain)
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
        let shown = without_password(url);
        let client = match &root_certificate {
            None => redis::Client::open(*url),
            Some(pem) => redis::Client::build_with_tls(
                *url,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
        }
        .map_err(|err| format!("invalid Redis URL {shown}: {err}"))?;
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
