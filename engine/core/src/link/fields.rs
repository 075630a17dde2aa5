//! The link's field encodings, each with its bound: integers (little-endian), names (`u16`
//! length + UTF-8, at most [`LINK_NAME_BYTES_MAX`]), blobs (`u32` length + bytes, at most
//! [`LINK_FRAME_BYTES_MAX`]), and the compound fields several messages share (a presence
//! channel, a member, a member list, a channel event). Every `take_*` checks the bytes left
//! before it reads, so a corrupt frame is an error, never a panic or a huge allocation.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::LinkError;
use super::message::{ChannelEvent, DialectPart, Member, PresenceChannel, SocketIoEvent};
use crate::limits::{LINK_FRAME_BYTES_MAX, LINK_MEMBERS_MAX, LINK_NAME_BYTES_MAX};

// ---- Integers ----

pub(super) fn take_u8(body: &mut Bytes) -> Result<u8, LinkError> {
    if body.remaining() < 1 {
        return Err(LinkError::Truncated);
    }
    Ok(body.get_u8())
}

pub(super) fn take_u16(body: &mut Bytes) -> Result<u16, LinkError> {
    if body.remaining() < 2 {
        return Err(LinkError::Truncated);
    }
    Ok(body.get_u16_le())
}

pub(super) fn take_u32(body: &mut Bytes) -> Result<u32, LinkError> {
    if body.remaining() < 4 {
        return Err(LinkError::Truncated);
    }
    Ok(body.get_u32_le())
}

pub(super) fn take_u64(body: &mut Bytes) -> Result<u64, LinkError> {
    if body.remaining() < 8 {
        return Err(LinkError::Truncated);
    }
    Ok(body.get_u64_le())
}

// ---- Names and blobs ----

pub(super) fn put_name(out: &mut BytesMut, name: &str) -> Result<(), LinkError> {
    if name.len() > LINK_NAME_BYTES_MAX {
        return Err(LinkError::NameTooLong(name.len()));
    }
    out.put_u16_le(name.len() as u16);
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

pub(super) fn take_name(body: &mut Bytes) -> Result<String, LinkError> {
    let len = usize::from(take_u16(body)?);
    if len > LINK_NAME_BYTES_MAX {
        return Err(LinkError::NameTooLong(len));
    }
    if len > body.remaining() {
        return Err(LinkError::Truncated);
    }
    let bytes = body.split_to(len);
    String::from_utf8(bytes.to_vec()).map_err(|_| LinkError::NotUtf8)
}

pub(super) fn put_blob(out: &mut BytesMut, blob: &[u8]) -> Result<(), LinkError> {
    if blob.len() > LINK_FRAME_BYTES_MAX {
        return Err(LinkError::FrameLength(blob.len()));
    }
    out.put_u32_le(blob.len() as u32);
    out.extend_from_slice(blob);
    Ok(())
}

/// A blob; it shares `body`'s memory.
pub(super) fn take_blob(body: &mut Bytes) -> Result<Bytes, LinkError> {
    let len = take_u32(body)? as usize;
    if len > body.remaining() {
        return Err(LinkError::Truncated);
    }
    Ok(body.split_to(len))
}

/// A blob that must be UTF-8 text.
pub(super) fn take_text(body: &mut Bytes) -> Result<String, LinkError> {
    let blob = take_blob(body)?;
    String::from_utf8(blob.to_vec()).map_err(|_| LinkError::NotUtf8)
}

// ---- Presence channels and members ----

pub(super) fn put_channel(out: &mut BytesMut, channel: &PresenceChannel) -> Result<(), LinkError> {
    put_name(out, &channel.app_id)?;
    put_name(out, &channel.channel)
}

pub(super) fn take_channel(body: &mut Bytes) -> Result<PresenceChannel, LinkError> {
    Ok(PresenceChannel {
        app_id: take_name(body)?,
        channel: take_name(body)?,
    })
}

pub(super) fn put_member(out: &mut BytesMut, member: &Member) -> Result<(), LinkError> {
    put_name(out, &member.user_id)?;
    put_blob(out, &member.user_info)
}

pub(super) fn take_member(body: &mut Bytes) -> Result<Member, LinkError> {
    Ok(Member {
        user_id: take_name(body)?,
        user_info: take_blob(body)?,
    })
}

pub(super) fn put_members(out: &mut BytesMut, members: &[Member]) -> Result<(), LinkError> {
    if members.len() > LINK_MEMBERS_MAX {
        return Err(LinkError::TooManyMembers(members.len()));
    }
    out.put_u32_le(members.len() as u32);
    for member in members {
        put_member(out, member)?;
    }
    Ok(())
}

pub(super) fn take_members(body: &mut Bytes) -> Result<Vec<Member>, LinkError> {
    let count = take_u32(body)? as usize;
    if count > LINK_MEMBERS_MAX {
        return Err(LinkError::TooManyMembers(count));
    }
    // Each member takes at least 6 bytes: a count that cannot fit is corrupt, not a reason to
    // reserve memory.
    if count > body.remaining() / 6 {
        return Err(LinkError::Truncated);
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        members.push(take_member(body)?);
    }
    Ok(members)
}

// ---- Channel events (also the bridge's Redis payloads) ----

/// Encodes an event's fields without a kind or length prefix (the bridge reuses this for its
/// Redis payloads).
pub fn put_event(out: &mut BytesMut, event: &ChannelEvent) -> Result<(), LinkError> {
    put_name(out, &event.app_id)?;
    put_name(out, &event.channel)?;
    put_name(out, &event.except_socket_id)?;
    put_blob(out, &event.frame)?;
    match &event.part {
        None => {}
        Some(DialectPart::SocketIo(socketio)) => {
            out.put_u8(SOCKETIO_EVENT_TAG);
            put_name(out, &socketio.event)?;
            put_blob(out, &socketio.args_json)?;
        }
        Some(DialectPart::ChannelsJson(sender)) => {
            out.put_u8(CHANNELS_JSON_SENDER_TAG);
            put_name(out, sender)?;
        }
        Some(DialectPart::SlipText) => out.put_u8(SLIP_TEXT_TAG),
    }
    Ok(())
}

/// The byte before an event's Socket.IO part.
const SOCKETIO_EVENT_TAG: u8 = 1;
/// The byte before an event's channels JSON sender id.
const CHANNELS_JSON_SENDER_TAG: u8 = 2;
/// The byte that marks a WebSocket-over-HTTP `PUBLISH_TEXT` (nothing follows it).
const SLIP_TEXT_TAG: u8 = 3;

/// Decodes an event's fields (the inverse of [`put_event`]); the frame shares `body`'s memory.
/// An event ends after its frame or, when the next byte is a dialect part's tag, after that
/// part; anything else after the frame is left for the caller (whose own framing says whether
/// it is allowed).
pub fn take_event(body: &mut Bytes) -> Result<ChannelEvent, LinkError> {
    let app_id = take_name(body)?;
    let channel = take_name(body)?;
    let except_socket_id = take_name(body)?;
    let frame = take_blob(body)?;
    let part = match body.first() {
        Some(&SOCKETIO_EVENT_TAG) => {
            body.advance(1);
            Some(DialectPart::SocketIo(SocketIoEvent {
                event: take_name(body)?,
                args_json: take_blob(body)?,
            }))
        }
        Some(&CHANNELS_JSON_SENDER_TAG) => {
            body.advance(1);
            Some(DialectPart::ChannelsJson(take_name(body)?))
        }
        Some(&SLIP_TEXT_TAG) => {
            body.advance(1);
            Some(DialectPart::SlipText)
        }
        _ => None,
    };
    Ok(ChannelEvent {
        app_id,
        channel,
        except_socket_id,
        frame,
        part,
    })
}
