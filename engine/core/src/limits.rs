//! Every bound the engine enforces that is not an app setting, with its default and the abuse
//! it stops. Config options override the ones marked "configurable".

/// Bytes of an HTTP request head (request line + headers) before 431. Stops header floods.
pub const HTTP_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Bytes of an HTTP request body (REST API). Stops memory exhaustion by one request.
pub const HTTP_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Default WebSocket message size (configurable, `--max-message-size`); over it: close 1009.
pub const WS_MESSAGE_BYTES_DEFAULT: usize = 64 * 1024;
/// Default per-connection outbound queue cap (configurable); over it: close 4100 (slow consumer).
pub const OUTBOUND_BYTES_DEFAULT: usize = 1024 * 1024;
/// Channels one connection may be subscribed to. Stops one socket from bloating the registry.
pub const SUBSCRIPTIONS_PER_CONNECTION_MAX: usize = 1_000;
/// Length of a presence `user_id` / sign-in `id` (specs/pusher.md §5).
pub const USER_ID_BYTES_MAX: usize = 128;
/// Watchlist entries kept per signed-in user; more → 4302 and the first ones are kept.
pub const WATCHLIST_IDS_MAX: usize = 100;
/// Size of a sign-in `user_data` string. Stops huge user objects held per connection.
pub const USER_DATA_BYTES_MAX: usize = 16 * 1024;
/// Default seconds for a client to finish the HTTP upgrade (configurable).
pub const HANDSHAKE_TIMEOUT_S_DEFAULT: u64 = 10;
/// Default seconds to wait for connections to leave on SIGTERM (configurable).
pub const DRAIN_TIMEOUT_S_DEFAULT: u64 = 10;
/// Seconds the server waits for any frame after its `pusher:ping` before closing with 4201.
pub const PONG_GRACE_S: u64 = 30;
/// Messages in flight on one inter-shard ring; a full ring makes the sender wait (backpressure).
pub const SHARD_RING_CAPACITY: usize = 4_096;
/// Most shards one engine may run: shard-interest sets are a `u64` bitmask. The engine's
/// `--shards` option and the bridge's link table are both bounded by it.
pub const SHARD_COUNT_MAX: u16 = 64;
const _: () = assert!(SHARD_COUNT_MAX as u32 == u64::BITS);
