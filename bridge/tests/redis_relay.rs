//! End-to-end test of the bridge with real parts: a real `redis-server`, real `ringcast-bridge`
//! processes, and fake engine shards speaking the link protocol over Unix sockets. Negative
//! checks ("X did not arrive") use barriers instead of sleeps: a later message that must arrive
//! after X if X were delivered at all, so the first message read decides. The bridge's
//! once-a-second `Stats` messages are skipped by every read except the ones that look for them.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringcast_core::link::{self, BridgeStats, ChannelEvent, LinkMessage, VERSION};

/// Generous bound for anything that should happen promptly, so a loaded machine does not fail
/// the test; nothing waits this long when things work.
const PATIENCE: Duration = Duration::from_secs(30);
const APP: &str = "app-1";
const NODE_A: u64 = 1001;
const NODE_B: u64 = 2002;
/// How soon after Hello a link must get its first `Stats` (they come once a second).
const FIRST_STATS_WITHIN: Duration = Duration::from_secs(3);

/// Owns every child process and the scratch directory; cleans up even when a test fails, and
/// then shows the bridges' logs.
struct Cluster {
    dir: PathBuf,
    redis_port: u16,
    redis: Option<Child>,
    bridges: Vec<(String, Child)>,
}

impl Cluster {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringcast-bridge-test-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("creates the scratch directory");
        Self {
            dir,
            redis_port: free_port(),
            redis: None,
            bridges: Vec::new(),
        }
    }

    fn start_redis(&mut self) {
        let spawned = Command::new("redis-server")
            .args(["--port", &self.redis_port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) if err.kind() == ErrorKind::NotFound => panic!(
                "redis-server is not on PATH; this test needs a real Redis: \
                 install it (e.g. `apt-get install redis-server`)"
            ),
            Err(err) => panic!("cannot start redis-server: {err}"),
        };
        self.redis = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while !redis_answers_ping(self.redis_port) {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill_redis(&mut self) {
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
    }

    /// Starts a bridge; returns its link socket path.
    fn start_bridge(&mut self, name: &str, node_id: u64) -> PathBuf {
        let socket = self.dir.join(format!("{name}.sock"));
        let log = File::create(self.dir.join(format!("{name}.log"))).expect("creates a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ringcast-bridge"))
            .arg("--link-socket")
            .arg(&socket)
            .args([
                "--redis-url",
                &format!("redis://127.0.0.1:{}", self.redis_port),
            ])
            .args(["--redis-prefix", "test"])
            .args(["--node-id", &node_id.to_string()])
            .args(["--log-level", "debug"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starts ringcast-bridge");
        self.bridges.push((name.to_string(), child));
        socket
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, bridge) in &mut self.bridges {
            let _ = bridge.kill();
            let _ = bridge.wait();
        }
        self.kill_redis();
        if std::thread::panicking() {
            for (name, _) in &self.bridges {
                let log = std::fs::read_to_string(self.dir.join(format!("{name}.log")))
                    .unwrap_or_default();
                eprintln!("----- log of bridge {name} -----\n{log}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds a free port");
    listener.local_addr().expect("has an address").port()
}

fn redis_answers_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

/// A fake engine shard on one link.
struct Shard {
    stream: UnixStream,
    buffer: BytesMut,
}

impl Shard {
    /// Connects (waiting for the bridge to listen) without saying anything.
    fn connect(socket: &Path) -> Self {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match UnixStream::connect(socket) {
                Ok(stream) => {
                    return Self {
                        stream,
                        buffer: BytesMut::new(),
                    }
                }
                Err(err) => {
                    assert!(
                        Instant::now() < deadline,
                        "bridge at {} does not listen: {err}",
                        socket.display()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// Connects and says Hello; checks the Welcome.
    fn linked(socket: &Path, shard: u16, shard_count: u16, node_id: u64) -> Self {
        let mut linked = Self::connect(socket);
        linked.send(&LinkMessage::Hello {
            version: VERSION,
            shard,
            shard_count,
        });
        assert_eq!(
            linked.recv(),
            LinkMessage::Welcome {
                version: VERSION,
                node_id
            }
        );
        linked
    }

    fn send(&mut self, message: &LinkMessage) {
        let mut frame = BytesMut::new();
        link::encode(message, &mut frame).expect("encodes");
        self.stream.write_all(&frame).expect("writes to the bridge");
    }

    /// The next message other than `Stats`; fails the test if none comes in time or the link
    /// closes.
    fn recv(&mut self) -> LinkMessage {
        match self.recv_within(PATIENCE) {
            Received::Message(message) => message,
            Received::Nothing => panic!("no message from the bridge in {PATIENCE:?}"),
            Received::Closed => panic!("the bridge closed the link"),
        }
    }

    /// The next message other than `Stats`, if one comes within `wait`.
    fn recv_within(&mut self, wait: Duration) -> Received {
        let deadline = Instant::now() + wait;
        loop {
            match self.recv_any_until(deadline) {
                Received::Message(LinkMessage::Stats(_)) => {}
                other => return other,
            }
        }
    }

    /// The next `Stats`, skipping anything else; fails the test if none comes within `wait`.
    fn recv_stats_within(&mut self, wait: Duration) -> BridgeStats {
        let deadline = Instant::now() + wait;
        loop {
            match self.recv_any_until(deadline) {
                Received::Message(LinkMessage::Stats(stats)) => return stats,
                Received::Message(_) => {}
                Received::Nothing => panic!("no Stats from the bridge in {wait:?}"),
                Received::Closed => panic!("the bridge closed the link"),
            }
        }
    }

    /// The first `Stats` within `PATIENCE` for which `wanted` holds; fails the test otherwise.
    fn wait_for_stats(&mut self, what: &str, wanted: impl Fn(&BridgeStats) -> bool) -> BridgeStats {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            assert!(!remaining.is_zero(), "no Stats with {what} in {PATIENCE:?}");
            let stats = self.recv_stats_within(remaining);
            if wanted(&stats) {
                return stats;
            }
        }
    }

    /// The next message of any kind, if one comes before `deadline`.
    fn recv_any_until(&mut self, deadline: Instant) -> Received {
        loop {
            if let Some(message) =
                link::decode(&mut self.buffer).expect("bridge sends valid frames")
            {
                return Received::Message(message);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Received::Nothing;
            }
            self.stream
                .set_read_timeout(Some(remaining))
                .expect("sets a read timeout");
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Received::Closed,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Received::Nothing
                }
                Err(err) if err.kind() == ErrorKind::ConnectionReset => return Received::Closed,
                Err(err) => panic!("reading from the bridge: {err}"),
            }
        }
    }

    fn subscribe(&mut self, channel: &str, seq: u32) {
        self.send(&LinkMessage::Subscribe {
            app_id: APP.into(),
            channel: channel.into(),
            seq,
        });
        assert_eq!(
            self.recv(),
            LinkMessage::Subscribed {
                app_id: APP.into(),
                channel: channel.into(),
                seq
            }
        );
    }

    fn publish(&mut self, event: &ChannelEvent) {
        self.send(&LinkMessage::Publish(event.clone()));
    }

    /// Asserts the next message is the delivery of `event`.
    fn expect_delivery(&mut self, event: &ChannelEvent) {
        assert_eq!(self.recv(), LinkMessage::Deliver(event.clone()));
    }
}

#[derive(Debug)]
enum Received {
    Message(LinkMessage),
    Nothing,
    Closed,
}

fn event(channel: &str, text: &str) -> ChannelEvent {
    let mut frame = vec![0x81, text.len() as u8];
    frame.extend_from_slice(text.as_bytes());
    ChannelEvent {
        app_id: APP.into(),
        channel: channel.into(),
        except_socket_id: "123.456".into(),
        frame: Bytes::from(frame),
    }
}

#[test]
fn publishes_reach_only_other_nodes_subscribed_shards_in_order() {
    let mut cluster = Cluster::new("relay");
    cluster.start_redis();
    let socket_a = cluster.start_bridge("a", NODE_A);
    let socket_b = cluster.start_bridge("b", NODE_B);
    let mut a0 = Shard::linked(&socket_a, 0, 2, NODE_A);
    let mut a1 = Shard::linked(&socket_a, 1, 2, NODE_A);
    let mut b0 = Shard::linked(&socket_b, 0, 2, NODE_B);
    let mut b1 = Shard::linked(&socket_b, 1, 2, NODE_B);
    a0.subscribe("room", 1);
    a1.subscribe("room", 2);
    b0.subscribe("room", 3);
    b1.subscribe("barrier", 4);

    let x = event("room", "x");
    a0.publish(&x);
    b0.expect_delivery(&x);

    // Node A must not get its own X back: Y, published by B after X went through Redis, is the
    // first thing A's shards see.
    let y = event("room", "y");
    b1.publish(&y);
    a0.expect_delivery(&y);
    a1.expect_delivery(&y);

    // B1 never subscribed to "room": the barrier A0 published after X comes first.
    let barrier = event("barrier", "after x");
    a0.publish(&barrier);
    b1.expect_delivery(&barrier);

    // Node B must not re-deliver its own Y to B0: Z, published after Y went through, is next.
    let z = event("room", "z");
    a0.publish(&z);
    b0.expect_delivery(&z);

    // After Unsubscribe nothing more arrives. The Subscribed for "barrier-2" proves the bridge
    // processed the Unsubscribe before it.
    b0.send(&LinkMessage::Unsubscribe {
        app_id: APP.into(),
        channel: "room".into(),
    });
    b0.subscribe("barrier-2", 5);
    a0.publish(&event("room", "after unsubscribe"));
    let barrier_2 = event("barrier-2", "after w");
    a0.publish(&barrier_2);
    b0.expect_delivery(&barrier_2);

    // Order of many publishes from one link is kept.
    b0.subscribe("order", 6);
    let ordered: Vec<ChannelEvent> = (0..1_000)
        .map(|i| event("order", &format!("m{i}")))
        .collect();
    for published in &ordered {
        a0.publish(published);
    }
    for published in &ordered {
        b0.expect_delivery(published);
    }
}

#[test]
fn bad_hellos_close_the_link_and_redis_down_does_not_block() {
    // No Redis at all: the bridge must start anyway and keep answering.
    let mut cluster = Cluster::new("hello");
    let socket = cluster.start_bridge("a", NODE_A);
    let bad_hellos = [
        LinkMessage::Hello {
            version: VERSION + 1,
            shard: 0,
            shard_count: 1,
        },
        LinkMessage::Hello {
            version: VERSION,
            shard: 2,
            shard_count: 2,
        },
        LinkMessage::Hello {
            version: VERSION,
            shard: 0,
            shard_count: 65,
        },
        LinkMessage::Subscribe {
            app_id: APP.into(),
            channel: "room".into(),
            seq: 1,
        },
    ];
    for bad in &bad_hellos {
        let mut shard = Shard::connect(&socket);
        shard.send(bad);
        match shard.recv_within(PATIENCE) {
            Received::Closed => {}
            other => panic!("after {bad:?} the link should close, got {other:?}"),
        }
    }
    // A good Hello on the same bridge still works, and a Subscribe is answered although Redis
    // is unreachable (the engine must not hang).
    let mut shard = Shard::linked(&socket, 63, 64, NODE_A);
    shard.subscribe("room", 7);
}

#[test]
fn relaying_resumes_after_redis_restarts() {
    let mut cluster = Cluster::new("restart");
    cluster.start_redis();
    let socket_a = cluster.start_bridge("a", NODE_A);
    let socket_b = cluster.start_bridge("b", NODE_B);
    let mut a0 = Shard::linked(&socket_a, 0, 1, NODE_A);
    let mut b0 = Shard::linked(&socket_b, 0, 1, NODE_B);
    b0.subscribe("room", 1);
    let before = event("room", "before");
    a0.publish(&before);
    b0.expect_delivery(&before);

    cluster.kill_redis();
    // Subscribing during the outage is answered, and takes effect once Redis is back.
    b0.subscribe("joined-during-outage", 2);
    cluster.start_redis();

    for channel in ["room", "joined-during-outage"] {
        let deadline = Instant::now() + PATIENCE;
        let mut attempt = 0;
        loop {
            assert!(
                Instant::now() < deadline,
                "no publish on {channel} got through after the Redis restart"
            );
            attempt += 1;
            a0.publish(&event(channel, &format!("retry {attempt}")));
            match b0.recv_within(Duration::from_millis(250)) {
                Received::Message(LinkMessage::Deliver(got)) => {
                    assert_eq!(got.channel, channel);
                    break;
                }
                Received::Nothing => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        // Retries that were still in flight arrive later; drain them before the next channel.
        while let Received::Message(_) = b0.recv_within(Duration::from_millis(500)) {}
    }
    let stats = b0.wait_for_stats("redis back", |stats| stats.redis_connected);
    assert_eq!(stats.redis_reconnects, 1, "{stats:?}");
}

#[test]
fn every_link_gets_the_bridge_stats_every_second() {
    let mut cluster = Cluster::new("stats");
    cluster.start_redis();
    let socket = cluster.start_bridge("a", NODE_A);
    let mut a0 = Shard::linked(&socket, 0, 2, NODE_A);
    let first = a0.recv_stats_within(FIRST_STATS_WITHIN);
    assert!(first.links >= 1, "{first:?}");
    // The subscriber connected at start-up, before the link; a loaded machine gets some slack.
    let before = a0.wait_for_stats("redis connected", |stats| stats.redis_connected);
    assert_eq!(before.redis_reconnects, 0, "{before:?}");

    // A second shard gets them too, and is counted.
    let mut a1 = Shard::linked(&socket, 1, 2, NODE_A);
    a1.recv_stats_within(FIRST_STATS_WITHIN);
    a1.wait_for_stats("2 links", |stats| stats.links == 2);

    // Publishes relayed go up, and so do messages received: Redis hands the node its own
    // publish back, which counts before the own-node filter drops it.
    a0.subscribe("room", 1);
    a0.publish(&event("room", "counted"));
    let after = a0.wait_for_stats("the publish relayed and received", |stats| {
        stats.publishes_relayed > before.publishes_relayed
            && stats.messages_received > before.messages_received
    });
    assert!(after.redis_connected, "{after:?}");
    assert_eq!(after.publishes_dropped, 0, "{after:?}");
    assert_eq!(after.deliveries_dropped, 0, "{after:?}");
}
