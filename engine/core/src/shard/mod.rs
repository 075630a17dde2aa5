//! One shard's whole state machine, sans IO: its connections, channel registry, owned presence /
//! cache / watchlist state and the messages it owes other shards.
//!
//! The runtime shell drives it with `handle_*` (bytes from a socket, a socket gone, a message
//! from another shard, a once-a-second tick, drain) and drains it with `take_*` (bytes for a
//! socket, connections to wake, messages for other shards). Time is an argument (monotonic
//! milliseconds, never 0), so the same code runs under a simulated clock in tests. See
//! [`Shard`] for the methods and the order the shell calls them in.
//!
//! # Subscribe protocol across shards
//! A shard tells every other shard when it gains its first local subscriber of a channel
//! (`Interest { on }`) and waits for all acks before confirming the subscription, so that any
//! publish that starts after `subscription_succeeded` reaches the new subscriber wherever it is
//! published. Presence and cache channels then go to the channel's *owner* shard (a fixed hash),
//! which keeps the member list (first join / last leave per user over all shards) and the cached
//! event, and answers with the frames to send. Rings are FIFO per shard pair, so the owner's
//! answer always precedes the `member_added` events that follow it.
//!
//! # Layout
//! Imports go one way: the state files (leaves) import no file of `shard/` but other leaves;
//! `mod.rs` holds [`Shard`] and imports only leaves; every feature file is an `impl Shard` block
//! that imports `Shard` and leaves, never another feature file.
//!
//! State (leaves):
//! - `conn.rs`: one connection: phase, read buffer, decoder, outbound queue, subscriptions.
//! - `auth_forward.rs`: what a connection's offloaded authorizations send to the endpoint.
//! - `registry.rs`: channels to local subscribers and interested shards; signed-in users.
//! - `subscribers.rs`: a channel's active subscribers on the shard, one set per dialect.
//! - `owner.rs`: what an owner shard keeps: presence members, cached events, watchlists.
//! - `message.rs`: the messages between shards and the parts of their answers.
//! - `stats.rs`: the shard's counters and the snapshot of them sent for `/metrics`.
//! - `prometheus.rs`: the Prometheus text of `/metrics` from every shard's snapshot.
//! - `hook_state.rs`: webhook settings, the kinds each app wants, events waiting for the link,
//!   changed subscription counts.
//! - `link_state.rs`: the link to the bridge: up or not, its queue and when each kind of message
//!   may go, acks due, the bridge's counters, the webhook state.
//! - `pending.rs`: `Pending`, the one table type of requests waiting for an answer.
//! - `bridge_waits.rs`: `BridgeWaits`, what waits for the bridge (authorizations, members, cache,
//!   channels questions), and `Stranded`, what is taken out unanswered.
//! - `query_state.rs`: cross-shard questions in flight, what they are for, how parts merge.
//! - `http_reply.rs`: what routing a plain HTTP request produced.
//! - `frames.rs`: a JSON message as one shared WebSocket text frame.
//! - `socketio_state.rs`: a Socket.IO connection's session: namespaces, origin, heartbeat.
//! - `channels_json_state.rs`: a channels JSON connection's session: its channel, sender id.
//! - `slip_state.rs`: a WebSocket-over-HTTP connection's session: its id, metadata, channels
//!   and calls to the backend in flight.
//! - `relay_state.rs`: a relay connection's session: its room.
//! - `relay_rooms.rs`: the relay rooms an owner shard holds: server, clients, data.
//!
//! Features (`impl Shard`):
//! - `mod.rs`: the struct, the shell's inputs and outputs, the tick, HTTP and WebSocket framing,
//!   phase changes and the delivery primitives (queueing frames, routing messages, fan-out).
//! - `session.rs`: the Pusher socket protocol's entry points: admission, a client's messages to
//!   their feature, the shell's publishes and user commands, detaching a connection.
//! - `subscribe.rs`: subscribe / unsubscribe: the checks, interest announcements, activation,
//!   the subscriber's side of the owner's answer, leaving a channel.
//! - `owner_join.rs`: the owner's side of a presence / cache join: members, limit, last event.
//! - `signin.rs`: sign-in, the per-user index, online state and watchlists.
//! - `client_events.rs`: `client-*` events: their checks, rate and relay.
//! - `inbox.rs`: messages from other shards, one handler each.
//! - `http_routes.rs`: plain HTTP requests: health, readiness, metrics, then the REST API.
//! - `rest_api.rs`: the Pusher REST API: signature, publish, channel queries, terminate.
//! - `query.rs`: scatter-gather questions over the shards and the answers they build.
//! - `bridge.rs`: the link to the bridge: up / down, channel announcements, publishes and user
//!   commands relayed to the other nodes, messages in, and requests the bridge will not answer.
//! - `webhooks.rs`: the webhook events a shard hands to the bridge; subscription counts.
//! - `cluster_presence.rs`: presence across nodes: members queries, cluster member events.
//! - `cluster_state.rs`: user commands, cache channels and connection counts across nodes.
//! - `cluster_channels.rs`: `GET /channels…` across nodes.
//! - `auth_offload.rs`: channel authorization by the app's endpoint, through the bridge.
//! - `channels_json.rs`: the channels JSON dialect: its upgrade, one channel per connection,
//!   join / publish / ping, the idle and lifetime limits.
//! - `slip.rs`: WebSocket-over-HTTP: the upgrade held until the backend accepts, socket events
//!   to the backend through the bridge, its commands (from answers and the control API) run
//!   in order.
//! - `relay.rs`: the relay: its upgrade, messages to the room's owner, the owner's frames back.
//! - `channel_functions.rs`: publishes through their channel's functions (held by the owner,
//!   run by the bridge), `PUT /associations`.
//! - `socketio.rs`: the Socket.IO dialect: the Engine.IO session, its heartbeat on the sweep,
//!   namespaces joined with a JWT, the client's packets.
//! - `socketio_rooms.rs`: Ekko's rooms in the one channel space: subscribe, unsubscribe,
//!   publish, presence rooms, the admin room, acknowledgements.
//! - `tests/`: multi-shard simulation tests: the harness in `tests/mod.rs`, the tests by concern.

// State: leaves that import no other file of the shard but leaves.
mod auth_forward;
mod bridge_waits;
mod channels_json_state;
pub mod conn;
mod frames;
mod hook_state;
mod http_reply;
mod link_state;
pub mod message;
pub mod owner;
mod pending;
pub mod prometheus;
mod query_state;
pub mod registry;
mod relay_rooms;
mod relay_state;
mod slip_state;
mod socketio_state;
pub mod stats;
pub mod subscribers;

// Features: `impl Shard` blocks, each importing `Shard` from here (and leaves), never each other.
mod auth_offload;
pub mod bridge;
mod channel_functions;
mod channels_json;
mod client_events;
mod cluster_channels;
mod cluster_presence;
mod cluster_state;
mod http_routes;
mod inbox;
mod owner_join;
mod query;
mod relay;
mod rest_api;
mod session;
mod signin;
mod slip;
mod socketio;
mod socketio_rooms;
mod subscribe;
mod webhooks;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use slab::Slab;

use crate::app::AppTable;
use crate::dialect::Published;
use crate::http::request::{self, ParseOutcome};
use crate::http::response;
use crate::limits;
use crate::pusher::{close, server_message};
use crate::ws::{frame, handshake};
use bridge_waits::BridgeWaits;
use conn::{Conn, Phase};
use http_reply::HttpOutcome;
use limits::{CLOSE_WAIT_MS, PENDING_QUERIES_MAX};
use link_state::LinkState;
use message::{AppIndex, ShardMessage};
use owner::OwnerState;
use pending::Pending;
use query_state::PendingQueries;
use registry::Registry;
pub use stats::ShardStats;

/// Settings a shard needs, fixed at start.
#[derive(Debug, Clone)]
pub struct ShardSettings {
    /// This shard's index (0-based).
    pub shard_index: u16,
    /// Number of shards in the process (≤ 64: interest sets are a u64 bitmask).
    pub shard_count: u16,
    /// Process-wide random part of socket ids (same on every shard).
    pub socket_id_base: u64,
    /// Largest WebSocket message accepted (1009 above).
    pub max_message_size: usize,
    /// Queued outbound bytes per connection before it is cut as a slow consumer (4100).
    pub outbound_bytes_max: usize,
    /// Seconds to finish an HTTP request / upgrade.
    pub handshake_timeout_s: u64,
    /// Path of the echo endpoint, if mounted.
    pub echo_path: Option<String>,
    /// `/metrics` is served on a separate port (not on the main one).
    pub metrics_port_separate: bool,
    /// The node runs with a bridge (several nodes, or webhooks to send).
    pub bridge_enabled: bool,
    /// The node is one of several, linked through the bridge (`--adapter-driver redis`).
    pub cluster_enabled: bool,
    /// The Socket.IO dialect's heartbeat, payload bound and JWT secret.
    pub socketio: crate::socketio::SocketIoSettings,
    /// The channels JSON dialect's idle and lifetime limits.
    pub channels_json: crate::channels_json::ChannelsJsonSettings,
    /// Channel functions: the configured functions and the associations at start.
    pub functions: crate::functions::FunctionSettings,
    /// Debug builds only (the code is not compiled into release builds): a client's
    /// `ringcast:test_panic` event panics the shard, for the tests of what a panic does.
    pub fault_trigger: bool,
}

/// What the shell should do with a connection's socket after taking its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputState {
    /// Keep reading and writing.
    Open,
    /// Write what was taken, then close the socket gracefully.
    Finished,
    /// Drop the socket now.
    Abort,
    /// No such connection.
    Gone,
}

/// Whether the shell should read a connection's socket now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputState {
    /// Read and hand the bytes over with `handle_bytes`.
    Read,
    /// Input read earlier waits in the core: call `handle_bytes` with no bytes first.
    Held,
    /// Do not read: the connection's output is above the pause, or an HTTP request waits for
    /// its answer. The connection is woken when that changes (output taken, answer queued).
    Paused,
}

/// A shard's state: its connections, the channels and users it has or owns, the questions and
/// requests it waits on, and what it owes the sockets, the other shards and the bridge. It does
/// no IO and reads no clock: the shell calls it from the shard's one thread and moves bytes.
///
/// Inputs are `handle_*` methods, each taking `now_ms` where time matters:
/// [`handle_accept`](Self::handle_accept) / [`handle_accept_metrics`](Self::handle_accept_metrics)
/// (a socket accepted, returns its key), [`handle_bytes`](Self::handle_bytes) (bytes read),
/// [`handle_closed`](Self::handle_closed) (the socket is gone),
/// [`handle_message`](Self::handle_message) (a message from another shard's ring),
/// [`handle_tick`](Self::handle_tick) (the once-a-second sweep),
/// [`handle_drain`](Self::handle_drain) (shutting down), and from the bridge link
/// [`handle_link_up`](Self::handle_link_up), [`handle_link_message`](Self::handle_link_message)
/// and [`handle_link_down`](Self::handle_link_down). [`publish`](Self::publish),
/// [`publish_to_user`](Self::publish_to_user) and [`terminate_user`](Self::terminate_user) are
/// inputs too (for embedders and benchmarks); [`set_unix_time`](Self::set_unix_time),
/// [`set_node_running`](Self::set_node_running) and
/// [`set_write_blocked`](Self::set_write_blocked) tell the shard facts it cannot see. Every
/// input finishes its consequences before it returns (messages the shard sent itself,
/// connections that left), so nothing is re-entrant.
///
/// Outputs are `take_*` methods, which move what is queued into the shell's buffers:
/// [`take_wakeups`](Self::take_wakeups) (connections with new output or a new phase),
/// [`take_outbox`](Self::take_outbox) (messages for other shards, in order),
/// [`take_output`](Self::take_output) (one connection's bytes, and what to do with its socket)
/// and [`take_link_output`](Self::take_link_output) (bytes for the bridge). Polls without side
/// effects say whether to call them: [`has_output`](Self::has_output),
/// [`is_aborted`](Self::is_aborted), [`has_link_output`](Self::has_link_output), and whether to
/// read a connection's socket at all, [`input_state`](Self::input_state).
///
/// The order the shell calls them in (`engine/src/`: `shard.rs`, `conn_task.rs`, `bridge_link.rs`):
/// 1. One input: an accepted socket, a read on a connection, a message from a ring, a decoded
///    frame from the bridge (one `handle_link_message` per frame of a read), the link going up
///    or down, or every fourth 250 ms timer turn `set_unix_time` then `handle_tick` (on a
///    drain request, `handle_drain` first).
/// 2. After every input but an accept (the shell's `after_core`): `take_wakeups`,
///    `take_outbox` and `has_link_output`, which wake the connection tasks and the link task
///    and put the outbox onto the rings, in order.
/// 3. A connection task, each time it is polled: a tail left from the last write goes first
///    (`is_aborted` is checked before writing it; `set_write_blocked(key, false)` once it is
///    written); otherwise `take_output`, then `set_write_blocked(key, true)` when the socket
///    took only part, and `has_output` to go round again. Then it reads (`handle_bytes`,
///    step 1), unless the rings are backed up or `input_state` says `Paused` (`Held`:
///    `handle_bytes` with no bytes instead of a read). When the socket ends: `handle_closed`.
/// 4. The link task likewise: `take_link_output` and write, then read and decode.
/// 5. While draining, `draining_connection_count` after each timer turn until it is 0.
#[derive(Debug)]
pub struct Shard {
    settings: ShardSettings,
    apps: Arc<AppTable>,
    conns: Slab<Conn>,
    registry: Registry,
    owner: OwnerState,
    outbox: Vec<(u16, ShardMessage)>,
    wake: Vec<u32>,
    detach_queue: Vec<u32>,
    loopback: std::collections::VecDeque<ShardMessage>,
    next_serial: u64,
    draining: bool,
    /// Every shard of the node runs (the shell says so; `/ready` is 503 otherwise).
    node_running: bool,
    now_ms: u64,
    next_cache_sweep_ms: u64,
    unix_s: u64,
    queries: PendingQueries,
    stats: ShardStats,
    link: LinkState,
    waits: BridgeWaits,
    /// Every app's channel-function associations (replaced whole by `PUT /associations`).
    associations: Arc<crate::functions::Associations>,
    /// The address each connection still speaking HTTP was accepted from (`set_peer_ip`):
    /// taken by an upgrade that tells its backend (WebSocket-over-HTTP), dropped when the
    /// connection leaves HTTP, so established connections keep none.
    peer_ips: ahash::AHashMap<u32, std::net::IpAddr>,
    /// The relay rooms this shard owns.
    relay_rooms: relay_rooms::RelayRooms,
    /// The WebSocket-over-HTTP connections by serial (their connection ids name serials):
    /// at most one entry per connection.
    slip_keys: ahash::AHashMap<u64, u32>,
}

impl Shard {
    /// A shard with no connections.
    pub fn new(settings: ShardSettings, apps: Arc<AppTable>) -> Self {
        assert!(
            settings.shard_count >= 1 && settings.shard_count <= crate::limits::SHARD_COUNT_MAX
        );
        assert!(settings.shard_index < settings.shard_count);
        let app_count = apps.len();
        let link = LinkState::new(settings.bridge_enabled, settings.cluster_enabled, &apps);
        let associations = settings.functions.associations.clone();
        Shard {
            settings,
            apps,
            conns: Slab::new(),
            registry: Registry::new(app_count),
            owner: OwnerState::new(app_count),
            outbox: Vec::new(),
            wake: Vec::new(),
            detach_queue: Vec::new(),
            loopback: std::collections::VecDeque::new(),
            next_serial: 1,
            draining: false,
            node_running: true,
            now_ms: 0,
            next_cache_sweep_ms: 0,
            unix_s: 0,
            queries: Pending::without_deadline(PENDING_QUERIES_MAX),
            stats: ShardStats::default(),
            link,
            waits: BridgeWaits::new(),
            associations,
            slip_keys: ahash::AHashMap::new(),
            relay_rooms: relay_rooms::RelayRooms::default(),
            peer_ips: ahash::AHashMap::new(),
        }
    }

    /// This shard's index.
    pub fn index(&self) -> u16 {
        self.settings.shard_index
    }

    /// Live connections on this shard.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Connections that hold the drain open: every one but idle HTTP keep-alive connections,
    /// which are closed when the process exits.
    pub fn draining_connection_count(&self) -> usize {
        self.conns
            .iter()
            .filter(|(_, c)| !(c.phase == Phase::Http && c.read_buf.is_empty()))
            .count()
    }

    /// Counters.
    pub fn stats(&self) -> &ShardStats {
        &self.stats
    }

    /// True once `handle_drain` ran.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// The socket id of a connection: `{base}{shard:02}.{serial}`; the two digits before the dot
    /// are the shard index (documented; tests use it to place clients on different shards).
    pub fn socket_id(&self, serial: u64) -> String {
        self.format_socket_id(self.settings.shard_index, serial)
    }

    /// The socket id of a connection of this process on any shard.
    fn format_socket_id(&self, shard: u16, serial: u64) -> String {
        format!(
            "{}.{}",
            self.settings.socket_id_base * 100 + u64::from(shard),
            serial
        )
    }

    /// Splits a socket id of this process into (shard, serial); None for anything else.
    pub fn parse_socket_id(&self, socket_id: &str) -> Option<(u16, u64)> {
        let (prefix, serial) = socket_id.split_once('.')?;
        let prefix: u64 = prefix.parse().ok()?;
        let serial: u64 = serial.parse().ok()?;
        if prefix / 100 != self.settings.socket_id_base {
            return None;
        }
        let shard = u16::try_from(prefix % 100).ok()?;
        (shard < self.settings.shard_count).then_some((shard, serial))
    }

    // ---------------------------------------------------------------- inputs

    /// A socket was accepted; returns its key.
    pub fn handle_accept(&mut self, now_ms: u64) -> u32 {
        self.now_ms = now_ms;
        let serial = self.next_serial;
        self.next_serial += 1;
        self.stats.connections_opened += 1;
        let conn = Conn::new(serial, now_ms, self.settings.max_message_size);
        self.conns.insert(conn) as u32
    }

    /// A socket was accepted on the metrics port; returns its key.
    pub fn handle_accept_metrics(&mut self, now_ms: u64) -> u32 {
        let key = self.handle_accept(now_ms);
        self.conns[key as usize].metrics_only = true;
        key
    }

    /// Wall-clock time (REST signatures carry Unix timestamps); the shell sets it every tick.
    pub fn set_unix_time(&mut self, unix_s: u64) {
        self.unix_s = unix_s;
    }

    /// Whether every shard of the node runs; the shell says so at start and every tick
    /// (`/ready` answers 503 while one does not).
    pub fn set_node_running(&mut self, running: bool) {
        self.node_running = running;
    }

    /// Bytes arrived on a connection's socket.
    pub fn handle_bytes(&mut self, key: u32, data: &[u8], now_ms: u64) {
        self.now_ms = now_ms;
        self.stats.bytes_in += data.len() as u64;
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        conn.input_held = false;
        if matches!(conn.phase, Phase::Finished | Phase::Abort) {
            return; // the server is done with this socket; discard
        }
        conn.read_buf.extend_from_slice(data);
        self.process_input(key);
        if let Some(conn) = self.conns.get_mut(key as usize) {
            if conn.read_buf.is_empty() && conn.read_buf.capacity() > 0 {
                // Nothing partial: give the memory back (idle connections hold no buffer).
                conn.read_buf = BytesMut::new();
            }
        }
        self.run_detach_queue();
    }

    /// The address the socket of `key` was accepted from (told right after the accept): an
    /// app's WebSocket-over-HTTP backend gets it with the open event.
    pub fn set_peer_ip(&mut self, key: u32, ip: std::net::IpAddr) {
        if self.conns.contains(key as usize) {
            self.peer_ips.insert(key, ip);
        }
    }

    /// The shell dropped a TLS connection for a protocol failure: before its handshake ended
    /// (`during_handshake`: not TLS, a bad record, an alert, the handshake deadline) or after
    /// it (a bad record, an alert). Counted for `/metrics`; the shell then reports the socket
    /// closed as for any other.
    pub fn count_tls_failure(&mut self, during_handshake: bool) {
        if during_handshake {
            self.stats.tls_handshake_failures += 1;
        } else {
            self.stats.tls_record_errors += 1;
        }
    }

    /// The socket is gone (EOF, error, or closed by the shell after `Finished`/`Abort`).
    pub fn handle_closed(&mut self, key: u32) {
        if self.conns.contains(key as usize) {
            self.detach(key);
            self.conns.remove(key as usize);
            self.peer_ips.remove(&key);
            self.stats.connections_closed += 1;
        }
        self.run_detach_queue();
    }

    /// Once-a-second sweep: handshake, activity, authorisation and close deadlines, and the
    /// subscription counts changed since the last one (for the bridge).
    pub fn handle_tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        while let Some((app, channel, seq)) = self.link.pop_overdue_ack(now_ms) {
            self.confirm_channel(app, &channel, Some(seq));
        }
        let overdue = self.waits.take_overdue(now_ms);
        self.resume_stranded(overdue);
        self.report_connections();
        self.report_changed_counts();
        for (key, action) in self.tick_actions(now_ms) {
            self.apply_tick_action(key, action, now_ms);
        }
        if now_ms >= self.next_cache_sweep_ms {
            self.owner.cache_expire(now_ms / 1000);
            self.next_cache_sweep_ms = now_ms + 60_000;
        }
        self.run_detach_queue();
    }

    /// The connections past one of their deadlines, each with what to do: finish an HTTP
    /// connection past the handshake timeout, abort one still closing at its deadline; close a
    /// Pusher connection not authorized in time or whose pong is overdue, or ping one that has
    /// been quiet for the activity timeout.
    fn tick_actions(&self, now_ms: u64) -> Vec<(u32, TickAction)> {
        let mut actions: Vec<(u32, TickAction)> = Vec::new();
        for (key, conn) in self.conns.iter() {
            let key = key as u32;
            match conn.phase {
                Phase::Http | Phase::HttpWaiting
                    if now_ms.saturating_sub(conn.last_seen_ms)
                        >= self.settings.handshake_timeout_s * 1000 =>
                {
                    actions.push((key, TickAction::Finish));
                }
                Phase::Pusher => {
                    let Some(app_index) = conn.app else { continue };
                    let app = self.apps.get(app_index);
                    if app.require_channel_authorization
                        && !conn.authorized
                        && now_ms.saturating_sub(conn.opened_ms)
                            >= u64::from(app.authorization_timeout_s) * 1000
                    {
                        actions.push((key, TickAction::Unauthorized));
                    } else if conn.ping_sent_ms != 0 {
                        if now_ms.saturating_sub(conn.ping_sent_ms) >= limits::PONG_GRACE_S * 1000 {
                            actions.push((key, TickAction::PongTimeout));
                        }
                    } else if now_ms.saturating_sub(conn.last_seen_ms)
                        >= u64::from(app.activity_timeout_s) * 1000
                    {
                        actions.push((key, TickAction::Ping));
                    }
                }
                Phase::SocketIo => {
                    if let Some(action) = self.socketio_tick(key, now_ms) {
                        actions.push((key, TickAction::SocketIo(action)));
                    }
                }
                Phase::ChannelsJson => {
                    if let Some(reason) = self.channels_json_expired(key, now_ms) {
                        actions.push((key, TickAction::Expired(reason)));
                    }
                }
                Phase::Closing { deadline_ms } if now_ms >= deadline_ms => {
                    actions.push((key, TickAction::Abort));
                }
                _ => {}
            }
        }
        actions
    }

    /// Carries out one tick action on a connection.
    fn apply_tick_action(&mut self, key: u32, action: TickAction, now_ms: u64) {
        match action {
            TickAction::Finish => {
                if !self.slip_open_expired(key) {
                    self.set_phase(key, Phase::Finished);
                }
            }
            TickAction::Abort => self.set_phase(key, Phase::Abort),
            TickAction::Ping => {
                if let Some(conn) = self.conns.get_mut(key as usize) {
                    conn.ping_sent_ms = now_ms;
                }
                self.send_text(key, &server_message::ping());
            }
            TickAction::PongTimeout => {
                self.close_pusher(key, close::PONG_NOT_RECEIVED, "Pong reply not received")
            }
            TickAction::SocketIo(action) => self.apply_socketio_tick(key, action, now_ms),
            TickAction::Expired(reason) => self.close_ws(key, frame::CLOSE_NORMAL, reason),
            TickAction::Unauthorized => self.close_pusher(
                key,
                close::UNAUTHORIZED,
                "Connection not authorized within timeout",
            ),
        }
    }

    /// Stop: every WebSocket gets 4200 (Pusher) or 1001 (echo); HTTP connections finish.
    pub fn handle_drain(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        self.draining = true;
        let keys: Vec<(u32, Phase)> = self
            .conns
            .iter()
            .map(|(k, c)| (k as u32, c.phase))
            .collect();
        for (key, phase) in keys {
            match phase {
                Phase::Pusher => {
                    self.close_pusher(key, close::RECONNECT, "Server is shutting down")
                }
                Phase::Echo
                | Phase::SocketIo
                | Phase::ChannelsJson
                | Phase::Slip
                | Phase::Relay => self.close_ws(key, 1001, "Server is shutting down"),
                // HTTP connections stay to answer what they are asked (`/ready` says 503), and
                // close after that response.
                _ => {}
            }
        }
        self.run_detach_queue();
    }

    // --------------------------------------------------------------- outputs

    /// Moves queued frames of a connection into `out` (up to about `max_bytes`, at least one
    /// frame) and says what to do with the socket afterwards.
    pub fn take_output(&mut self, key: u32, out: &mut BytesMut, max_bytes: usize) -> OutputState {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return OutputState::Gone;
        };
        conn.wake_queued = false;
        if conn.phase == Phase::Abort {
            conn.outbound.clear();
            conn.outbound_bytes = 0;
            return OutputState::Abort;
        }
        let start_len = out.len();
        let mut frames = 0u64;
        while let Some(front) = conn.outbound.front() {
            if !out.is_empty() && out.len() + front.len() > max_bytes {
                break;
            }
            out.extend_from_slice(front);
            conn.outbound_bytes -= front.len();
            conn.outbound.pop_front();
            frames += 1;
        }
        if frames > 0 {
            self.stats
                .record_write(frames, (out.len() - start_len) as u64);
        }
        if conn.outbound.is_empty() && conn.outbound.capacity() > 0 {
            // Idle connections keep no queue allocation; a busy one re-allocates per flush,
            // which costs far less than the write it precedes.
            conn.outbound = std::collections::VecDeque::new();
        }
        if conn.phase == Phase::Finished && conn.outbound.is_empty() {
            OutputState::Finished
        } else {
            OutputState::Open
        }
    }

    /// Whether the core gave up on a connection (drop it without flushing): a blocked writer
    /// must check this, or a slow consumer past its close deadline would never be dropped.
    pub fn is_aborted(&self, key: u32) -> bool {
        self.conns
            .get(key as usize)
            .is_none_or(|c| c.phase == Phase::Abort)
    }

    /// The shell tells whether the socket took everything it was given (`false`) or left bytes
    /// pending (`true`). Only a connection whose socket is full is measured against the
    /// outbound cap: frames queued within one turn for a reader that keeps up are not a backlog.
    pub fn set_write_blocked(&mut self, key: u32, blocked: bool) {
        if let Some(conn) = self.conns.get_mut(key as usize) {
            conn.write_blocked = blocked;
        }
    }

    /// Whether to read a connection's socket now (see [`InputState`]): the shell asks before
    /// every read, so a client whose output is stuck is not read at all.
    pub fn input_state(&self, key: u32) -> InputState {
        let Some(conn) = self.conns.get(key as usize) else {
            return InputState::Read; // the read finds out that the socket is gone
        };
        match conn.phase {
            Phase::HttpWaiting => InputState::Paused,
            Phase::Finished | Phase::Abort => InputState::Read,
            _ if conn.outbound_bytes > self.input_pause_bytes() => InputState::Paused,
            // Woken when the backend answers (`shard/slip.rs`).
            _ if conn.awaits_backend() => InputState::Paused,
            _ if conn.input_held => InputState::Held,
            _ => InputState::Read,
        }
    }

    /// Queued output above which a connection's input is not taken
    /// ([`limits::INPUT_PAUSE_OUTBOUND_BYTES`], at most half the outbound cap).
    fn input_pause_bytes(&self) -> usize {
        limits::INPUT_PAUSE_OUTBOUND_BYTES.min(self.settings.outbound_bytes_max / 2)
    }

    /// Whether a connection has frames queued.
    pub fn has_output(&self, key: u32) -> bool {
        self.conns
            .get(key as usize)
            .is_some_and(|c| !c.outbound.is_empty() || matches!(c.phase, Phase::Abort))
    }

    /// Connections that got output or a phase change since the last call.
    pub fn take_wakeups(&mut self, out: &mut Vec<u32>) {
        out.append(&mut self.wake);
    }

    /// Messages for other shards, in order: `(target shard, message)`.
    pub fn take_outbox(&mut self, out: &mut Vec<(u16, ShardMessage)>) {
        out.append(&mut self.outbox);
    }

    // ------------------------------------------------------------- internals

    fn process_input(&mut self, key: u32) {
        let pause_bytes = self.input_pause_bytes();
        loop {
            let Some(conn) = self.conns.get_mut(key as usize) else {
                return;
            };
            let takes_input = matches!(
                conn.phase,
                Phase::Http
                    | Phase::Pusher
                    | Phase::SocketIo
                    | Phase::ChannelsJson
                    | Phase::Slip
                    | Phase::Relay
                    | Phase::Echo
            );
            if takes_input && conn.outbound_bytes > pause_bytes && !conn.read_buf.is_empty() {
                // The client does not read what it asked for: its next requests wait for it.
                conn.input_held = true;
                return;
            }
            if conn.awaits_backend() && !conn.read_buf.is_empty() {
                // The backend has not answered its earlier messages: the next ones wait.
                conn.input_held = true;
                return;
            }
            match conn.phase {
                Phase::Http => {
                    if !self.process_http(key) {
                        return;
                    }
                }
                Phase::HttpWaiting => return,
                Phase::Pusher
                | Phase::SocketIo
                | Phase::ChannelsJson
                | Phase::Slip
                | Phase::Relay
                | Phase::Echo
                | Phase::Closing { .. } => {
                    let result = conn.decoder.poll_message(&mut conn.read_buf);
                    match result {
                        Ok(Some(message)) => {
                            conn.last_seen_ms = self.now_ms;
                            conn.ping_sent_ms = 0;
                            self.stats.messages_in += 1;
                            self.handle_ws_message(key, message);
                        }
                        Ok(None) => return,
                        Err(violation) => {
                            *self
                                .stats
                                .protocol_closes
                                .entry(violation.close_code)
                                .or_default() += 1;
                            let conn = &mut self.conns[key as usize];
                            conn.read_buf.clear();
                            let frame = frame::encode_close(violation.close_code, violation.reason);
                            self.push_control(key, frame);
                            self.set_phase(key, Phase::Finished);
                            return;
                        }
                    }
                }
                Phase::Finished | Phase::Abort => {
                    conn.read_buf.clear();
                    return;
                }
            }
        }
    }

    /// Handles one HTTP request if complete; false when more bytes are needed or the
    /// connection changed phase in a way that stops input processing.
    fn process_http(&mut self, key: u32) -> bool {
        let conn = &mut self.conns[key as usize];
        let parsed = request::parse_head(&conn.read_buf, limits::HTTP_HEAD_BYTES_MAX);
        let (head, head_len) = match parsed {
            Ok(ParseOutcome::Partial) => return false,
            Ok(ParseOutcome::Complete { head, head_len }) => (head, head_len),
            Err(err) => {
                conn.read_buf.clear();
                self.refuse_request(key, &err);
                return false;
            }
        };
        if let Some(err) = framing_error(&head) {
            // Where a proxy in front might frame the request otherwise (RFC 9112 §6.1, §6.3):
            // one answer, then the connection closes, so nothing after it runs as a request.
            conn.read_buf.clear();
            self.refuse_request(key, &err);
            return false;
        }
        // A request that carries a WebSocket key is an upgrade attempt even when its Upgrade
        // header is missing or wrong: it gets the handshake's 400, not a plain 404.
        if handshake::is_upgrade_request(&head) || head.header("sec-websocket-key").is_some() {
            conn.read_buf.advance(head_len);
            self.handle_upgrade(key, &head);
            return true;
        }
        let body_len = match head.content_length() {
            Ok(n) if n <= limits::HTTP_BODY_BYTES_MAX => n,
            Ok(_) => {
                let err = request::HttpError {
                    status: 413,
                    reason: "request body too large",
                };
                conn.read_buf.clear();
                self.refuse_request(key, &err);
                return false;
            }
            Err(err) => {
                conn.read_buf.clear();
                self.refuse_request(key, &err);
                return false;
            }
        };
        if conn.read_buf.len() < head_len + body_len {
            return false;
        }
        conn.read_buf.advance(head_len);
        let body = conn.read_buf.split_to(body_len).freeze();
        conn.last_seen_ms = self.now_ms;
        let keep_alive = !self.draining && head.keep_alive();
        match self.route_http(key, &head, &body, keep_alive) {
            HttpOutcome::Reply(reply) => {
                self.finish_http(
                    key,
                    reply.route,
                    reply.status,
                    reply.content_type,
                    &reply.body,
                    keep_alive,
                );
                keep_alive
            }
            HttpOutcome::Waiting => false,
        }
    }

    /// Sends an HTTP response and returns the connection to reading requests (or finishes it).
    fn finish_http(
        &mut self,
        key: u32,
        route: &'static str,
        status: u16,
        content_type: &str,
        body: &[u8],
        keep_alive: bool,
    ) {
        self.stats.record_http(route, status);
        let keep_alive = keep_alive && !self.draining;
        self.push_control(
            key,
            response::response(status, content_type, body, &[], keep_alive),
        );
        if keep_alive {
            if let Some(conn) = self.conns.get_mut(key as usize) {
                // Answered after a wait: pipelined requests read meanwhile are handed back.
                conn.input_held = conn.phase == Phase::HttpWaiting && !conn.read_buf.is_empty();
                conn.phase = Phase::Http;
            }
        } else {
            self.set_phase(key, Phase::Finished);
        }
    }

    fn handle_upgrade(&mut self, key: u32, head: &request::RequestHead) {
        let is_echo = self.settings.echo_path.as_deref() == Some(head.path.as_str());
        if !is_echo && crate::socketio::is_mount(&head.path) {
            self.handle_socketio_upgrade(key, head);
            return;
        }
        if let Some(app_key) = crate::channels_json::app_key_of(&head.path).filter(|_| !is_echo) {
            let app_key = app_key.to_owned();
            self.handle_channels_json_upgrade(key, &app_key, head);
            return;
        }
        if let Some(app_key) = crate::slip::app_key_of(&head.path).filter(|_| !is_echo) {
            let app_key = app_key.to_owned();
            self.handle_slip_upgrade(key, &app_key, head);
            return;
        }
        if let Some(app_key) = crate::relay::app_key_of(&head.path).filter(|_| !is_echo) {
            let app_key = app_key.to_owned();
            self.handle_relay_upgrade(key, &app_key, head);
            return;
        }
        let app_key = head
            .path
            .strip_prefix("/app/")
            .filter(|k| !k.is_empty() && !k.contains('/'));
        if !is_echo && app_key.is_none() {
            let err = request::HttpError {
                status: 404,
                reason: "not found: WebSocket connections go to /app/{app_key}, /socket.io/, \
                         /channels/{app_key}, /slip/{app_key} or /relay/{app_key}",
            };
            self.refuse_request(key, &err);
            return;
        }
        let Some(accept) = self.checked_upgrade(key, head) else {
            return;
        };
        if !self.origin_allowed(app_key, head) {
            // Before the 101: a page of another site never gets a socket, let alone a
            // subscription authorized with its visitor's cookies.
            self.stats.origin_refusals += 1;
            let err = request::HttpError::new(403, "origin not allowed for this app");
            self.refuse_request(key, &err);
            return;
        }
        self.send_accept(key, &accept);
        if is_echo {
            self.set_phase(key, Phase::Echo);
            return;
        }
        self.set_phase(key, Phase::Pusher);
        let app_key = app_key.unwrap_or_default();
        self.open_pusher(key, app_key, head.query_param("protocol"));
        self.capture_auth_forward(key, head);
    }

    /// Answers a request with an HTTP error and closes the connection after it.
    fn refuse_request(&mut self, key: u32, err: &request::HttpError) {
        self.push_control(key, response::error_response(err));
        self.set_phase(key, Phase::Finished);
    }

    /// The upgrade's `Sec-WebSocket-Accept` value, or None when the request is not a valid
    /// upgrade (refused with its HTTP error).
    fn checked_upgrade(&mut self, key: u32, head: &request::RequestHead) -> Option<String> {
        match handshake::validate_upgrade(head) {
            Ok(accept) => Some(accept),
            Err(err) => {
                self.refuse_request(key, &err);
                None
            }
        }
    }

    /// The refusal of an upgrade whose `Origin` may not open a socket to `app` (counted), if
    /// it may not.
    fn origin_refusal(
        &mut self,
        app: AppIndex,
        head: &request::RequestHead,
    ) -> Option<request::HttpError> {
        if self
            .apps
            .get(app)
            .allowed_origins
            .allows(head.header("origin"))
        {
            return None;
        }
        self.stats.origin_refusals += 1;
        Some(request::HttpError::new(
            403,
            "origin not allowed for this app",
        ))
    }

    /// After a dialect's own refusals: the handshake's checks (its HTTP error) and the app's
    /// connection quota (429). The `Sec-WebSocket-Accept` value once the connection counts for
    /// `app`; None when it was refused (answered, the connection finishing).
    fn admit_upgrade(
        &mut self,
        key: u32,
        app: AppIndex,
        head: &request::RequestHead,
    ) -> Option<String> {
        let accept = self.checked_upgrade(key, head)?;
        if !self.apps.try_admit(app) {
            let err = request::HttpError::new(429, "app is over its connection quota");
            self.refuse_request(key, &err);
            return None;
        }
        let conn = &mut self.conns[key as usize];
        conn.app = Some(app);
        conn.counted = true;
        Some(accept)
    }

    /// The 101 of an upgrade, and the handshake's time (from the accept) in the metrics.
    fn send_accept(&mut self, key: u32, accept: &str) {
        self.push_control(key, handshake::accept_response(accept));
        let opened_ms = self.conns[key as usize].opened_ms;
        self.stats
            .record_handshake(self.now_ms.saturating_sub(opened_ms));
    }

    /// Whether the upgrade's `Origin` may open a socket to the app of `app_key` (an unknown
    /// key is refused later, with the protocol's 4001).
    fn origin_allowed(&self, app_key: Option<&str>, head: &request::RequestHead) -> bool {
        let Some(app) = app_key.and_then(|key| self.apps.index_by_key(key)) else {
            return true;
        };
        self.apps
            .get(app)
            .allowed_origins
            .allows(head.header("origin"))
    }

    fn handle_ws_message(&mut self, key: u32, message: frame::Message) {
        let phase = self.conns[key as usize].phase;
        match message {
            frame::Message::Ping(payload) => {
                if phase.is_open_websocket() {
                    self.push_control(key, frame::encode_pong(&payload));
                }
            }
            frame::Message::Pong(_) => {}
            frame::Message::Close { code, .. } => {
                if phase.is_open_websocket() {
                    // Client-initiated close: echo the code, then close the socket.
                    let reply = match code {
                        Some(code) => frame::encode_close(code, ""),
                        None => frame::encode_close_empty(),
                    };
                    self.push_control(key, reply);
                }
                self.set_phase(key, Phase::Finished);
            }
            frame::Message::Text(payload) => match phase {
                Phase::Echo => self.push_data(key, frame::encode_text(&payload)),
                Phase::Pusher => self.handle_pusher_text(key, &payload),
                Phase::SocketIo => self.handle_socketio_text(key, &payload),
                Phase::ChannelsJson => self.handle_channels_json_text(key, &payload),
                Phase::Slip => self.handle_slip_text(key, &payload),
                Phase::Relay => self.handle_relay_text(key, &payload),
                _ => {}
            },
            frame::Message::Binary(payload) => match phase {
                Phase::Echo => self.push_data(key, frame::encode_binary(&payload)),
                Phase::Pusher => self.send_error(
                    key,
                    close::CLIENT_EVENT_REJECTED,
                    "Binary frames are not supported; send JSON text frames",
                ),
                Phase::SocketIo => self.handle_socketio_binary(key),
                Phase::ChannelsJson => self.handle_channels_json_binary(key),
                Phase::Relay => self.handle_relay_binary(),
                Phase::Slip => self.close_ws(
                    key,
                    frame::CLOSE_UNSUPPORTED_DATA,
                    "Binary messages are not supported; send text",
                ),
                _ => {}
            },
        }
    }

    /// Changes a connection's phase; leaving the open phases detaches it from channels and
    /// users at once (not when the socket finally goes), so presence is exact.
    fn set_phase(&mut self, key: u32, phase: Phase) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        conn.phase = phase;
        if !matches!(phase, Phase::Http | Phase::HttpWaiting) {
            self.peer_ips.remove(&key);
        }
        if !conn.is_open() {
            self.detach_queue.push(key);
        }
        if !conn.wake_queued {
            conn.wake_queued = true;
            self.wake.push(key);
        }
    }

    /// Queues a frame that must go out whatever the phase or the cap (handshake replies,
    /// control frames, close frames): these are small and bounded by the protocol.
    fn push_control(&mut self, key: u32, frame: Bytes) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        conn.outbound_bytes += frame.len();
        conn.outbound.push_back(frame);
        self.stats.frames_out += 1;
        if !conn.wake_queued {
            conn.wake_queued = true;
            self.wake.push(key);
        }
    }

    /// Queues a data frame for an open connection, cutting it as a slow consumer past the cap.
    fn push_data(&mut self, key: u32, frame: Bytes) {
        push_frame(
            &mut self.conns,
            &mut self.wake,
            &mut self.detach_queue,
            &mut self.stats,
            self.settings.outbound_bytes_max,
            self.now_ms,
            key,
            frame,
        );
    }

    fn send_text(&mut self, key: u32, json: &str) {
        self.push_data(key, frame::encode_text(json.as_bytes()));
    }

    /// `pusher:error` without closing.
    fn send_error(&mut self, key: u32, code: u16, message: &str) {
        self.count_error(code);
        self.send_text(key, &server_message::error(Some(code), message));
    }

    fn count_error(&mut self, code: u16) {
        if let Some(slot) = code
            .checked_sub(4000)
            .and_then(|i| self.stats.errors_by_code.get_mut(usize::from(i)))
        {
            *slot += 1;
        }
    }

    /// `pusher:error` then a close frame with the same code; waits for the client's close.
    fn close_pusher(&mut self, key: u32, code: u16, message: &str) {
        let Some(conn) = self.conns.get(key as usize) else {
            return;
        };
        if !conn.is_open() {
            return;
        }
        self.count_error(code);
        let text = server_message::error(Some(code), message);
        self.push_control(key, frame::encode_text(text.as_bytes()));
        self.close_ws(key, code, message);
    }

    /// A close frame; waits for the client's close until the deadline.
    fn close_ws(&mut self, key: u32, code: u16, reason: &str) {
        self.push_control(key, frame::encode_close(code, reason));
        let deadline_ms = self.now_ms + CLOSE_WAIT_MS;
        self.set_phase(key, Phase::Closing { deadline_ms });
    }

    /// End of every public call: messages this shard sent itself, then connections that left
    /// the open phases, until both are empty.
    fn run_detach_queue(&mut self) {
        loop {
            if let Some(message) = self.loopback.pop_front() {
                self.handle_message_inner(message);
            } else if let Some(key) = self.detach_queue.pop() {
                self.detach(key);
            } else {
                return;
            }
        }
    }

    /// Sends a message to a shard; to itself it is queued and handled at the end of the
    /// current call, in order, as if it had gone round a ring (no re-entrancy).
    fn route(&mut self, target: u16, message: ShardMessage) {
        if target == self.settings.shard_index {
            self.loopback.push_back(message);
        } else {
            self.outbox.push((target, message));
        }
    }

    /// Sends a message to every other shard.
    fn broadcast(&mut self, message: ShardMessage) {
        for target in 0..self.settings.shard_count {
            if target != self.settings.shard_index {
                self.outbox.push((target, message.clone()));
            }
        }
    }

    /// The owner shard of a name (channel or user id) of an app: the same on every shard.
    fn owner_of(&self, app: AppIndex, name: &str) -> u16 {
        let hasher = ahash::RandomState::with_seeds(0x72696e67, 0x63617374, 0x6f776e65, 0x72736864);
        let hash = hasher.hash_one((app, name));
        (hash % u64::from(self.settings.shard_count)) as u16
    }

    /// Delivers a message to a channel's subscribers on this shard and, when `remote`, forwards
    /// it to every other interested shard. This is the fan-out hot path: per dialect present,
    /// one frame (encoded on first need, shared by every shard), then one refcount bump per
    /// subscriber.
    fn deliver_channel(
        &mut self,
        app: AppIndex,
        channel: &str,
        message: &Arc<Published>,
        except: Option<(u16, u64)>,
        remote: bool,
    ) {
        let Some((name, entry)) = self.registry.channel_with_name(app, channel) else {
            return;
        };
        if remote && entry.remote_interest != 0 {
            let mut bits = entry.remote_interest;
            let channel: &Arc<str> = name;
            while bits != 0 {
                let target = bits.trailing_zeros() as u16;
                bits &= bits - 1;
                self.outbox.push((
                    target,
                    ShardMessage::Deliver {
                        app,
                        channel: channel.clone(),
                        message: message.clone(),
                        except,
                    },
                ));
            }
        }
        let except_serial = except
            .filter(|(shard, _)| *shard == self.settings.shard_index)
            .map(|(_, serial)| serial);
        let app_id = &self.apps.get(app).id;
        for (dialect, keys) in entry.subscribers.iter() {
            let Some(frame) = message.frame(dialect, app_id, channel) else {
                continue;
            };
            self.stats.deliveries += keys.len() as u64;
            self.stats.deliveries_by_dialect[dialect.index()] += keys.len() as u64;
            for &key in keys.iter() {
                if let Some(serial) = except_serial {
                    if self
                        .conns
                        .get(key as usize)
                        .is_some_and(|c| c.serial == serial)
                    {
                        continue;
                    }
                }
                push_frame(
                    &mut self.conns,
                    &mut self.wake,
                    &mut self.detach_queue,
                    &mut self.stats,
                    self.settings.outbound_bytes_max,
                    self.now_ms,
                    key,
                    frame.clone(),
                );
            }
        }
    }
}

enum TickAction {
    SocketIo(socketio_state::SocketIoTick),
    /// A limit of the connection's dialect passed (channels JSON: idle, lifetime).
    Expired(&'static str),
    Finish,
    Abort,
    Ping,
    PongTimeout,
    Unauthorized,
}

/// Appends a data frame to a connection's queue. When the socket is full and the queue passes
/// the cap, the queue is dropped and replaced by a close (4100 for Pusher, 1008 for a plain
/// WebSocket): the slow reader is cut loose and nobody else waits for it.
#[allow(clippy::too_many_arguments)]
fn push_frame(
    conns: &mut Slab<Conn>,
    wake: &mut Vec<u32>,
    detach_queue: &mut Vec<u32>,
    stats: &mut ShardStats,
    outbound_bytes_max: usize,
    now_ms: u64,
    key: u32,
    frame: Bytes,
) {
    let Some(conn) = conns.get_mut(key as usize) else {
        return;
    };
    if !conn.is_open() {
        return;
    }
    if conn.write_blocked && conn.outbound_bytes + frame.len() > outbound_bytes_max {
        conn.outbound.clear();
        let code = match conn.phase {
            Phase::Pusher => close::OVER_CAPACITY,
            _ => frame::CLOSE_POLICY_VIOLATION,
        };
        let close_frame = frame::encode_close(code, "Slow consumer");
        conn.outbound_bytes = close_frame.len();
        conn.outbound.push_back(close_frame);
        conn.phase = Phase::Closing {
            deadline_ms: now_ms + CLOSE_WAIT_MS,
        };
        stats.slow_consumer_disconnects += 1;
        if let Some(slot) = code
            .checked_sub(4000)
            .and_then(|index| stats.errors_by_code.get_mut(usize::from(index)))
        {
            *slot += 1;
        }
        detach_queue.push(key);
    } else {
        conn.outbound_bytes += frame.len();
        conn.outbound.push_back(frame);
        stats.frames_out += 1;
    }
    if !conn.wake_queued {
        conn.wake_queued = true;
        wake.push(key);
    }
}

/// Why a request's framing is refused, if it is: any `Transfer-Encoding` (not implemented: 501;
/// the REST API's bodies are small and every SDK sends `Content-Length`), and an upgrade that
/// declares a body (its bytes would be read as WebSocket frames: 400). Conflicting
/// `Content-Length` values are refused by [`request::RequestHead::content_length`].
fn framing_error(head: &request::RequestHead) -> Option<request::HttpError> {
    if head.has_transfer_encoding() {
        return Some(request::HttpError {
            status: 501,
            reason: "Transfer-Encoding is not supported; send the body with Content-Length",
        });
    }
    let upgrade = handshake::is_upgrade_request(head) || head.header("sec-websocket-key").is_some();
    if upgrade && head.content_length().map_or(true, |length| length > 0) {
        return Some(request::HttpError::bad_request(
            "a WebSocket upgrade carries no body",
        ));
    }
    None
}
