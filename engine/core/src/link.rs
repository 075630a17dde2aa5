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

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::app::WebhookEventType;

/// Protocol version; both ends must speak the same one (a bridge run by hand from another
/// release is refused at `Hello`, not misread). 3: the `subscription_count` hook kind.
pub const VERSION: u16 = 3;
/// Largest frame, length prefix included: a maximal event (1 MiB REST body) plus its names.
pub const FRAME_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Longest app id, channel name or socket id on the link (channel names are ≤ 200 bytes).
pub const NAME_BYTES_MAX: usize = 256;
/// Bytes of the length prefix.
const LENGTH_BYTES: usize = 4;

const KIND_HELLO: u8 = 1;
const KIND_SUBSCRIBE: u8 = 2;
const KIND_UNSUBSCRIBE: u8 = 3;
const KIND_PUBLISH: u8 = 4;
const KIND_WELCOME: u8 = 129;
const KIND_SUBSCRIBED: u8 = 130;
const KIND_DELIVER: u8 = 131;
const KIND_STATS: u8 = 132;
const KIND_MEMBER_JOIN: u8 = 5;
const KIND_MEMBER_LEAVE: u8 = 6;
const KIND_MEMBERS_QUERY: u8 = 7;
const KIND_MEMBERS_RESYNC: u8 = 8;
const KIND_RESYNC_DONE: u8 = 9;
const KIND_WEBHOOK_CONFIG: u8 = 10;
const KIND_HOOK: u8 = 11;
const KIND_AUTH_REQUEST: u8 = 12;
const KIND_CACHE_QUERY: u8 = 13;
const KIND_USER_COMMAND: u8 = 14;
const KIND_CHANNELS_QUERY: u8 = 15;
const KIND_CHANNELS_ANSWER: u8 = 16;
const KIND_CONNECTION_COUNTS: u8 = 17;
/// Most apps in one connection counts message.
pub const APPS_MAX: usize = 65_536;
/// Most channels in one channels answer, and names in one query.
pub const CHANNELS_MAX: usize = 100_000;
const KIND_AUTH_RESPONSE: u8 = 136;
const KIND_CACHE_ANSWER: u8 = 137;
/// Most headers forwarded with one authorization request.
pub const AUTH_HEADERS_MAX: usize = 64;
const KIND_MEMBERS_SNAPSHOT: u8 = 133;
const KIND_MEMBER_ADDED: u8 = 134;
const KIND_MEMBER_REMOVED: u8 = 135;
/// Most members in one snapshot or resync message (a presence channel's member limit is far
/// below; the frame bound applies too).
pub const MEMBERS_MAX: usize = 100_000;

/// One event on its way between nodes: the encoded WebSocket frame that every subscriber
/// receives, byte for byte, and the socket that must not receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEvent {
    /// The app's id as configured (`app_id`), not a shard-local index.
    pub app_id: String,
    /// Channel name.
    pub channel: String,
    /// Socket id excluded from delivery (the publisher's own connection); empty for none.
    pub except_socket_id: String,
    /// The complete server-to-client WebSocket frame (unmasked text frame).
    pub frame: Bytes,
}

/// The bridge's own counters, sent to every link once a second so that the engine's `/metrics`
/// shows the whole node (the bridge has no HTTP endpoint of its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// The bridge currently has a working Redis pub/sub connection.
    pub redis_connected: bool,
    /// Times the bridge lost Redis and connected again.
    pub redis_reconnects: u64,
    /// Publishes sent to Redis for the other nodes.
    pub publishes_relayed: u64,
    /// Publishes the bridge dropped (its queue full or Redis failing).
    pub publishes_dropped: u64,
    /// Messages received from Redis (other nodes' publishes).
    pub messages_received: u64,
    /// Deliveries to engine shards dropped because a link's queue was full.
    pub deliveries_dropped: u64,
    /// Publishes waiting for Redis right now.
    pub publish_queue_depth: u32,
    /// Engine shards linked right now.
    pub links: u16,
    /// Webhook events the receivers accepted (2xx).
    pub webhook_events_delivered: u64,
    /// Webhook requests that failed (non-2xx, connect error, timeout); each retry counts.
    pub webhook_requests_failed: u64,
    /// Webhook events given up after retrying for the whole retry window.
    pub webhook_events_given_up: u64,
    /// Webhook events dropped because the queue was full.
    pub webhook_events_dropped: u64,
    /// Webhook events waiting right now (delayed, queued, in flight or awaiting a retry).
    pub webhook_events_pending: u64,
    /// Offloaded authorizations the endpoint granted.
    pub auth_granted: u64,
    /// Offloaded authorizations the endpoint refused (or answered unusably).
    pub auth_refused: u64,
    /// Offloaded authorizations the endpoint did not answer (timeout, connect error).
    pub auth_failed: u64,
    /// Offloaded authorizations refused by the bridge without asking (bounds reached).
    pub auth_shed: u64,
}

/// A subscription to authorize at the app's endpoint (auth offload): the bridge POSTs the form
/// pusher-js would send (`socket_id`, `channel_name`, plus `form`) with `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    /// Echoed in the answer.
    pub request_id: u32,
    /// App id (the bridge bounds concurrent requests per app).
    pub app_id: String,
    /// The app's `app_channel_authorization_url`.
    pub url: String,
    /// The subscribing connection.
    pub socket_id: String,
    /// The channel to authorize.
    pub channel: String,
    /// Headers of the connection's upgrade request to forward (name, value).
    pub headers: Vec<(String, String)>,
    /// More form fields, URL-encoded (`a=1&b=2`): the connection's query, as configured.
    pub form: String,
}

/// The endpoint's answer to an [`AuthRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// 2xx with an `auth` (and, for presence, `channel_data`); the engine still checks it.
    Granted {
        /// `auth` as the endpoint signed it.
        auth: String,
        /// `channel_data`, empty when absent.
        channel_data: String,
    },
    /// Refused or failed: the status to report (the endpoint's, or 0 when it gave none).
    Refused {
        /// HTTP status of the endpoint, 0 when it did not answer usefully.
        status: u16,
        /// Why, for the subscriber's `pusher:subscription_error`.
        reason: String,
    },
}

/// Which channels a channels query asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelFilter {
    /// Every occupied channel whose name starts with this (empty: all).
    Prefix(String),
    /// These channels, occupied or not.
    Names(Vec<String>),
}

/// One channel's counts in a channels answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCount {
    /// Channel name.
    pub name: String,
    /// Subscriptions (connections).
    pub subscriptions: u64,
    /// Presence users, when known to the answering side.
    pub users: Option<u64>,
}

/// What a user command does on the other nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAction {
    /// Deliver this frame to the user's signed-in connections (server-to-user event).
    Deliver(Bytes),
    /// Close the user's connections (`terminate_connections`).
    Terminate,
}

/// An event for the app's webhooks that only the node it happened on sees (a client event, a
/// cache miss): the bridge filters, batches and sends it. A `subscription_count` from the engine
/// is not an event yet: its body carries the sending shard's own count of the channel, which
/// the bridge sums over the shards (and nodes) before it makes the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEvent {
    /// App id.
    pub app_id: String,
    /// Channel name (for the webhooks' channel filters).
    pub channel: String,
    /// Which kind of event (for the webhooks' event-type filters).
    pub kind: WebhookEventType,
    /// The event object as it goes into the webhook body's `events` array (JSON text).
    pub body: Bytes,
}

/// One presence member: the user id and its `user_info` JSON text (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `user_id`.
    pub user_id: String,
    /// `user_info` as JSON text, exactly as the client's channel_data carried it.
    pub user_info: Bytes,
}

/// A presence channel of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChannel {
    /// App id.
    pub app_id: String,
    /// Channel name (`presence-…`).
    pub channel: String,
}

/// Every message of the link protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkMessage {
    /// Engine → bridge, first frame: who is speaking.
    Hello {
        /// [`VERSION`] of the engine.
        version: u16,
        /// Index of the shard that owns this link.
        shard: u16,
        /// Shards in the engine process.
        shard_count: u16,
        /// The node is one of several (`--adapter-driver redis`): channel occupancy and
        /// presence are cluster state; else the node is alone and its events are final.
        cluster: bool,
    },
    /// Bridge → engine, answer to `Hello`.
    Welcome {
        /// [`VERSION`] of the bridge.
        version: u16,
        /// The node's id on the cluster (tags its Redis messages).
        node_id: u64,
    },
    /// Engine → bridge: the shard has local subscribers for a channel.
    Subscribe {
        /// App id.
        app_id: String,
        /// Channel name.
        channel: String,
        /// Echoed in `Subscribed` so the shard can ignore answers to older announcements.
        seq: u32,
    },
    /// Bridge → engine: the node now receives the channel's remote publishes.
    Subscribed {
        /// App id.
        app_id: String,
        /// Channel name.
        channel: String,
        /// The `seq` of the `Subscribe` answered.
        seq: u32,
    },
    /// Engine → bridge: the shard's last local subscriber of a channel left.
    Unsubscribe {
        /// App id.
        app_id: String,
        /// Channel name.
        channel: String,
    },
    /// Engine → bridge: an event published on this node, for the other nodes.
    Publish(ChannelEvent),
    /// Bridge → engine: an event published on another node, for this shard's subscribers.
    Deliver(ChannelEvent),
    /// Bridge → engine, once a second: the bridge's counters.
    Stats(BridgeStats),
    /// Engine → bridge (the channel's owner shard): a user's first connection on this node
    /// joined the presence channel.
    MemberJoin(PresenceChannel, Member),
    /// Engine → bridge (owner shard): a user's last connection on this node left.
    MemberLeave(PresenceChannel, String),
    /// Engine → bridge: the cluster-wide members of a channel, answered by `MembersSnapshot`
    /// with the same `query_id`.
    MembersQuery(PresenceChannel, u32),
    /// Engine → bridge after `Hello` (owner shard): every member this shard holds for a
    /// channel on this node, replacing what the cluster had for this node and shard.
    MembersResync(PresenceChannel, Vec<Member>),
    /// Engine → bridge: the shard has sent all its `MembersResync` messages; channels it did
    /// not mention have no members of this node and shard any more.
    ResyncDone,
    /// Bridge → engine: answer to `MembersQuery`.
    MembersSnapshot(PresenceChannel, u32, Vec<Member>),
    /// Bridge → engine (shards with local subscribers): a user's first connection in the
    /// cluster joined; deliver `pusher_internal:member_added`.
    MemberAdded(PresenceChannel, Member),
    /// Bridge → engine: a user's last connection in the cluster left (or its node died);
    /// deliver `pusher_internal:member_removed`.
    MemberRemoved(PresenceChannel, String),
    /// Engine → bridge after `Hello`: the apps' webhook settings (JSON text, see
    /// `crate::webhook_config`), replacing what the bridge had.
    WebhookConfig(Bytes),
    /// Engine → bridge: a webhook event only this node sees.
    Hook(HookEvent),
    /// Engine → bridge: authorize a subscription at the app's endpoint.
    AuthRequest(AuthRequest),
    /// Bridge → engine: the answer to the `AuthRequest` with this id.
    AuthResponse {
        /// The request's id.
        request_id: u32,
        /// What the endpoint said.
        outcome: AuthOutcome,
    },
    /// Engine → bridge (several nodes): the cluster's last event of a cache channel, answered
    /// by `CacheAnswer` with the same `query_id`.
    CacheQuery {
        /// App id.
        app_id: String,
        /// Channel name (`cache-…`).
        channel: String,
        /// Echoed in the answer.
        query_id: u32,
    },
    /// Bridge → engine: the last event's frame, empty when there is none.
    CacheAnswer {
        /// The query's id.
        query_id: u32,
        /// The frame, or empty.
        frame: Bytes,
    },
    /// Both ways (several nodes): engine → bridge, "what do the other nodes have" (for `GET
    /// /channels…`); bridge → engine, "what does this node have" (asked by another node).
    /// Answered by `ChannelsAnswer` with the same `query_id`.
    ChannelsQuery {
        /// Echoed in the answer.
        query_id: u32,
        /// App id.
        app_id: String,
        /// Which channels.
        filter: ChannelFilter,
    },
    /// Both ways: the answer to a `ChannelsQuery` (the other nodes' totals with the cluster's
    /// presence user counts, or this node's counts).
    ChannelsAnswer {
        /// The query's id.
        query_id: u32,
        /// The channels.
        channels: Vec<ChannelCount>,
    },
    /// Both ways (several nodes), once a second: engine → bridge, this node's open connections
    /// per app; bridge → engine, the other nodes' (for `app_max_connections` cluster-wide).
    ConnectionCounts(Vec<(String, u64)>),
    /// Both ways (several nodes): something for a user's connections on every node — from the
    /// engine for the other nodes, from the bridge for this node's shards.
    UserCommand {
        /// App id.
        app_id: String,
        /// The user.
        user_id: String,
        /// What to do.
        action: UserAction,
    },
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// The length prefix announces more than [`FRAME_BYTES_MAX`] (or nothing at all).
    FrameLength(usize),
    /// Unknown message kind.
    UnknownKind(u8),
    /// A field runs past the end of its frame.
    Truncated,
    /// Bytes left over after the last field.
    TrailingBytes,
    /// A name longer than [`NAME_BYTES_MAX`].
    NameTooLong(usize),
    /// A name that is not UTF-8.
    NotUtf8,
    /// More members than [`MEMBERS_MAX`] in one message.
    TooManyMembers(usize),
    /// The peer speaks another protocol version.
    Version(u16),
    /// A well-formed message that only the other side may send.
    WrongDirection,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::FrameLength(n) => write!(f, "link frame length {n} out of bounds"),
            LinkError::UnknownKind(k) => write!(f, "unknown link message kind {k}"),
            LinkError::Truncated => write!(f, "link frame truncated"),
            LinkError::TrailingBytes => write!(f, "trailing bytes in link frame"),
            LinkError::NameTooLong(n) => write!(f, "name of {n} bytes on the link"),
            LinkError::NotUtf8 => write!(f, "name on the link is not UTF-8"),
            LinkError::TooManyMembers(n) => {
                write!(f, "{n} members or headers in one link message")
            }
            LinkError::Version(v) => write!(f, "link protocol version {v}, expected {VERSION}"),
            LinkError::WrongDirection => write!(f, "link message sent in the wrong direction"),
        }
    }
}

impl std::error::Error for LinkError {}

/// Appends one frame to `out`. Fails (leaving `out` as it was) when a field is over its bound.
pub fn encode(message: &LinkMessage, out: &mut BytesMut) -> Result<(), LinkError> {
    let start = out.len();
    out.put_u32_le(0); // patched below
    let result = encode_body(message, out);
    let body_len = out.len() - start - LENGTH_BYTES;
    match result {
        Ok(()) if body_len + LENGTH_BYTES <= FRAME_BYTES_MAX => {
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

fn encode_body(message: &LinkMessage, out: &mut BytesMut) -> Result<(), LinkError> {
    match message {
        LinkMessage::Hello {
            version,
            shard,
            shard_count,
            cluster,
        } => {
            out.put_u8(KIND_HELLO);
            out.put_u16_le(*version);
            out.put_u16_le(*shard);
            out.put_u16_le(*shard_count);
            out.put_u8(u8::from(*cluster));
        }
        LinkMessage::Welcome { version, node_id } => {
            out.put_u8(KIND_WELCOME);
            out.put_u16_le(*version);
            out.put_u64_le(*node_id);
        }
        LinkMessage::Subscribe {
            app_id,
            channel,
            seq,
        } => {
            out.put_u8(KIND_SUBSCRIBE);
            put_name(out, app_id)?;
            put_name(out, channel)?;
            out.put_u32_le(*seq);
        }
        LinkMessage::Subscribed {
            app_id,
            channel,
            seq,
        } => {
            out.put_u8(KIND_SUBSCRIBED);
            put_name(out, app_id)?;
            put_name(out, channel)?;
            out.put_u32_le(*seq);
        }
        LinkMessage::Unsubscribe { app_id, channel } => {
            out.put_u8(KIND_UNSUBSCRIBE);
            put_name(out, app_id)?;
            put_name(out, channel)?;
        }
        LinkMessage::Publish(event) => {
            out.put_u8(KIND_PUBLISH);
            put_event(out, event)?;
        }
        LinkMessage::Deliver(event) => {
            out.put_u8(KIND_DELIVER);
            put_event(out, event)?;
        }
        LinkMessage::Stats(stats) => {
            out.put_u8(KIND_STATS);
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
        }
        LinkMessage::MemberJoin(channel, member) => {
            out.put_u8(KIND_MEMBER_JOIN);
            put_channel(out, channel)?;
            put_member(out, member)?;
        }
        LinkMessage::MemberLeave(channel, user_id) => {
            out.put_u8(KIND_MEMBER_LEAVE);
            put_channel(out, channel)?;
            put_name(out, user_id)?;
        }
        LinkMessage::MembersQuery(channel, query_id) => {
            out.put_u8(KIND_MEMBERS_QUERY);
            put_channel(out, channel)?;
            out.put_u32_le(*query_id);
        }
        LinkMessage::MembersResync(channel, members) => {
            out.put_u8(KIND_MEMBERS_RESYNC);
            put_channel(out, channel)?;
            put_members(out, members)?;
        }
        LinkMessage::ResyncDone => out.put_u8(KIND_RESYNC_DONE),
        LinkMessage::MembersSnapshot(channel, query_id, members) => {
            out.put_u8(KIND_MEMBERS_SNAPSHOT);
            put_channel(out, channel)?;
            out.put_u32_le(*query_id);
            put_members(out, members)?;
        }
        LinkMessage::MemberAdded(channel, member) => {
            out.put_u8(KIND_MEMBER_ADDED);
            put_channel(out, channel)?;
            put_member(out, member)?;
        }
        LinkMessage::MemberRemoved(channel, user_id) => {
            out.put_u8(KIND_MEMBER_REMOVED);
            put_channel(out, channel)?;
            put_name(out, user_id)?;
        }
        LinkMessage::WebhookConfig(json) => {
            out.put_u8(KIND_WEBHOOK_CONFIG);
            put_blob(out, json)?;
        }
        LinkMessage::Hook(event) => {
            out.put_u8(KIND_HOOK);
            put_name(out, &event.app_id)?;
            put_name(out, &event.channel)?;
            out.put_u8(hook_kind_code(event.kind));
            put_blob(out, &event.body)?;
        }
        LinkMessage::AuthRequest(request) => {
            out.put_u8(KIND_AUTH_REQUEST);
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
            put_blob(out, request.form.as_bytes())?;
        }
        LinkMessage::AuthResponse {
            request_id,
            outcome,
        } => {
            out.put_u8(KIND_AUTH_RESPONSE);
            out.put_u32_le(*request_id);
            match outcome {
                AuthOutcome::Granted { auth, channel_data } => {
                    out.put_u8(1);
                    put_blob(out, auth.as_bytes())?;
                    put_blob(out, channel_data.as_bytes())?;
                }
                AuthOutcome::Refused { status, reason } => {
                    out.put_u8(0);
                    out.put_u16_le(*status);
                    put_blob(out, reason.as_bytes())?;
                }
            }
        }
        LinkMessage::CacheQuery {
            app_id,
            channel,
            query_id,
        } => {
            out.put_u8(KIND_CACHE_QUERY);
            put_name(out, app_id)?;
            put_name(out, channel)?;
            out.put_u32_le(*query_id);
        }
        LinkMessage::CacheAnswer { query_id, frame } => {
            out.put_u8(KIND_CACHE_ANSWER);
            out.put_u32_le(*query_id);
            put_blob(out, frame)?;
        }
        LinkMessage::ChannelsQuery {
            query_id,
            app_id,
            filter,
        } => {
            out.put_u8(KIND_CHANNELS_QUERY);
            out.put_u32_le(*query_id);
            put_name(out, app_id)?;
            match filter {
                ChannelFilter::Prefix(prefix) => {
                    out.put_u8(1);
                    put_name(out, prefix)?;
                }
                ChannelFilter::Names(names) => {
                    out.put_u8(2);
                    if names.len() > CHANNELS_MAX {
                        return Err(LinkError::TooManyMembers(names.len()));
                    }
                    out.put_u32_le(names.len() as u32);
                    for name in names {
                        put_name(out, name)?;
                    }
                }
            }
        }
        LinkMessage::ChannelsAnswer { query_id, channels } => {
            out.put_u8(KIND_CHANNELS_ANSWER);
            out.put_u32_le(*query_id);
            if channels.len() > CHANNELS_MAX {
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
        }
        LinkMessage::ConnectionCounts(counts) => {
            out.put_u8(KIND_CONNECTION_COUNTS);
            if counts.len() > APPS_MAX {
                return Err(LinkError::TooManyMembers(counts.len()));
            }
            out.put_u32_le(counts.len() as u32);
            for (app_id, count) in counts {
                put_name(out, app_id)?;
                out.put_u64_le(*count);
            }
        }
        LinkMessage::UserCommand {
            app_id,
            user_id,
            action,
        } => {
            out.put_u8(KIND_USER_COMMAND);
            put_name(out, app_id)?;
            put_name(out, user_id)?;
            match action {
                UserAction::Deliver(frame) => {
                    out.put_u8(1);
                    put_blob(out, frame)?;
                }
                UserAction::Terminate => out.put_u8(2),
            }
        }
    }
    Ok(())
}

/// Encodes an event's fields without a kind or length prefix (the bridge reuses this for its
/// Redis payloads).
pub fn put_event(out: &mut BytesMut, event: &ChannelEvent) -> Result<(), LinkError> {
    put_name(out, &event.app_id)?;
    put_name(out, &event.channel)?;
    put_name(out, &event.except_socket_id)?;
    if event.frame.len() > FRAME_BYTES_MAX {
        return Err(LinkError::FrameLength(event.frame.len()));
    }
    out.put_u32_le(event.frame.len() as u32);
    out.extend_from_slice(&event.frame);
    Ok(())
}

fn put_channel(out: &mut BytesMut, channel: &PresenceChannel) -> Result<(), LinkError> {
    put_name(out, &channel.app_id)?;
    put_name(out, &channel.channel)
}

fn put_member(out: &mut BytesMut, member: &Member) -> Result<(), LinkError> {
    put_name(out, &member.user_id)?;
    if member.user_info.len() > FRAME_BYTES_MAX {
        return Err(LinkError::FrameLength(member.user_info.len()));
    }
    out.put_u32_le(member.user_info.len() as u32);
    out.extend_from_slice(&member.user_info);
    Ok(())
}

fn put_members(out: &mut BytesMut, members: &[Member]) -> Result<(), LinkError> {
    if members.len() > MEMBERS_MAX {
        return Err(LinkError::TooManyMembers(members.len()));
    }
    out.put_u32_le(members.len() as u32);
    for member in members {
        put_member(out, member)?;
    }
    Ok(())
}

fn put_blob(out: &mut BytesMut, blob: &[u8]) -> Result<(), LinkError> {
    if blob.len() > FRAME_BYTES_MAX {
        return Err(LinkError::FrameLength(blob.len()));
    }
    out.put_u32_le(blob.len() as u32);
    out.extend_from_slice(blob);
    Ok(())
}

/// Wire code of a webhook event kind (stable: part of the protocol, not the enum's order).
fn hook_kind_code(kind: WebhookEventType) -> u8 {
    match kind {
        WebhookEventType::ChannelOccupied => 1,
        WebhookEventType::ChannelVacated => 2,
        WebhookEventType::MemberAdded => 3,
        WebhookEventType::MemberRemoved => 4,
        WebhookEventType::ClientEvent => 5,
        WebhookEventType::CacheMiss => 6,
        WebhookEventType::SubscriptionCount => 7,
    }
}

fn hook_kind_from_code(code: u8) -> Result<WebhookEventType, LinkError> {
    WebhookEventType::ALL
        .into_iter()
        .find(|kind| hook_kind_code(*kind) == code)
        .ok_or(LinkError::UnknownKind(code))
}

fn put_name(out: &mut BytesMut, name: &str) -> Result<(), LinkError> {
    if name.len() > NAME_BYTES_MAX {
        return Err(LinkError::NameTooLong(name.len()));
    }
    out.put_u16_le(name.len() as u16);
    out.extend_from_slice(name.as_bytes());
    Ok(())
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
    if body_len == 0 || body_len + LENGTH_BYTES > FRAME_BYTES_MAX {
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

fn decode_body(body: &mut Bytes) -> Result<LinkMessage, LinkError> {
    let kind = take_u8(body)?;
    let message = match kind {
        KIND_HELLO => LinkMessage::Hello {
            version: take_u16(body)?,
            shard: take_u16(body)?,
            shard_count: take_u16(body)?,
            cluster: take_u8(body)? != 0,
        },
        KIND_WELCOME => LinkMessage::Welcome {
            version: take_u16(body)?,
            node_id: take_u64(body)?,
        },
        KIND_SUBSCRIBE => LinkMessage::Subscribe {
            app_id: take_name(body)?,
            channel: take_name(body)?,
            seq: take_u32(body)?,
        },
        KIND_SUBSCRIBED => LinkMessage::Subscribed {
            app_id: take_name(body)?,
            channel: take_name(body)?,
            seq: take_u32(body)?,
        },
        KIND_UNSUBSCRIBE => LinkMessage::Unsubscribe {
            app_id: take_name(body)?,
            channel: take_name(body)?,
        },
        KIND_PUBLISH => LinkMessage::Publish(take_event(body)?),
        KIND_DELIVER => LinkMessage::Deliver(take_event(body)?),
        KIND_STATS => LinkMessage::Stats(BridgeStats {
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
        }),
        KIND_MEMBER_JOIN => LinkMessage::MemberJoin(take_channel(body)?, take_member(body)?),
        KIND_MEMBER_LEAVE => LinkMessage::MemberLeave(take_channel(body)?, take_name(body)?),
        KIND_MEMBERS_QUERY => LinkMessage::MembersQuery(take_channel(body)?, take_u32(body)?),
        KIND_MEMBERS_RESYNC => LinkMessage::MembersResync(take_channel(body)?, take_members(body)?),
        KIND_RESYNC_DONE => LinkMessage::ResyncDone,
        KIND_MEMBERS_SNAPSHOT => {
            let channel = take_channel(body)?;
            let query_id = take_u32(body)?;
            LinkMessage::MembersSnapshot(channel, query_id, take_members(body)?)
        }
        KIND_MEMBER_ADDED => LinkMessage::MemberAdded(take_channel(body)?, take_member(body)?),
        KIND_MEMBER_REMOVED => LinkMessage::MemberRemoved(take_channel(body)?, take_name(body)?),
        KIND_WEBHOOK_CONFIG => LinkMessage::WebhookConfig(take_blob(body)?),
        KIND_HOOK => LinkMessage::Hook(HookEvent {
            app_id: take_name(body)?,
            channel: take_name(body)?,
            kind: hook_kind_from_code(take_u8(body)?)?,
            body: take_blob(body)?,
        }),
        KIND_AUTH_REQUEST => {
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
            LinkMessage::AuthRequest(AuthRequest {
                request_id,
                app_id,
                url,
                socket_id,
                channel,
                headers,
                form: take_text(body)?,
            })
        }
        KIND_AUTH_RESPONSE => {
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
            LinkMessage::AuthResponse {
                request_id,
                outcome,
            }
        }
        KIND_CACHE_QUERY => LinkMessage::CacheQuery {
            app_id: take_name(body)?,
            channel: take_name(body)?,
            query_id: take_u32(body)?,
        },
        KIND_CACHE_ANSWER => LinkMessage::CacheAnswer {
            query_id: take_u32(body)?,
            frame: take_blob(body)?,
        },
        KIND_CHANNELS_QUERY => {
            let query_id = take_u32(body)?;
            let app_id = take_name(body)?;
            let filter = match take_u8(body)? {
                1 => ChannelFilter::Prefix(take_name(body)?),
                2 => {
                    let count = take_u32(body)? as usize;
                    // Each name takes at least 2 bytes.
                    if count > CHANNELS_MAX || count > body.remaining() / 2 {
                        return Err(LinkError::TooManyMembers(count));
                    }
                    let mut names = Vec::with_capacity(count);
                    for _ in 0..count {
                        names.push(take_name(body)?);
                    }
                    ChannelFilter::Names(names)
                }
                other => return Err(LinkError::UnknownKind(other)),
            };
            LinkMessage::ChannelsQuery {
                query_id,
                app_id,
                filter,
            }
        }
        KIND_CHANNELS_ANSWER => {
            let query_id = take_u32(body)?;
            let count = take_u32(body)? as usize;
            // Each channel takes at least 11 bytes.
            if count > CHANNELS_MAX || count > body.remaining() / 11 {
                return Err(LinkError::TooManyMembers(count));
            }
            let mut channels = Vec::with_capacity(count);
            for _ in 0..count {
                let name = take_name(body)?;
                let subscriptions = take_u64(body)?;
                let users = match take_u8(body)? {
                    0 => None,
                    1 => Some(take_u64(body)?),
                    other => return Err(LinkError::UnknownKind(other)),
                };
                channels.push(ChannelCount {
                    name,
                    subscriptions,
                    users,
                });
            }
            LinkMessage::ChannelsAnswer { query_id, channels }
        }
        KIND_CONNECTION_COUNTS => {
            let count = take_u32(body)? as usize;
            // Each entry takes at least 10 bytes.
            if count > APPS_MAX || count > body.remaining() / 10 {
                return Err(LinkError::TooManyMembers(count));
            }
            let mut counts = Vec::with_capacity(count);
            for _ in 0..count {
                counts.push((take_name(body)?, take_u64(body)?));
            }
            LinkMessage::ConnectionCounts(counts)
        }
        KIND_USER_COMMAND => {
            let app_id = take_name(body)?;
            let user_id = take_name(body)?;
            let action = match take_u8(body)? {
                1 => UserAction::Deliver(take_blob(body)?),
                2 => UserAction::Terminate,
                other => return Err(LinkError::UnknownKind(other)),
            };
            LinkMessage::UserCommand {
                app_id,
                user_id,
                action,
            }
        }
        other => return Err(LinkError::UnknownKind(other)),
    };
    Ok(message)
}

/// Decodes an event's fields (the inverse of [`put_event`]); the frame shares `body`'s memory.
pub fn take_event(body: &mut Bytes) -> Result<ChannelEvent, LinkError> {
    let app_id = take_name(body)?;
    let channel = take_name(body)?;
    let except_socket_id = take_name(body)?;
    let frame_len = take_u32(body)? as usize;
    if frame_len > body.remaining() {
        return Err(LinkError::Truncated);
    }
    let frame = body.split_to(frame_len);
    Ok(ChannelEvent {
        app_id,
        channel,
        except_socket_id,
        frame,
    })
}

/// A blob that must be UTF-8 text.
fn take_text(body: &mut Bytes) -> Result<String, LinkError> {
    let blob = take_blob(body)?;
    String::from_utf8(blob.to_vec()).map_err(|_| LinkError::NotUtf8)
}

fn take_blob(body: &mut Bytes) -> Result<Bytes, LinkError> {
    let len = take_u32(body)? as usize;
    if len > body.remaining() {
        return Err(LinkError::Truncated);
    }
    Ok(body.split_to(len))
}

fn take_channel(body: &mut Bytes) -> Result<PresenceChannel, LinkError> {
    Ok(PresenceChannel {
        app_id: take_name(body)?,
        channel: take_name(body)?,
    })
}

fn take_member(body: &mut Bytes) -> Result<Member, LinkError> {
    let user_id = take_name(body)?;
    let info_len = take_u32(body)? as usize;
    if info_len > body.remaining() {
        return Err(LinkError::Truncated);
    }
    Ok(Member {
        user_id,
        user_info: body.split_to(info_len),
    })
}

fn take_members(body: &mut Bytes) -> Result<Vec<Member>, LinkError> {
    let count = take_u32(body)? as usize;
    if count > MEMBERS_MAX {
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

fn take_u8(body: &mut Bytes) -> Result<u8, LinkError> {
    if body.remaining() < 1 {
        return Err(LinkError::Truncated);
    }
    Ok(body.get_u8())
}

fn take_u16(body: &mut Bytes) -> Result<u16, LinkError> {
    if body.remaining() < 2 {
        return Err(LinkError::Truncated);
    }
    Ok(body.get_u16_le())
}

fn take_u32(body: &mut Bytes) -> Result<u32, LinkError> {
    if body.remaining() < 4 {
        return Err(LinkError::Truncated);
    }
    Ok(body.get_u32_le())
}

fn take_u64(body: &mut Bytes) -> Result<u64, LinkError> {
    if body.remaining() < 8 {
        return Err(LinkError::Truncated);
    }
    Ok(body.get_u64_le())
}

fn take_name(body: &mut Bytes) -> Result<String, LinkError> {
    let len = usize::from(take_u16(body)?);
    if len > NAME_BYTES_MAX {
        return Err(LinkError::NameTooLong(len));
    }
    if len > body.remaining() {
        return Err(LinkError::Truncated);
    }
    let bytes = body.split_to(len);
    String::from_utf8(bytes.to_vec()).map_err(|_| LinkError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(frame: &'static [u8]) -> ChannelEvent {
        ChannelEvent {
            app_id: "app-1".into(),
            channel: "presence-room".into(),
            except_socket_id: "123.456".into(),
            frame: Bytes::from_static(frame),
        }
    }

    fn room() -> PresenceChannel {
        PresenceChannel {
            app_id: "app-1".into(),
            channel: "presence-room".into(),
        }
    }

    fn member(user_id: &str, info: &'static [u8]) -> Member {
        Member {
            user_id: user_id.into(),
            user_info: Bytes::from_static(info),
        }
    }

    fn all_messages() -> Vec<LinkMessage> {
        vec![
            LinkMessage::Hello {
                version: VERSION,
                shard: 3,
                shard_count: 8,
                cluster: true,
            },
            LinkMessage::Welcome {
                version: VERSION,
                node_id: 0xdead_beef_0102_0304,
            },
            LinkMessage::Subscribe {
                app_id: "a".into(),
                channel: "private-x".into(),
                seq: 7,
            },
            LinkMessage::Subscribed {
                app_id: "a".into(),
                channel: "private-x".into(),
                seq: u32::MAX,
            },
            LinkMessage::Unsubscribe {
                app_id: "a".into(),
                channel: "ch".into(),
            },
            LinkMessage::Publish(event(b"\x81\x05hello")),
            LinkMessage::Deliver(ChannelEvent {
                except_socket_id: String::new(),
                ..event(b"")
            }),
            LinkMessage::MemberJoin(room(), member("u1", b"{\"name\":\"A\"}")),
            LinkMessage::MemberLeave(room(), "u1".into()),
            LinkMessage::MembersQuery(room(), 9),
            LinkMessage::MembersResync(room(), vec![member("u1", b"{}"), member("u2", b"")]),
            LinkMessage::ResyncDone,
            LinkMessage::MembersSnapshot(room(), 9, vec![member("u3", b"{\"x\":1}")]),
            LinkMessage::MembersSnapshot(room(), 10, Vec::new()),
            LinkMessage::MemberAdded(room(), member("u4", b"null")),
            LinkMessage::MemberRemoved(room(), "u4".into()),
            LinkMessage::Stats(BridgeStats {
                redis_connected: true,
                redis_reconnects: 1,
                publishes_relayed: 2,
                publishes_dropped: 3,
                messages_received: 4,
                deliveries_dropped: 5,
                publish_queue_depth: 6,
                links: 7,
                webhook_events_delivered: 8,
                webhook_requests_failed: 9,
                webhook_events_given_up: 10,
                webhook_events_dropped: 11,
                webhook_events_pending: 12,
                auth_granted: 13,
                auth_refused: 14,
                auth_failed: 15,
                auth_shed: 16,
            }),
            LinkMessage::WebhookConfig(Bytes::from_static(b"{\"apps\":[]}")),
            LinkMessage::Hook(HookEvent {
                app_id: "a".into(),
                channel: "private-x".into(),
                kind: WebhookEventType::ClientEvent,
                body: Bytes::from_static(b"{\"name\":\"client_event\"}"),
            }),
            LinkMessage::Hook(HookEvent {
                app_id: "a".into(),
                channel: "cache-x".into(),
                kind: WebhookEventType::CacheMiss,
                body: Bytes::new(),
            }),
            LinkMessage::AuthRequest(AuthRequest {
                request_id: 77,
                app_id: "a".into(),
                url: "http://127.0.0.1:9/auth?x=1".into(),
                socket_id: "1.2".into(),
                channel: "private-x".into(),
                headers: vec![("Cookie".into(), "s=1; t=2".into())],
                form: "device=abc".into(),
            }),
            LinkMessage::AuthResponse {
                request_id: 77,
                outcome: AuthOutcome::Granted {
                    auth: "key:sig".into(),
                    channel_data: "{\"user_id\":\"u\"}".into(),
                },
            },
            LinkMessage::AuthResponse {
                request_id: 78,
                outcome: AuthOutcome::Refused {
                    status: 403,
                    reason: "Forbidden".into(),
                },
            },
            LinkMessage::CacheQuery {
                app_id: "a".into(),
                channel: "cache-x".into(),
                query_id: 5,
            },
            LinkMessage::CacheAnswer {
                query_id: 5,
                frame: Bytes::from_static(b"\x81\x01x"),
            },
            LinkMessage::CacheAnswer {
                query_id: 6,
                frame: Bytes::new(),
            },
            LinkMessage::UserCommand {
                app_id: "a".into(),
                user_id: "u".into(),
                action: UserAction::Deliver(Bytes::from_static(b"\x81\x01y")),
            },
            LinkMessage::UserCommand {
                app_id: "a".into(),
                user_id: "u".into(),
                action: UserAction::Terminate,
            },
            LinkMessage::ConnectionCounts(vec![("a".into(), 7), ("b".into(), 0)]),
            LinkMessage::ConnectionCounts(Vec::new()),
            LinkMessage::ChannelsQuery {
                query_id: 3,
                app_id: "a".into(),
                filter: ChannelFilter::Prefix("presence-".into()),
            },
            LinkMessage::ChannelsQuery {
                query_id: 4,
                app_id: "a".into(),
                filter: ChannelFilter::Names(vec!["x".into(), "presence-y".into()]),
            },
            LinkMessage::ChannelsAnswer {
                query_id: 4,
                channels: vec![
                    ChannelCount {
                        name: "x".into(),
                        subscriptions: 12,
                        users: None,
                    },
                    ChannelCount {
                        name: "presence-y".into(),
                        subscriptions: 3,
                        users: Some(2),
                    },
                ],
            },
        ]
    }

    #[test]
    fn every_message_round_trips_alone_and_back_to_back() {
        let mut buf = BytesMut::new();
        for message in all_messages() {
            encode(&message, &mut buf).expect("encodes");
        }
        for expected in all_messages() {
            assert_eq!(decode(&mut buf), Ok(Some(expected)));
        }
        assert_eq!(decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn every_webhook_kind_has_its_own_code() {
        for kind in WebhookEventType::ALL {
            assert_eq!(hook_kind_from_code(hook_kind_code(kind)), Ok(kind));
        }
        assert_eq!(hook_kind_from_code(0), Err(LinkError::UnknownKind(0)));
        assert_eq!(hook_kind_from_code(8), Err(LinkError::UnknownKind(8)));
    }

    #[test]
    fn partial_frames_need_more_bytes_and_consume_nothing() {
        let mut whole = BytesMut::new();
        encode(&LinkMessage::Publish(event(b"\x81\x02hi")), &mut whole).expect("encodes");
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(decode(&mut part), Ok(None), "cut at {cut}");
            assert_eq!(part.len(), cut);
        }
    }

    #[test]
    fn oversized_names_are_refused_on_both_sides() {
        let long = "x".repeat(NAME_BYTES_MAX + 1);
        let mut buf = BytesMut::from(&b"keep"[..]);
        let message = LinkMessage::Unsubscribe {
            app_id: "a".into(),
            channel: long.clone(),
        };
        assert_eq!(
            encode(&message, &mut buf),
            Err(LinkError::NameTooLong(long.len()))
        );
        assert_eq!(
            &buf[..],
            b"keep",
            "a failed encode leaves the buffer as it was"
        );

        // Hand-built frame announcing a 300-byte name.
        let mut bad = BytesMut::new();
        bad.put_u32_le(1 + 2 + 300);
        bad.put_u8(KIND_UNSUBSCRIBE);
        bad.put_u16_le(300);
        bad.extend_from_slice(&[b'y'; 300]);
        assert_eq!(decode(&mut bad), Err(LinkError::NameTooLong(300)));
    }

    #[test]
    fn corrupt_frames_are_errors_not_panics() {
        let cases: Vec<(Vec<u8>, LinkError)> = vec![
            (vec![0, 0, 0, 0], LinkError::FrameLength(0)),
            (
                (FRAME_BYTES_MAX as u32).to_le_bytes().to_vec(),
                LinkError::FrameLength(FRAME_BYTES_MAX),
            ),
            (vec![1, 0, 0, 0, 77], LinkError::UnknownKind(77)),
            (vec![2, 0, 0, 0, KIND_HELLO, 1], LinkError::Truncated),
            (
                vec![4, 0, 0, 0, KIND_UNSUBSCRIBE, 1, 0, b'a'],
                LinkError::Truncated,
            ),
            (
                vec![6, 0, 0, 0, KIND_UNSUBSCRIBE, 1, 0, 0xff, 0, 0],
                LinkError::NotUtf8,
            ),
            (
                vec![9, 0, 0, 0, KIND_HELLO, 1, 0, 0, 0, 1, 0, 1, 9],
                LinkError::TrailingBytes,
            ),
        ];
        for (bytes, expected) in cases {
            let mut buf = BytesMut::from(&bytes[..]);
            assert_eq!(decode(&mut buf), Err(expected), "input {bytes:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic fuzz: every prefix of a valid stream with each byte flipped.
        let mut valid = BytesMut::new();
        for message in all_messages() {
            encode(&message, &mut valid).expect("encodes");
        }
        for index in 0..valid.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bytes = valid.clone();
                bytes[index] ^= flip;
                let mut buf = bytes;
                for _ in 0..32 {
                    match decode(&mut buf) {
                        Ok(Some(_)) => continue,
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
    }

    #[test]
    fn delivered_frames_share_the_read_buffer() {
        let mut buf = BytesMut::new();
        encode(&LinkMessage::Deliver(event(b"\x81\x03abc")), &mut buf).expect("encodes");
        let Ok(Some(LinkMessage::Deliver(got))) = decode(&mut buf) else {
            panic!("expected a Deliver");
        };
        assert_eq!(&got.frame[..], b"\x81\x03abc");
    }
}
