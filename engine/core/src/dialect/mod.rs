//! The layer every dialect stands on: which wire protocol a connection speaks ([`Dialect`]),
//! and a published message in no dialect's framing ([`Published`]), encoded at most once per
//! dialect however many subscribers, shards and dialects it reaches.
//!
//! A dialect is chosen by the upgrade's path (`/app/{key}` Pusher, `/socket.io/` Socket.IO,
//! `/channels/{key}` channels JSON, `/slip/{key}` WebSocket-over-HTTP); its stateless pieces
//! live in its own folder (`crate::pusher`, `crate::socketio`, `crate::channels_json`,
//! `crate::slip`) and its session on the shard (`shard/session.rs`, `shard/socketio*.rs`,
//! `shard/channels_json*.rs`, `shard/slip*.rs`). Everything else is shared: the handshake, the
//! frame codec, the outbound bound and slow-consumer rule, the channel registry and fan-out,
//! metrics and drain.
//!
//! # Layout
//! - `kind.rs`: [`Dialect`], the wire protocols and their per-dialect table positions.
//! - `published.rs`: [`Published`], the dialect-neutral message, and its framings.

mod kind;
mod published;

pub use kind::Dialect;
pub use published::{slip_data_json, Content, Published};
