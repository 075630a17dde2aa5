//! Calls the bridge makes to the apps' own HTTP endpoints, so that no engine shard waits on
//! one. Above `redis/` only in name: nothing here touches Redis.
//!
//! - [`http`]: the shared HTTP client, its timeouts and per-app concurrency permits.
//! - [`auth`]: auth offload (a private or presence subscription authorized by the app's
//!   endpoint on the engine's behalf).
//! - [`functions`]: channel functions (a published message run through the HTTP functions its
//!   channel is associated with, in order, before the engine publishes the result).
//! - [`slip`]: WebSocket-over-HTTP (each socket event of a connection POSTed to the app's
//!   backend, one at a time, and its answer handed back to the engine).
//! - [`ordered`]: one FIFO per key with bounds in all, per app, in bytes and per key: the order
//!   of a channel's pipelines and of a connection's events.

pub mod auth;
pub mod functions;
pub mod http;
pub mod ordered;
pub mod slip;
