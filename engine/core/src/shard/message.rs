//! Messages that travel between shards over the bounded inter-shard rings.
//!
//! Every variant is plain data (`Send`): channel and user names are `Arc<str>`, frames are
//! already-encoded WebSocket frames in `Bytes` and a published message is an `Arc` holding its
//! framings, so a cross-shard delivery is a refcount bump, never a copy. Ordering is FIFO per (sender, receiver) pair, which the protocols below rely on.

use std::sync::Arc;

use bytes::Bytes;

use crate::dialect::Published;
use crate::functions::{Associations, Pipeline, Publication};
use crate::relay::message::{Data, Role, Target};
use crate::slip::event::Command;

/// What a relay connection sent its room.
#[derive(Debug, Clone)]
pub enum RelayInput {
    /// `{"connect": role}`.
    Connect(Role),
    /// `{"data": {…}}`, with the server's `client_id`.
    Data(Data, Target),
    /// The connection is gone.
    Leave,
}

/// Index of an application in the process-wide app table.
pub type AppIndex = u32;

/// A connection on some shard: slab key plus the connection's serial (unique per shard), so a
/// late reply for a connection that has gone (and whose key was reused) is recognised and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnRef {
    /// Shard that owns the connection.
    pub shard: u16,
    /// Slab key on that shard.
    pub key: u32,
    /// Serial of the connection (the part after the dot of its socket id).
    pub serial: u64,
}

/// A presence member as carried to the owner shard.
#[derive(Debug, Clone)]
pub struct MemberData {
    /// `user_id`, normalised to a string.
    pub user_id: Arc<str>,
    /// `user_info` as JSON text (`null` when absent).
    pub user_info: Arc<str>,
}

/// A request to the owner shard of a presence or cache channel to join it.
#[derive(Debug, Clone)]
pub struct OwnerJoin {
    /// Application.
    pub app: AppIndex,
    /// Channel name.
    pub channel: Arc<str>,
    /// The subscribing connection (the reply goes to its shard).
    pub conn: ConnRef,
    /// Presence member data, for presence channels.
    pub member: Option<MemberData>,
    /// Whether the channel is a cache channel (reply carries the cached event or a miss).
    pub want_cache: bool,
}

/// A question every shard (or one owner) answers about its part of the node's state, for the
/// REST API and metrics. The asking shard merges the parts.
#[derive(Debug)]
pub enum Query {
    /// Occupied channels of an app, optionally by name prefix.
    Channels {
        /// Application.
        app: AppIndex,
        /// `filter_by_prefix`.
        prefix: Option<Arc<str>>,
    },
    /// Some channels by name.
    Named {
        /// Application.
        app: AppIndex,
        /// Channel names.
        names: Vec<Arc<str>>,
    },
    /// Members of a presence channel (asked of its owner only).
    Users {
        /// Application.
        app: AppIndex,
        /// Channel name.
        channel: Arc<str>,
    },
    /// Counters for `/metrics`.
    Stats,
}

/// One channel as one shard sees it.
#[derive(Debug, Clone)]
pub struct ChannelStat {
    /// Channel name.
    pub name: Arc<str>,
    /// Local subscriptions on the answering shard.
    pub subscriptions: u64,
    /// Presence users, from the channel's owner.
    pub users: Option<u64>,
    /// The cached event's frame and its remaining seconds, from the channel's owner.
    pub cache: Option<(Bytes, u64)>,
}

/// One shard's answer to a [`Query`].
#[derive(Debug, Default, Clone)]
pub struct QueryPart {
    /// Channels.
    pub channels: Vec<ChannelStat>,
    /// Presence member ids (for `Users`).
    pub users: Vec<Arc<str>>,
    /// Counters (for `Stats`).
    pub stats: Option<Box<super::stats::StatsSnapshot>>,
    /// The other nodes' part (several nodes): its user counts are the cluster's.
    pub cluster: bool,
}

/// One message between shards.
#[derive(Debug, Clone)]
pub enum ShardMessage {
    /// The sender shard gained (`on`) or lost its first/last subscriber of a channel.
    Interest {
        /// Application.
        app: AppIndex,
        /// Channel name.
        channel: Arc<str>,
        /// Sending shard.
        from: u16,
        /// Gained or lost interest.
        on: bool,
        /// Sequence of this announcement, echoed in the ack.
        seq: u32,
    },
    /// The receiver of an `Interest { on: true }` has recorded it.
    InterestAck {
        /// Application.
        app: AppIndex,
        /// Channel name.
        channel: Arc<str>,
        /// The acknowledged announcement.
        seq: u32,
    },
    /// Deliver a message to the receiving shard's subscribers of a channel.
    Deliver {
        /// Application.
        app: AppIndex,
        /// Channel name.
        channel: Arc<str>,
        /// The message, with the framings already encoded (shared, never copied).
        message: Arc<Published>,
        /// A connection that must not receive it (the publisher's own socket).
        except: Option<(u16, u64)>,
    },
    /// Deliver a frame to every local connection signed in as a user.
    DeliverToUser {
        /// Application.
        app: AppIndex,
        /// User id.
        user_id: Arc<str>,
        /// The encoded WebSocket frame.
        frame: Bytes,
    },
    /// Deliver a frame to one connection.
    DeliverToConn {
        /// Target connection.
        conn: ConnRef,
        /// The encoded WebSocket frame.
        frame: Bytes,
    },
    /// Join request to the owner shard of a presence or cache channel.
    OwnerJoin(Box<OwnerJoin>),
    /// The owner's answer: frames to send when the subscription becomes active.
    OwnerJoined {
        /// Channel name.
        channel: Arc<str>,
        /// The subscribing connection.
        conn: ConnRef,
        /// False when the owner refused (member limit); `frames` then carry the error.
        accepted: bool,
        /// `subscription_succeeded` (with the presence snapshot) and any cached event.
        frames: Vec<Bytes>,
    },
    /// A connection left a presence channel (unsubscribe or disconnect).
    OwnerLeave {
        /// Application.
        app: AppIndex,
        /// Channel name.
        channel: Arc<str>,
        /// The member's user id.
        user_id: Arc<str>,
    },
    /// Remember the last event of a cache channel (sent to the channel's owner).
    CacheStore {
        /// Application.
        app: AppIndex,
        /// Channel name.
        channel: Arc<str>,
        /// The encoded event frame.
        frame: Bytes,
    },
    /// A connection signed in as a user (sent to the user's owner shard).
    UserOnline {
        /// Application.
        app: AppIndex,
        /// User id.
        user_id: Arc<str>,
    },
    /// A signed-in connection went away (sent to the user's owner shard).
    UserOffline {
        /// Application.
        app: AppIndex,
        /// User id.
        user_id: Arc<str>,
    },
    /// `watcher` wants online/offline events of `watched` (sent to `watched`'s owner shard).
    Watch {
        /// Application.
        app: AppIndex,
        /// The signed-in user holding the watchlist.
        watcher: Arc<str>,
        /// A user on the watchlist.
        watched: Arc<str>,
        /// The watcher's connection, told at once if `watched` is online.
        conn: ConnRef,
    },
    /// The reverse of `Watch`, when a watcher's connection goes away.
    Unwatch {
        /// Application.
        app: AppIndex,
        /// The signed-in user holding the watchlist.
        watcher: Arc<str>,
        /// A user on the watchlist.
        watched: Arc<str>,
    },
    /// A question from shard `from`; answered with `QueryReply`.
    Query {
        /// Id at the asking shard.
        id: u64,
        /// Asking shard.
        from: u16,
        /// The question (shared by every shard it went to).
        query: Arc<Query>,
    },
    /// One shard's answer.
    QueryReply {
        /// Id at the asking shard.
        id: u64,
        /// The answer.
        part: Box<QueryPart>,
    },
    /// Close every local connection signed in as this user with 4009.
    TerminateUser {
        /// Application.
        app: AppIndex,
        /// User id.
        user_id: Arc<str>,
    },
    /// Run a publish through its channel's functions (sent to the channel's owner shard, which
    /// holds it meanwhile and publishes the result: one channel's messages keep their order).
    RunFunctions {
        /// Application.
        app: AppIndex,
        /// Channel name.
        channel: Arc<str>,
        /// What was published.
        publication: Box<Publication>,
        /// The channel's functions.
        pipeline: Arc<Pipeline>,
    },
    /// `PUT /associations` on another shard of this node replaced every app's associations.
    Associations(Arc<Associations>),
    /// A WebSocket-over-HTTP backend's command for a connection of the target shard.
    SlipCommand {
        /// The backend's app.
        app: AppIndex,
        /// The connection's serial (from its connection id).
        serial: u64,
        /// What to do.
        command: Box<Command>,
    },
    /// A relay connection's message (or its leaving), to its room's owner shard.
    RelayIn {
        /// Application.
        app: AppIndex,
        /// The room.
        room: Arc<str>,
        /// The connection.
        conn: ConnRef,
        /// What it sent.
        input: RelayInput,
    },
    /// From a relay room's owner: frames for the room's connections on the target shard, in
    /// order.
    RelayOut(Vec<(ConnRef, Bytes)>),
    /// From a relay room's owner: the room (or the owner) is full; close the connection.
    RelayRefused {
        /// Target connection.
        conn: ConnRef,
    },
    /// A WebSocket-over-HTTP backend's `CLOSE_CHANNEL`: close the shard's connections of
    /// the dialect in the channel.
    SlipCloseChannel {
        /// Application.
        app: AppIndex,
        /// Channel name.
        channel: Arc<str>,
    },
}
