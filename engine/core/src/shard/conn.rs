//! One connection's state as the shard keeps it: protocol phase, read buffer, WebSocket decoder,
//! bounded outbound queue, subscriptions and sign-in. Small at rest: no buffer is held while no
//! frame is partial and nothing is queued.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::message::AppIndex;
use crate::dialect::Dialect;
use crate::ws::frame::Decoder;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading an HTTP request (upgrade or REST/health); keep-alive returns here.
    Http,
    /// An HTTP request waits for answers from other shards; further input waits too.
    HttpWaiting,
    /// An upgraded WebSocket speaking the Pusher protocol.
    Pusher,
    /// An upgraded WebSocket on the Socket.IO mount (Engine.IO 4, Socket.IO 5).
    SocketIo,
    /// An upgraded WebSocket on the channels JSON mount (`/channels/{key}`).
    ChannelsJson,
    /// An upgraded WebSocket on the WebSocket-over-HTTP mount (`/slip/{key}`), accepted by
    /// the app's backend.
    Slip,
    /// An upgraded WebSocket on the relay mount (`/relay/{key}`).
    Relay,
    /// An upgraded WebSocket on the echo path (Autobahn).
    Echo,
    /// The server sent a close frame and waits for the client's close until the deadline.
    Closing {
        /// Monotonic millisecond after which the socket is dropped without waiting more.
        deadline_ms: u64,
    },
    /// Flush what is queued, then close the socket.
    Finished,
    /// Drop the socket now, without flushing (slow consumer past its deadline).
    Abort,
}

impl Phase {
    /// An upgraded WebSocket the server has not started to close (any dialect, or the echo).
    pub fn is_open_websocket(self) -> bool {
        matches!(
            self,
            Phase::Pusher
                | Phase::SocketIo
                | Phase::ChannelsJson
                | Phase::Slip
                | Phase::Relay
                | Phase::Echo
        )
    }
}

/// Where one subscription is in the subscribe protocol (see `shard` module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// Waiting for every other shard to acknowledge this shard's interest in the channel.
    AwaitingAcks,
    /// The join request is at the channel's owner shard (presence and cache channels).
    AwaitingOwner,
    /// Receiving the channel's events.
    Active,
    /// Waiting for the app's authorization endpoint (auth offload, request id).
    AwaitingAuth(u32),
}

/// One channel a connection is subscribed to (or subscribing to).
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Channel name.
    pub channel: Arc<str>,
    /// Protocol state.
    pub state: SubState,
    /// The presence member this connection is in the channel as.
    pub member: Option<super::message::MemberData>,
    /// Whether the channel is a cache channel.
    pub cache: bool,
}

/// A signed-in user on a connection.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// `user_data.id`.
    pub user_id: Arc<str>,
    /// Users this connection watches.
    pub watchlist: Vec<Arc<str>>,
}

/// A connection's state on its shard.
#[derive(Debug)]
pub struct Conn {
    /// Unique on this shard; the part after the dot of the socket id.
    pub serial: u64,
    /// Current phase.
    pub phase: Phase,
    /// The connection's app once the Pusher handshake chose one.
    pub app: Option<AppIndex>,
    /// Whether this connection is counted in its app's connection total.
    pub counted: bool,
    /// Accepted on the metrics port: only `/metrics` is served.
    pub metrics_only: bool,
    /// Bytes received and not yet consumed (a partial request or frame). Emptied to no
    /// allocation when nothing is partial.
    pub read_buf: BytesMut,
    /// WebSocket frame decoder (after the upgrade).
    pub decoder: Decoder,
    /// Frames waiting for the socket, shared with other subscribers.
    pub outbound: VecDeque<Bytes>,
    /// Sum of `outbound` lengths, bounded by the outbound cap.
    pub outbound_bytes: usize,
    /// Already on the shard's wake list.
    pub wake_queued: bool,
    /// The socket refused part of the last write: queued bytes now count against the cap.
    pub write_blocked: bool,
    /// Input stopped in the middle of `read_buf` (output above the pause, or an HTTP request
    /// answered after a wait): the shell hands the held bytes back before it reads more.
    pub input_held: bool,
    /// Monotonic millisecond the connection was accepted (or its Pusher session opened).
    pub opened_ms: u64,
    /// Monotonic millisecond of the last frame received.
    pub last_seen_ms: u64,
    /// Monotonic millisecond the server sent `pusher:ping`, 0 when none is outstanding (the
    /// clock starts above 0).
    pub ping_sent_ms: u64,
    /// Channels.
    pub subscriptions: Vec<Subscription>,
    /// Sign-in, if any.
    pub signed_in: Option<Box<SignedIn>>,
    /// What an offloaded channel authorization sends along (apps with an authorization URL).
    pub auth_forward: Option<Box<super::auth_forward::AuthForward>>,
    /// The Socket.IO session of a connection on the Socket.IO mount.
    pub socketio: Option<Box<super::socketio_state::SocketIoSession>>,
    /// The session of a connection on the channels JSON mount.
    pub channels_json: Option<Box<super::channels_json_state::ChannelsJsonSession>>,
    /// The session of a connection on the WebSocket-over-HTTP mount (from its upgrade on).
    pub slip: Option<Box<super::slip_state::SlipSession>>,
    /// The session of a connection on the relay mount: its room.
    pub relay: Option<Box<super::relay_state::RelaySession>>,
    /// Signed in or holding a private/presence subscription (authorised-connection timeout).
    pub authorized: bool,
    /// Second of the current client-event rate window.
    pub client_event_window_s: u64,
    /// Client events counted in the current window.
    pub client_events_in_window: u32,
}

impl Conn {
    /// A freshly accepted connection.
    pub fn new(serial: u64, now_ms: u64, max_message_size: usize) -> Self {
        Conn {
            serial,
            phase: Phase::Http,
            app: None,
            counted: false,
            metrics_only: false,
            read_buf: BytesMut::new(),
            decoder: Decoder::new(max_message_size),
            outbound: VecDeque::new(),
            outbound_bytes: 0,
            wake_queued: false,
            write_blocked: false,
            input_held: false,
            opened_ms: now_ms,
            last_seen_ms: now_ms,
            ping_sent_ms: 0,
            subscriptions: Vec::new(),
            signed_in: None,
            auth_forward: None,
            socketio: None,
            channels_json: None,
            slip: None,
            relay: None,
            authorized: false,
            client_event_window_s: 0,
            client_events_in_window: 0,
        }
    }

    /// Whether the connection takes new frames (not closing or closed).
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Http | Phase::HttpWaiting) || self.phase.is_open_websocket()
    }

    /// The wire protocol the connection speaks (fixed at the upgrade).
    pub fn dialect(&self) -> Dialect {
        if self.socketio.is_some() {
            Dialect::SocketIo
        } else if self.channels_json.is_some() {
            Dialect::ChannelsJson
        } else if self.slip.is_some() {
            Dialect::Slip
        } else if self.phase == Phase::Relay || self.relay.is_some() {
            Dialect::Relay
        } else {
            Dialect::Pusher
        }
    }

    /// Counts one client event (a Pusher `client-*` event, a Socket.IO `publish`) in the
    /// connection's current second; false when that makes more than `rate_max` (0 = unlimited).
    pub fn take_client_event(&mut self, now_s: u64, rate_max: u32) -> bool {
        if rate_max == 0 {
            return true;
        }
        if self.client_event_window_s != now_s {
            self.client_event_window_s = now_s;
            self.client_events_in_window = 0;
        }
        self.client_events_in_window += 1;
        self.client_events_in_window <= rate_max
    }

    /// A WebSocket-over-HTTP connection with as many calls in flight as it may have: its
    /// input waits for the backend.
    pub fn awaits_backend(&self) -> bool {
        self.slip.as_deref().is_some_and(|session| {
            session.calls_in_flight >= crate::limits::SLIP_CALLS_PER_CONNECTION_MAX
        })
    }

    /// Index of a channel in `subscriptions`.
    pub fn subscription_index(&self, channel: &str) -> Option<usize> {
        self.subscriptions
            .iter()
            .position(|s| &*s.channel == channel)
    }
}
