//! A shard's counters and the snapshot of them it sends for `/metrics`. Each shard counts on
//! its own (no shared atomics on the hot path); `/metrics` gathers a snapshot from every shard
//! over the rings and renders them together, labelled by shard (`prometheus`).

use ahash::AHashMap;

use crate::dialect::Dialect;

/// Upper bounds of the frames-per-write histogram buckets (+Inf implied).
pub const FRAMES_PER_WRITE_BUCKETS: [u64; 7] = [1, 2, 4, 8, 16, 32, 64];
/// Upper bounds of the handshake-latency histogram buckets, in milliseconds (+Inf implied).
pub const HANDSHAKE_MS_BUCKETS: [u64; 9] = [1, 2, 5, 10, 25, 50, 100, 500, 1000];

/// Counters one shard keeps.
#[derive(Debug, Clone)]
pub struct ShardStats {
    /// Connections accepted.
    pub connections_opened: u64,
    /// Connections removed.
    pub connections_closed: u64,
    /// WebSocket messages received.
    pub messages_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Frames queued to sockets (deliveries, replies and control frames).
    pub frames_out: u64,
    /// Published events handed to subscribers (one per subscriber per event; the excluded
    /// publisher and slow consumers being cut count too: they were attempted).
    pub deliveries: u64,
    /// Channel deliveries by the subscriber's dialect (`Dialect::index`).
    pub deliveries_by_dialect: [u64; Dialect::COUNT],
    /// Bytes handed to sockets.
    pub bytes_out: u64,
    /// Socket writes (each carries one or more frames).
    pub socket_writes: u64,
    /// Histogram of frames per socket write (`FRAMES_PER_WRITE_BUCKETS` + one for +Inf).
    pub frames_per_write: [u64; 8],
    /// Connections cut because their outbound queue passed the cap.
    pub slow_consumer_disconnects: u64,
    /// Upgrades refused because their `Origin` is not in the app's allow-list.
    pub origin_refusals: u64,
    /// Cache channels' last events not kept: the shard's cache was at its bound in bytes.
    pub cache_events_refused: u64,
    /// Subscribes refused because the shard holds `CHANNELS_PER_SHARD_MAX` channels.
    pub channels_refused: u64,
    /// Pusher errors sent, by code (index = code - 4000).
    pub errors_by_code: Vec<u64>,
    /// WebSocket close frames sent for protocol violations, by RFC 6455 code.
    pub protocol_closes: AHashMap<u16, u64>,
    /// Histogram of accept → upgrade latency (`HANDSHAKE_MS_BUCKETS` + one for +Inf).
    pub handshake_ms: [u64; 10],
    /// Sum of handshake latencies in milliseconds.
    pub handshake_ms_sum: u64,
    /// HTTP requests answered, by (route, status).
    pub http_requests: AHashMap<(&'static str, u16), u64>,
    /// Times the bridge link came up.
    pub link_connects: u64,
    /// Times the link was ended because a change the cluster must know found its queue full
    /// (the resync after the next `Hello` restates it).
    pub link_relinks: u64,
    /// Link connections closed unused: the process at the bridge socket was not our bridge.
    pub link_peers_refused: u64,
    /// Local publishes handed to the bridge for other nodes.
    pub link_publishes_out: u64,
    /// Local publishes not handed to the bridge (link down or its queue full).
    pub link_publishes_dropped: u64,
    /// Events from other nodes delivered through the bridge.
    pub link_events_in: u64,
    /// Webhook events handed to the bridge.
    pub webhook_events_out: u64,
    /// Subscriptions authorized through the app's endpoint (auth offload) asked for.
    pub auth_offloaded: u64,
    /// Of those, refused or failed.
    pub auth_offload_refused: u64,
    /// Webhook events dropped before the bridge got them (link queue full, or too many
    /// waiting while the bridge was away).
    pub webhook_events_dropped: u64,
    /// TLS connections dropped before their handshake ended: not TLS, a bad record, an alert,
    /// or no handshake within `TLS_HANDSHAKE_TIMEOUT_MS`.
    pub tls_handshake_failures: u64,
    /// TLS connections dropped after their handshake for a bad record or an alert.
    pub tls_record_errors: u64,
    /// Socket.IO (Engine.IO) sessions opened by an upgrade on the Socket.IO mount.
    pub socketio_sessions_opened: u64,
    /// Socket.IO namespace joins refused (unknown app, bad or expired token, too many).
    pub socketio_connects_refused: u64,
    /// Socket.IO packets refused (malformed, binary, unknown events, namespaces not joined).
    pub socketio_errors: u64,
    /// Socket.IO connections closed because a ping went unanswered for `pingTimeout`.
    pub socketio_ping_timeouts: u64,
    /// Channels JSON messages refused (not JSON objects, unknown types, binary frames).
    pub channels_json_errors: u64,
    /// Publishes run through their channel's functions (counted by the channel's owner).
    pub function_pipelines_started: u64,
    /// Of those, delivered unchanged because the functions failed, timed out or could not run.
    pub function_pipelines_failed: u64,
    /// Associations documents applied (`PUT /associations` here or on another node).
    pub associations_updates: u64,
    /// Associations documents refused (bad token or document).
    pub associations_refused: u64,
    /// Relay messages that did nothing (not JSON, unusable, past a bound or the rate, from a
    /// connection without a role, to a client not there), counted where they were dropped.
    pub relay_messages_ignored: u64,
    /// Relay connects refused (the room's or the owner shard's bound): the connection closed.
    pub relay_connects_refused: u64,
    /// WebSocket-over-HTTP events sent to the backends (open, text, close).
    pub slip_calls: u64,
    /// Of those, without a usable answer (none in time, non-2xx, not a list of events).
    pub slip_calls_failed: u64,
    /// WebSocket-over-HTTP upgrades the backend did not accept or could not be asked about.
    pub slip_upgrades_refused: u64,
    /// Backend commands not run: unknown or foreign connection, invalid channel, oversized
    /// metadata, too many channels.
    pub slip_commands_refused: u64,
}

impl Default for ShardStats {
    fn default() -> Self {
        ShardStats {
            connections_opened: 0,
            connections_closed: 0,
            messages_in: 0,
            bytes_in: 0,
            frames_out: 0,
            deliveries: 0,
            deliveries_by_dialect: [0; Dialect::COUNT],
            bytes_out: 0,
            socket_writes: 0,
            frames_per_write: [0; 8],
            slow_consumer_disconnects: 0,
            origin_refusals: 0,
            cache_events_refused: 0,
            channels_refused: 0,
            errors_by_code: vec![0; 400],
            protocol_closes: AHashMap::new(),
            handshake_ms: [0; 10],
            handshake_ms_sum: 0,
            http_requests: AHashMap::new(),
            link_connects: 0,
            link_relinks: 0,
            link_peers_refused: 0,
            link_publishes_out: 0,
            link_publishes_dropped: 0,
            link_events_in: 0,
            webhook_events_out: 0,
            auth_offloaded: 0,
            auth_offload_refused: 0,
            webhook_events_dropped: 0,
            tls_handshake_failures: 0,
            tls_record_errors: 0,
            socketio_sessions_opened: 0,
            socketio_connects_refused: 0,
            socketio_errors: 0,
            socketio_ping_timeouts: 0,
            channels_json_errors: 0,
            function_pipelines_started: 0,
            function_pipelines_failed: 0,
            associations_updates: 0,
            associations_refused: 0,
            relay_messages_ignored: 0,
            relay_connects_refused: 0,
            slip_calls: 0,
            slip_calls_failed: 0,
            slip_upgrades_refused: 0,
            slip_commands_refused: 0,
        }
    }
}

impl ShardStats {
    /// Counts one socket write of `frames` frames and `bytes` bytes.
    pub fn record_write(&mut self, frames: u64, bytes: u64) {
        self.socket_writes += 1;
        self.bytes_out += bytes;
        let bucket = FRAMES_PER_WRITE_BUCKETS
            .iter()
            .position(|upper| frames <= *upper)
            .unwrap_or(FRAMES_PER_WRITE_BUCKETS.len());
        self.frames_per_write[bucket] += 1;
    }

    /// Counts one finished handshake.
    pub fn record_handshake(&mut self, elapsed_ms: u64) {
        self.handshake_ms_sum += elapsed_ms;
        let bucket = HANDSHAKE_MS_BUCKETS
            .iter()
            .position(|upper| elapsed_ms <= *upper)
            .unwrap_or(HANDSHAKE_MS_BUCKETS.len());
        self.handshake_ms[bucket] += 1;
    }

    /// Counts one HTTP response.
    pub fn record_http(&mut self, route: &'static str, status: u16) {
        *self.http_requests.entry((route, status)).or_default() += 1;
    }
}

/// One shard's counters plus its gauges, as sent to the shard rendering `/metrics`.
#[derive(Debug, Clone)]
pub struct StatsSnapshot {
    /// Shard index.
    pub shard: u16,
    /// Counters.
    pub stats: ShardStats,
    /// Open Pusher connections per app index.
    pub connections_by_app: Vec<u64>,
    /// Open WebSocket connections by dialect (`Dialect::index`).
    pub connections_by_dialect: [u64; Dialect::COUNT],
    /// All sockets (any phase).
    pub sockets: u64,
    /// Channels with local subscribers.
    pub channels: u64,
    /// With a bridge configured: whether this shard is linked to it.
    pub bridge_linked: Option<bool>,
    /// The bridge's latest counters, as received on this shard's link.
    pub bridge_stats: Option<crate::link::BridgeStats>,
}
