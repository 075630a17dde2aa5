//! Starts the bridge (`ringcast-bridge`) as a child process when the configuration needs one and
//! restarts it with backoff whenever it exits, from a plain thread (never on a shard core). The
//! child is tied to the engine's life: it receives SIGTERM when the engine goes away, even on
//! `kill -9`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ringcast_core::backoff::Backoff;
use tracing::{error, info, warn};

use crate::config::{Driver, ServerConfig};
use crate::shard::DRAIN_REQUESTED;
use ringcast_core::limits::BRIDGE_HEALTHY_RUN_MS;

/// The Unix socket the shards link to: `--bridge-socket`, else one per engine process.
pub fn socket_path(server: &ServerConfig) -> PathBuf {
    match &server.bridge_socket {
        Some(path) => PathBuf::from(path),
        None => std::env::temp_dir().join(format!("ringcast-bridge-{}.sock", std::process::id())),
    }
}

/// The Redis URL as the bridge wants it: the seed's `host:port` form gets a scheme, and
/// `--redis-tls` selects `rediss://`. With `--redis-cluster` it may list several nodes,
/// comma-separated; each gets its scheme.
pub fn redis_url(server: &ServerConfig) -> String {
    let with_scheme = |url: &str| {
        let rest = url
            .strip_prefix("redis://")
            .or_else(|| url.strip_prefix("rediss://"));
        let secure = server.redis_tls || url.starts_with("rediss://");
        let scheme = if secure { "rediss" } else { "redis" };
        format!("{scheme}://{}", rest.unwrap_or(url))
    };
    if server.redis_cluster {
        let seeds: Vec<String> = server
            .redis_url
            .split(',')
            .map(str::trim)
            .filter(|seed| !seed.is_empty())
            .map(with_scheme)
            .collect();
        seeds.join(",")
    } else {
        with_scheme(server.redis_url.trim())
    }
}

/// Finds the bridge program and starts supervising it. Fails (before any shard starts) when
/// the program cannot be found.
///
/// Every bridge this engine starts gets the same node id: a restarted bridge continues the
/// node's identity on the cluster instead of looking like a new node (whose predecessor would
/// then be declared dead).
pub fn start(server: &ServerConfig, socket: &Path, cluster: bool) -> Result<(), String> {
    let node_id = ahash::RandomState::new().hash_one((std::process::id(), socket));
    let binary = match &server.bridge_binary {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate the ringcast executable: {e}"))?
            .with_file_name("ringcast-bridge"),
    };
    if !binary.is_file() {
        let needed_for = if cluster {
            "the Redis adapter"
        } else {
            "webhooks (or the Redis queue)"
        };
        return Err(format!(
            "{needed_for} needs the bridge program, not found at {}: build it with \
             `cargo build --release -p ringcast-bridge`, or set --bridge-binary, or run it \
             yourself and pass --bridge-external",
            binary.display()
        ));
    }
    let mut args: Vec<String> = vec![
        "--link-socket".into(),
        socket.display().to_string(),
        "--log-level".into(),
        bridge_log_level(server).into(),
        "--node-id".into(),
        node_id.to_string(),
    ];
    let redis_queue = server.queue_driver == Driver::Redis;
    if cluster || redis_queue {
        args.extend([
            "--redis-url".into(),
            redis_url(server),
            "--redis-prefix".into(),
            server.redis_prefix.clone(),
            "--presence-ttl-ms".into(),
            server.node_heartbeat_ttl_ms.to_string(),
        ]);
        if redis_queue {
            args.extend(["--webhook-queue".into(), "redis".into()]);
        }
        if server.redis_cluster {
            args.push("--redis-cluster".into());
        }
        if let Some(ca_file) = &server.redis_tls_ca_file {
            args.extend(["--redis-tls-ca".into(), ca_file.clone()]);
        }
    } else {
        // A node alone with its webhooks in memory: the bridge needs no Redis.
        args.push("--without-redis".into());
    }
    std::thread::Builder::new()
        .name("bridge-supervisor".into())
        .spawn(move || supervise(&binary, &args))
        .map_err(|e| format!("cannot start the bridge supervisor thread: {e}"))?;
    Ok(())
}

/// The bridge's levels stop at `debug`; `trace` on the engine means `debug` there.
fn bridge_log_level(server: &ServerConfig) -> &'static str {
    match server.log_level.as_str() {
        "trace" => "debug",
        level => level,
    }
}

fn supervise(binary: &Path, args: &[String]) {
    // Doubles while the bridge keeps failing.
    let mut backoff = Backoff::reconnect();
    loop {
        let started = Instant::now();
        let mut command = Command::new(binary);
        command.args(args).stdin(Stdio::null());
        tie_to_parent(&mut command);
        match command.spawn() {
            Ok(mut child) => {
                info!(pid = child.id(), "bridge started");
                match child.wait() {
                    Ok(status) if DRAIN_REQUESTED.load(Ordering::Relaxed) => {
                        info!(%status, "bridge stopped");
                        return;
                    }
                    Ok(status) => warn!(%status, "bridge exited; restarting it"),
                    Err(err) => error!(%err, "cannot wait for the bridge"),
                }
            }
            Err(err) => error!(%err, binary = %binary.display(), "cannot start the bridge"),
        }
        if DRAIN_REQUESTED.load(Ordering::Relaxed) {
            return;
        }
        if started.elapsed() >= Duration::from_millis(BRIDGE_HEALTHY_RUN_MS) {
            backoff.reset();
        }
        std::thread::sleep(Duration::from_millis(backoff.next_delay_ms()));
    }
}

/// The child gets SIGTERM when the thread that started it dies (this supervisor thread lives as
/// long as the engine process), so no bridge outlives its engine.
fn tie_to_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe; it touches no memory shared with the parent.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str, tls: bool) -> ServerConfig {
        let args = ["ringcast", "--redis-url", url];
        let args = args.iter().map(Into::into).collect();
        let mut config = crate::config::load(args, &|_| None)
            .expect("valid configuration")
            .server;
        config.redis_tls = tls;
        config
    }

    #[test]
    fn redis_urls_get_a_scheme() {
        assert_eq!(
            redis_url(&server("localhost:6379", false)),
            "redis://localhost:6379"
        );
        assert_eq!(
            redis_url(&server("localhost:6379", true)),
            "rediss://localhost:6379"
        );
        assert_eq!(redis_url(&server("redis://h:1/2", false)), "redis://h:1/2");
        assert_eq!(redis_url(&server("redis://h:1", true)), "rediss://h:1");
        assert_eq!(redis_url(&server("rediss://h:1", false)), "rediss://h:1");
    }

    #[test]
    fn a_redis_cluster_url_lists_seed_nodes() {
        let mut cluster = server("h1:7001, redis://h2:7002,,h3:7003", false);
        cluster.redis_cluster = true;
        assert_eq!(
            redis_url(&cluster),
            "redis://h1:7001,redis://h2:7002,redis://h3:7003"
        );
        cluster.redis_tls = true;
        assert_eq!(
            redis_url(&cluster),
            "rediss://h1:7001,rediss://h2:7002,rediss://h3:7003"
        );
        // Without --redis-cluster a comma is just part of the one URL.
        assert_eq!(redis_url(&server("h1:1", false)), "redis://h1:1");
    }
}
