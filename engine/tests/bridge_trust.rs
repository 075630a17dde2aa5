//! The bridge link is trusted only after a check (docs/cluster.md, "Link trust"): real engines
//! and bridges, a real `redis-server` that requires a password, and a listener of the test's
//! own standing where the engine expects its bridge.
//!
//! - the Redis password reaches a supervised bridge in its environment, never its arguments;
//!   a bridge run by hand takes it from a file and refuses it as an argument;
//! - the default socket lives in a fresh directory of mode 0700, removed at exit; an explicit
//!   socket in a directory others may write to is refused at start;
//! - a process that is not the engine's bridge, listening where the engine connects, receives
//!   nothing before the engine drops it, and the engine logs who it was.
//!
//! Needs `redis-server` on PATH and the `ringcast-bridge` binary next to `ringcast` (both
//! provided by `scripts/test.sh`, which builds the whole workspace).

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use serde_json::Value;

/// The environment variable the engine passes the Redis URL in (the bridge reads it).
const REDIS_URL_ENV: &str = "RINGCAST_BRIDGE_REDIS_URL";

/// Options that make a node alone start its bridge: webhooks (to a port nobody listens on).
const WEBHOOKS: [&str; 6] = [
    "--app-webhooks-enabled",
    "true",
    "--app-webhook-url",
    "http://127.0.0.1:9/hooks",
    "--app-has-channel-occupied-webhooks",
    "true",
];

/// A `redis-server` that requires a password, on a free loopback port, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(password: &str) -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--requirepass", password])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): install it (Debian: apt-get install \
                     redis-server); scripts/test.sh does"
                )
            });
        let redis = Redis { child, port };
        // Up, and really refusing the unauthenticated: the password is what the nodes need.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis.answers_ping_with("-NOAUTH") {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    /// Whether a PING without AUTH is answered with a reply starting with `prefix`.
    fn answers_ping_with(&self, prefix: &str) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 64];
        if stream.write_all(b"PING\r\n").is_err() {
            return false;
        }
        match stream.read(&mut reply) {
            Ok(n) => reply[..n].starts_with(prefix.as_bytes()),
            Err(_) => false,
        }
    }

    fn url(&self, password: &str) -> String {
        format!("redis://:{password}@127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped (a bridge run by hand).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A password no other test run uses, so finding it somewhere means this run put it there.
fn secret(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("pw-{test}-{}-{nanos}", std::process::id())
}

fn unique_prefix(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

/// A new, empty directory of mode 0700 for one test.
fn test_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bridge-trust-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// This process's uid (the owner of its `/proc` entry).
fn our_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn bridge_binary() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ringcast")).with_file_name("ringcast-bridge")
}

/// The usual two-shard test node, with `env` as its whole environment and `extra` options.
/// Unless `env` says where, its private socket directory goes under this run's test dir:
/// a node the test kills (SIGKILL, no exit hook) leaves it behind.
fn node(env: &[(&str, &str)], extra: &[&str]) -> Server {
    let temp =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bridge-trust-{}", std::process::id()));
    std::fs::create_dir_all(&temp).unwrap();
    let temp = temp.display().to_string();
    let mut env = env.to_vec();
    if !env
        .iter()
        .any(|(name, _)| *name == "TMPDIR" || *name == "XDG_RUNTIME_DIR")
    {
        env.push(("TMPDIR", temp.as_str()));
    }
    Server::start_with_extra_env(extra, &env)
}

/// Runs ringcast with the test app and `args`, expecting it to refuse to start; returns the
/// line it printed for it (`ringcast: …`).
fn refused_start(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "--port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--shards",
            "1",
        ])
        .args(["--app-id", APP_ID, "--app-key", APP_KEY])
        .args(["--app-secret", APP_SECRET])
        .args(args)
        .env_clear()
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .stdin(Stdio::null())
        .output()
        .expect("ringcast runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
        .lines()
        .find(|line| line.starts_with("ringcast: "))
        .unwrap_or_else(|| panic!("no `ringcast: …` line: {stderr}"))
        .to_string()
}

/// Waits until `/metrics` of `server` has the line `line`.
fn wait_metric(server: &Server, line: &str) {
    let deadline = Instant::now() + BRIDGE_TIMEOUT;
    loop {
        let metrics = http_get(server.addr, "/metrics").body_text();
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no `{line}` in /metrics of {}:\n{metrics}\n{}",
            server.addr,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the log of `server` has a line containing every one of `parts`; returns it.
fn wait_log_line(server: &Server, parts: &[&str]) -> String {
    let deadline = Instant::now() + BRIDGE_TIMEOUT;
    loop {
        let log = server.log();
        if let Some(line) = log
            .lines()
            .find(|line| parts.iter().all(|part| line.contains(part)))
        {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {parts:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Publishes a signed REST event `name` on `channel` through `addr`; returns the status.
fn publish(addr: std::net::SocketAddr, channel: &str, name: &str) -> u16 {
    http_raw(addr, publish_request(channel, name, None, false).as_bytes()).status
}

/// Publishes on `from` every 200 ms until `client` (on another node) receives one: the nodes
/// reach each other through Redis.
fn publish_until_received(from: std::net::SocketAddr, channel: &str, client: &mut WsClient) {
    let deadline = Instant::now() + BRIDGE_TIMEOUT;
    for attempt in 0.. {
        let name = format!("crossed-{attempt}");
        assert_eq!(publish(from, channel, &name), 200);
        if let ReadOutcome::Frame(frame) = client.read_frame_within(Duration::from_millis(200)) {
            let value: Value = serde_json::from_slice(&frame.payload).unwrap_or(Value::Null);
            if value["event"]
                .as_str()
                .is_some_and(|e| e.starts_with("crossed-"))
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "nothing crossed the nodes through the password-protected Redis"
        );
    }
}

/// Asserts that the bridge process `pid` has `password` nowhere in its arguments, and that its
/// environment (where the URL is) is readable by this user only.
fn assert_password_only_in_environment(pid: u32, password: &str, url: &str) {
    let args = process_args(pid);
    assert!(
        !args.iter().any(|arg| arg.contains(password)),
        "the password is on the bridge's command line: {args:?}"
    );
    assert_eq!(arg_after(&args, "--redis-url"), None, "{args:?}");
    let environ = format!("/proc/{pid}/environ");
    let metadata = std::fs::metadata(&environ).unwrap();
    assert_eq!(
        (metadata.mode() & 0o777, metadata.uid()),
        (0o400, our_uid()),
        "{environ} is readable by its owner only"
    );
    let variables = std::fs::read(&environ).unwrap();
    let expected = format!("{REDIS_URL_ENV}={url}");
    assert!(
        variables
            .split(|b| *b == 0)
            .any(|variable| variable == expected.as_bytes()),
        "the bridge's environment has no {REDIS_URL_ENV} with the URL"
    );
}

#[test]
fn a_redis_password_reaches_the_bridge_in_its_environment_never_its_arguments() {
    let password = secret("env");
    let redis = Redis::start(&password);
    let url = redis.url(&password);
    let prefix = unique_prefix("env");
    // The engine's own command line stays clean too: the URL is in its environment.
    let env = [("REDIS_URL", url.as_str())];
    let cluster = ["--adapter-driver", "redis", "--redis-prefix", &prefix];
    let a = node(&env, &cluster);
    let b = node(&env, &cluster);
    for server in [&a, &b] {
        wait_bridge_linked(server, 2);
        // The bridge authenticated: it is connected to the Redis that refuses everyone else.
        wait_metric(server, "ringcast_bridge_redis_connected 1");
        assert_password_only_in_environment(bridge_child_pid(server), &password, &url);
    }
    let mut on_b = WsClient::pusher(b.addr);
    on_b.subscribe_ok("news", None);
    publish_until_received(a.addr, "news", &mut on_b);
}

#[test]
fn the_default_socket_is_in_a_new_directory_of_mode_0700_removed_at_exit() {
    let runtime = test_dir("xdg");
    let runtime_text = runtime.display().to_string();
    let mut server = node(&[("XDG_RUNTIME_DIR", runtime_text.as_str())], &WEBHOOKS);
    wait_bridge_linked(&server, 2);
    let socket = arg_after(&process_args(bridge_child_pid(&server)), "--link-socket")
        .map(PathBuf::from)
        .expect("the bridge gets --link-socket");
    let directory = socket.parent().unwrap().to_path_buf();
    assert_eq!(
        directory.parent(),
        Some(runtime.as_path()),
        "under $XDG_RUNTIME_DIR"
    );
    let metadata = std::fs::metadata(&directory).unwrap();
    assert!(metadata.is_dir());
    assert_eq!(
        (metadata.mode() & 0o7777, metadata.uid()),
        (0o700, our_uid()),
        "{} is this user's alone",
        directory.display()
    );

    // Without $XDG_RUNTIME_DIR: the temp dir, the same way.
    let temp = test_dir("tmpdir");
    let temp_text = temp.display().to_string();
    let other = node(&[("TMPDIR", temp_text.as_str())], &WEBHOOKS);
    wait_bridge_linked(&other, 2);
    let other_socket = arg_after(&process_args(bridge_child_pid(&other)), "--link-socket")
        .map(PathBuf::from)
        .unwrap();
    let other_directory = other_socket.parent().unwrap();
    assert_eq!(other_directory.parent(), Some(temp.as_path()));
    assert_ne!(other_directory, directory, "a new directory per engine");
    let mode = std::fs::metadata(other_directory).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o700);

    // A drained engine leaves nothing behind.
    server.sigterm();
    assert!(
        server.wait_exit(Duration::from_secs(20)).is_some(),
        "the engine did not exit\n{}",
        server.log()
    );
    assert!(
        !directory.exists(),
        "{} is still there after exit\n{}",
        directory.display(),
        server.log()
    );
}

#[test]
fn an_impostor_at_the_socket_receives_nothing_and_is_logged() {
    let dir = test_dir("impostor");
    let socket = dir.join("bridge.sock");
    let impostor = UnixListener::bind(&socket).unwrap();
    impostor.set_nonblocking(true).unwrap();
    // The engine's supervised "bridge" is a stand-in that never listens, so what the shards
    // reach at the socket is this test's listener: a process of the same user, not the child.
    let stand_in = dir.join("stand-in-bridge");
    std::fs::write(&stand_in, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket_text = socket.display().to_string();
    let stand_in_text = stand_in.display().to_string();
    let mut extra = vec![
        "--bridge-socket",
        socket_text.as_str(),
        "--bridge-binary",
        stand_in_text.as_str(),
    ];
    extra.extend_from_slice(&WEBHOOKS);
    let server = node(&[], &extra);

    // Both shards, and at least one retry: each connection ends without a byte.
    let deadline = Instant::now() + BRIDGE_TIMEOUT;
    let mut dropped = 0;
    while dropped < 3 {
        match impostor.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut received = Vec::new();
                if let Err(err) = stream.read_to_end(&mut received) {
                    panic!(
                        "the engine kept the connection open ({err}) after {} bytes",
                        received.len()
                    );
                }
                assert!(
                    received.is_empty(),
                    "the impostor received {} bytes: {:?}",
                    received.len(),
                    lossy(&received)
                );
                dropped += 1;
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "the engine connected {dropped} times only\n{}",
                    server.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("accept: {err}"),
        }
    }
    let warning = wait_log_line(
        &server,
        &[
            "WARN",
            "refused the bridge link",
            &format!("peer_pid={}", std::process::id()),
            &format!("peer_uid={}", our_uid()),
        ],
    );
    assert!(warning.contains("refused_total="), "{warning}");
    assert!(!server.log().contains("bridge link up"), "{}", server.log());
    let metrics = http_get(server.addr, "/metrics").body_text();
    let refused: u64 = metrics
        .lines()
        .filter(|line| line.starts_with("ringcast_bridge_link_peers_refused_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(refused >= 1, "the refusals are on /metrics: {metrics}");
    // Meanwhile the engine's supervised child, whose pid the link expects, runs.
    let deadline = Instant::now() + BRIDGE_TIMEOUT;
    while child_named(server.pid(), "sleep").is_none() {
        assert!(
            Instant::now() < deadline,
            "the stand-in bridge does not run as the engine's child\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_explicit_socket_in_a_directory_others_can_write_is_refused_at_start() {
    for mode in [0o1777, 0o770, 0o702] {
        let dir = test_dir(&format!("open-{mode:o}"));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let socket = dir.join("bridge.sock").display().to_string();
        let mut args = vec!["--bridge-socket", socket.as_str()];
        args.extend_from_slice(&WEBHOOKS);
        let line = refused_start(&args);
        assert!(
            line.contains(&format!("--bridge-socket {socket}"))
                && line.contains("writable by group or others"),
            "{line}"
        );
    }
    // A private directory is fine (the bridge starts and links).
    let dir = test_dir("private");
    let socket = dir.join("bridge.sock").display().to_string();
    let mut args = vec!["--bridge-socket", socket.as_str()];
    args.extend_from_slice(&WEBHOOKS);
    let server = node(&[], &args);
    wait_bridge_linked(&server, 2);

    // A bridge run separately cannot know a private default: the path must be given.
    let mut args = vec!["--bridge-external", "true"];
    args.extend_from_slice(&WEBHOOKS);
    let line = refused_start(&args);
    assert!(
        line.contains("--bridge-external needs --bridge-socket"),
        "{line}"
    );
}

#[test]
fn a_bridge_run_by_hand_takes_the_password_from_a_file_never_from_its_arguments() {
    let password = secret("file");
    let redis = Redis::start(&password);
    let url = redis.url(&password);
    let bridge = bridge_binary();

    // On its command line the password is refused, and the error does not repeat it.
    let output = Command::new(&bridge)
        .args(["--redis-url", &url])
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("ringcast-bridge runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(REDIS_URL_ENV) && stderr.contains("--redis-url-file"),
        "{stderr}"
    );
    assert!(!stderr.contains(&password), "{stderr}");

    // From a file it works: an engine linked to that bridge (`--bridge-external`, so the link
    // checks its uid only) and an engine with its own bridge reach each other through Redis.
    let dir = test_dir("by-hand");
    let url_file = dir.join("redis-url");
    std::fs::write(&url_file, format!("{url}\n")).unwrap();
    std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let socket = dir.join("bridge.sock");
    let prefix = unique_prefix("file");
    let log_path = dir.join("bridge.log");
    let by_hand = Killed(
        Command::new(&bridge)
            .arg("--link-socket")
            .arg(&socket)
            .arg("--redis-url-file")
            .arg(&url_file)
            .args(["--redis-prefix", &prefix])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(File::create(&log_path).unwrap()))
            .spawn()
            .expect("starts ringcast-bridge"),
    );
    let hand_args = process_args(by_hand.0.id());
    assert!(!hand_args.iter().any(|arg| arg.contains(&password)));
    let socket_text = socket.display().to_string();
    let cluster = ["--adapter-driver", "redis", "--redis-prefix", &prefix];
    let mut extra = vec!["--bridge-external", "true", "--bridge-socket", &socket_text];
    extra.extend_from_slice(&cluster);
    let external = node(&[], &extra);
    wait_bridge_linked(&external, 2);
    wait_metric(&external, "ringcast_bridge_redis_connected 1");
    let supervised = node(&[("REDIS_URL", url.as_str())], &cluster);
    wait_bridge_linked(&supervised, 2);
    let mut on_external = WsClient::pusher(external.addr);
    on_external.subscribe_ok("news", None);
    publish_until_received(supervised.addr, "news", &mut on_external);
    let bridge_log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !bridge_log.contains(&password),
        "the bridge logged the password"
    );
}
