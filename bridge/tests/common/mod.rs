//! Shared parts of the bridge's end-to-end tests: a real `redis-server` on a free port, real
//! `ringcast-bridge` processes, and fake engine shards speaking the link protocol over Unix
//! sockets. Each test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringcast_core::link::{self, BridgeStats, ChannelEvent, LinkMessage, VERSION};

/// Generous bound for anything that should happen promptly, so a loaded machine does not fail
/// the test; nothing waits this long when things work.
pub const PATIENCE: Duration = Duration::from_secs(30);
pub const APP: &str = "app-1";

/// Owns every child process and the scratch directory; cleans up even when a test fails, and
/// then shows the bridges' logs.
pub struct Cluster {
    dir: PathBuf,
    redis_port: u16,
    redis: Option<Child>,
    bridges: Vec<(String, Child)>,
}

impl Cluster {
    pub fn new(name: &str) -> Self {
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

    pub fn start_redis(&mut self) {
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

    pub fn kill_redis(&mut self) {
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
    }

    /// Starts a bridge; returns its link socket path.
    pub fn start_bridge(&mut self, name: &str, node_id: u64) -> PathBuf {
        self.start_bridge_with(name, node_id, &[])
    }

    /// Starts a bridge with extra arguments; returns its link socket path. `name` names its
    /// socket and log, so a restarted bridge needs a new name.
    pub fn start_bridge_with(&mut self, name: &str, node_id: u64, extra: &[&str]) -> PathBuf {
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
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starts ringcast-bridge");
        self.bridges.push((name.to_string(), child));
        socket
    }

    /// Sends `signal` (as `kill` names it: "KILL", "TERM") to bridge `name` and waits for it
    /// to exit.
    pub fn signal_bridge(&mut self, name: &str, signal: &str) {
        let (_, child) = self
            .bridges
            .iter_mut()
            .find(|(bridge, _)| bridge == name)
            .expect("a bridge of that name");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("runs kill");
        assert!(status.success(), "kill -{signal} failed");
        let _ = child.wait();
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

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds a free port");
    listener.local_addr().expect("has an address").port()
}

pub fn redis_answers_ping(port: u16) -> bool {
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
pub struct Shard {
    stream: UnixStream,
    buffer: BytesMut,
}

impl Shard {
    /// Connects (waiting for the bridge to listen) without saying anything.
    pub fn connect(socket: &Path) -> Self {
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
    pub fn linked(socket: &Path, shard: u16, shard_count: u16, node_id: u64) -> Self {
        let mut linked = Self::connect(socket);
        linked.send(&LinkMessage::Hello {
            version: VERSION,
            shard,
            shard_count,
            cluster: true,
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

    pub fn send(&mut self, message: &LinkMessage) {
        let mut frame = BytesMut::new();
        link::encode(message, &mut frame).expect("encodes");
        self.stream.write_all(&frame).expect("writes to the bridge");
    }

    /// The next message other than `Stats`; fails the test if none comes in time or the link
    /// closes.
    pub fn recv(&mut self) -> LinkMessage {
        match self.recv_within(PATIENCE) {
            Received::Message(message) => message,
            Received::Nothing => panic!("no message from the bridge in {PATIENCE:?}"),
            Received::Closed => panic!("the bridge closed the link"),
        }
    }

    /// The next message other than `Stats`, if one comes within `wait`.
    pub fn recv_within(&mut self, wait: Duration) -> Received {
        let deadline = Instant::now() + wait;
        loop {
            match self.recv_any_until(deadline) {
                Received::Message(LinkMessage::Stats(_)) => {}
                other => return other,
            }
        }
    }

    /// The next `Stats`, skipping anything else; fails the test if none comes within `wait`.
    pub fn recv_stats_within(&mut self, wait: Duration) -> BridgeStats {
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
    pub fn wait_for_stats(
        &mut self,
        what: &str,
        wanted: impl Fn(&BridgeStats) -> bool,
    ) -> BridgeStats {
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
    pub fn recv_any_until(&mut self, deadline: Instant) -> Received {
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

    pub fn subscribe(&mut self, channel: &str, seq: u32) {
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

    pub fn publish(&mut self, event: &ChannelEvent) {
        self.send(&LinkMessage::Publish(event.clone()));
    }

    /// Asserts the next message is the delivery of `event`.
    pub fn expect_delivery(&mut self, event: &ChannelEvent) {
        assert_eq!(self.recv(), LinkMessage::Deliver(event.clone()));
    }
}

#[derive(Debug)]
pub enum Received {
    Message(LinkMessage),
    Nothing,
    Closed,
}
