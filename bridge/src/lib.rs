//! The library of `ringcast-bridge`: every part of the bridge process, so that the binary
//! (`main.rs`, which parses, wires and waits) and the fuzz targets (`fuzz/`) reach the same
//! code. See `main.rs` for what the process does.
//!
//! # Layout
//! Imports go one way, from the leaves at the top of this list to the link server at the bottom;
//! no file imports a file that imports it back (`scripts/import_cycles/check.py` checks it).
//!
//! - [`limits`]: every bound of the process, its value and what it stops.
//! - [`counters`]: the shared counters and their snapshot for the engine; drop counting.
//! - [`links`]: how the bridge reaches a shard (link id, writer queue) and the hub's inbox.
//! - [`redis`]: connections, key layout, envelopes, Lua scripts, publisher and subscribers.
//! - [`outbound`]: the HTTP client for the apps' endpoints, auth offload, channel functions.
//! - [`webhooks`]: from events to signed POSTs: router, local or Redis queue, sender.
//! - [`cluster`]: state shared by nodes: presence, liveness, counts, connections, queries.
//! - [`link`]: the link server and the hub that routes Redis messages to shards.
//! - [`args`]: the command line and the checks made before starting.
//! - [`wiring`]: which tasks run and how their queues connect; stopping them.
//!
//! Public are the modules the binary (`args`, `outbound`, `wiring`, with `redis` for the
//! client they pass around) and the fuzz targets (`redis::envelope`) use; the others stay
//! private, so the lints see them as they did when the binary was the crate root. The docs
//! are built with `--document-private-items`, where links into the private modules resolve.

#![allow(rustdoc::private_intra_doc_links)]

// `Args::redis_url` is a `#[command(flatten)]` field documented with `//` (its help is in
// `RedisUrl`); exported, it would be the one item of the module without a doc comment.
#[allow(missing_docs)]
pub mod args;
mod cluster;
mod counters;
mod limits;
mod link;
mod links;
pub mod outbound;
pub mod redis;
mod webhooks;
pub mod wiring;
