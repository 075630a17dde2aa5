//! Several real nodes (engine + the bridge it supervises) on one real `redis-server`: publishes
//! cross nodes exactly once, socket exclusion holds across nodes, and a node keeps serving its
//! own clients when its bridge is killed or Redis goes away, then rejoins without a restart.
//!
//! Needs `redis-server` on PATH and the `ringcast-bridge` binary next to `ringcast` (both
//! provided by `scripts/test.sh`, which builds the whole workspace).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Longest wait for a node to recover after a fault.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A `redis-server` on a free loopback port, killed when dropped.
struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis::start_on(port)
    }

    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
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
        let redis = Redis {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A node of the cluster: the engine with the Redis adapter (it starts its own bridge).
fn node(redis: &Redis, prefix: &str) -> Server {
    let url = redis.url();
    let server = Server::start(&[
        "--adapter-driver",
        "redis",
        "--redis-url",
        &url,
        "--redis-prefix",
        prefix,
        "--app-enable-client-messages",
        "true",
    ]);
    wait_linked(&server, 1);
    server
}

/// Waits until every shard of the node has linked to its bridge at least `times` times.
fn wait_linked(server: &Server, times: u64) {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let metrics = http_get(server.addr, "/metrics").body_text();
        let counts: Vec<u64> = metrics
            .lines()
            .filter(|l| l.starts_with("ringcast_bridge_link_connects_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        if counts.len() == 2 && counts.iter().all(|c| *c >= times) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} did not link to its bridge ({counts:?})\n{}",
            server.addr,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Publishes one event through the signed REST API on a new connection; returns the status.
fn publish(addr: SocketAddr, channel: &str, name: &str, socket_id: Option<&str>) -> u16 {
    let request = publish_request(channel, name, socket_id, false);
    http_raw(addr, request.as_bytes()).status
}

/// The names of the channel events a client receives within `window`.
fn events_within(client: &mut WsClient, window: Duration) -> Vec<String> {
    let deadline = Instant::now() + window;
    let mut names = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return names;
        }
        match client.read_frame_within(left) {
            ReadOutcome::Frame(frame) => {
                let value: Value = serde_json::from_slice(&frame.payload).unwrap_or(Value::Null);
                if let Some(name) = value["event"].as_str() {
                    names.push(name.to_string());
                }
            }
            ReadOutcome::Timeout => return names,
            other => panic!("connection failed: {other:?}"),
        }
    }
}

/// Publishes `name-N` on `from` every 200 ms until `client` receives one; panics after the
/// recovery timeout.
fn publish_until_received(from: SocketAddr, channel: &str, name: &str, client: &mut WsClient) {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    for attempt in 0.. {
        let event = format!("{name}-{attempt}");
        publish(from, channel, &event, None);
        let got = events_within(client, Duration::from_millis(200));
        if got.iter().any(|e| e.starts_with(name)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: nothing crossed the nodes in time"
        );
    }
}

/// The pid of the bridge a node started (its child named `ringcast-bridge`).
fn bridge_pid(server: &Server) -> Option<u32> {
    let parent = server.pid();
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let name = status
            .lines()
            .next()?
            .strip_prefix("Name:")?
            .trim()
            .to_string();
        let ppid: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()?;
        (ppid == parent && name == "ringcast-bridge").then_some(pid)
    })
}

/// The `--node-id` a bridge process was started with.
fn node_id_arg(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args.iter().position(|a| a == "--node-id").unwrap();
    args[at + 1].clone()
}

fn unique_prefix(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

#[test]
fn publishes_cross_nodes_once_and_exclusion_holds_across_nodes() {
    let redis = Redis::start();
    let prefix = unique_prefix("cross");
    let a = node(&redis, &prefix);
    let b = node(&redis, &prefix);
    let mut on_a = WsClient::pusher(a.addr);
    let mut on_b = pusher_clients_on_both_shards(b.addr, 2);
    on_a.subscribe_ok("news", None);
    for client in &mut on_b {
        client.subscribe_ok("news", None);
    }

    // A REST publish on A reaches every subscriber on both nodes exactly once.
    assert_eq!(publish(a.addr, "news", "headline", None), 200);
    assert_eq!(
        events_within(&mut on_a, Duration::from_millis(500)),
        ["headline"]
    );
    for client in &mut on_b {
        assert_eq!(
            events_within(client, Duration::from_millis(500)),
            ["headline"]
        );
    }

    // A publish on A that excludes a socket of node B.
    let excluded = on_b[0].socket_id.clone();
    assert_eq!(publish(a.addr, "news", "not-for-b0", Some(&excluded)), 200);
    assert_eq!(
        events_within(&mut on_a, Duration::from_millis(500)),
        ["not-for-b0"]
    );
    assert!(events_within(&mut on_b[0], Duration::from_millis(500)).is_empty());
    assert_eq!(
        events_within(&mut on_b[1], Duration::from_millis(500)),
        ["not-for-b0"]
    );

    // The bridge's counters reach the engine's /metrics.
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let metrics = http_get(a.addr, "/metrics").body_text();
        let has = |line: &str| metrics.lines().any(|l| l == line);
        if has("ringcast_bridge_redis_connected 1")
            && has("ringcast_bridge_links 2")
            && has("ringcast_bridge_linked{shard=\"1\"} 1")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bridge metrics missing:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A node without subscribers for a channel does not deliver it anywhere.
    assert_eq!(publish(b.addr, "elsewhere", "nobody", None), 200);
    assert!(events_within(&mut on_a, Duration::from_millis(300)).is_empty());

    // Client events cross nodes and are not echoed to their sender.
    let mut chat_a = WsClient::pusher(a.addr);
    let mut chat_b = WsClient::pusher(b.addr);
    chat_a.subscribe_ok("private-chat", None);
    chat_b.subscribe_ok("private-chat", None);
    chat_b.send_json(&json!({"event": "client-hi", "channel": "private-chat", "data": {}}));
    assert_eq!(
        events_within(&mut chat_a, Duration::from_millis(500)),
        ["client-hi"]
    );
    assert!(events_within(&mut chat_b, Duration::from_millis(300)).is_empty());

    // Order per publisher connection (a keep-alive connection, as the SDKs use) is kept
    // across the hop.
    let mut keep_alive = tcp_connect(a.addr);
    let mut rest = Vec::new();
    for i in 0..50 {
        let request = publish_request("news", &format!("seq-{i}"), None, true);
        keep_alive.write_all(request.as_bytes()).unwrap();
        let response = read_http_response(&mut keep_alive, &mut rest).unwrap();
        assert_eq!(response.status, 200);
    }
    let expected: Vec<String> = (0..50).map(|i| format!("seq-{i}")).collect();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < expected.len() && Instant::now() < deadline {
        got.extend(events_within(&mut on_b[1], Duration::from_millis(200)));
    }
    assert_eq!(got, expected);
}

#[test]
fn a_node_serves_alone_while_its_bridge_or_redis_is_away_and_rejoins() {
    let mut redis = Redis::start();
    let prefix = unique_prefix("faults");
    let a = node(&redis, &prefix);
    let b = node(&redis, &prefix);
    let mut on_a = WsClient::pusher(a.addr);
    let mut on_b = WsClient::pusher(b.addr);
    on_a.subscribe_ok("news", None);
    on_b.subscribe_ok("news", None);
    publish_until_received(a.addr, "news", "warm", &mut on_b);
    events_within(&mut on_a, Duration::from_millis(300));

    // kill -9 B's bridge: B keeps serving its own clients, restarts the bridge, relinks,
    // re-announces its channels, and cross-node delivery comes back.
    let pid = bridge_pid(&b).expect("node B runs a bridge child");
    let node_id = node_id_arg(pid);
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert_eq!(publish(b.addr, "news", "local-only", None), 200);
    assert!(events_within(&mut on_b, Duration::from_millis(500)).contains(&"local-only".into()));
    wait_linked(&b, 2);
    let restarted = bridge_pid(&b).expect("the bridge was restarted");
    assert_ne!(restarted, pid);
    assert_eq!(
        node_id_arg(restarted),
        node_id,
        "a restarted bridge keeps the node's id"
    );
    publish_until_received(a.addr, "news", "after-bridge-restart", &mut on_b);
    // A subscription made after the relink works across nodes too.
    let mut late_b = WsClient::pusher(b.addr);
    late_b.subscribe_ok("late", None);
    assert_eq!(publish(a.addr, "late", "late-event", None), 200);
    assert_eq!(
        events_within(&mut late_b, Duration::from_secs(1)),
        ["late-event"]
    );

    // Redis goes away: both nodes keep serving locally; when it is back on the same port the
    // cluster recovers without restarting anything.
    let port = redis.port;
    redis.kill();
    events_within(&mut on_a, Duration::from_millis(200));
    events_within(&mut on_b, Duration::from_millis(200));
    assert_eq!(publish(a.addr, "news", "redis-down-local", None), 200);
    assert_eq!(
        events_within(&mut on_a, Duration::from_millis(500)),
        ["redis-down-local"]
    );
    let _redis_again = Redis::start_on(port);
    publish_until_received(a.addr, "news", "after-redis-restart", &mut on_b);
    publish_until_received(b.addr, "news", "back-the-other-way", &mut on_a);
}

/// A presence member with `user_id` (and a name), as `channel_data`.
fn member_data(user_id: &str) -> String {
    json!({"user_id": user_id, "user_info": {"name": user_id}}).to_string()
}

/// Waits for `member_added` of `user_id` on `client` (other events are skipped).
fn wait_member_added(client: &mut WsClient, user_id: &str) -> Value {
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = client.wait_for_event("pusher_internal:member_added", left);
        if data_of(&event)["user_id"] == user_id {
            return event;
        }
    }
}

#[test]
fn a_presence_join_while_redis_is_away_reaches_the_cluster_once_it_is_back() {
    let mut redis = Redis::start();
    let prefix = unique_prefix("presence-outage");
    let a = node(&redis, &prefix);
    // Redis goes away; Ada joins on node A, which answers alone; her join cannot reach Redis.
    let port = redis.port;
    redis.kill();
    let mut ada = WsClient::pusher(a.addr);
    ada.subscribe_ok("presence-room", Some(&member_data("ada")));
    // Redis is back, empty. Once it has been back a while node A restates what it holds, so a
    // subscriber on another node finds Ada among the members (without the repair she would
    // be missing for good), and Ada hears of him.
    let _redis_again = Redis::start_on(port);
    let b = node(&_redis_again, &prefix);
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let mut bob = WsClient::pusher(b.addr);
        let ok = bob.subscribe_ok("presence-room", Some(&member_data("bob")));
        let members = data_of(&ok)["presence"]["ids"].clone();
        if members
            .as_array()
            .is_some_and(|ids| ids.contains(&json!("ada")))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Ada never reached the cluster's members: {members}"
        );
        drop(bob);
        std::thread::sleep(Duration::from_millis(500));
    }
    wait_member_added(&mut ada, "bob");
}

/// Runs ringcast with `args`, expecting it to refuse to start; returns its stderr.
fn failed_start(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ringcast"))
        .args([
            "--port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--shards",
            "1",
        ])
        .args(args)
        .env_clear()
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .stdin(Stdio::null())
        .output()
        .expect("ringcast runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn the_redis_adapter_without_a_bridge_program_is_a_clear_start_error() {
    let stderr = failed_start(&[
        "--adapter-driver",
        "redis",
        "--bridge-binary",
        "/nonexistent/ringcast-bridge",
    ]);
    assert!(
        stderr.contains("/nonexistent/ringcast-bridge") && stderr.contains("--bridge-external"),
        "the error names the path and the ways out: {stderr}"
    );
    let stderr = failed_start(&["--adapter-driver", "redis", "--redis-prefix", "a{b}"]);
    assert!(
        stderr.contains("--redis-prefix \"a{b}\" may not contain"),
        "{stderr}"
    );
    let stderr = failed_start(&["--queue-driver", "redis", "--redis-tls-ca-file", "/ca.pem"]);
    assert!(
        stderr.contains("--redis-tls-ca-file needs --redis-tls"),
        "{stderr}"
    );
}

/// A node linked over TLS (trusting `ca`) to the Redis that `redis_args` name.
fn tls_node(redis_args: &[&str], ca: &str, prefix: &str) -> Server {
    let mut args = vec!["--adapter-driver", "redis"];
    args.extend_from_slice(redis_args);
    args.extend([
        "--redis-tls",
        "--redis-tls-ca-file",
        ca,
        "--redis-prefix",
        prefix,
    ]);
    let server = Server::start(&args);
    wait_linked(&server, 1);
    server
}

#[test]
fn nodes_talk_to_redis_over_tls() {
    let (dir, ca) = tls_material("nodes");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = |name: &str| dir.join(name).display().to_string();
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            &file("server.crt"),
            "--tls-key-file",
            &file("server.key"),
        ])
        .args(["--tls-ca-cert-file", &ca, "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server (TLS) did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let prefix = unique_prefix("tls");
    let url = format!("127.0.0.1:{port}");
    let a = tls_node(&["--redis-url", &url], &ca, &prefix);
    let b = tls_node(&["--redis-url", &url], &ca, &prefix);
    let mut on_b = WsClient::pusher(b.addr);
    on_b.subscribe_ok("secure-news", None);
    publish_until_received(a.addr, "secure-news", "over-tls", &mut on_b);
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    while !http_get(a.addr, "/metrics")
        .body_text()
        .lines()
        .any(|l| l == "ringcast_bridge_redis_connected 1")
    {
        assert!(
            Instant::now() < deadline,
            "the bridge reports Redis connected"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A free loopback TCP port (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `redis-cli --tls --cacert ca` with `args`; returns its stdout.
fn redis_cli_tls(ca: &str, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["--tls", "--cacert", ca])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): it comes with redis-server"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Three TLS Redis Cluster masters (`--tls-cluster yes`), killed when dropped.
struct TlsCluster {
    children: Vec<Child>,
    ports: Vec<u16>,
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TlsCluster {
    fn start(dir: &std::path::Path, ca: &str) -> TlsCluster {
        let file = |name: &str| dir.join(name).display().to_string();
        let mut cluster = TlsCluster {
            children: Vec::new(),
            ports: Vec::new(),
        };
        for _ in 0..3 {
            let port = free_port();
            let node_dir = dir.join(format!("n{port}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let child = Command::new("redis-server")
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                // The bus port would be port + 10000, past 65535 for a high free port.
                .args(["--cluster-port", &free_port().to_string()])
                .args(["--cluster-enabled", "yes", "--tls-cluster", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--dir", &node_dir.display().to_string()])
                .args([
                    "--tls-cert-file",
                    &file("server.crt"),
                    "--tls-key-file",
                    &file("server.key"),
                ])
                .args(["--tls-ca-cert-file", ca, "--tls-auth-clients", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server starts");
            cluster.children.push(child);
            cluster.ports.push(port);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in &cluster.ports {
            while TcpStream::connect(("127.0.0.1", *port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "redis-server (TLS) did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut create = vec!["--cluster".to_owned(), "create".to_owned()];
        create.extend(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(str::to_owned));
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        let created = redis_cli_tls(ca, &create);
        assert!(created.contains("[OK]"), "cluster create: {created}");
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in &cluster.ports {
            let port = port.to_string();
            while !redis_cli_tls(ca, &["-p", &port, "CLUSTER", "INFO"]).contains("cluster_state:ok")
            {
                assert!(Instant::now() < deadline, "the cluster did not become ok");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        cluster
    }

    fn seeds(&self) -> String {
        let seeds: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        seeds.join(",")
    }
}

#[test]
fn nodes_talk_to_a_redis_cluster_over_tls_with_sharded_pub_sub() {
    let (dir, ca) = tls_material("cluster");
    let cluster = TlsCluster::start(&dir, &ca);
    let prefix = unique_prefix("tlscluster");
    let seeds = cluster.seeds();
    let redis_args = ["--redis-cluster", "--redis-url", &seeds];
    let a = tls_node(&redis_args, &ca, &prefix);
    let b = tls_node(&redis_args, &ca, &prefix);
    // Twelve channels: their slots fall on one master only with a chance of 3 in 3^12.
    let channels: Vec<String> = (0..12).map(|i| format!("tls-{i}")).collect();
    let mut on_b = WsClient::pusher(b.addr);
    for channel in &channels {
        on_b.subscribe_ok(channel, None);
    }
    for channel in &channels {
        publish_until_received(a.addr, channel, &format!("over-tls-{channel}"), &mut on_b);
    }
    // Sharded subscriptions, each on the master owning its slot.
    let mut sharded = Vec::new();
    for port in &cluster.ports {
        let listed = redis_cli_tls(&ca, &["-p", &port.to_string(), "PUBSUB", "SHARDCHANNELS"]);
        let here: Vec<String> = listed
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(str::to_owned)
            .collect();
        if !here.is_empty() {
            sharded.push(here);
        }
    }
    let total: usize = sharded.iter().map(Vec::len).sum();
    assert_eq!(
        total,
        channels.len(),
        "every channel is a sharded subscription: {sharded:?}"
    );
    assert!(
        sharded.len() >= 2,
        "spread over several masters: {sharded:?}"
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
