//! Frames on the link: [`encode`] appends one (`u32` little-endian length of what follows, the
//! [`Kind`] code, the body), [`decode`] takes one complete frame off the front of a buffer. The
//! dispatch from a message to its body's fields and back is here; the bodies are in `bodies`
//! and `fields`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::bodies::{
    put_app_channel, put_app_channel_u32, put_auth_request, put_auth_response, put_cache_answer,
    put_channel_member, put_channel_members, put_channel_user, put_channels_answer,
    put_channels_query, put_connection_counts, put_function_request, put_function_result,
    put_hello, put_hook, put_members_query, put_members_snapshot, put_slip_answer, put_slip_call,
    put_stats, put_user_command, put_welcome, take_app_channel, take_app_channel_u32,
    take_auth_request, take_auth_response, take_channels_answer, take_channels_query,
    take_connection_counts, take_function_request, take_function_result, take_hello, take_hook,
    take_slip_answer, take_slip_call, take_stats, take_user_command, take_welcome,
};
use super::error::LinkError;
use super::fields::{
    put_blob, put_event, put_name, take_blob, take_channel, take_event, take_member, take_members,
    take_name, take_u32, take_u8,
};
use super::kind::Kind;
use super::message::LinkMessage;
use crate::limits::LINK_FRAME_BYTES_MAX;

/// Bytes of the length prefix.
pub(super) const LENGTH_BYTES: usize = 4;

/// Appends one frame to `out`. Fails (leaving `out` as it was) when a field is over its bound.
pub fn encode(message: &LinkMessage, out: &mut BytesMut) -> Result<(), LinkError> {
    let start = out.len();
    out.put_u32_le(0); // patched below
    let result = encode_body(message, out);
    let body_len = out.len() - start - LENGTH_BYTES;
    match result {
        Ok(()) if body_len + LENGTH_BYTES <= LINK_FRAME_BYTES_MAX => {
            let prefix = (body_len as u32).to_le_bytes();
            out[start..start + LENGTH_BYTES].copy_from_slice(&prefix);
            Ok(())
        }
        Ok(()) => {
            out.truncate(start);
            Err(LinkError::FrameLength(body_len + LENGTH_BYTES))
        }
        Err(err) => {
            out.truncate(start);
            Err(err)
        }
    }
}

/// Takes one complete frame off the front of `buf`. `Ok(None)`: more bytes are needed (nothing
/// is consumed). An error means the stream is corrupt and the link must be closed.
pub fn decode(buf: &mut BytesMut) -> Result<Option<LinkMessage>, LinkError> {
    if buf.len() < LENGTH_BYTES {
        return Ok(None);
    }
    let mut prefix = [0u8; LENGTH_BYTES];
    prefix.copy_from_slice(&buf[..LENGTH_BYTES]);
    let body_len = u32::from_le_bytes(prefix) as usize;
    if body_len == 0 || body_len + LENGTH_BYTES > LINK_FRAME_BYTES_MAX {
        return Err(LinkError::FrameLength(body_len));
    }
    if buf.len() < LENGTH_BYTES + body_len {
        return Ok(None);
    }
    buf.advance(LENGTH_BYTES);
    let mut body = buf.split_to(body_len).freeze();
    let message = decode_body(&mut body)?;
    if body.has_remaining() {
        return Err(LinkError::TrailingBytes);
    }
    Ok(Some(message))
}

/// The kind code, then the message's fields.
fn encode_body(message: &LinkMessage, out: &mut BytesMut) -> Result<(), LinkError> {
    out.put_u8(Kind::of(message).code());
    match message {
        LinkMessage::Hello {
            version,
            shard,
            shard_count,
            cluster,
        } => put_hello(out, *version, *shard, *shard_count, *cluster),
        LinkMessage::Welcome { version, node_id } => put_welcome(out, *version, *node_id),
        LinkMessage::Subscribe {
            app_id,
            channel,
            seq,
        }
        | LinkMessage::Subscribed {
            app_id,
            channel,
            seq,
        } => put_app_channel_u32(out, app_id, channel, *seq)?,
        LinkMessage::Unsubscribe { app_id, channel } => put_app_channel(out, app_id, channel)?,
        LinkMessage::Publish(event) | LinkMessage::Deliver(event) => put_event(out, event)?,
        LinkMessage::Stats(stats) => put_stats(out, stats),
        LinkMessage::MemberJoin(channel, member) | LinkMessage::MemberAdded(channel, member) => {
            put_channel_member(out, channel, member)?;
        }
        LinkMessage::MemberLeave(channel, user_id)
        | LinkMessage::MemberRemoved(channel, user_id) => put_channel_user(out, channel, user_id)?,
        LinkMessage::MembersQuery(channel, query_id) => put_members_query(out, channel, *query_id)?,
        LinkMessage::MembersResync(channel, members) => put_channel_members(out, channel, members)?,
        LinkMessage::ResyncDone => {}
        LinkMessage::MembersSnapshot(channel, query_id, members) => {
            put_members_snapshot(out, channel, *query_id, members)?;
        }
        LinkMessage::WebhookConfig(json) => put_blob(out, json)?,
        LinkMessage::Hook(event) => put_hook(out, event)?,
        LinkMessage::AuthRequest(request) => put_auth_request(out, request)?,
        LinkMessage::AuthResponse {
            request_id,
            outcome,
        } => put_auth_response(out, *request_id, outcome)?,
        LinkMessage::CacheQuery {
            app_id,
            channel,
            query_id,
        } => put_app_channel_u32(out, app_id, channel, *query_id)?,
        LinkMessage::CacheAnswer { query_id, frame } => put_cache_answer(out, *query_id, frame)?,
        LinkMessage::ChannelsQuery {
            query_id,
            app_id,
            filter,
        } => put_channels_query(out, *query_id, app_id, filter)?,
        LinkMessage::ChannelsAnswer { query_id, channels } => {
            put_channels_answer(out, *query_id, channels)?;
        }
        LinkMessage::ConnectionCounts(counts) => put_connection_counts(out, counts)?,
        LinkMessage::UserCommand {
            app_id,
            user_id,
            action,
        } => put_user_command(out, app_id, user_id, action)?,
        LinkMessage::FunctionRequest(request) => put_function_request(out, request)?,
        LinkMessage::FunctionResult {
            request_id,
            outcome,
        } => put_function_result(out, *request_id, outcome)?,
        LinkMessage::Associations(document) => put_blob(out, document)?,
        LinkMessage::SlipCall(call) => put_slip_call(out, call)?,
        LinkMessage::SlipAnswer { call_id, outcome } => put_slip_answer(out, *call_id, outcome)?,
        LinkMessage::SlipCommands { app_id, commands } => {
            put_name(out, app_id)?;
            put_blob(out, commands)?;
        }
    }
    Ok(())
}

/// The kind code, then the fields of that kind's message.
fn decode_body(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    let kind = Kind::from_code(take_u8(body)?)?;
    let message = match kind {
        Kind::Hello => take_hello(body)?,
        Kind::Welcome => take_welcome(body)?,
        Kind::Subscribe => {
            let (app_id, channel, seq) = take_app_channel_u32(body)?;
            LinkMessage::Subscribe {
                app_id,
                channel,
                seq,
            }
        }
        Kind::Subscribed => {
            let (app_id, channel, seq) = take_app_channel_u32(body)?;
            LinkMessage::Subscribed {
                app_id,
                channel,
                seq,
            }
        }
        Kind::Unsubscribe => {
            let (app_id, channel) = take_app_channel(body)?;
            LinkMessage::Unsubscribe { app_id, channel }
        }
        Kind::Publish => LinkMessage::Publish(take_event(body)?),
        Kind::Deliver => LinkMessage::Deliver(take_event(body)?),
        Kind::Stats => LinkMessage::Stats(take_stats(body)?),
        Kind::MemberJoin => LinkMessage::MemberJoin(take_channel(body)?, take_member(body)?),
        Kind::MemberLeave => LinkMessage::MemberLeave(take_channel(body)?, take_name(body)?),
        Kind::MembersQuery => LinkMessage::MembersQuery(take_channel(body)?, take_u32(body)?),
        Kind::MembersResync => LinkMessage::MembersResync(take_channel(body)?, take_members(body)?),
        Kind::ResyncDone => LinkMessage::ResyncDone,
        Kind::MembersSnapshot => {
            LinkMessage::MembersSnapshot(take_channel(body)?, take_u32(body)?, take_members(body)?)
        }
        Kind::MemberAdded => LinkMessage::MemberAdded(take_channel(body)?, take_member(body)?),
        Kind::MemberRemoved => LinkMessage::MemberRemoved(take_channel(body)?, take_name(body)?),
        Kind::WebhookConfig => LinkMessage::WebhookConfig(take_blob(body)?),
        Kind::Hook => LinkMessage::Hook(take_hook(body)?),
        Kind::AuthRequest => LinkMessage::AuthRequest(take_auth_request(body)?),
        Kind::AuthResponse => take_auth_response(body)?,
        Kind::CacheQuery => {
            let (app_id, channel, query_id) = take_app_channel_u32(body)?;
            LinkMessage::CacheQuery {
                app_id,
                channel,
                query_id,
            }
        }
        Kind::CacheAnswer => LinkMessage::CacheAnswer {
            query_id: take_u32(body)?,
            frame: take_blob(body)?,
        },
        Kind::ChannelsQuery => take_channels_query(body)?,
        Kind::ChannelsAnswer => take_channels_answer(body)?,
        Kind::ConnectionCounts => LinkMessage::ConnectionCounts(take_connection_counts(body)?),
        Kind::UserCommand => take_user_command(body)?,
        Kind::FunctionRequest => LinkMessage::FunctionRequest(take_function_request(body)?),
        Kind::FunctionResult => take_function_result(body)?,
        Kind::Associations => LinkMessage::Associations(take_blob(body)?),
        Kind::SlipCall => LinkMessage::SlipCall(take_slip_call(body)?),
        Kind::SlipAnswer => take_slip_answer(body)?,
        Kind::SlipCommands => LinkMessage::SlipCommands {
            app_id: take_name(body)?,
            commands: take_blob(body)?,
        },
    };
    Ok(message)
}
