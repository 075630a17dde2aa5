//! ringcast-core: everything that decides, with no runtime, no clock and no sockets.
//!
//! The glommio shell in `engine/src` feeds bytes, time and cross-shard messages in (`handle_*`)
//! and drains what the core decided with `take_*`: the bytes for a socket and whether it is to
//! be closed (`take_output`), the connections to wake (`take_wakeups`), the messages for other
//! shards (`take_outbox`) and the frames for the bridge (`take_link_output`). Everything here
//! is deterministic and unit-testable.
//!
//! # Layout
//! - [`app`]: an application's settings as the engine enforces them: identity, feature flags
//!   and per-app limits; read-only at run time.
//! - [`backoff`]: the reconnect backoff (as data) of the engine's bridge link and restarts and
//!   of the bridge's Redis connections.
//! - [`channels_json`]: the channels JSON dialect (the Lambda channel server's `join` /
//!   `publish` / `ping`): its messages and sender ids.
//! - [`dialect`]: the layer under every wire protocol: which one a connection speaks, and a
//!   published message in no dialect's framing, encoded once per dialect it reaches.
//! - [`fatal`]: what a panic does to a ringcast process: one line, then exit for a restart.
//! - [`functions`]: channel functions: the configured functions, the apps' associations of
//!   channels to pipelines, `PUT /associations`, and a message on its way through a pipeline.
//! - [`http`]: HTTP/1.1 for the APIs on the WebSocket port: request heads and responses.
//! - [`limits`]: every bound that is not an app setting, with its default and the abuse it stops.
//! - [`link`]: the engine ⇄ bridge link protocol: length-prefixed binary frames, sans IO.
//! - [`origin`]: an app's allow-list of web origins and how an upgrade's `Origin` matches it.
//! - [`pusher`]: the stateless pieces of the Pusher Channels protocol v7: close codes, channel
//!   names, auth signatures, client and server messages, presence users, REST signing and bodies.
//! - [`relay`]: the relay (the PHP connection layer's client / server rooms): its messages.
//! - [`shard`]: one shard's whole state machine (connections, channel registry, owned presence
//!   and cache state, messages to other shards and to the bridge), driven by the shell.
//! - [`slip`]: WebSocket-over-HTTP (SLIP Sockets): the event requests to an app's backend, the
//!   commands of its answers and of control requests, their JWTs.
//! - [`socketio`]: the Socket.IO dialect (Ekko): Engine.IO and Socket.IO packets, join tokens.
//! - [`webhook_config`]: the apps' webhook settings as the JSON document sent to the bridge.
//! - [`ws`]: RFC 6455 WebSocket over byte buffers: handshake, frame codec, UTF-8 validation.

// Every byte here comes from the network: memory safety is the compiler's, never ours (and
// the stateful fuzz target may run without AddressSanitizer for that reason).
#![forbid(unsafe_code)]

pub mod app;
pub mod backoff;
pub mod channels_json;
pub mod dialect;
pub mod fatal;
pub mod functions;
pub mod http;
pub mod limits;
pub mod link;
pub mod origin;
pub mod pusher;
pub mod relay;
pub mod shard;
pub mod slip;
pub mod socketio;
pub mod webhook_config;
pub mod ws;
