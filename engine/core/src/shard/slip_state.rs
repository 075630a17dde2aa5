//! [`SlipSession`]: a WebSocket-over-HTTP connection's state: its connection id (what the
//! backend calls it), its metadata (sent along with every event), the channels the backend put
//! it in, and the calls to the backend it has in flight (bounded; its input waits past that).

use std::sync::Arc;

/// One channel the backend subscribed the connection to.
#[derive(Debug)]
pub struct SlipChannel {
    /// The channel.
    pub channel: Arc<str>,
    /// The channel's interest is confirmed for this shard: the connection receives it.
    pub active: bool,
}

/// One WebSocket-over-HTTP connection.
#[derive(Debug)]
pub struct SlipSession {
    /// The id the backend knows the connection by (its socket id).
    pub connection_id: Box<str>,
    /// The metadata JSON sent with each event (`SET_METADATA`; at first the open event's).
    pub metadata_json: Option<Box<str>>,
    /// The backend accepted it (the 101 went out); a close then tells the backend.
    pub accepted: bool,
    /// Its open and text events waiting for the backend (its input waits past the bound).
    pub calls_in_flight: usize,
    /// The channels it is in.
    pub channels: Vec<SlipChannel>,
}

impl SlipSession {
    /// A connection waiting for its open event's answer.
    pub fn new(connection_id: String, metadata_json: Option<String>) -> Self {
        SlipSession {
            connection_id: connection_id.into_boxed_str(),
            metadata_json: metadata_json.map(String::into_boxed_str),
            accepted: false,
            calls_in_flight: 0,
            channels: Vec::new(),
        }
    }

    /// Index of a channel in `channels`.
    pub fn channel_index(&self, channel: &str) -> Option<usize> {
        self.channels.iter().position(|c| &*c.channel == channel)
    }
}
