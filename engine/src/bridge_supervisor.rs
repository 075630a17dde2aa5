//! Starts the bridge (`ringcast-bridge`) as a child process when the configuration needs one and
//! restarts it with backoff whenever it exits, from a plain thread (never on a shard core). The
//! child is tied to the engine's life: it receives SIGTERM when the engine goes away, even on
//! `kill -9`.
//!
//! It also prepares the socket the shards link to, so that no other user can stand in for the
//! bridge: by default a fresh directory only this user can open (removed at exit), else the
//! operator's `--bridge-socket` once its directory is shown to be this user's alone. Each pid it
//! starts goes to the link's peer check (`crate::bridge_link`), and the Redis URL, which may
//! hold a password, goes to the child in its environment, never on its command line.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ringcast_core::backoff::Backoff;
use tracing::{error, info, warn};

use crate::bridge_link;
use crate::config::{Driver, ServerConfig};
use crate::shard::DRAIN_REQUESTED;
use ringcast_core::limits::{
    BRIDGE_EXIT_SOCKET_WAIT_MS, BRIDGE_HEALTHY_RUN_MS, BRIDGE_SOCKET_DIR_ATTEMPTS,
};

/// The environment variable the bridge takes its Redis URL from (`bridge/src/args.rs` spells
/// the same name): a process's environment is readable by its user and root only, its command
/// line by everyone.
const REDIS_URL_ENV: &str = "RINGCAST_BRIDGE_REDIS_URL";

/// The socket's name inside the private directory.
const SOCKET_FILE: &str = "bridge.sock";

/// The socket made by [`prepare_socket`] in its own directory, for the exit hook to remove.
static PRIVATE_SOCKET: OnceLock<PathBuf> = OnceLock::new();

/// The Unix socket the shards link to, ready to use. `--bridge-socket` is kept, once its
/// directory is this user's alone; else a fresh directory of mode 0700 is made (under
/// `$XDG_RUNTIME_DIR` when set, else the temp dir) and removed when the engine exits.
pub fn prepare_socket(server: &ServerConfig) -> Result<PathBuf, String> {
    let socket = match &server.bridge_socket {
        Some(path) => {
            let path = PathBuf::from(path);
            check_socket_directory(&path)?;
            path
        }
        None => {
            let socket = private_directory()?.join(SOCKET_FILE);
            remove_at_exit(socket.clone());
            socket
        }
    };
    // The kernel's limit on a socket path (108 bytes) would otherwise show only as a bridge
    // that cannot listen and shards that cannot connect.
    socket2::SockAddr::unix(&socket).map_err(|err| {
        format!(
            "the bridge socket path {} cannot be used ({err}); set --bridge-socket to a shorter \
             path",
            socket.display()
        )
    })?;
    Ok(socket)
}

/// Refuses a `--bridge-socket` whose directory another user could write to (they could put
/// their own socket at the path, or remove ours): it must be ours or root's, and not writable
/// by group or others. A sticky `/tmp` does not do: the name can be taken before us.
fn check_socket_directory(socket: &Path) -> Result<(), String> {
    let directory = match socket.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let refuse = |why: String| {
        Err(format!(
            "--bridge-socket {}: {why}; use a directory only this user can write to (mode 0700, \
             or 0750 for a group that may read)",
            socket.display()
        ))
    };
    let metadata = match std::fs::metadata(directory) {
        Ok(metadata) => metadata,
        Err(err) => return refuse(format!("cannot inspect {}: {err}", directory.display())),
    };
    let mode = metadata.mode() & 0o7777;
    if !metadata.is_dir() {
        refuse(format!("{} is not a directory", directory.display()))
    } else if mode & 0o022 != 0 {
        refuse(format!(
            "its directory {} is writable by group or others (mode {mode:04o})",
            directory.display()
        ))
    } else if metadata.uid() != bridge_link::our_uid() && metadata.uid() != 0 {
        refuse(format!(
            "its directory {} belongs to uid {}, not this user",
            directory.display(),
            metadata.uid()
        ))
    } else {
        Ok(())
    }
}

/// A new directory of mode 0700 with a random name, under `$XDG_RUNTIME_DIR` (when set and
/// usable) or the temp dir. Creating it fails when the name exists, so nobody can have
/// prepared it; another name is tried then.
fn private_directory() -> Result<PathBuf, String> {
    // The XDG spec says to ignore a relative value; a stale one (after `su`) may be unusable,
    // hence the temp dir after it.
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute());
    let bases: Vec<PathBuf> = runtime.into_iter().chain([std::env::temp_dir()]).collect();
    let mut last_error = String::from("no directory to create it in");
    for base in &bases {
        for attempt in 0..BRIDGE_SOCKET_DIR_ATTEMPTS {
            let random = ahash::RandomState::new().hash_one((std::process::id(), attempt));
            let directory = base.join(format!("ringcast-{random:016x}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&directory) {
                Ok(()) => {
                    // The umask may have taken bits away (even ours); set exactly 0700.
                    std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o700))
                        .map_err(|err| {
                            format!("cannot set the mode of {}: {err}", directory.display())
                        })?;
                    return Ok(directory);
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => {
                    last_error = format!("{}: {err}", base.display());
                    break;
                }
            }
        }
    }
    Err(format!(
        "cannot create a private directory for the bridge socket ({last_error}); set \
         --bridge-socket to a path in a directory only this user can write to"
    ))
}

/// Registers the exit hook that removes the private directory of `socket`.
fn remove_at_exit(socket: PathBuf) {
    if PRIVATE_SOCKET.set(socket).is_err() {
        return;
    }
    // SAFETY: atexit(3) only stores the pointer of a function without arguments that lives as
    // long as the program; the function never unwinds (see `remove_private_directory`).
    #[allow(unsafe_code)]
    let status = unsafe { libc::atexit(remove_private_directory) };
    if status != 0 {
        warn!("cannot register the removal of the bridge socket directory at exit");
    }
}

/// At exit (`exit(3)`: after `main` or `std::process::exit`): stops the bridge a moment
/// before its PDEATHSIG would, waits for it to remove its socket, then removes the directory.
/// Nothing in here can panic: a panic must not unwind out of an `extern "C"` function.
extern "C" fn remove_private_directory() {
    let Some(socket) = PRIVATE_SOCKET.get() else {
        return;
    };
    // No restart into a directory about to go.
    DRAIN_REQUESTED.store(true, Ordering::Relaxed);
    if let Some(pid) = bridge_link::supervised_bridge_pid().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) only sends a signal; `pid` is the child the supervisor started and
        // has not reaped (it clears the pid when the child exits).
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_millis(BRIDGE_EXIT_SOCKET_WAIT_MS);
        while std::fs::symlink_metadata(socket).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = std::fs::remove_file(socket);
    if let Some(directory) = socket.parent() {
        let _ = std::fs::remove_dir(directory);
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
    let mut redis = None;
    if cluster || redis_queue {
        // In the child's environment, not its arguments: the URL may hold a password.
        redis = Some(redis_url(server));
        args.extend([
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
        .spawn(move || supervise(&binary, &args, redis.as_deref()))
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

/// Runs the bridge until the engine drains, restarting it with backoff. `redis_url` goes into
/// the child's environment (none: a node alone, and an inherited value is removed, since the
/// bridge refuses a Redis URL next to `--without-redis`). Every pid is announced to the link's
/// peer check before and after the start, and withdrawn when the child exits.
fn supervise(binary: &Path, args: &[String], redis_url: Option<&str>) {
    // Doubles while the bridge keeps failing.
    let mut backoff = Backoff::reconnect();
    loop {
        let started = Instant::now();
        let mut command = Command::new(binary);
        command.args(args).stdin(Stdio::null());
        match redis_url {
            Some(url) => command.env(REDIS_URL_ENV, url),
            None => command.env_remove(REDIS_URL_ENV),
        };
        tie_to_parent(&mut command);
        bridge_link::bridge_starting();
        match command.spawn() {
            Ok(mut child) => {
                bridge_link::bridge_started(child.id());
                info!(pid = child.id(), "bridge started");
                let waited = child.wait();
                bridge_link::bridge_stopped();
                match waited {
                    Ok(status) if DRAIN_REQUESTED.load(Ordering::Relaxed) => {
                        info!(%status, "bridge stopped");
                        return;
                    }
                    Ok(status) => warn!(%status, "bridge exited; restarting it"),
                    Err(err) => error!(%err, "cannot wait for the bridge"),
                }
            }
            Err(err) => {
                bridge_link::bridge_stopped();
                error!(%err, binary = %binary.display(), "cannot start the bridge");
            }
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
