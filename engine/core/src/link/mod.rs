//! The engine ⇄ bridge link protocol: one Unix-socket stream per engine shard, carrying
//! length-prefixed binary frames. Sans IO: `encode` appends a frame to a buffer, `decode` takes
//! one complete frame off the front of a buffer (or says more bytes are needed).
//!
//! Wire format of a frame: `u32` little-endian length of what follows, `u8` kind, then the
//! fields in order. Strings are `u16` length + UTF-8 bytes (at most [`NAME_BYTES_MAX`]); the
//! WebSocket frame of an event is `u32` length + bytes. Every field is bounded, a frame is at
//! most [`FRAME_BYTES_MAX`], and anything malformed is an error that ends the link (the peer is
//! a bug or not ours) rather than a panic.
//!
//! A link starts with `Hello` (engine) answered by `Welcome` (bridge); a version mismatch ends
//! it. After that the engine shard announces the channels it has local subscribers for
//! (`Subscribe`, re-sent in full after every reconnect), the bridge confirms each one once the
//! node is subscribed cluster-wide (`Subscribed`), local publishes go up as `Publish`, and other
//! nodes' publishes come down as `Deliver` for the shard's local subscribers only. Once a second
//! the bridge sends its counters (`Stats`) so the engine's `/metrics` covers the bridge too.
//!
//! # Layout
//! Imports go one way: this file only declares the parts and re-exports the public API; no
//! part imports it.
//! - `message.rs`: [`VERSION`], [`LinkMessage`] and the structs its variants carry.
//! - `kind.rs`: the wire codes: every message kind with its code, webhook event kinds.
//! - `error.rs`: [`LinkError`], why a frame could not be encoded or decoded.
//! - `fields.rs`: the field encodings (integers, names, blobs, members, events) and their bounds.
//! - `bodies.rs`: each message's body as a `put_*` / `take_*` pair.
//! - `codec.rs`: frames ([`encode`], [`decode`]) and the dispatch from a message to its body.
//! - `tests.rs`: round trips of every message, partial and corrupt frames, bounds.
//!
//! The bounds of names, frames and counts are in `crate::limits` (`LINK_*`), re-exported here
//! under their protocol names.

mod bodies;
mod codec;
mod error;
mod fields;
mod kind;
mod message;
#[cfg(test)]
mod tests;

pub use crate::limits::{
    AUTH_HEADERS_MAX, LINK_APPS_MAX as APPS_MAX, LINK_CHANNELS_MAX as CHANNELS_MAX,
    LINK_FRAME_BYTES_MAX as FRAME_BYTES_MAX, LINK_MEMBERS_MAX as MEMBERS_MAX,
    LINK_NAME_BYTES_MAX as NAME_BYTES_MAX,
};
pub use codec::{decode, encode};
pub use error::LinkError;
pub use fields::{put_event, take_event};
pub use message::{
    AuthOutcome, AuthRequest, BridgeStats, ChannelCount, ChannelEvent, ChannelFilter, DialectPart,
    FunctionOutcome, FunctionRequest, HookEvent, LinkMessage, Member, PresenceChannel, SlipCall,
    SlipOutcome, SocketIoEvent, UserAction, VERSION,
};
