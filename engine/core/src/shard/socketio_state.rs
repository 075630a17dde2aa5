//! What a Socket.IO connection keeps on its shard: the namespaces (apps) it joined with their
//! tokens' grants, the Origin it came from (checked against each app it joins), its heartbeat
//! and its protocol-error count. Boxed on the connection, so a Pusher connection pays one
//! pointer.

use super::message::AppIndex;

/// What the shard's sweep does to a Socket.IO connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketIoTick {
    /// Send the Engine.IO ping.
    Ping,
    /// The last ping went unanswered for `pingTimeout`: close.
    PingTimeout,
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

    /// The index of a joined namespace.
    pub fn namespace_index(&self, name: &str) -> Option<usize> {
        self.namespaces.iter().position(|n| &*n.name == name)
    }
}
