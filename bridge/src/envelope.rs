//! What the bridge puts on Redis: the channel name an event is published on, and the message
//! payload — the publishing node's id (`u64` little-endian) followed by the event as
//! `link::put_event` encodes it. The node id lets a node skip its own messages, which its engine
//! has already delivered locally.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ringcast_core::link::{self, ChannelEvent, LinkError};

/// Bytes of the node id at the front of a payload.
const NODE_ID_BYTES: usize = 8;

/// The Redis channel carrying the events of one app's channel.
pub fn redis_channel_name(redis_prefix: &str, app_id: &str, channel: &str) -> String {
    let mut name = String::with_capacity(redis_prefix.len() + app_id.len() + channel.len() + 2);
    name.push_str(redis_prefix);
    name.push('#');
    name.push_str(app_id);
    name.push('#');
    name.push_str(channel);
    name
}

/// Why a Redis payload is not an envelope of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Shorter than a node id.
    NoNodeId,
    /// The event after the node id does not decode.
    Event(LinkError),
    /// Bytes left after the event.
    TrailingBytes,
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::NoNodeId => write!(f, "payload shorter than a node id"),
            EnvelopeError::Event(err) => write!(f, "event in payload: {err}"),
            EnvelopeError::TrailingBytes => write!(f, "trailing bytes after the event"),
        }
    }
}

/// The payload published for `event` by node `node_id`. Fails only for an event over the link's
/// bounds, which a decoded link message never is.
pub fn encode_envelope(node_id: u64, event: &ChannelEvent) -> Result<Bytes, LinkError> {
    let names_bytes = event.app_id.len() + event.channel.len() + event.except_socket_id.len();
    let mut payload = BytesMut::with_capacity(NODE_ID_BYTES + 10 + names_bytes + event.frame.len());
    payload.put_u64_le(node_id);
    link::put_event(&mut payload, event)?;
    Ok(payload.freeze())
}

/// The publishing node's id and the event of a payload; the event's frame shares its memory.
pub fn decode_envelope(mut payload: Bytes) -> Result<(u64, ChannelEvent), EnvelopeError> {
    if payload.len() < NODE_ID_BYTES {
        return Err(EnvelopeError::NoNodeId);
    }
    let node_id = payload.get_u64_le();
    let event = link::take_event(&mut payload).map_err(EnvelopeError::Event)?;
    if payload.has_remaining() {
        return Err(EnvelopeError::TrailingBytes);
    }
    Ok((node_id, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> ChannelEvent {
        ChannelEvent {
            app_id: "app-1".into(),
            channel: "private-room".into(),
            except_socket_id: "1.2".into(),
            frame: Bytes::from_static(b"\x81\x05hello"),
        }
    }

    #[test]
    fn round_trips() {
        let payload = encode_envelope(0x0102_0304_0506_0708, &event()).expect("encodes");
        assert_eq!(&payload[..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(
            decode_envelope(payload),
            Ok((0x0102_0304_0506_0708, event()))
        );
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let valid = encode_envelope(7, &event()).expect("encodes");
        assert_eq!(
            decode_envelope(Bytes::from_static(b"1234567")),
            Err(EnvelopeError::NoNodeId)
        );
        assert_eq!(
            decode_envelope(valid.slice(..valid.len() - 1)),
            Err(EnvelopeError::Event(LinkError::Truncated))
        );
        let mut trailing = BytesMut::from(&valid[..]);
        trailing.put_u8(0);
        assert_eq!(
            decode_envelope(trailing.freeze()),
            Err(EnvelopeError::TrailingBytes)
        );
        let mut not_utf8 = BytesMut::new();
        not_utf8.put_u64_le(7);
        not_utf8.put_u16_le(1);
        not_utf8.put_u8(0xff);
        assert_eq!(
            decode_envelope(not_utf8.freeze()),
            Err(EnvelopeError::Event(LinkError::NotUtf8))
        );
        // Every truncation of a valid payload is an error, never a panic.
        for cut in 0..valid.len() {
            assert!(decode_envelope(valid.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn channel_names_join_prefix_app_and_channel() {
        assert_eq!(
            redis_channel_name("ringcast", "app-1", "presence-x"),
            "ringcast#app-1#presence-x"
        );
    }
}
