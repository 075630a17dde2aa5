//! The server's own messages as WebSocket frames: a JSON text encoded once, then shared by
//! every connection it goes to.

use bytes::Bytes;

use crate::ws::frame;

/// A JSON message as one WebSocket text frame.
pub fn text_frame(json: &str) -> Bytes {
    frame::encode_text(json.as_bytes())
}
