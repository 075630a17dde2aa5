//! What the bridge puts on Redis: the channel name an event is published on, and the message
//! payload — the publishing node's id (`u64` little-endian) followed by the event as
//! `link::put_event` encodes it. The node id lets a node skip its own messages, which its engine
//! has already delivered locally.

use crate::limits::ENVELOPE_FIELD_LENGTH_DIGITS_MAX;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use ringcast_core::link::{self, ChannelEvent, LinkError, LinkMessage, PresenceChannel};

/// First bytes of a member event; as a node id it is reserved (see [`is_reserved_node_id`]).
pub const MEMBER_EVENT_MAGIC: &[u8; 8] = b"\xffrcmbr\x00\x01";

/// Bytes of the node id at the front of a payload.
const NODE_ID_BYTES: usize = 8;

/// Why a Redis payload is not an envelope of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Shorter than a node id.
    NoNodeId,
    /// The event after the node id does not decode.
    Event(LinkError),
    /// Bytes left after the event.
    TrailingBytes,
    /// A member event that does not parse.
    MemberEvent,
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::NoNodeId => write!(f, "payload shorter than a node id"),
            EnvelopeError::Event(err) => write!(f, "event in payload: {err}"),
            EnvelopeError::TrailingBytes => write!(f, "trailing bytes after the event"),
            EnvelopeError::MemberEvent => write!(f, "malformed member event"),
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

/// A node id whose envelopes would look like member events or user commands.
pub fn is_reserved_node_id(node_id: u64) -> bool {
    let bytes = node_id.to_le_bytes();
    bytes == *MEMBER_EVENT_MAGIC || bytes == *USER_COMMAND_MAGIC || bytes == *QUERY_MAGIC
}

/// First bytes of every payload on the query channel (as a node id it is never a real
/// envelope: see [`is_reserved_node_id`]).
pub const QUERY_MAGIC: &[u8; 8] = b"\xffrcqry\x00\x01";

/// First bytes of a user command (server-to-user event or terminate for every node), of an
/// associations document (channel functions, for every node) or of WebSocket-over-HTTP commands
/// (for the other nodes' connections); as a node id it is reserved.
pub const USER_COMMAND_MAGIC: &[u8; 8] = b"\xffrcusr\x00\x01";

/// The payload carrying a `UserCommand`, an `Associations` document or `SlipCommands` from node
/// `node_id`:
/// magic, node id, the link frame. Both go on the user command channel, which every node hears.
pub fn encode_user_command(node_id: u64, message: &LinkMessage) -> Result<Bytes, LinkError> {
    let mut payload = BytesMut::with_capacity(64);
    payload.extend_from_slice(USER_COMMAND_MAGIC);
    payload.put_u64_le(node_id);
    link::encode(message, &mut payload)?;
    Ok(payload.freeze())
}

/// The sending node and the `UserCommand`, `Associations` or `SlipCommands` of a payload;
/// `None` when it is none of them.
pub fn decode_user_command(payload: &[u8]) -> Option<(u64, LinkMessage)> {
    let rest = payload.strip_prefix(USER_COMMAND_MAGIC)?;
    let (node, frame) = rest.split_at_checked(NODE_ID_BYTES)?;
    let node_id = u64::from_le_bytes(node.try_into().ok()?);
    let mut frame = BytesMut::from(frame);
    match link::decode(&mut frame) {
        Ok(Some(
            message @ (LinkMessage::UserCommand { .. }
            | LinkMessage::Associations(_)
            | LinkMessage::SlipCommands { .. }),
        )) if frame.is_empty() => Some((node_id, message)),
        _ => None,
    }
}

/// Appends one length-prefixed text field (`len:bytes`), as the Lua scripts' `field()` does.
pub fn put_field(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(value.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(value);
}

/// The part of every member event of a channel before the kind byte; the scripts append the
/// rest.
pub fn member_event_head(app_id: &str, channel: &str) -> Vec<u8> {
    let mut head = Vec::with_capacity(MEMBER_EVENT_MAGIC.len() + app_id.len() + channel.len() + 8);
    head.extend_from_slice(MEMBER_EVENT_MAGIC);
    put_field(&mut head, app_id.as_bytes());
    put_field(&mut head, channel.as_bytes());
    head
}

/// A complete member event payload, as the scripts publish it (used by tests, and the
/// reference of the format).
#[cfg(test)]
pub fn encode_member_event(message: &LinkMessage) -> Option<Vec<u8>> {
    let out = match message {
        LinkMessage::MemberAdded(channel, member) => {
            let mut out = member_event_head(&channel.app_id, &channel.channel);
            out.push(b'A');
            put_field(&mut out, member.user_id.as_bytes());
            put_field(&mut out, &member.user_info);
            out
        }
        LinkMessage::MemberRemoved(channel, user_id) => {
            let mut out = member_event_head(&channel.app_id, &channel.channel);
            out.push(b'R');
            put_field(&mut out, user_id.as_bytes());
            out
        }
        _ => return None,
    };
    Some(out)
}

/// The payload is a member event (decode it with [`decode_member_event`]).
pub fn is_member_event(payload: &[u8]) -> bool {
    payload.starts_with(MEMBER_EVENT_MAGIC)
}

/// Takes one `len:bytes` field of at most `max` bytes off the front of `payload`.
fn take_field(payload: &mut Bytes, max: usize) -> Result<Bytes, EnvelopeError> {
    let colon = payload
        .iter()
        .take(ENVELOPE_FIELD_LENGTH_DIGITS_MAX + 1)
        .position(|&byte| byte == b':')
        .ok_or(EnvelopeError::MemberEvent)?;
    let digits = &payload[..colon];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(EnvelopeError::MemberEvent);
    }
    let length: usize = std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(EnvelopeError::MemberEvent)?;
    if length > max || payload.len() < colon + 1 + length {
        return Err(EnvelopeError::MemberEvent);
    }
    payload.advance(colon + 1);
    Ok(payload.split_to(length))
}

fn take_name(payload: &mut Bytes) -> Result<String, EnvelopeError> {
    let field = take_field(payload, link::NAME_BYTES_MAX)?;
    String::from_utf8(field.to_vec()).map_err(|_| EnvelopeError::MemberEvent)
}

/// The `MemberAdded` / `MemberRemoved` a member event payload stands for.
pub fn decode_member_event(mut payload: Bytes) -> Result<LinkMessage, EnvelopeError> {
    if !is_member_event(&payload) {
        return Err(EnvelopeError::MemberEvent);
    }
    payload.advance(MEMBER_EVENT_MAGIC.len());
    let channel = PresenceChannel {
        app_id: take_name(&mut payload)?,
        channel: take_name(&mut payload)?,
    };
    if !payload.has_remaining() {
        return Err(EnvelopeError::MemberEvent);
    }
    let message = match payload.get_u8() {
        b'A' => {
            let user_id = take_name(&mut payload)?;
            let user_info = take_field(&mut payload, link::FRAME_BYTES_MAX)?;
            LinkMessage::MemberAdded(channel, link::Member { user_id, user_info })
        }
        b'R' => LinkMessage::MemberRemoved(channel, take_name(&mut payload)?),
        _ => return Err(EnvelopeError::MemberEvent),
    };
    if payload.has_remaining() {
        return Err(EnvelopeError::TrailingBytes);
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::layout::redis_channel_name;

    #[test]
    fn user_commands_round_trip_and_reserve_their_magic() {
        let message = LinkMessage::UserCommand {
            app_id: "a".into(),
            user_id: "u".into(),
            action: link::UserAction::Terminate,
        };
        let payload = encode_user_command(42, &message).expect("encodes");
        assert_eq!(decode_user_command(&payload), Some((42, message)));
        assert_eq!(decode_user_command(&payload[..payload.len() - 1]), None);
        assert_eq!(decode_user_command(b"\xffrcusr\x00\x01short"), None);
        assert!(is_reserved_node_id(u64::from_le_bytes(*USER_COMMAND_MAGIC)));
        let not_a_command = encode_envelope(42, &event()).expect("encodes");
        assert_eq!(decode_user_command(&not_a_command), None);
    }

    #[test]
    fn associations_round_trip_as_user_commands() {
        let document = Bytes::from_static(
            br#"{"associations":[{"channelName":"chat-.*","functionNames":["upper"]}]}"#,
        );
        let message = LinkMessage::Associations(document);
        let payload = encode_user_command(7, &message).expect("encodes");
        assert!(payload.starts_with(USER_COMMAND_MAGIC));
        assert_eq!(decode_user_command(&payload), Some((7, message)));
        for cut in 0..payload.len() {
            assert_eq!(decode_user_command(&payload[..cut]), None, "cut at {cut}");
        }
        // Other link messages are not carried on the user command channel.
        let other = encode_user_command(7, &LinkMessage::ResyncDone).expect("encodes");
        assert_eq!(decode_user_command(&other), None);
    }

    fn event() -> ChannelEvent {
        ChannelEvent {
            app_id: "app-1".into(),
            channel: "private-room".into(),
            except_socket_id: "1.2".into(),
            frame: Bytes::from_static(b"\x81\x05hello"),
            part: None,
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

    #[test]
    fn member_events_round_trip_and_reject_garbage() {
        let channel = PresenceChannel {
            app_id: "app-1".into(),
            channel: "presence-room".into(),
        };
        let added = LinkMessage::MemberAdded(
            channel.clone(),
            link::Member {
                user_id: "u1".into(),
                user_info: Bytes::from_static(b"{\"name\":\"x:y\"}"),
            },
        );
        let removed = LinkMessage::MemberRemoved(channel, "u1".into());
        for message in [added, removed] {
            let payload = Bytes::from(encode_member_event(&message).expect("member event"));
            assert!(is_member_event(&payload));
            assert_eq!(decode_member_event(payload.clone()), Ok(message.clone()));
            for cut in 0..payload.len() {
                assert!(
                    decode_member_event(payload.slice(..cut)).is_err(),
                    "cut {cut}"
                );
            }
        }
        assert!(decode_member_event(Bytes::from_static(b"\xffrcmbr\x00\x01999999999:")).is_err());
        assert!(is_reserved_node_id(u64::from_le_bytes(*MEMBER_EVENT_MAGIC)));
        assert!(!is_reserved_node_id(7));
    }
}
