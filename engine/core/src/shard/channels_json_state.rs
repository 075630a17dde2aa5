//! [`ChannelsJsonSession`]: a channels JSON connection's state: the one channel it is in (a
//! new `join` moves it), the sender id of that join, and how many joins it made (the sender
//! ids' counter).

use std::sync::Arc;

/// The channel a connection joined.
#[derive(Debug)]
pub struct Joined {
    /// The channel.
    pub channel: Arc<str>,
    /// The sender id of this join (its publishes' `senderId`).
    pub sender_id: Box<str>,
    /// The channel's interest is confirmed for this shard: `joinSuccess` was sent and
    /// publishes are taken.
    pub active: bool,
}

/// One channels JSON connection.
#[derive(Debug, Default)]
pub struct ChannelsJsonSession {
    /// The channel it is in, if any.
    pub joined: Option<Joined>,
    /// Joins so far (each draws a fresh sender id).
    pub joins: u64,
    /// Messages refused so far (bad JSON, unknown types): past a bound the connection closes.
    pub errors: u32,
}
