//! What a Socket.IO connection keeps on its shard: the namespaces (apps) it joined with their
//! tokens' grants and the rooms (channels) joined in each, the Origin it came from (checked against each app it joins), its heartbeat
//! and its protocol-error count. Boxed on the connection, so a Pusher connection pays one
//! pointer.

use std::sync::Arc;

use super::message::AppIndex;

/// What the shard's sweep does to a Socket.IO connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketIoTick {
    /// Send the Engine.IO ping.
    Ping,
    /// The last ping went unanswered for `pingTimeout`: close.
    PingTimeout,
}

/// Why a connection is in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRole {
    /// Asked for by name (or the admin room, for admins).
    Plain,
    /// Asked for with `withPresence`, as this uuid: leaving the channel leaves its presence
    /// room too and announces `left` there.
    WithPresence(Option<Box<str>>),
    /// The presence room `withPresence` joined, as this uuid: once active, `joined` is
    /// announced in it (the joiner hears its own).
    PresenceOf(Option<Box<str>>),
}

/// One room (a channel of the namespace's app) a connection joined or is joining.
#[derive(Debug, Clone)]
pub struct Room {
    /// The channel.
    pub channel: Arc<str>,
    /// Receiving the channel's events (else waiting for the other shards' acks).
    pub active: bool,
    /// Why the room was joined.
    pub role: RoomRole,
    /// The id of the `subscribe` acknowledgement that waits for this room to be active.
    pub ack: Option<u64>,
}

/// One namespace a connection joined: an app.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// The app.
    pub app: AppIndex,
    /// `/<app_id>`, as the client wrote it.
    pub name: Box<str>,
    /// The `uuid` the client joined with (Ekko's client id), if any.
    pub uuid: Option<Box<str>>,
    /// The token's `admin` claim.
    pub admin: bool,
    /// Rooms joined (the admin room included, for admins).
    pub rooms: Vec<Room>,
}

impl Namespace {
    /// The index of a room.
    pub fn room_index(&self, channel: &str) -> Option<usize> {
        self.rooms.iter().position(|r| &*r.channel == channel)
    }

    /// Whether a `subscribe` acknowledgement still waits for a room.
    pub fn ack_waits(&self, id: u64) -> bool {
        self.rooms.iter().any(|r| r.ack == Some(id) && !r.active)
    }
}

/// A Socket.IO connection's session.
#[derive(Debug)]
pub struct SocketIoSession {
    /// Joined namespaces, at most `SOCKETIO_NAMESPACES_PER_CONNECTION_MAX`.
    pub namespaces: Vec<Namespace>,
    /// The upgrade's `Origin` header, if any (apps are chosen after the upgrade, at CONNECT).
    pub origin: Option<Box<str>>,
    /// Monotonic millisecond the next server ping is due (when none is outstanding).
    pub ping_due_ms: u64,
    /// Protocol errors so far (bounded by `SOCKETIO_ERRORS_PER_CONNECTION_MAX`).
    pub errors: u32,
    /// Namespaces joined so far, for their sids (never reused on the connection).
    pub joins: u32,
}

impl SocketIoSession {
    /// A session opened at `now_ms`, its first ping due after `ping_interval_ms`.
    pub fn new(origin: Option<&str>, now_ms: u64, ping_interval_ms: u32) -> Self {
        SocketIoSession {
            namespaces: Vec::new(),
            origin: origin.map(Box::from),
            ping_due_ms: now_ms + u64::from(ping_interval_ms),
            errors: 0,
            joins: 0,
        }
    }

    /// Rooms joined in every namespace (bounded by `SUBSCRIPTIONS_PER_CONNECTION_MAX`).
    pub fn room_count(&self) -> usize {
        self.namespaces.iter().map(|n| n.rooms.len()).sum()
    }

    /// The index of the namespace of an app.
    pub fn namespace_of_app(&self, app: AppIndex) -> Option<usize> {
        self.namespaces.iter().position(|n| n.app == app)
    }

    /// The index of a joined namespace.
    pub fn namespace_index(&self, name: &str) -> Option<usize> {
        self.namespaces.iter().position(|n| &*n.name == name)
    }
}
