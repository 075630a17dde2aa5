//! A whole node without IO: 1–3 `ringcast_core::shard::Shard`s wired by per-pair FIFO rings
//! (messages between two shards arrive in order; pairs interleave as the fuzzer chooses),
//! driven through their byte inputs the way the shell (`engine/src/conn_task.rs`) drives them.
//!
//! The fuzzer picks a sequence of steps: accept a connection; queue client bytes on it (HTTP
//! requests: health, readiness, metrics, signed REST publishes, batches, channel queries,
//! terminations, junk; WebSocket upgrades to `/app/<key>`, `/echo` and the other dialects'
//! mounts; masked frames carrying Pusher messages built from the input, with valid auth
//! signatures for the socket id the server gave, fragmented or not; raw bytes); deliver some of those bytes (any split) when
//! `input_state` says `Read` (`Held`: `handle_bytes` with no bytes, as the shell does;
//! `Paused`: nothing); deliver ring messages; advance the clock and tick; take output with
//! random sizes, leave the socket blocked after a take or unblock it; close; drain a shard.
//!
//! After every step:
//! - no panic (debug assertions and overflow checks are on);
//! - every byte a connection is sent is well-formed ([`ringcast_fuzz::OutputChecker`]: HTTP/1.1
//!   responses with a `Content-Length`, then unmasked frames, UTF-8 text, Pusher JSON, legal
//!   close codes, nothing after a close frame), and `take_output` hands out whole frames only;
//! - the queue of a blocked socket stays bounded. `push_frame` queues a data frame for a
//!   blocked socket only while the queue stays within `outbound_bytes_max` (else the queue is
//!   replaced by one close frame); `push_control` queues replies unconditionally, but
//!   `process_input` takes no input while more than `input_pause_bytes` (at most half the
//!   cap) are queued, so each request or message starts below that. Hence, for a socket
//!   blocked with an empty queue, what it has queued when it unblocks is at most
//!   `max(cap, pause + largest item) + 512` (the slack: the error text and close frame of a
//!   `close_pusher` from a timer, a drain or another connection, and one protocol close).
//!
//! At the end, when all input is fed, the rings are empty and every output drained: no
//! connection is `Held` (held input is always handed back) or `Paused` (every request was
//! answered: nothing waits forever); then every connection closes, and the node must hold no
//! connection and list no occupied channel (`GET /apps/{id}/channels` answers `{}`).
#![no_main]

use std::collections::VecDeque;
use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringcast_core::app::{AppConfig, AppTable};
use ringcast_core::limits::{INPUT_PAUSE_OUTBOUND_BYTES, SOCKET_WRITE_CHUNK_BYTES};
use ringcast_core::pusher::auth::{channel_auth_token, signin_token};
use ringcast_core::pusher::rest::sign_query;
use ringcast_core::shard::message::ShardMessage;
use ringcast_core::shard::{InputState, OutputState, Shard, ShardSettings};
use ringcast_fuzz::{client_frame, OutputChecker, ServerItem};
use serde_json::{json, Value};

const APP_ID: &str = "app-id";
const KEY: &str = "app-key";
const SECRET: &str = "app-secret";
const UNIX_START: u64 = 1_700_000_000;
const CONNS_MAX: usize = 8;
const STEPS_MAX: usize = 160;
/// See the module doc: the queue bound's allowance for closes and errors.
const SLACK: usize = 512;

// ------------------------------------------------------------------ what the fuzzer picks

#[derive(Debug, Arbitrary)]
struct Config {
    shards: u8,
    outbound: u8,
    max_message: u8,
    client_messages: bool,
    require_auth: bool,
    members_max: u8,
    metrics_separate: bool,
    second_app_enabled: bool,
    rate_limits: bool,
}

#[derive(Debug, Arbitrary)]
enum Chan {
    Public(u8),
    Private(u8),
    Presence(u8),
    Cache(u8),
    PrivateCache,
    PresenceCache,
    Encrypted,
    ServerToUser(u8),
    Other(String),
}

impl Chan {
    fn name(&self) -> String {
        match self {
            Chan::Public(n) => format!("ch-{}", n % 3),
            Chan::Private(n) => format!("private-p{}", n % 2),
            Chan::Presence(n) => format!("presence-room{}", n % 2),
            Chan::Cache(n) => format!("cache-c{}", n % 2),
            Chan::PrivateCache => "private-cache-x".into(),
            Chan::PresenceCache => "presence-cache-x".into(),
            Chan::Encrypted => "private-encrypted-e".into(),
            Chan::ServerToUser(n) => format!("#server-to-user-u{}", n % 3),
            Chan::Other(s) => s.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Data {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Obj(Vec<(String, String)>),
    /// A string of this many bytes (past the size limits).
    Big(u16),
}

impl Data {
    fn value(&self) -> Value {
        match self {
            Data::Null => Value::Null,
            Data::Bool(b) => json!(b),
            Data::Int(i) => json!(i),
            Data::Float(f) => json!(f),
            Data::Str(s) => json!(s),
            Data::Obj(pairs) => Value::Object(
                pairs
                    .iter()
                    .take(8)
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
            Data::Big(n) => json!("x".repeat(usize::from(*n) % 20_000)),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Auth {
    Valid,
    Wrong,
    Missing,
    Garbage(String),
}

#[derive(Debug, Arbitrary)]
enum Pusher {
    Ping,
    Pong,
    Subscribe {
        channel: Chan,
        auth: Auth,
        user: u8,
        info: Data,
        data_as_string: bool,
    },
    Unsubscribe(Chan),
    Signin {
        user: u8,
        watchlist: Vec<u8>,
        auth: Auth,
    },
    ClientEvent {
        channel: Chan,
        name: u8,
        data: Data,
    },
    Event {
        event: String,
        data: Data,
    },
    Text(String),
}

#[derive(Debug, Arbitrary)]
enum Framing {
    Whole,
    Fragments(u8, u8),
    WithPing(u8),
    Binary,
    Unmasked,
    Long,
}

#[derive(Debug, Arbitrary)]
struct Publish {
    name: u8,
    data: Data,
    channels: Vec<Chan>,
    one_channel: bool,
    exclude: Option<u8>,
    info: u8,
}

#[derive(Debug, Arbitrary)]
enum Rest {
    Publish(Publish),
    Batch(Vec<Publish>),
    Channels { prefix: Option<u8>, info: u8 },
    Channel { channel: Chan, info: u8 },
    Users(Chan),
    Terminate(u8),
}

#[derive(Debug, Arbitrary)]
struct Framed {
    /// 0: correct; 1: keep-alive off; 2: HTTP/1.0; 3: HTTP/1.0 keep-alive.
    connection: u8,
    /// 0: correct Content-Length; 1: none; 2: one more; 3: one less; 4: chunked.
    length: u8,
    /// 0: valid signature; 1: wrong secret; 2: stale timestamp; 3: no signature.
    signature: u8,
}

impl Framed {
    /// Signed, with the right `Content-Length`; `connection` as above.
    fn correct(connection: u8) -> Self {
        Framed {
            connection,
            length: 0,
            signature: 0,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Http {
    Health,
    Ready,
    Metrics,
    Rest(Rest, Framed),
    Junk {
        method: u8,
        path: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
}

#[derive(Debug, Arbitrary)]
struct Upgrade {
    path: u8,
    protocol: u8,
    good_version: bool,
    good_key: bool,
    connection_upgrade: bool,
    origin: Option<String>,
    body: bool,
}

#[derive(Debug, Arbitrary)]
enum Step {
    /// Macro steps, so that the fuzzer reaches deep states quickly: a new connection upgraded
    /// (Pusher or echo) with its welcome read; a subscription with a valid signature, sent
    /// and answered; a signed REST call on a new connection, answered and closed.
    Connect {
        shard: u8,
        echo: bool,
    },
    Join {
        conn: u8,
        channel: Chan,
        user: u8,
        info: Data,
    },
    Call {
        shard: u8,
        rest: Rest,
    },
    /// Block a socket after writing everything it had (the queue bound then applies), and
    /// publish many times on a new keep-alive connection (pipelined).
    Block {
        conn: u8,
    },
    Flood {
        shard: u8,
        publish: Publish,
        times: u8,
    },
    Accept {
        shard: u8,
        metrics: bool,
    },
    Http {
        conn: u8,
        http: Http,
    },
    Upgrade {
        conn: u8,
        upgrade: Upgrade,
    },
    Pusher {
        conn: u8,
        message: Pusher,
        framing: Framing,
    },
    Frame {
        conn: u8,
        fin: bool,
        rsv: u8,
        opcode: u8,
        payload: Vec<u8>,
    },
    Raw {
        conn: u8,
        bytes: Vec<u8>,
    },
    Feed {
        conn: u8,
        n: u16,
    },
    FeedAll {
        conn: u8,
    },
    Ring {
        pair: u8,
        n: u8,
    },
    Settle,
    Tick {
        ms: u16,
    },
    Take {
        conn: u8,
        max: u16,
        partial: bool,
    },
    Unblock {
        conn: u8,
    },
    Close {
        conn: u8,
    },
    NodeRunning(bool),
    Drain {
        shard: u8,
    },
}

// ------------------------------------------------------------------ the simulated shell

struct Conn {
    shard: usize,
    key: u32,
    /// Bytes the client has sent that the server has not read yet.
    pending: BytesMut,
    checker: OutputChecker,
    blocked: bool,
    /// Blocked right after a take that emptied the queue: the bound applies.
    blocked_empty: bool,
    gone: bool,
    /// An upgrade was queued on this connection (the first one says what the socket is).
    upgrade_sent: bool,
}

struct Node {
    shards: Vec<Shard>,
    /// rings[from * n + to], FIFO.
    rings: Vec<VecDeque<ShardMessage>>,
    conns: Vec<Conn>,
    now_ms: u64,
    cap: usize,
    pause: usize,
    drained: Vec<bool>,
    metrics_separate: bool,
    scratch_wake: Vec<u32>,
}

impl Node {
    fn n(&self) -> usize {
        self.shards.len()
    }

    fn unix(&self) -> u64 {
        UNIX_START + self.now_ms / 1000
    }

    /// What the shell does after every input (`after_core`): wakeups, and the outbox onto
    /// the rings in order.
    fn after(&mut self, shard: usize) {
        self.scratch_wake.clear();
        self.shards[shard].take_wakeups(&mut self.scratch_wake);
        let mut out = Vec::new();
        self.shards[shard].take_outbox(&mut out);
        let n = self.n();
        for (to, message) in out {
            assert!(
                usize::from(to) < n && usize::from(to) != shard,
                "outbox target"
            );
            self.rings[shard * n + usize::from(to)].push_back(message);
        }
    }

    fn deliver(&mut self, pair: usize) -> bool {
        let Some(message) = self.rings[pair].pop_front() else {
            return false;
        };
        let to = pair % self.n();
        self.shards[to].handle_message(message, self.now_ms);
        self.after(to);
        true
    }

    fn settle(&mut self) {
        // Round-robin over the pairs; each pair stays FIFO.
        for _ in 0..100_000 {
            let mut any = false;
            for pair in 0..self.rings.len() {
                any |= self.deliver(pair);
            }
            if !any {
                return;
            }
        }
        panic!("the rings never settle");
    }

    /// The `i`-th live connection (modulo their number).
    fn conn(&mut self, i: u8) -> Option<usize> {
        let live: Vec<usize> = (0..self.conns.len())
            .filter(|&c| !self.conns[c].gone)
            .collect();
        if live.is_empty() {
            return None;
        }
        Some(live[usize::from(i) % live.len()])
    }

    /// A new connection on shard `pick` (modulo the shards), unless `CONNS_MAX` are live or
    /// the shard is drained (it accepts no more).
    fn open(&mut self, pick: u8, metrics: bool) -> Option<usize> {
        let shard = usize::from(pick) % self.n();
        let live = self.conns.iter().filter(|c| !c.gone).count();
        if live >= CONNS_MAX || self.drained[shard] {
            return None;
        }
        Some(accept(self, shard, metrics))
    }

    /// The socket stops taking bytes (as after a short write); if its queue is empty now, the
    /// bound is checked when it unblocks.
    fn block(&mut self, i: usize) {
        let (shard, key) = (self.conns[i].shard, self.conns[i].key);
        self.conns[i].blocked = true;
        self.conns[i].blocked_empty = !self.shards[shard].has_output(key);
        self.shards[shard].set_write_blocked(key, true);
    }

    /// What a client that keeps up does: everything it sent is read, the rings settle, and
    /// it reads everything it was sent.
    fn round_trip(&mut self, i: usize) {
        for _ in 0..32 {
            if self.conns[i].gone || !self.feed(i, usize::MAX) {
                break;
            }
        }
        self.settle();
        if !self.conns[i].gone {
            if self.conns[i].blocked {
                self.unblock(i);
            } else {
                self.take(i, SOCKET_WRITE_CHUNK_BYTES, true);
            }
        }
    }

    fn socket_id(&self, i: usize) -> String {
        self.conns[i]
            .checker
            .socket_id
            .clone()
            .unwrap_or_else(|| "1.1".into())
    }

    /// Any known socket id (for exclusions).
    fn some_socket_id(&self, pick: u8) -> String {
        let ids: Vec<&String> = self
            .conns
            .iter()
            .filter_map(|c| c.checker.socket_id.as_ref())
            .collect();
        if ids.is_empty() {
            "123.456".into()
        } else {
            ids[usize::from(pick) % ids.len()].clone()
        }
    }

    fn send(&mut self, i: usize, bytes: &[u8]) {
        self.conns[i].pending.extend_from_slice(bytes);
    }

    /// One read of at most `n` bytes, if the shell would read now.
    fn feed(&mut self, i: usize, n: usize) -> bool {
        let (shard, key) = (self.conns[i].shard, self.conns[i].key);
        match self.shards[shard].input_state(key) {
            InputState::Paused => false,
            InputState::Held => {
                self.shards[shard].handle_bytes(key, &[], self.now_ms);
                self.after(shard);
                true
            }
            InputState::Read => {
                let n = n.min(self.conns[i].pending.len());
                if n == 0 {
                    return false;
                }
                let chunk = self.conns[i].pending.split_to(n);
                self.shards[shard].handle_bytes(key, &chunk, self.now_ms);
                self.after(shard);
                true
            }
        }
    }

    /// Takes what a connection has queued (at most `max` bytes per take as the shell does,
    /// one take or until empty), checks it, and closes the socket on `Finished` or `Abort`.
    /// Returns the bytes taken and the items completed.
    fn take(&mut self, i: usize, max: usize, until_empty: bool) -> (usize, Vec<ServerItem>) {
        let (shard, key) = (self.conns[i].shard, self.conns[i].key);
        let mut total = 0;
        let mut items = Vec::new();
        loop {
            let mut out = BytesMut::new();
            let state = self.shards[shard].take_output(key, &mut out, max);
            total += out.len();
            let conn = &mut self.conns[i];
            items.extend(conn.checker.feed(&out));
            match state {
                OutputState::Open => {}
                OutputState::Finished => {
                    assert!(!self.shards[shard].has_output(key));
                    self.close(i);
                    break;
                }
                OutputState::Abort | OutputState::Gone => {
                    self.close(i);
                    break;
                }
            }
            if out.is_empty() || !until_empty || !self.shards[shard].has_output(key) {
                break;
            }
        }
        if !self.conns[i].gone && !self.shards[shard].has_output(key) {
            // The queue is empty: takes hand out whole frames, so nothing is half-parsed.
            assert_eq!(
                self.conns[i].checker.partial_len(),
                0,
                "take_output split a frame"
            );
        }
        (total, items)
    }

    fn close(&mut self, i: usize) {
        let (shard, key) = (self.conns[i].shard, self.conns[i].key);
        self.shards[shard].handle_closed(key);
        self.conns[i].gone = true;
        self.after(shard);
    }

    /// The socket took its tail: unblock, write what is queued, and check the bound.
    fn unblock(&mut self, i: usize) {
        let (shard, key) = (self.conns[i].shard, self.conns[i].key);
        self.conns[i].blocked = false;
        self.shards[shard].set_write_blocked(key, false);
        let measured = self.conns[i].blocked_empty;
        self.conns[i].blocked_empty = false;
        let (queued, items) = self.take(i, SOCKET_WRITE_CHUNK_BYTES, true);
        if measured {
            let largest = items
                .iter()
                .map(|item| match item {
                    ServerItem::Http { len, .. } | ServerItem::Frame { len, .. } => *len,
                })
                .max()
                .unwrap_or(0);
            let bound = self.cap.max(self.pause + largest) + SLACK;
            if trace() {
                eprintln!("blocked queue of conn {i}: {queued} bytes (bound {bound})");
            }
            assert!(
                queued <= bound,
                "a blocked socket queued {queued} bytes (cap {}, pause {}, largest item \
                 {largest}, bound {bound}): {items:?}",
                self.cap,
                self.pause
            );
        }
    }

    fn rest_request(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &str,
        framed: &Framed,
    ) -> Vec<u8> {
        let unix = self.unix();
        let mut query = match framed.signature % 4 {
            1 => sign_query(method, path, params, body.as_bytes(), KEY, "wrong", unix),
            2 => sign_query(
                method,
                path,
                params,
                body.as_bytes(),
                KEY,
                SECRET,
                unix - 3600,
            ),
            3 => params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
            _ => sign_query(method, path, params, body.as_bytes(), KEY, SECRET, unix),
        };
        if query.is_empty() {
            query.push('x');
        }
        let version = if framed.connection % 4 >= 2 {
            "1.0"
        } else {
            "1.1"
        };
        let mut head = format!("{method} {path}?{query} HTTP/{version}\r\nHost: x\r\n");
        match framed.connection % 4 {
            1 => head.push_str("Connection: close\r\n"),
            3 => head.push_str("Connection: keep-alive\r\n"),
            _ => {}
        }
        match framed.length % 5 {
            0 if !body.is_empty() || method == "POST" => {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()))
            }
            2 => head.push_str(&format!("Content-Length: {}\r\n", body.len() + 1)),
            3 => head.push_str(&format!(
                "Content-Length: {}\r\n",
                body.len().saturating_sub(1)
            )),
            4 => head.push_str("Transfer-Encoding: chunked\r\n"),
            _ => {}
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }
}

fn info_value(info: u8) -> Option<&'static str> {
    match info % 5 {
        0 => None,
        1 => Some("user_count"),
        2 => Some("subscription_count"),
        3 => Some("user_count,subscription_count"),
        _ => Some("cache"),
    }
}

fn event_name(n: u8) -> String {
    match n % 6 {
        0 => "my-event".into(),
        1 => "client-x".into(),
        2 => "pusher:x".into(),
        3 => "pusher_internal:member_added".into(),
        4 => "e".repeat(201),
        _ => format!("ev{n}"),
    }
}

fn publish_body(node: &Node, p: &Publish) -> Value {
    let mut body = json!({"name": event_name(p.name), "data": p.data.value()});
    let channels: Vec<String> = p.channels.iter().take(12).map(Chan::name).collect();
    if p.one_channel || channels.is_empty() {
        body["channel"] = json!(channels.first().cloned().unwrap_or_else(|| "ch-0".into()));
    } else {
        body["channels"] = json!(channels);
    }
    if let Some(pick) = p.exclude {
        body["socket_id"] = json!(node.some_socket_id(pick));
    }
    if let Some(info) = info_value(p.info) {
        body["info"] = json!(info);
    }
    body
}

fn build_http(node: &Node, http: &Http) -> Vec<u8> {
    match http {
        Http::Health => b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        Http::Ready => b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        Http::Metrics => b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        Http::Rest(rest, framed) => {
            let base = format!("/apps/{APP_ID}");
            match rest {
                Rest::Publish(p) => {
                    let body = publish_body(node, p).to_string();
                    node.rest_request("POST", &format!("{base}/events"), &[], &body, framed)
                }
                Rest::Batch(events) => {
                    let batch: Vec<Value> = events
                        .iter()
                        .take(12)
                        .map(|p| publish_body(node, p))
                        .collect();
                    let body = json!({ "batch": batch }).to_string();
                    node.rest_request("POST", &format!("{base}/batch_events"), &[], &body, framed)
                }
                Rest::Channels { prefix, info } => {
                    let prefix = prefix.map(|p| match p % 4 {
                        0 => "presence-",
                        1 => "private-",
                        2 => "ch-",
                        _ => "",
                    });
                    let mut params = Vec::new();
                    if let Some(prefix) = prefix {
                        params.push(("filter_by_prefix", prefix));
                    }
                    if let Some(info) = info_value(*info) {
                        params.push(("info", info));
                    }
                    node.rest_request("GET", &format!("{base}/channels"), &params, "", framed)
                }
                Rest::Channel { channel, info } => {
                    let mut params = Vec::new();
                    if let Some(info) = info_value(*info) {
                        params.push(("info", info));
                    }
                    let path = format!("{base}/channels/{}", percent(&channel.name()));
                    node.rest_request("GET", &path, &params, "", framed)
                }
                Rest::Users(channel) => {
                    let path = format!("{base}/channels/{}/users", percent(&channel.name()));
                    node.rest_request("GET", &path, &[], "", framed)
                }
                Rest::Terminate(user) => {
                    let path = format!("{base}/users/u{}/terminate_connections", user % 3);
                    node.rest_request("POST", &path, &[], "{}", framed)
                }
            }
        }
        Http::Junk {
            method,
            path,
            headers,
            body,
        } => {
            let method =
                ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"][usize::from(*method % 6)];
            let mut out = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
            for (name, value) in headers.iter().take(8) {
                out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
            }
            if !body.is_empty() {
                out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body);
            out
        }
    }
}

/// Percent-encodes everything but unreserved characters (for names in paths).
fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn build_upgrade(up: &Upgrade) -> (Vec<u8>, bool) {
    let (path, pusher) = match up.path % 10 {
        0 | 1 => (format!("/app/{KEY}"), true),
        2 => ("/app/other-key".to_owned(), true),
        3 => ("/app/unknown".to_owned(), true),
        4 => ("/echo".to_owned(), false),
        // The other dialects' mounts: their frames are checked for framing only (the
        // messages the fuzzer sends are Pusher JSON, which they answer or ignore).
        5 => (format!("/channels/{KEY}"), false),
        6 => (format!("/relay/{KEY}?room=r"), false),
        7 => (format!("/slip/{KEY}"), false),
        8 => ("/socket.io/?EIO=4&transport=websocket".to_owned(), false),
        _ => ("/nowhere".to_owned(), false),
    };
    let query = match up.protocol % 4 {
        0 | 1 => "?protocol=7&client=js&version=8.4.0",
        2 => "?protocol=3",
        _ => "",
    };
    let mut head = format!("GET {path}{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n");
    if up.connection_upgrade {
        head.push_str("Connection: keep-alive, Upgrade\r\n");
    }
    if up.good_key {
        head.push_str("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    } else {
        head.push_str("Sec-WebSocket-Key: short\r\n");
    }
    head.push_str(if up.good_version {
        "Sec-WebSocket-Version: 13\r\n"
    } else {
        "Sec-WebSocket-Version: 8\r\n"
    });
    if let Some(origin) = &up.origin {
        let origin: String = origin
            .chars()
            .filter(|c| !c.is_control())
            .take(40)
            .collect();
        head.push_str(&format!("Origin: {origin}\r\n"));
    }
    if up.body {
        head.push_str("Content-Length: 3\r\n\r\nabc");
    } else {
        head.push_str("\r\n");
    }
    (head.into_bytes(), pusher)
}

fn auth_for(
    node: &Node,
    i: usize,
    auth: &Auth,
    channel: &str,
    data: Option<&str>,
) -> Option<String> {
    match auth {
        Auth::Valid => Some(channel_auth_token(
            KEY,
            SECRET,
            &node.socket_id(i),
            channel,
            data,
        )),
        Auth::Wrong => Some(channel_auth_token(
            KEY,
            "wrong",
            &node.socket_id(i),
            channel,
            data,
        )),
        Auth::Missing => None,
        Auth::Garbage(s) => Some(s.clone()),
    }
}

fn build_pusher(node: &Node, i: usize, message: &Pusher) -> Vec<u8> {
    let value = match message {
        Pusher::Ping => json!({"event": "pusher:ping", "data": {}}),
        Pusher::Pong => json!({"event": "pusher:pong", "data": {}}),
        Pusher::Subscribe {
            channel,
            auth,
            user,
            info,
            data_as_string,
        } => {
            let name = channel.name();
            let channel_data = name.starts_with("presence-").then(|| {
                json!({"user_id": format!("u{}", user % 3), "user_info": info.value()}).to_string()
            });
            let mut data = json!({ "channel": name });
            if let Some(token) = auth_for(node, i, auth, &name, channel_data.as_deref()) {
                data["auth"] = json!(token);
            }
            if let Some(channel_data) = channel_data {
                data["channel_data"] = json!(channel_data);
            }
            let data = if *data_as_string {
                json!(data.to_string())
            } else {
                data
            };
            json!({"event": "pusher:subscribe", "data": data})
        }
        Pusher::Unsubscribe(channel) => {
            json!({"event": "pusher:unsubscribe", "data": {"channel": channel.name()}})
        }
        Pusher::Signin {
            user,
            watchlist,
            auth,
        } => {
            let watchlist: Vec<String> = watchlist
                .iter()
                .take(4)
                .map(|w| format!("u{}", w % 3))
                .collect();
            let user_data =
                json!({"id": format!("u{}", user % 3), "watchlist": watchlist}).to_string();
            let token = match auth {
                Auth::Valid => signin_token(KEY, SECRET, &node.socket_id(i), &user_data),
                Auth::Wrong => signin_token(KEY, "wrong", &node.socket_id(i), &user_data),
                Auth::Missing => String::new(),
                Auth::Garbage(s) => s.clone(),
            };
            json!({"event": "pusher:signin", "data": {"auth": token, "user_data": user_data}})
        }
        Pusher::ClientEvent {
            channel,
            name,
            data,
        } => {
            let event = if name % 4 == 0 {
                "client-typing".to_owned()
            } else {
                format!("client-{}", name % 3)
            };
            json!({"event": event, "channel": channel.name(), "data": data.value()})
        }
        Pusher::Event { event, data } => json!({"event": event, "data": data.value()}),
        Pusher::Text(text) => return text.clone().into_bytes(),
    };
    value.to_string().into_bytes()
}

fn frame_bytes(payload: &[u8], framing: &Framing, key: [u8; 4]) -> Vec<u8> {
    match framing {
        Framing::Whole => client_frame(true, 0, 1, Some(key), payload, false),
        Framing::Fragments(a, b) => {
            let len = payload.len();
            let mut cuts = [usize::from(*a) % (len + 1), usize::from(*b) % (len + 1)];
            cuts.sort_unstable();
            let mut out = client_frame(false, 0, 1, Some(key), &payload[..cuts[0]], false);
            out.extend(client_frame(
                false,
                0,
                0,
                Some(key),
                &payload[cuts[0]..cuts[1]],
                false,
            ));
            out.extend(client_frame(
                true,
                0,
                0,
                Some(key),
                &payload[cuts[1]..],
                false,
            ));
            out
        }
        Framing::WithPing(at) => {
            let cut = usize::from(*at) % (payload.len() + 1);
            let mut out = client_frame(false, 0, 1, Some(key), &payload[..cut], false);
            out.extend(client_frame(true, 0, 9, Some(key), b"ping!", false));
            out.extend(client_frame(true, 0, 0, Some(key), &payload[cut..], false));
            out
        }
        Framing::Binary => client_frame(true, 0, 2, Some(key), payload, false),
        Framing::Unmasked => client_frame(true, 0, 1, None, payload, false),
        Framing::Long => client_frame(true, 0, 1, Some(key), payload, true),
    }
}

fn new_node(config: &Config) -> Node {
    let shard_count = u16::from(config.shards % 3) + 1;
    let cap = match config.outbound % 4 {
        0 => 4096,
        1 => 8192,
        2 => 32 * 1024,
        _ => 1024 * 1024,
    };
    let max_message = match config.max_message % 3 {
        0 => 125,
        1 => 4096,
        _ => 65_536,
    };
    let mut app = AppConfig::with_credentials(APP_ID, KEY, SECRET);
    app.enable_client_messages = config.client_messages;
    app.require_channel_authorization = config.require_auth;
    app.max_presence_members_per_channel = u32::from(config.members_max % 4) + 1;
    if config.rate_limits {
        app.max_client_events_per_second = 3;
        app.max_backend_events_per_second = 5;
        app.max_read_requests_per_second = 5;
        app.max_connections = 4;
    }
    let mut other = AppConfig::with_credentials("other-id", "other-key", "other-secret");
    other.enabled = config.second_app_enabled;
    let apps = Arc::new(AppTable::new(vec![app, other]));
    let shards: Vec<Shard> = (0..shard_count)
        .map(|i| {
            let mut shard = Shard::new(
                ShardSettings {
                    shard_index: i,
                    shard_count,
                    socket_id_base: 4242,
                    max_message_size: max_message,
                    outbound_bytes_max: cap,
                    handshake_timeout_s: 10,
                    echo_path: Some("/echo".into()),
                    metrics_port_separate: config.metrics_separate,
                    bridge_enabled: false,
                    cluster_enabled: false,
                    socketio: Default::default(),
                    functions: Default::default(),
                    channels_json: Default::default(),
                    fault_trigger: false,
                },
                apps.clone(),
            );
            shard.set_unix_time(UNIX_START);
            shard.set_node_running(true);
            shard
        })
        .collect();
    let n = shards.len();
    Node {
        shards,
        rings: (0..n * n).map(|_| VecDeque::new()).collect(),
        conns: Vec::new(),
        now_ms: 1_000,
        cap,
        pause: INPUT_PAUSE_OUTBOUND_BYTES.min(cap / 2),
        drained: vec![false; n],
        metrics_separate: config.metrics_separate,
        scratch_wake: Vec::new(),
    }
}

fn accept(node: &mut Node, shard: usize, metrics: bool) -> usize {
    let key = if metrics {
        node.shards[shard].handle_accept_metrics(node.now_ms)
    } else {
        node.shards[shard].handle_accept(node.now_ms)
    };
    node.conns.push(Conn {
        shard,
        key,
        pending: BytesMut::new(),
        checker: OutputChecker::new(),
        blocked: false,
        blocked_empty: false,
        gone: false,
        upgrade_sent: false,
    });
    node.conns.len() - 1
}

fn step(node: &mut Node, step: Step, mask: [u8; 4]) {
    match step {
        Step::Connect { shard, echo } => {
            let Some(i) = node.open(shard, false) else {
                return;
            };
            let upgrade = Upgrade {
                path: if echo { 4 } else { 0 },
                protocol: 0,
                good_version: true,
                good_key: true,
                connection_upgrade: true,
                origin: None,
                body: false,
            };
            let (bytes, pusher) = build_upgrade(&upgrade);
            node.conns[i].upgrade_sent = true;
            node.conns[i].checker.expect_pusher = pusher;
            node.send(i, &bytes);
            node.round_trip(i);
        }
        Step::Join {
            conn,
            channel,
            user,
            info,
        } => {
            if let Some(i) = node.conn(conn) {
                let message = Pusher::Subscribe {
                    channel,
                    auth: Auth::Valid,
                    user,
                    info,
                    data_as_string: false,
                };
                let payload = build_pusher(node, i, &message);
                node.send(i, &ringcast_fuzz::text_frame(&payload, mask));
                node.round_trip(i);
            }
        }
        Step::Call { shard, rest } => {
            let Some(i) = node.open(shard, false) else {
                return;
            };
            let bytes = build_http(node, &Http::Rest(rest, Framed::correct(1)));
            node.send(i, &bytes);
            node.round_trip(i);
        }
        Step::Block { conn } => {
            if let Some(i) = node.conn(conn) {
                if node.conns[i].blocked {
                    return;
                }
                node.take(i, SOCKET_WRITE_CHUNK_BYTES, true);
                if !node.conns[i].gone {
                    node.block(i);
                }
            }
        }
        Step::Flood {
            shard,
            publish,
            times,
        } => {
            let Some(i) = node.open(shard, false) else {
                return;
            };
            let framed = Framed::correct(0);
            let body = publish_body(node, &publish).to_string();
            let path = format!("/apps/{APP_ID}/events");
            for _ in 0..usize::from(times % 32) + 1 {
                let bytes = node.rest_request("POST", &path, &[], &body, &framed);
                node.send(i, &bytes);
            }
            node.round_trip(i);
        }
        Step::Accept { shard, metrics } => {
            node.open(shard, metrics && node.metrics_separate);
        }
        Step::Http { conn, http } => {
            if let Some(i) = node.conn(conn) {
                let bytes = build_http(node, &http);
                node.send(i, &bytes);
            }
        }
        Step::Upgrade { conn, upgrade } => {
            if let Some(i) = node.conn(conn) {
                let (bytes, pusher) = build_upgrade(&upgrade);
                if !node.conns[i].upgrade_sent {
                    node.conns[i].upgrade_sent = true;
                    node.conns[i].checker.expect_pusher = pusher;
                }
                node.send(i, &bytes);
            }
        }
        Step::Pusher {
            conn,
            message,
            framing,
        } => {
            if let Some(i) = node.conn(conn) {
                let payload = build_pusher(node, i, &message);
                let bytes = frame_bytes(&payload, &framing, mask);
                node.send(i, &bytes);
            }
        }
        Step::Frame {
            conn,
            fin,
            rsv,
            opcode,
            payload,
        } => {
            if let Some(i) = node.conn(conn) {
                // Now and then a reserved bit, which the server must refuse.
                let rsv = if rsv >= 248 { rsv & 7 } else { 0 };
                let bytes = client_frame(fin, rsv, opcode, Some(mask), &payload, false);
                node.send(i, &bytes);
            }
        }
        Step::Raw { conn, bytes } => {
            if let Some(i) = node.conn(conn) {
                node.send(i, &bytes);
            }
        }
        Step::Feed { conn, n } => {
            if let Some(i) = node.conn(conn) {
                node.feed(i, usize::from(n) + 1);
            }
        }
        Step::FeedAll { conn } => {
            if let Some(i) = node.conn(conn) {
                for _ in 0..32 {
                    if !node.feed(i, usize::MAX) || node.conns[i].gone {
                        break;
                    }
                }
            }
        }
        Step::Ring { pair, n } => {
            let pairs = node.rings.len();
            for k in 0..usize::from(n % 16) + 1 {
                node.deliver((usize::from(pair) + k) % pairs);
            }
        }
        Step::Settle => node.settle(),
        Step::Tick { ms } => {
            node.now_ms += u64::from(ms) * 4 + 1;
            let unix = node.unix();
            for shard in 0..node.n() {
                node.shards[shard].set_unix_time(unix);
                node.shards[shard].handle_tick(node.now_ms);
                node.after(shard);
            }
        }
        Step::Take { conn, max, partial } => {
            if let Some(i) = node.conn(conn) {
                if node.conns[i].blocked {
                    return; // the shell writes the tail first
                }
                let (taken, _) = node.take(i, usize::from(max) + 1, false);
                if partial && taken > 0 && !node.conns[i].gone {
                    node.block(i);
                }
            }
        }
        Step::Unblock { conn } => {
            if let Some(i) = node.conn(conn) {
                if node.conns[i].blocked {
                    node.unblock(i);
                } else {
                    node.take(i, SOCKET_WRITE_CHUNK_BYTES, true);
                }
            }
        }
        Step::Close { conn } => {
            if let Some(i) = node.conn(conn) {
                node.close(i);
            }
        }
        Step::NodeRunning(running) => {
            for shard in &mut node.shards {
                shard.set_node_running(running);
            }
        }
        Step::Drain { shard } => {
            let shard = usize::from(shard) % node.n();
            if !node.drained[shard] {
                node.drained[shard] = true;
                node.shards[shard].handle_drain(node.now_ms);
                node.after(shard);
            }
        }
    }
}

/// Everything fed, rings empty, output drained, until nothing moves.
fn quiesce(node: &mut Node) {
    for _ in 0..1000 {
        node.settle();
        let mut moved = false;
        for i in 0..node.conns.len() {
            if node.conns[i].gone {
                continue;
            }
            if node.conns[i].blocked {
                node.unblock(i);
                moved = true;
            } else {
                let (taken, _) = node.take(i, SOCKET_WRITE_CHUNK_BYTES, true);
                moved |= taken > 0;
            }
            if !node.conns[i].gone {
                moved |= node.feed(i, usize::MAX);
            }
        }
        let rings_empty = node.rings.iter().all(VecDeque::is_empty);
        if !moved && rings_empty {
            return;
        }
    }
    panic!("the node never quiesces");
}

fn final_checks(node: &mut Node) {
    node.settle();
    quiesce(node);
    if trace() {
        for (i, c) in node.conns.iter().enumerate() {
            eprintln!(
                "conn {i} (shard {}): statuses {:?}, events {:?}",
                c.shard, c.checker.statuses, c.checker.events
            );
        }
    }
    for i in 0..node.conns.len() {
        if node.conns[i].gone {
            continue;
        }
        let (shard, key) = (node.conns[i].shard, node.conns[i].key);
        let state = node.shards[shard].input_state(key);
        assert_ne!(state, InputState::Held, "held input is never handed back");
        assert!(
            state != InputState::Paused || node.shards[shard].has_output(key),
            "connection {i} is paused with nothing queued: a request waits forever"
        );
    }
    // Everyone leaves: no connection, and no occupied channel, is left behind.
    for i in 0..node.conns.len() {
        if !node.conns[i].gone {
            node.close(i);
        }
    }
    node.settle();
    for shard in &node.shards {
        assert_eq!(shard.connection_count(), 0);
    }
    if node.drained[0] {
        return;
    }
    let unix = node.unix();
    for shard in &mut node.shards {
        shard.set_unix_time(unix);
    }
    let i = accept(node, 0, false);
    let path = format!("/apps/{APP_ID}/channels");
    let query = sign_query("GET", &path, &[], b"", KEY, SECRET, unix);
    let request = format!("GET {path}?{query} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (shard, key) = (node.conns[i].shard, node.conns[i].key);
    node.shards[shard].handle_bytes(key, request.as_bytes(), node.now_ms);
    node.after(shard);
    node.settle();
    let mut out = BytesMut::new();
    while node.shards[shard].has_output(key) {
        node.shards[shard].take_output(key, &mut out, usize::MAX);
    }
    let text = String::from_utf8_lossy(&out);
    if text.starts_with("HTTP/1.1 429") {
        return; // the read-request rate limit of the app, when the fuzzer turned it on
    }
    assert!(text.starts_with("HTTP/1.1 200"), "channels query: {text}");
    let body = &text[text.find("\r\n\r\n").map_or(0, |p| p + 4)..];
    let value: Value = serde_json::from_str(body).expect("channels body is JSON");
    assert_eq!(
        value["channels"],
        json!({}),
        "channels still occupied after every connection left"
    );
}

/// `RINGCAST_FUZZ_TRACE=1` prints the steps of each run (to replay a crash by hand).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("RINGCAST_FUZZ_TRACE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(config) = Config::arbitrary(&mut u) else {
        return;
    };
    let Ok(mask) = <[u8; 4]>::arbitrary(&mut u) else {
        return;
    };
    let trace = trace();
    if trace {
        eprintln!("{config:?}");
    }
    let mut node = new_node(&config);
    for _ in 0..STEPS_MAX {
        let Ok(s) = Step::arbitrary(&mut u) else {
            break;
        };
        if trace {
            eprintln!("{s:?}");
        }
        step(&mut node, s, mask);
    }
    final_checks(&mut node);
});
