//! Calls the bridge makes to the apps' own HTTP endpoints, so that no engine shard waits on
//! one. Above `redis/` only in name: nothing here touches Redis.
//!
//! - [`http`]: the shared HTTP client, its timeouts and per-app concurrency permits.
//! - [`auth`]: auth offload (a private or presence subscription authorized by the app's
//!   endpoint on the engine's behalf).
//! - [`functions`]: channel functions (a published message run through the HTTP functions its
//!   channel is associated with, in order, before the engine publishes the result).

pub mod auth;
pub mod functions;
pub mod http;
