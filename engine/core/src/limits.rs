//! Every bound the engine's core enforces, in one place: caps, maxima, timeouts, waits and the
//! defaults of limits, each with its value and the abuse or failure it stops. Config options
//! override the ones marked "configurable"; the per-app defaults are overridden per app. Bounds
//! the bridge shares (the shard count, the link's waits, the leave delay, the cache TTL, the
//! reconnect backoff) are used by it from here. Units come last in every name; relations between
//! bounds are checked at compile time at the end of this file.
//!
//! This file imports nothing: every other file may use it.

// ---- HTTP and the WebSocket upgrade ----

/// Bytes of an HTTP request head (request line + headers): 8 KiB; over it: 431. Stops header
/// floods.
pub const HTTP_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Header fields of one HTTP request: 64; more: 431. Bounds the parser's field table.
pub const HTTP_HEADERS_MAX: usize = 64;
/// Bytes of an HTTP request body (REST API): 1 MiB; over it: 413. Stops memory exhaustion by one
/// request.
pub const HTTP_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Default seconds for a client to finish the HTTP upgrade: 10 (configurable). Stops sockets
/// that connect and never send a request (slowloris).
pub const HANDSHAKE_TIMEOUT_S_DEFAULT: u64 = 10;

// ---- TLS (`--tls-cert-file`) ----

/// Longest a client may take from accept to the end of its TLS handshake: 5 000 ms; then the
/// socket is dropped and counted (`ringcast_tls_handshake_failures_total`). Fixed. Stops sockets
/// that connect and send nothing, or send the ClientHello a byte at a time, from holding a
/// descriptor and rustls's handshake state. Shorter than the HTTP deadline, which runs from the
/// accept too, so a stalled handshake is ended by this one.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// Bytes rustls may hold for one connection in each of its write-side buffers (encrypted records
/// not yet sent, plaintext written before the handshake ended; `set_buffer_limit`): 64 KiB, one
/// coalesced write. The shell takes the core's next output only once they are flushed, so a
/// reader that does not read holds this much at most beside its outbound queue.
pub const TLS_BUFFER_BYTES_MAX: usize = 64 * 1024;

// ---- WebSocket frames ----

/// Default WebSocket message size: 64 KiB (configurable, `--max-message-size`); over it: close
/// 1009. Stops one message from taking a connection's whole memory.
pub const WS_MESSAGE_BYTES_DEFAULT: usize = 64 * 1024;
/// Payload of a control frame (ping, pong, close): 125 bytes, fixed by RFC 6455 §5.5 (not
/// tunable); a longer one is a protocol error (1002).
pub const WS_CONTROL_PAYLOAD_BYTES_MAX: usize = 125;
/// Close reason that fits a control frame beside the 2-byte code: 123 bytes; longer reasons are
/// cut at a character boundary.
pub const WS_CLOSE_REASON_BYTES_MAX: usize = WS_CONTROL_PAYLOAD_BYTES_MAX - 2;

// ---- Connections ----

/// Default per-connection outbound queue: 1 MiB (configurable); over it: close 4100 (slow
/// consumer). Stops one reader that never reads from holding the node's memory.
pub const OUTBOUND_BYTES_DEFAULT: usize = 1024 * 1024;
/// Queued output of one connection above which the shard stops taking its input (the shell
/// stops reading the socket; bytes already read wait in the read buffer) until the output
/// drains below it: 64 KiB, or half the outbound cap when that is smaller. Stops a client that
/// sends without reading (pipelined HTTP requests, pings, echo frames) from making the server
/// queue answers without bound: the answers wait for the client, and so does its input.
pub const INPUT_PAUSE_OUTBOUND_BYTES: usize = 64 * 1024;
/// Entries of one app's `app_allowed_origins`: 64. Every upgrade with an `Origin` is compared
/// with each, so the list bounds that work.
pub const ALLOWED_ORIGINS_MAX: usize = 64;
/// Channels one connection may be subscribed to: 1 000 (a Socket.IO connection: rooms over all
/// its namespaces, presence and admin rooms included; also the most channels one `subscribe`
/// event may name). Stops one socket from bloating the registry.
pub const SUBSCRIPTIONS_PER_CONNECTION_MAX: usize = 1_000;
/// Seconds the server waits for any frame after its `pusher:ping` before closing with 4201: 30.
/// Stops dead peers (no FIN, no RST) from being kept forever.
pub const PONG_GRACE_S: u64 = 30;
/// Milliseconds a server-initiated close waits for the client's close frame before the socket
/// is dropped: 5 000. Stops a peer that never answers a close from holding its socket.
pub const CLOSE_WAIT_MS: u64 = 5_000;
/// Default seconds to wait for connections to leave on SIGTERM: 10 (configurable). Bounds a
/// shutdown.
pub const DRAIN_TIMEOUT_S_DEFAULT: u64 = 10;
/// Bytes of headers and query kept per connection for its offloaded authorizations: 8 KiB; the
/// rest is not forwarded. Stops a connection from pinning a large request head.
pub const AUTH_FORWARD_BYTES_MAX: usize = 8 * 1024;

// ---- The Pusher protocol ----

/// Length of a presence `user_id` / sign-in `id`: 128 bytes, the protocol's bound
/// (`docs/protocol-notes.md`, Channel auth and sign-in). Longer ids are refused.
pub const USER_ID_BYTES_MAX: usize = 128;
/// Watchlist entries kept per signed-in user: 100; more → 4302 and the first ones are kept.
/// Bounds the owner's watch tables per user.
pub const WATCHLIST_IDS_MAX: usize = 100;
/// Size of a sign-in `user_data` string: 16 KiB; bigger: the sign-in is refused (4009). Stops
/// huge user objects held per connection.
pub const USER_DATA_BYTES_MAX: usize = 16 * 1024;
/// Deepest array/object nesting accepted in any client JSON (envelope included): 64; deeper: the
/// message is refused. Pusher envelopes are 2–3 levels deep; the bound keeps the recursive DOM
/// build, encode and drop far from the end of any stack.
pub const CLIENT_JSON_DEPTH_MAX: usize = 64;
/// Most seconds a REST request's `auth_timestamp` may be away from the server's clock, either
/// way: 600; further: 401. Bounds how long a captured signed request can be replayed.
pub const REST_TIMESTAMP_TOLERANCE_S: u64 = 600;

// ---- Per-app defaults (an app's own settings override them) ----

/// `app_activity_timeout`: 120 s of silence before the server pings a client (pusher-js accepts
/// any value > 0; `docs/protocol-notes.md`, Connection). Bounds how long a dead peer goes
/// unnoticed, with [`PONG_GRACE_S`].
pub const APP_ACTIVITY_TIMEOUT_S_DEFAULT: u32 = 120;
/// `app_max_presence_users`: 100 (kept from the seed).
pub const APP_PRESENCE_USERS_MAX_DEFAULT: u32 = 100;
/// `app_authorization_timeout_seconds`: 5 s for a connection that must authorize to sign in or
/// hold a private subscription, else close 4009. Stops anonymous sockets on locked-down apps.
pub const APP_AUTHORIZATION_TIMEOUT_S_DEFAULT: u32 = 5;
/// `app_max_presence_members_per_channel`: 100. Bounds member lists and the snapshot each join
/// sends.
pub const APP_PRESENCE_MEMBERS_PER_CHANNEL_MAX_DEFAULT: u32 = 100;
/// `app_max_presence_member_size_in_kb`: 10 KiB of `user_info` per member. Bounds the member
/// lists' memory.
pub const APP_PRESENCE_MEMBER_KB_MAX_DEFAULT: u32 = 10;
/// `app_max_channel_name_length`: 200 bytes. Bounds registry keys and link names.
pub const APP_CHANNEL_NAME_LENGTH_MAX_DEFAULT: u32 = 200;
/// `app_max_event_channels_at_once`: 10 channels per REST publish. Bounds one request's fan-out.
pub const APP_EVENT_CHANNELS_MAX_DEFAULT: u32 = 10;
/// `app_max_event_name_length`: 200 bytes.
pub const APP_EVENT_NAME_LENGTH_MAX_DEFAULT: u32 = 200;
/// `app_max_event_payload_in_kb`: 10 KiB of `data` per event. Bounds what one publish makes
/// every subscriber receive.
pub const APP_EVENT_PAYLOAD_KB_MAX_DEFAULT: u32 = 10;
/// `app_max_event_batch_size`: 10 events per `/batch_events`.
pub const APP_EVENT_BATCH_SIZE_MAX_DEFAULT: u32 = 10;

// ---- Shards ----

/// Most shards one engine may run: 64, as shard-interest sets are a `u64` bitmask. The engine's
/// `--shards` option and the bridge's link table are both bounded by it.
pub const SHARD_COUNT_MAX: u16 = 64;
/// Messages in flight on one inter-shard ring: 4 096; a full ring makes the sender wait
/// (backpressure), so a slow shard slows its peers instead of growing their memory.
pub const SHARD_RING_CAPACITY: usize = 4_096;
/// Cross-shard questions (REST channel queries, metrics) one shard may have in flight: 4 096;
/// more → 503. Bounds the pending table.
pub const PENDING_QUERIES_MAX: usize = 4_096;
/// Seconds a cache channel remembers its last event: 30 minutes, as Pusher's cache channels do
/// (`docs/behaviour-notes.md`, "REST API"). Bounds how stale a cached event can be; the bridge
/// uses it (× 1 000) as the Redis copy's lifetime.
pub const CACHE_TTL_S: u64 = 30 * 60;
/// Bytes of cached last events (channel names and frames) one shard keeps: 256 MiB; past it a
/// cache channel's new event is not kept (a later subscriber gets `cache_miss`; counted). Stops
/// a publisher that uses many cache channels from taking the node's memory.
pub const CACHE_BYTES_PER_SHARD_MAX: usize = 256 * 1024 * 1024;
/// Channels one shard holds for its own subscribers: 1 000 000 (each costs a few hundred bytes
/// and its subscriber list); a subscribe that would add one more is refused with
/// `subscription_error` 4100. Stops many connections with many channels each from taking the
/// node's memory (per connection the bound is `SUBSCRIPTIONS_PER_CONNECTION_MAX`).
pub const CHANNELS_PER_SHARD_MAX: usize = 1_000_000;
/// Presence members of all the presence channels one shard owns: 1 000 000; past it a new
/// member is refused like one over the channel's own limit (`subscription_error` 4100). Stops
/// many channels of many members (each with up to `app_max_presence_member_size_in_kb` of
/// data) from taking the node's memory.
pub const PRESENCE_MEMBERS_PER_SHARD_MAX: usize = 1_000_000;

// ---- The link to the bridge: frames and their fields ----

/// Largest link frame, length prefix included: 2 MiB, a maximal event (1 MiB REST body) plus
/// its names. A larger one is refused on both sides (it would end the link).
pub const LINK_FRAME_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Longest app id, channel name, user id or socket id on the link: 256 bytes (channel names are
/// ≤ 200 bytes). Longer: the frame is refused.
pub const LINK_NAME_BYTES_MAX: usize = 256;
/// Most apps in one connection counts message: 65 536.
pub const LINK_APPS_MAX: usize = 65_536;
/// Most channels in one channels answer, and names in one channels query: 100 000.
pub const LINK_CHANNELS_MAX: usize = 100_000;
/// Most members in one snapshot or resync message: 100 000 (a presence channel's member limit
/// is far below; the frame bound applies too).
pub const LINK_MEMBERS_MAX: usize = 100_000;
/// Most headers forwarded with one authorization request: 64; the engine's configuration
/// refuses more `app_channel_authorization_headers`.
pub const AUTH_HEADERS_MAX: usize = 64;

// ---- The link to the bridge: queues and waits ----

/// Messages waiting for the link writer before local publishes are dropped: 65 536 (channel
/// announcements are always queued: they are bounded by the registry). Stops a stalled bridge
/// from growing a shard's memory.
pub const LINK_QUEUE_MAX: usize = 65_536;
/// Longest a first subscriber waits for the bridge's `Subscribed`: 2 000 ms, then it goes on
/// without it (a bridge that lost the answer, or a Redis that does not answer, must not hang
/// subscribes).
pub const LINK_ACK_TIMEOUT_MS: u64 = 2_000;
/// Webhook events kept while the bridge is away: 65 536; past it new ones are dropped
/// (counted).
pub const HOOKS_WAITING_MAX: usize = 65_536;
/// Channels whose changed subscription count waits for the next tick: 65 536; past it a change
/// is reported at once (not coalesced, but never lost).
pub const COUNTS_DIRTY_MAX: usize = 65_536;
/// Authorizations in flight per shard: 16 384; beyond it a subscribe without `auth` is refused
/// as before (401). Bounds the table against a flood of subscribes to a slow endpoint.
pub const PENDING_AUTHS_MAX: usize = 16_384;
/// Authorizations in flight per connection: 32; beyond it a subscribe without `auth` is
/// answered at once with `subscription_error` status 429. Without it one connection (up to
/// `SUBSCRIPTIONS_PER_CONNECTION_MAX` subscribes) could take a large share of the shard's
/// table and the endpoint's capacity, and a few could starve every other user.
pub const AUTHS_PER_CONNECTION_MAX: usize = 32;
/// Longest Socket.IO namespace accepted (the `/` included): 128 bytes; longer: the packet is
/// refused with CONNECT_ERROR. Namespaces name apps, whose ids are short; the bound keeps each
/// one a small allocation whatever a client sends.
pub const SOCKETIO_NAMESPACE_BYTES_MAX: usize = 128;
/// Socket.IO namespaces one connection may join: 16; beyond it CONNECT gets CONNECT_ERROR
/// "Too many namespaces". Without it one socket could join every app's namespace again and
/// again and hold one session state for each.
pub const SOCKETIO_NAMESPACES_PER_CONNECTION_MAX: usize = 16;
/// Socket.IO protocol errors (unknown or binary packets, events of namespaces never joined,
/// refused events) one connection may cause: 64; then it is closed (1008). A client that only sends garbage
/// gets answers, but not for ever.
pub const SOCKETIO_ERRORS_PER_CONNECTION_MAX: u32 = 64;
/// Default Engine.IO `pingInterval`: 25 000 ms (Socket.IO's default), the time between two
/// server pings (`--socketio-ping-interval`).
pub const SOCKETIO_PING_INTERVAL_MS_DEFAULT: u32 = 25_000;
/// Default Engine.IO `pingTimeout`: 20 000 ms (Socket.IO's default), how long a ping may go
/// unanswered before the connection is closed (`--socketio-ping-timeout`).
pub const SOCKETIO_PING_TIMEOUT_MS_DEFAULT: u32 = 20_000;
/// Default Engine.IO `maxPayload`: 1 000 000 bytes (Socket.IO's default), the largest message
/// a Socket.IO client may send (`--socketio-max-payload`); larger: closed with 1009.
pub const SOCKETIO_MAX_PAYLOAD_BYTES_DEFAULT: usize = 1_000_000;
/// Longest wait for the auth endpoint's answer: 10 000 ms (the bridge gives up after 5 s and
/// says so); then the subscription fails with 504.
pub const AUTH_WAIT_MS_MAX: u64 = 10_000;
/// Members queries (joins and `GET …/users` waiting for the cluster's member list) per shard:
/// 16 384; beyond it a join is answered from the node's own members (degraded, never unbounded).
pub const PENDING_MEMBERS_MAX: usize = 16_384;
/// Longest a join waits for the bridge's member list: 2 000 ms, then it is answered from the
/// node's own members.
pub const MEMBERS_WAIT_MS_MAX: u64 = 2_000;
/// Cache subscriptions waiting for the cluster's last event, per shard: 16 384; beyond it the
/// node's own cache answers (degraded, never unbounded).
pub const PENDING_CACHE_MAX: usize = 16_384;
/// Longest a cache subscription waits for the bridge: 2 000 ms, then the node's own cache
/// answers.
pub const CACHE_WAIT_MS_MAX: u64 = 2_000;
/// Channels questions waiting for the other nodes, per shard: 4 096; beyond it a question is
/// answered with the node's own counts.
pub const PENDING_CHANNELS_MAX: usize = 4_096;
/// Longest a channels question waits for the bridge: 2 000 ms (the bridge itself waits 1 s for
/// the nodes), then it goes on with the node's own counts.
pub const CHANNELS_WAIT_MS_MAX: u64 = 2_000;
/// Default idle limit of a channels JSON connection: 600 s without a message from the client,
/// then it is closed (the original's API Gateway idle timeout).
pub const CHANNELS_JSON_IDLE_TIMEOUT_S_DEFAULT: u64 = 600;
/// Default longest life of a channels JSON connection: 7 200 s (the original's API Gateway
/// limit); a client reconnects, as it did there.
pub const CHANNELS_JSON_MAX_LIFETIME_S_DEFAULT: u64 = 7_200;
/// Messages a channels JSON connection may send that the server does not take (bad JSON,
/// unknown types, binary frames): 64, each answered with an `error`; then it is closed with
/// 1008. Stops a client that only sends garbage from costing an answer forever.
pub const CHANNELS_JSON_ERRORS_PER_CONNECTION_MAX: u32 = 64;
/// Channel-function pipelines in flight per shard (the channels' owner): 4 096; beyond it a
/// publish goes out unchanged and the admin room hears why. Bounds the messages held for the
/// bridge by a flood of publishes to a channel with slow functions.
pub const PENDING_PIPELINES_MAX: usize = 4_096;
/// Of those, one app's: 1 024. Stops one app's flood from taking every slot of the shard, so
/// other apps' messages still get their functions run.
pub const PENDING_PIPELINES_PER_APP_MAX: usize = 1_024;
/// Bytes of the messages those pipelines hold, per shard: 16 MiB; beyond it as above.
pub const PENDING_PIPELINE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Longest a message waits for its pipeline: 30 000 ms (the bridge gives up on one function
/// after `FUNCTION_CALL_TIMEOUT_MS` and says so); then the message goes out unchanged.
pub const PIPELINE_WAIT_MS_MAX: u64 = 30_000;

// ---- Channel functions ----

/// Functions in one association's pipeline: 8. Each one is an HTTP call the message waits for.
pub const FUNCTIONS_PER_PIPELINE_MAX: usize = 8;
/// Associations (`{channelName, functionNames}`) of one app: 256; each publish to the app may
/// try every pattern, so the list bounds that work.
pub const ASSOCIATIONS_PER_APP_MAX: usize = 256;
/// Associations of all apps in one document: 4 096; bounds what `PUT /associations` can make
/// every node hold.
pub const ASSOCIATIONS_TOTAL_MAX: usize = 4_096;
/// Bytes of one `channelName` pattern: 1 024.
pub const ASSOCIATION_PATTERN_BYTES_MAX: usize = 1_024;
/// Compiled size of one pattern: 256 KiB (`regex`'s own size limit). Stops a pattern that
/// compiles into an automaton of megabytes; matching is linear time whatever the pattern.
pub const ASSOCIATION_PATTERN_COMPILED_BYTES_MAX: usize = 256 * 1024;
/// Configured functions (`--channel-functions`): 256.
pub const FUNCTIONS_CONFIGURED_MAX: usize = 256;
/// One function call, connect to last byte: 2 000 ms; then the pipeline fails and the message
/// goes out unchanged. Shared with the bridge, which applies it.
pub const FUNCTION_CALL_TIMEOUT_MS: u64 = 2_000;

// ---- WebSocket-over-HTTP (SLIP) ----

/// Backend calls (open, text and close events) a shard waits for: 16 384. Past it an upgrade is
/// refused with 503 and a text message waits, unread, until a call is answered. Bounds what a
/// flood of connections or messages to a slow backend makes a shard hold.
pub const PENDING_SLIP_CALLS_MAX: usize = 16_384;
/// Of those, one app's: 4 096. Stops one app's slow backend from taking every slot of the
/// shard, so other apps' sockets still reach theirs.
pub const PENDING_SLIP_CALLS_PER_APP_MAX: usize = 4_096;
/// Of those, one connection's: 16. Its further messages stay unread in the socket (and the
/// kernel's window) until an answer comes: a client that sends faster than the backend
/// answers is slowed down, not buffered.
pub const SLIP_CALLS_PER_CONNECTION_MAX: usize = 16;
/// Bytes of those calls' request bodies on a shard: 64 MiB (a text event carries a message
/// of up to the engine's message size, JSON-escaped, and the connection's metadata); past it
/// as above. Without it 16 384 calls of large messages could hold a gigabyte.
pub const PENDING_SLIP_CALL_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Longest a shard waits for a backend call's answer: 30 000 ms (the bridge answers a call
/// within `SLIP_CALL_TIMEOUT_MS` of starting it, and gives up on one queued behind its
/// connection's earlier calls at `SLIP_CALL_DEADLINE_MS`); then the call counts as failed.
pub const SLIP_CALL_WAIT_MS_MAX: u64 = 30_000;
/// One backend call, connect retries included: 5 000 ms. An open event's upgrade waits for it,
/// so it is well under the handshake timeout. Shared with the bridge, which applies it.
pub const SLIP_CALL_TIMEOUT_MS: u64 = 5_000;
/// From a call's arrival at the bridge to its answer, queueing behind the connection's earlier
/// calls included: 25 000 ms, under the shard's own wait so its answer is never lost.
pub const SLIP_CALL_DEADLINE_MS: u64 = 25_000;
/// Bytes of a connection's metadata (`SET_METADATA`, or the open event's headers): 16 KiB;
/// a larger one is refused (counted) and the old one kept. It rides on every event request.
pub const SLIP_METADATA_BYTES_MAX: usize = 16 * 1024;
/// Commands in one backend answer or control request: 1 000; a longer list is invalid. Bounds
/// the work one request makes a shard do at once.
pub const SLIP_COMMANDS_PER_REQUEST_MAX: usize = 1_000;

// ---- The relay ----

/// Bytes of a relay room's name (`?room=`): 200.
pub const RELAY_ROOM_NAME_BYTES_MAX: usize = 200;
/// Relay rooms an owner shard holds (a room exists while it has a server or a client):
/// 100 000; past it a connect is refused (the connection closed with 1013). Bounds what
/// connections naming ever new rooms make a shard keep.
pub const RELAY_ROOMS_PER_SHARD_MAX: usize = 100_000;
/// Clients of one relay room: 10 000; past it a `connect` is refused as above. Each server
/// broadcast is one frame per client.
pub const RELAY_CLIENTS_PER_ROOM_MAX: usize = 10_000;
/// Bytes (JSON text) of one client's merged data: 16 KiB; a `data` that would make it larger
/// is ignored (counted). The server gets it whole on every change.
pub const RELAY_CLIENT_DATA_BYTES_MAX: usize = 16 * 1024;
/// Bytes of the server's merged data: 64 KiB; as above. Every client gets it whole on every
/// change.
pub const RELAY_SERVER_DATA_BYTES_MAX: usize = 64 * 1024;

// ---- Shared with the bridge ----

/// How long a last leave (`member_removed`, `channel_vacated` webhooks) waits for a rejoin
/// before it is sent: 3 000 ms. Stops a page reload from making a leave/join pair of webhooks.
pub const LEAVE_DELAY_MS: u64 = 3_000;
/// First reconnect delay after a failure: 100 ms; doubles after every failed attempt (the
/// engine's bridge link, the engine's bridge restarts, the bridge's Redis connections).
pub const RECONNECT_DELAY_MS_MIN: u64 = 100;
/// Ceiling of the reconnect delay: 5 000 ms, how stale a recovered peer can go unnoticed. Stops
/// an outage from becoming a reconnect storm.
pub const RECONNECT_DELAY_MS_MAX: u64 = 5_000;

// ---- The engine shell: host checks, configuration bounds, sockets, rings ----

/// glommio refuses to start an executor below this RLIMIT_MEMLOCK.
pub const MEMLOCK_BYTES_MIN: u64 = 512 * 1024;
/// Registered I/O buffer per shard we aim for; the engine does no disk I/O, so little is needed.
pub const IO_MEMORY_BYTES_MAX: usize = 1024 * 1024;
/// glommio's floor for its buffer slab.
pub const IO_MEMORY_BYTES_MIN: usize = 64 * 1024;
/// io_uring submission entries per shard. Every cancel glommio submits (two preemption timers
/// per reactor turn, a dropped connection's poll) walks one bucket holding 1/buckets of all
/// in-flight polls, one per open connection. glommio's default of 128 gives 8 buckets: with
/// 10,000 connections each cancel walked ≈ 1,250 entries.
pub const IO_RING_ENTRIES: usize = 4096;
/// Lower bound of `--max-message-size`: RFC 6455 control frames carry 125 bytes, so smaller
/// messages would refuse protocol-legal frames.
pub const WS_MESSAGE_BYTES_MIN: usize = 125;
/// Upper bound of `--max-message-size`: bounds per-connection memory.
pub const WS_MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Lower bound of `--max-outbound-bytes`: one page, so a few normal events always fit.
pub const OUTBOUND_BYTES_MIN: usize = 4096;
/// Upper bound of every timeout option: an hour; longer is a typo (milliseconds as seconds).
pub const TIMEOUT_S_MAX: u64 = 3600;
/// Most webhooks one app may list in `app_webhooks`: every event is POSTed to each matching
/// one, so the list bounds the outbound requests a single event can cause.
pub const APP_WEBHOOKS_MAX: usize = 16;
/// Most extra headers of one webhook: they are sent with every request to it.
pub const WEBHOOK_HEADERS_MAX: usize = 32;
/// Bytes coalesced into one socket write. Large enough for dozens of frames per send.
pub const SOCKET_WRITE_CHUNK_BYTES: usize = 64 * 1024;
/// Socket reads handled in one poll before yielding to other tasks (fairness).
pub const SOCKET_READS_PER_POLL_MAX: usize = 8;
/// How long a starting shard waits for the node's other shards before it accepts (they join
/// within milliseconds; one that does not keeps `/ready` at 503): 10 s.
pub const SHARDS_START_WAIT_MS_MAX: u64 = 10_000;
/// How long, in all, a finished connection waits for the client's FIN after ours (reading and
/// discarding what it still sends). Stops a peer that trickles bytes from holding the socket.
pub const CLOSE_LINGER_MS: u64 = 2_000;
/// Cross-shard messages waiting for a full ring, over all targets, before connection tasks stop
/// reading from their sockets (backpressure instead of an unbounded queue).
pub const SHARD_RING_OVERFLOW_MESSAGES_MAX: usize = 65_536;
/// Failed attempts in a row to reach the bridge before an outage is logged (the bridge may just
/// be starting).
pub const LINK_ATTEMPTS_BEFORE_WARNING: u32 = 10;
/// Bytes the engine reads from the bridge's socket per call.
pub const LINK_READ_CHUNK_BYTES: usize = 64 * 1024;
/// Link reads handled per poll before yielding to the shard's other tasks.
pub const LINK_READS_PER_POLL_MAX: usize = 16;
/// How often a shard's sweep runs (drain progress, accept pause); every fourth run is the
/// once-a-second tick of the core (timeouts, cache expiry, stats).
pub const SWEEP_INTERVAL_MS: u64 = 250;
/// Pause after a failed accept (EMFILE and friends) instead of spinning.
pub const ACCEPT_RETRY_DELAY_MS: u64 = 100;
/// A bridge that ran this long was healthy: its next restart starts from the first delay.
pub const BRIDGE_HEALTHY_RUN_MS: u64 = 30_000;
/// Random names tried for the bridge socket's private directory under one base directory: 8.
/// A name that exists is never used (someone could have prepared it); stops an endless loop.
pub const BRIDGE_SOCKET_DIR_ATTEMPTS: u32 = 8;
/// How long the exiting engine waits for its bridge to remove its socket before it removes the
/// private directory: 1 000 ms. Stops a stuck bridge from holding the engine's exit.
pub const BRIDGE_EXIT_SOCKET_WAIT_MS: u64 = 1_000;

// ---- Relations between the bounds ----

// Shard-interest sets are one `u64` bit per shard.
const _: () = assert!(SHARD_COUNT_MAX as u32 == u64::BITS);
// A connection's queue holds at least one whole message of the default size.
const _: () = assert!(WS_MESSAGE_BYTES_DEFAULT <= OUTBOUND_BYTES_DEFAULT);
// A server close's wait for the client's answer ends within a default drain.
const _: () = assert!(CLOSE_WAIT_MS < DRAIN_TIMEOUT_S_DEFAULT * 1_000);
// What an authorization forwards comes out of the upgrade request's head and headers.
const _: () = assert!(AUTH_FORWARD_BYTES_MAX <= HTTP_HEAD_BYTES_MAX);
const _: () = assert!(AUTH_HEADERS_MAX <= HTTP_HEADERS_MAX);
// Whatever the engine accepts fits the link: a REST body or a default-size client message in
// one frame, user ids and default-length channel names as names, a user object as a field.
const _: () = assert!(HTTP_BODY_BYTES_MAX < LINK_FRAME_BYTES_MAX);
const _: () = assert!(WS_MESSAGE_BYTES_DEFAULT < LINK_FRAME_BYTES_MAX);
const _: () = assert!(USER_ID_BYTES_MAX <= LINK_NAME_BYTES_MAX);
const _: () = assert!(APP_CHANNEL_NAME_LENGTH_MAX_DEFAULT as usize <= LINK_NAME_BYTES_MAX);
const _: () = assert!(USER_DATA_BYTES_MAX < LINK_FRAME_BYTES_MAX);
// The link's length fields: names have a `u16` length, frames a `u32` one, header counts a
// `u16`, other counts a `u32`.
const _: () = assert!(LINK_NAME_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(LINK_FRAME_BYTES_MAX as u64 <= u32::MAX as u64);
const _: () = assert!(AUTH_HEADERS_MAX <= u16::MAX as usize);
const _: () = assert!(LINK_APPS_MAX as u64 <= u32::MAX as u64);
const _: () = assert!(LINK_CHANNELS_MAX as u64 <= u32::MAX as u64);
const _: () = assert!(LINK_MEMBERS_MAX as u64 <= u32::MAX as u64);
// A full table of requests for the bridge fits in the link's queue, and so do the webhook
// events kept while the link was down (all of them are queued at once when it is back).
const _: () = assert!(PENDING_AUTHS_MAX <= LINK_QUEUE_MAX);
const _: () = assert!(AUTHS_PER_CONNECTION_MAX <= PENDING_AUTHS_MAX);
const _: () = assert!(AUTHS_PER_CONNECTION_MAX <= SUBSCRIPTIONS_PER_CONNECTION_MAX);
const _: () = assert!(PENDING_MEMBERS_MAX <= LINK_QUEUE_MAX);
const _: () = assert!(PENDING_CACHE_MAX <= LINK_QUEUE_MAX);
const _: () = assert!(PENDING_CHANNELS_MAX <= LINK_QUEUE_MAX);
const _: () = assert!(PENDING_PIPELINES_MAX <= LINK_QUEUE_MAX);
const _: () = assert!(PENDING_PIPELINES_PER_APP_MAX < PENDING_PIPELINES_MAX);
const _: () = assert!(PENDING_SLIP_CALLS_MAX <= LINK_QUEUE_MAX);
// A text event of the largest default message, every byte escaped (6x), fits many times.
const _: () = assert!(
    (WS_MESSAGE_BYTES_DEFAULT * 6 + SLIP_METADATA_BYTES_MAX) * 16 < PENDING_SLIP_CALL_BYTES_MAX
);
const _: () = assert!(PENDING_SLIP_CALLS_PER_APP_MAX < PENDING_SLIP_CALLS_MAX);
const _: () = assert!(SLIP_CALLS_PER_CONNECTION_MAX < PENDING_SLIP_CALLS_PER_APP_MAX);
// An open event's answer comes before the handshake timeout ends the waiting upgrade, and the
// bridge gives up before the shard does.
const _: () = assert!(SLIP_CALL_TIMEOUT_MS < HANDSHAKE_TIMEOUT_S_DEFAULT * 1_000);
const _: () = assert!(SLIP_CALL_TIMEOUT_MS < SLIP_CALL_DEADLINE_MS);
const _: () = assert!(SLIP_CALL_DEADLINE_MS < SLIP_CALL_WAIT_MS_MAX);
const _: () = assert!(SLIP_METADATA_BYTES_MAX < LINK_FRAME_BYTES_MAX);
const _: () = assert!(RELAY_CLIENT_DATA_BYTES_MAX <= RELAY_SERVER_DATA_BYTES_MAX);
const _: () = assert!(RELAY_ROOM_NAME_BYTES_MAX <= LINK_NAME_BYTES_MAX);
// A pipeline's every call timing out still ends (and is answered by the bridge) before the
// shard gives up on it: the order of a channel's messages holds even then.
const _: () =
    assert!(FUNCTION_CALL_TIMEOUT_MS * FUNCTIONS_PER_PIPELINE_MAX as u64 <= PIPELINE_WAIT_MS_MAX);
// A pipeline's function count goes on the link as a `u8`.
const _: () = assert!(FUNCTIONS_PER_PIPELINE_MAX <= u8::MAX as usize);
const _: () = assert!(ASSOCIATIONS_PER_APP_MAX <= ASSOCIATIONS_TOTAL_MAX);
// An accepted document goes to the other nodes in one link frame.
const _: () = assert!(HTTP_BODY_BYTES_MAX < LINK_FRAME_BYTES_MAX);
const _: () = assert!(HOOKS_WAITING_MAX <= LINK_QUEUE_MAX);
// Every channels question to the other nodes is part of one of the shard's own questions.
const _: () = assert!(PENDING_CHANNELS_MAX <= PENDING_QUERIES_MAX);
// The backoff starts above zero (doubling zero stays zero) and grows up to its ceiling.
const _: () = assert!(0 < RECONNECT_DELAY_MS_MIN);
const _: () = assert!(RECONNECT_DELAY_MS_MIN <= RECONNECT_DELAY_MS_MAX);
// The default message size is one the options accept; the smallest accepted still holds
// every control frame.
const _: () = assert!(WS_MESSAGE_BYTES_MIN <= WS_MESSAGE_BYTES_DEFAULT);
const _: () = assert!(WS_MESSAGE_BYTES_DEFAULT <= WS_MESSAGE_BYTES_MAX);
const _: () = assert!(WS_CONTROL_PAYLOAD_BYTES_MAX <= WS_MESSAGE_BYTES_MIN);
const _: () = assert!(OUTBOUND_BYTES_MIN <= OUTBOUND_BYTES_DEFAULT);
// Input pauses well before a connection's output reaches its cap, so a client that only sends
// is held back, not cut (the cap is for readers too slow for the channels they joined).
const _: () = assert!(INPUT_PAUSE_OUTBOUND_BYTES <= OUTBOUND_BYTES_DEFAULT / 2);
// One coalesced socket write holds no more than the pause: the shell's tail stays small too.
const _: () = assert!(SOCKET_WRITE_CHUNK_BYTES <= INPUT_PAUSE_OUTBOUND_BYTES);
const _: () = assert!(IO_MEMORY_BYTES_MIN <= IO_MEMORY_BYTES_MAX);
// A restart counts as healthy only well after the backoff's longest delay.
const _: () = assert!(RECONNECT_DELAY_MS_MAX < BRIDGE_HEALTHY_RUN_MS);
// The sweep divides the core's one-second tick evenly.
const _: () = assert!(1_000 % SWEEP_INTERVAL_MS == 0);
// A TLS handshake ends well before the HTTP deadline that follows it would (default).
const _: () = assert!(TLS_HANDSHAKE_TIMEOUT_MS < HANDSHAKE_TIMEOUT_S_DEFAULT * 1_000);
// rustls takes one whole coalesced write at once: the shell's plaintext tail stays rare.
const _: () = assert!(SOCKET_WRITE_CHUNK_BYTES <= TLS_BUFFER_BYTES_MAX);
// The Socket.IO heartbeat is checked on the one-second tick: both periods span whole ticks.
const _: () = assert!(SOCKETIO_PING_INTERVAL_MS_DEFAULT >= 1_000);
const _: () = assert!(SOCKETIO_PING_TIMEOUT_MS_DEFAULT >= 1_000);
const _: () = assert!(SOCKETIO_MAX_PAYLOAD_BYTES_DEFAULT <= WS_MESSAGE_BYTES_MAX);
