//! Channel functions (Ekko's Lambdas, here HTTP endpoints): per app, an ordered list of
//! associations `{channelName, functionNames[]}`; a publish to a channel whose name the first
//! matching `channelName` pattern prefixes runs through those functions in order, each getting
//! the message's JSON and answering the next, before it is delivered. The bridge makes the
//! calls; the channel's owner shard holds the message meanwhile, so one channel's messages
//! keep their order (`docs/socketio.md`, "Channel functions").
//!
//! # Layout
//! Imports go one way: `table` ← `associations` ← `update`; `publication` stands alone.
//! - `table`: [`FunctionTable`], the configured functions by name (`--channel-functions`).
//! - `associations`: [`Associations`], every app's patterns and their [`Pipeline`]s.
//! - `update`: `PUT /associations`: the token, its check, [`UpdateError`].
//! - `publication`: [`Publication`], a message held for its pipeline in no dialect's framing.

mod associations;
mod publication;
mod table;
mod update;

use std::sync::Arc;

pub use associations::{Associations, Pipeline};
pub use publication::{checked_result, Publication};
pub use table::FunctionTable;
pub use update::{verify_update, UpdateError, UPDATE_PATH};

/// The node's channel-function settings: fixed functions, and the associations a shard starts
/// with (`--associations-file`; `PUT /associations` replaces them while running).
#[derive(Debug, Clone, Default)]
pub struct FunctionSettings {
    /// The configured functions.
    pub table: Arc<FunctionTable>,
    /// The associations at start.
    pub associations: Arc<Associations>,
}
