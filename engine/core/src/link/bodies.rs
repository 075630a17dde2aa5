//! The body of each link message after its kind byte, as a `put_*` / `take_*` pair per message
//! (or per group of messages of one shape), the pairs side by side so that each reads as its
//! wire layout; the presence bodies and the cache answer have only their `put_*` here (`codec`
//! reads them back field by field). Which pair a message uses is `codec`'s dispatch.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::LinkError;
use super::fields::{
    put_blob, put_channel, put_member, put_members, put_name, take_blob, take_name, take_text,
    take_u16, take_u32, take_u64, take_u8,
};
use super::kind::{hook_kind_code, hook_kind_from_code};
use super::message::{
    AuthOutcome, AuthRequest, BridgeStats, ChannelCount, ChannelFilter, FunctionOutcome,
    FunctionRequest, HookEvent, LinkMessage, Member, PresenceChannel, SlipCall, SlipOutcome,
    UserAction,
};
use crate::limits::{
    AUTH_HEADERS_MAX, FUNCTIONS_PER_PIPELINE_MAX, LINK_APPS_MAX, LINK_CHANNELS_MAX,
};

// ---- Hello and Welcome: `u16` version first ----

/// `Hello`: version, shard, shard count (`u16` each), cluster (`u8` 0/1).
pub(super) fn put_hello(out: &mut BytesMut, version: u16, shard: u16, count: u16, cluster: bool) {
    out.put_u16_le(version);
    out.put_u16_le(shard);
    out.put_u16_le(count);
    out.put_u8(u8::from(cluster));
}

pub(super) fn take_hello(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    Ok(LinkMessage::Hello {
        version: take_u16(body)?,
        shard: take_u16(body)?,
        shard_count: take_u16(body)?,
        cluster: take_u8(body)? != 0,
    })
}

/// `Welcome`: version (`u16`), node id (`u64`).
pub(super) fn put_welcome(out: &mut BytesMut, version: u16, node_id: u64) {
    out.put_u16_le(version);
    out.put_u64_le(node_id);
}

pub(super) fn take_welcome(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    Ok(LinkMessage::Welcome {
        version: take_u16(body)?,
        node_id: take_u64(body)?,
    })
}

// ---- Channel announcements, cache questions: app id, channel, (`u32`) ----

/// `Subscribe`, `Subscribed` (`u32` = seq), `CacheQuery` (`u32` = query id): app id, channel,
/// then the `u32`.
pub(super) fn put_app_channel_u32(
    out: &mut BytesMut,
    app_id: &str,
    channel: &str,
    number: u32,
) -> Result<(), LinkError> {
    put_app_channel(out, app_id, channel)?;
    out.put_u32_le(number);
    Ok(())
}

/// `Unsubscribe`: app id, channel.
pub(super) fn put_app_channel(
    out: &mut BytesMut,
    app_id: &str,
    channel: &str,
) -> Result<(), LinkError> {
    put_name(out, app_id)?;
    put_name(out, channel)
}

/// The fields of [`put_app_channel_u32`], in order.
pub(super) fn take_app_channel_u32(body: &mut Bytes) -> Result<(String, String, u32), LinkError> {
    Ok((take_name(body)?, take_name(body)?, take_u32(body)?))
}

/// The fields of [`put_app_channel`], in order.
pub(super) fn take_app_channel(body: &mut Bytes) -> Result<(String, String), LinkError> {
    Ok((take_name(body)?, take_name(body)?))
}

// ---- Presence and cache answers: a presence channel or a query id first ----

/// `MemberJoin`, `MemberAdded`: channel, member.
pub(super) fn put_channel_member(
    out: &mut BytesMut,
    channel: &PresenceChannel,
    member: &Member,
) -> Result<(), LinkError> {
    put_channel(out, channel)?;
    put_member(out, member)
}

/// `MemberLeave`, `MemberRemoved`: channel, user id.
pub(super) fn put_channel_user(
    out: &mut BytesMut,
    channel: &PresenceChannel,
    user_id: &str,
) -> Result<(), LinkError> {
    put_channel(out, channel)?;
    put_name(out, user_id)
}

/// `MembersQuery`: channel, query id (`u32`).
pub(super) fn put_members_query(
    out: &mut BytesMut,
    channel: &PresenceChannel,
    query_id: u32,
) -> Result<(), LinkError> {
    put_channel(out, channel)?;
    out.put_u32_le(query_id);
    Ok(())
}

/// `MembersResync`: channel, members.
pub(super) fn put_channel_members(
    out: &mut BytesMut,
    channel: &PresenceChannel,
    members: &[Member],
) -> Result<(), LinkError> {
    put_channel(out, channel)?;
    put_members(out, members)
}

/// `MembersSnapshot`: channel, query id (`u32`), members.
pub(super) fn put_members_snapshot(
    out: &mut BytesMut,
    channel: &PresenceChannel,
    query_id: u32,
    members: &[Member],
) -> Result<(), LinkError> {
    put_channel(out, channel)?;
    out.put_u32_le(query_id);
    put_members(out, members)
}

/// `CacheAnswer`: query id (`u32`), cached frame (blob).
pub(super) fn put_cache_answer(
    out: &mut BytesMut,
    query_id: u32,
    frame: &[u8],
) -> Result<(), LinkError> {
    out.put_u32_le(query_id);
    put_blob(out, frame)
}

// ---- Stats: the bridge's counters in field order ----

/// `Stats`: `redis_connected` (`u8`), then the counters (`u64`, except `publish_queue_depth`
/// `u32` and `links` `u16`) in the struct's order.
pub(super) fn put_stats(out: &mut BytesMut, stats: &BridgeStats) {
    out.put_u8(u8::from(stats.redis_connected));
    out.put_u64_le(stats.redis_reconnects);
    out.put_u64_le(stats.publishes_relayed);
    out.put_u64_le(stats.publishes_dropped);
    out.put_u64_le(stats.messages_received);
    out.put_u64_le(stats.deliveries_dropped);
    out.put_u32_le(stats.publish_queue_depth);
    out.put_u16_le(stats.links);
    out.put_u64_le(stats.webhook_events_delivered);
    out.put_u64_le(stats.webhook_requests_failed);
    out.put_u64_le(stats.webhook_events_given_up);
    out.put_u64_le(stats.webhook_events_dropped);
    out.put_u64_le(stats.webhook_events_pending);
    out.put_u64_le(stats.auth_granted);
    out.put_u64_le(stats.auth_refused);
    out.put_u64_le(stats.auth_failed);
    out.put_u64_le(stats.auth_shed);
    out.put_u64_le(stats.function_pipelines_done);
    out.put_u64_le(stats.function_pipelines_failed);
    out.put_u64_le(stats.function_pipelines_shed);
    out.put_u64_le(stats.slip_calls_answered);
    out.put_u64_le(stats.slip_calls_failed);
    out.put_u64_le(stats.slip_calls_shed);
}

pub(super) fn take_stats(body: &mut Bytes) -> Result<BridgeStats, LinkError> {
    Ok(BridgeStats {
        redis_connected: take_u8(body)? != 0,
        redis_reconnects: take_u64(body)?,
        publishes_relayed: take_u64(body)?,
        publishes_dropped: take_u64(body)?,
        messages_received: take_u64(body)?,
        deliveries_dropped: take_u64(body)?,
        publish_queue_depth: take_u32(body)?,
        links: take_u16(body)?,
        webhook_events_delivered: take_u64(body)?,
        webhook_requests_failed: take_u64(body)?,
        webhook_events_given_up: take_u64(body)?,
        webhook_events_dropped: take_u64(body)?,
        webhook_events_pending: take_u64(body)?,
        auth_granted: take_u64(body)?,
        auth_refused: take_u64(body)?,
        auth_failed: take_u64(body)?,
        auth_shed: take_u64(body)?,
        function_pipelines_done: take_u64(body)?,
        function_pipelines_failed: take_u64(body)?,
        function_pipelines_shed: take_u64(body)?,
        slip_calls_answered: take_u64(body)?,
        slip_calls_failed: take_u64(body)?,
        slip_calls_shed: take_u64(body)?,
    })
}

// ---- Webhooks ----

/// `Hook`: app id, channel, hook kind code (`u8`), body (blob).
pub(super) fn put_hook(out: &mut BytesMut, event: &HookEvent) -> Result<(), LinkError> {
    put_name(out, &event.app_id)?;
    put_name(out, &event.channel)?;
    out.put_u8(hook_kind_code(event.kind));
    put_blob(out, &event.body)
}

pub(super) fn take_hook(body: &mut Bytes) -> Result<HookEvent, LinkError> {
    Ok(HookEvent {
        app_id: take_name(body)?,
        channel: take_name(body)?,
        kind: hook_kind_from_code(take_u8(body)?)?,
        body: take_blob(body)?,
    })
}

// ---- Auth offload ----

/// `AuthRequest`: request id (`u32`), app id, url (blob), socket id, channel, header count
/// (`u16`, at most [`AUTH_HEADERS_MAX`]) and each header's name and value (blob), form (blob).
pub(super) fn put_auth_request(out: &mut BytesMut, request: &AuthRequest) -> Result<(), LinkError> {
    out.put_u32_le(request.request_id);
    put_name(out, &request.app_id)?;
    put_blob(out, request.url.as_bytes())?;
    put_name(out, &request.socket_id)?;
    put_name(out, &request.channel)?;
    if request.headers.len() > AUTH_HEADERS_MAX {
        return Err(LinkError::TooManyMembers(request.headers.len()));
    }
    out.put_u16_le(request.headers.len() as u16);
    for (name, value) in &request.headers {
        put_name(out, name)?;
        put_blob(out, value.as_bytes())?;
    }
    put_blob(out, request.form.as_bytes())
}

pub(super) fn take_auth_request(body: &mut Bytes) -> Result<AuthRequest, LinkError> {
    let request_id = take_u32(body)?;
    let app_id = take_name(body)?;
    let url = take_text(body)?;
    let socket_id = take_name(body)?;
    let channel = take_name(body)?;
    let count = usize::from(take_u16(body)?);
    if count > AUTH_HEADERS_MAX {
        return Err(LinkError::TooManyMembers(count));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        headers.push((take_name(body)?, take_text(body)?));
    }
    Ok(AuthRequest {
        request_id,
        app_id,
        url,
        socket_id,
        channel,
        headers,
        form: take_text(body)?,
    })
}

/// `AuthResponse`: request id (`u32`), then 1 + auth and channel data (blobs) when granted, or
/// 0 + status (`u16`) and reason (blob) when refused.
pub(super) fn put_auth_response(
    out: &mut BytesMut,
    request_id: u32,
    outcome: &AuthOutcome,
) -> Result<(), LinkError> {
    out.put_u32_le(request_id);
    match outcome {
        AuthOutcome::Granted { auth, channel_data } => {
            out.put_u8(1);
            put_blob(out, auth.as_bytes())?;
            put_blob(out, channel_data.as_bytes())
        }
        AuthOutcome::Refused { status, reason } => {
            out.put_u8(0);
            out.put_u16_le(*status);
            put_blob(out, reason.as_bytes())
        }
    }
}

pub(super) fn take_auth_response(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    let request_id = take_u32(body)?;
    let outcome = match take_u8(body)? {
        1 => AuthOutcome::Granted {
            auth: take_text(body)?,
            channel_data: take_text(body)?,
        },
        0 => AuthOutcome::Refused {
            status: take_u16(body)?,
            reason: take_text(body)?,
        },
        other => return Err(LinkError::UnknownKind(other)),
    };
    Ok(LinkMessage::AuthResponse {
        request_id,
        outcome,
    })
}

// ---- Channels questions across nodes ----

/// `ChannelsQuery`: query id (`u32`), app id, then 1 + prefix, or 2 + name count (`u32`, at
/// most [`LINK_CHANNELS_MAX`]) and the names.
pub(super) fn put_channels_query(
    out: &mut BytesMut,
    query_id: u32,
    app_id: &str,
    filter: &ChannelFilter,
) -> Result<(), LinkError> {
    out.put_u32_le(query_id);
    put_name(out, app_id)?;
    match filter {
        ChannelFilter::Prefix(prefix) => {
            out.put_u8(1);
            put_name(out, prefix)
        }
        ChannelFilter::Names(names) => {
            out.put_u8(2);
            if names.len() > LINK_CHANNELS_MAX {
                return Err(LinkError::TooManyMembers(names.len()));
            }
            out.put_u32_le(names.len() as u32);
            names.iter().try_for_each(|name| put_name(out, name))
        }
    }
}

pub(super) fn take_channels_query(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    let query_id = take_u32(body)?;
    let app_id = take_name(body)?;
    let filter = match take_u8(body)? {
        1 => ChannelFilter::Prefix(take_name(body)?),
        2 => ChannelFilter::Names(take_channel_names(body)?),
        other => return Err(LinkError::UnknownKind(other)),
    };
    Ok(LinkMessage::ChannelsQuery {
        query_id,
        app_id,
        filter,
    })
}

fn take_channel_names(body: &mut Bytes) -> Result<Vec<String>, LinkError> {
    let count = take_u32(body)? as usize;
    // Each name takes at least 2 bytes.
    if count > LINK_CHANNELS_MAX || count > body.remaining() / 2 {
        return Err(LinkError::TooManyMembers(count));
    }
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        names.push(take_name(body)?);
    }
    Ok(names)
}

/// `ChannelsAnswer`: query id (`u32`), channel count (`u32`, at most [`LINK_CHANNELS_MAX`]),
/// and per channel its name, subscriptions (`u64`) and users (0, or 1 + `u64`).
pub(super) fn put_channels_answer(
    out: &mut BytesMut,
    query_id: u32,
    channels: &[ChannelCount],
) -> Result<(), LinkError> {
    out.put_u32_le(query_id);
    if channels.len() > LINK_CHANNELS_MAX {
        return Err(LinkError::TooManyMembers(channels.len()));
    }
    out.put_u32_le(channels.len() as u32);
    for channel in channels {
        put_name(out, &channel.name)?;
        out.put_u64_le(channel.subscriptions);
        match channel.users {
            Some(users) => {
                out.put_u8(1);
                out.put_u64_le(users);
            }
            None => out.put_u8(0),
        }
    }
    Ok(())
}

pub(super) fn take_channels_answer(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    let query_id = take_u32(body)?;
    let count = take_u32(body)? as usize;
    // Each channel takes at least 11 bytes.
    if count > LINK_CHANNELS_MAX || count > body.remaining() / 11 {
        return Err(LinkError::TooManyMembers(count));
    }
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        channels.push(take_channel_count(body)?);
    }
    Ok(LinkMessage::ChannelsAnswer { query_id, channels })
}

fn take_channel_count(body: &mut Bytes) -> Result<ChannelCount, LinkError> {
    let name = take_name(body)?;
    let subscriptions = take_u64(body)?;
    let users = match take_u8(body)? {
        0 => None,
        1 => Some(take_u64(body)?),
        other => return Err(LinkError::UnknownKind(other)),
    };
    Ok(ChannelCount {
        name,
        subscriptions,
        users,
    })
}

// ---- Connection counts and user commands across nodes ----

/// `ConnectionCounts`: app count (`u32`, at most [`LINK_APPS_MAX`]), and per app its id and
/// count (`u64`).
pub(super) fn put_connection_counts(
    out: &mut BytesMut,
    counts: &[(String, u64)],
) -> Result<(), LinkError> {
    if counts.len() > LINK_APPS_MAX {
        return Err(LinkError::TooManyMembers(counts.len()));
    }
    out.put_u32_le(counts.len() as u32);
    for (app_id, count) in counts {
        put_name(out, app_id)?;
        out.put_u64_le(*count);
    }
    Ok(())
}

pub(super) fn take_connection_counts(body: &mut Bytes) -> Result<Vec<(String, u64)>, LinkError> {
    let count = take_u32(body)? as usize;
    // Each entry takes at least 10 bytes.
    if count > LINK_APPS_MAX || count > body.remaining() / 10 {
        return Err(LinkError::TooManyMembers(count));
    }
    let mut counts = Vec::with_capacity(count);
    for _ in 0..count {
        counts.push((take_name(body)?, take_u64(body)?));
    }
    Ok(counts)
}

/// `UserCommand`: app id, user id, then 1 + frame (blob) to deliver, or 2 to terminate.
pub(super) fn put_user_command(
    out: &mut BytesMut,
    app_id: &str,
    user_id: &str,
    action: &UserAction,
) -> Result<(), LinkError> {
    put_name(out, app_id)?;
    put_name(out, user_id)?;
    match action {
        UserAction::Deliver(frame) => {
            out.put_u8(1);
            put_blob(out, frame)
        }
        UserAction::Terminate => {
            out.put_u8(2);
            Ok(())
        }
    }
}

pub(super) fn take_user_command(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    let app_id = take_name(body)?;
    let user_id = take_name(body)?;
    let action = match take_u8(body)? {
        1 => UserAction::Deliver(take_blob(body)?),
        2 => UserAction::Terminate,
        other => return Err(LinkError::UnknownKind(other)),
    };
    Ok(LinkMessage::UserCommand {
        app_id,
        user_id,
        action,
    })
}

// ---- Channel functions ----

/// `FunctionRequest`: request id (`u32`), app id, channel, message (blob), function count
/// (`u8`, at most [`FUNCTIONS_PER_PIPELINE_MAX`]) and each function's name and URL (blob).
pub(super) fn put_function_request(
    out: &mut BytesMut,
    request: &FunctionRequest,
) -> Result<(), LinkError> {
    out.put_u32_le(request.request_id);
    put_name(out, &request.app_id)?;
    put_name(out, &request.channel)?;
    put_blob(out, &request.message)?;
    if request.functions.len() > FUNCTIONS_PER_PIPELINE_MAX {
        return Err(LinkError::TooManyMembers(request.functions.len()));
    }
    out.put_u8(request.functions.len() as u8);
    for (name, url) in &request.functions {
        put_name(out, name)?;
        put_blob(out, url.as_bytes())?;
    }
    Ok(())
}

pub(super) fn take_function_request(body: &mut Bytes) -> Result<FunctionRequest, LinkError> {
    let request_id = take_u32(body)?;
    let app_id = take_name(body)?;
    let channel = take_name(body)?;
    let message = take_blob(body)?;
    let count = usize::from(take_u8(body)?);
    if count > FUNCTIONS_PER_PIPELINE_MAX {
        return Err(LinkError::TooManyMembers(count));
    }
    let mut functions = Vec::with_capacity(count);
    for _ in 0..count {
        functions.push((take_name(body)?, take_text(body)?));
    }
    Ok(FunctionRequest {
        request_id,
        app_id,
        channel,
        message,
        functions,
    })
}

/// `FunctionResult`: request id (`u32`), then 1 + the result (blob), or 0 + why (blob).
pub(super) fn put_function_result(
    out: &mut BytesMut,
    request_id: u32,
    outcome: &FunctionOutcome,
) -> Result<(), LinkError> {
    out.put_u32_le(request_id);
    match outcome {
        FunctionOutcome::Done(result) => {
            out.put_u8(1);
            put_blob(out, result)
        }
        FunctionOutcome::Failed(reason) => {
            out.put_u8(0);
            put_blob(out, reason.as_bytes())
        }
    }
}

pub(super) fn take_function_result(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    let request_id = take_u32(body)?;
    let outcome = match take_u8(body)? {
        1 => FunctionOutcome::Done(take_blob(body)?),
        0 => FunctionOutcome::Failed(take_text(body)?),
        other => return Err(LinkError::UnknownKind(other)),
    };
    Ok(LinkMessage::FunctionResult {
        request_id,
        outcome,
    })
}

// ---- WebSocket-over-HTTP ----

/// `SlipCall`: call id (`u32`), app id, connection id, URL (blob), secret (blob), body (blob).
pub(super) fn put_slip_call(out: &mut BytesMut, call: &SlipCall) -> Result<(), LinkError> {
    out.put_u32_le(call.call_id);
    put_name(out, &call.app_id)?;
    put_name(out, &call.connection_id)?;
    put_blob(out, call.url.as_bytes())?;
    put_blob(out, call.secret.as_bytes())?;
    put_blob(out, &call.body)
}

pub(super) fn take_slip_call(body: &mut Bytes) -> Result<SlipCall, LinkError> {
    Ok(SlipCall {
        call_id: take_u32(body)?,
        app_id: take_name(body)?,
        connection_id: take_name(body)?,
        url: take_text(body)?,
        secret: take_text(body)?,
        body: take_blob(body)?,
    })
}

/// `SlipAnswer`: call id (`u32`), then 1 + status (`u16`) + body (blob), or 0 + why (blob).
pub(super) fn put_slip_answer(
    out: &mut BytesMut,
    call_id: u32,
    outcome: &SlipOutcome,
) -> Result<(), LinkError> {
    out.put_u32_le(call_id);
    match outcome {
        SlipOutcome::Answered { status, body } => {
            out.put_u8(1);
            out.put_u16_le(*status);
            put_blob(out, body)
        }
        SlipOutcome::Failed(reason) => {
            out.put_u8(0);
            put_blob(out, reason.as_bytes())
        }
    }
}

pub(super) fn take_slip_answer(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    let call_id = take_u32(body)?;
    let outcome = match take_u8(body)? {
        1 => SlipOutcome::Answered {
            status: take_u16(body)?,
            body: take_blob(body)?,
        },
        0 => SlipOutcome::Failed(take_text(body)?),
        other => return Err(LinkError::UnknownKind(other)),
    };
    Ok(LinkMessage::SlipAnswer { call_id, outcome })
}
