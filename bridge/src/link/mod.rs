//! The engine's side of the bridge, on top of every other part: the link server that accepts the
//! shards' Unix-socket links and dispatches what they say, and the hub that routes Redis
//! messages back to the shards that want them.
//!
//! - [`server`]: accepts links, checks Hello, runs each link's reader and writer.
//! - [`hub`]: the routing state (which shard wants which channel), without IO.
//! - [`hub_task`]: the task that owns the hub and carries out what it decides.
//! - [`stats_task`]: once a second, the bridge's counters to every linked shard.

pub mod hub;
pub mod hub_task;
pub mod server;
pub mod stats_task;
