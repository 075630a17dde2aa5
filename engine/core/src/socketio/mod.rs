//! The Socket.IO dialect (Ekko's server): Engine.IO 4 over WebSocket and Socket.IO 5, on the
//! engine's apps and channels (`docs/socketio.md`). Stateless pieces only; the connection's
//! session lives in the shard (`shard/socketio.rs`).
//!
//! # Layout
//! - `event`: the events an Ekko client emits (`subscribe`, `unsubscribe`, `publish`).
//! - `packet`: Engine.IO and Socket.IO packets: parsing the client's, encoding the server's.
//! - `rooms`: channel names a client may use, presence and admin rooms, their events' JSON.
//! - `token`: the JWT a client joins a namespace with.

pub mod event;
pub mod packet;
pub mod rooms;
pub mod token;

/// Where the dialect is mounted: `GET /socket.io/?EIO=4&transport=websocket`.
pub const MOUNT: &str = "/socket.io/";

/// Whether a request path is the mount (`/socket.io/`, or without its trailing slash).
pub fn is_mount(path: &str) -> bool {
    path == MOUNT || path == &MOUNT[..MOUNT.len() - 1]
}

/// The dialect's settings, fixed at start (`--socketio-*`, `--jwt-secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketIoSettings {
    /// Engine.IO `pingInterval`: milliseconds between server pings.
    pub ping_interval_ms: u32,
    /// Engine.IO `pingTimeout`: milliseconds a ping may go unanswered.
    pub ping_timeout_ms: u32,
    /// Engine.IO `maxPayload`: the largest message a client may send, in bytes.
    pub max_payload_bytes: usize,
    /// The server-wide JWT secret (Ekko's `SECRET_KEY`), tried after the app's own secret.
    pub jwt_secret: Option<String>,
}

impl Default for SocketIoSettings {
    fn default() -> Self {
        use crate::limits::*;
        SocketIoSettings {
            ping_interval_ms: SOCKETIO_PING_INTERVAL_MS_DEFAULT,
            ping_timeout_ms: SOCKETIO_PING_TIMEOUT_MS_DEFAULT,
            max_payload_bytes: SOCKETIO_MAX_PAYLOAD_BYTES_DEFAULT,
            jwt_secret: None,
        }
    }
}

/// What the Engine.IO handshake request asks for, and the error body Engine.IO answers a
/// request it will not serve with (HTTP 400, `{"code":…,"message":…}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeRefusal {
    /// `transport` is not `websocket` (long-polling is not served): code 0.
    TransportUnknown,
    /// `EIO` is not 4: code 5.
    UnsupportedProtocolVersion,
}

impl HandshakeRefusal {
    /// The JSON body Engine.IO sends with it.
    pub fn body(self) -> &'static str {
        match self {
            HandshakeRefusal::TransportUnknown => r#"{"code":0,"message":"Transport unknown"}"#,
            HandshakeRefusal::UnsupportedProtocolVersion => {
                r#"{"code":5,"message":"Unsupported protocol version"}"#
            }
        }
    }
}

/// Checks the query of a request to the mount: `EIO=4` and `transport=websocket`.
pub fn check_handshake(eio: Option<&str>, transport: Option<&str>) -> Result<(), HandshakeRefusal> {
    if transport != Some("websocket") {
        return Err(HandshakeRefusal::TransportUnknown);
    }
    if eio != Some("4") {
        return Err(HandshakeRefusal::UnsupportedProtocolVersion);
    }
    Ok(())
}
