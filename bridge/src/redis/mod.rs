//! Everything the bridge says to Redis and how: above the leaves, below every part that keeps
//! state in Redis. Nothing here knows about presence, webhooks or links beyond the hub's inbox.
//!
//! - [`url`]: a Redis URL made fit for the log (password hidden).
//! - [`connect`]: which Redis (one server or a cluster's seeds) and opening connections to it
//!   with explicit timeouts.
//! - [`session`]: a task's connection, opened on demand, dropped on failure, with backoff.
//! - [`layout`]: every key and channel name, their hash tags and slots.
//! - [`envelope`]: the payloads on Redis channels and their magic prefixes (events, user
//!   commands, member events, cluster queries).
//! - [`scripts`]: the Lua scripts that change cluster state atomically, and their runner.
//! - [`publish`]: the publisher task (one pipeline per batch, per slot on a cluster).
//! - [`subscribe`]: the subscriber task for one server, and the commands it takes.
//! - [`subscribe_cluster`]: the subscriber task for a Redis Cluster (sharded pub/sub).

pub mod connect;
pub mod envelope;
pub mod layout;
pub mod publish;
pub mod scripts;
pub mod session;
pub mod subscribe;
pub mod subscribe_cluster;
pub mod url;
