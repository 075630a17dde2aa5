//! The Socket.IO dialect on a shard (`docs/socketio.md`): the Engine.IO session opened by the
//! upgrade on `/socket.io/`, its heartbeat on the shard's sweep, namespaces (apps) joined with
//! a JWT, and the client's packets to their feature.

use super::conn::Phase;
use super::socketio_state::{Namespace, SocketIoSession, SocketIoTick};
use super::Shard;
use crate::http::request::RequestHead;
use crate::http::response;
use crate::limits::{SOCKETIO_ERRORS_PER_CONNECTION_MAX, SOCKETIO_NAMESPACES_PER_CONNECTION_MAX};
use crate::pusher::client_message::parse_json;
use crate::socketio::event::{self, EventError};
use crate::socketio::packet::{self, EnginePacket, PacketError, SioKind, SioPacket};
use crate::socketio::rooms::StatusEvent;
use crate::socketio::token;
use crate::socketio::HandshakeRefusal;
use crate::ws::frame;
use simd_json::prelude::*;

/// The message every refused CONNECT gets, as Ekko's server sent it: the client learns
/// nothing about which check failed.
const AUTHORIZATION_ERROR: &str = "Authorization error";

impl Shard {
    /// An upgrade on the Socket.IO mount: Engine.IO 4 over WebSocket, or Engine.IO's 400.
    pub(super) fn handle_socketio_upgrade(&mut self, key: u32, head: &RequestHead) {
        let checked = crate::socketio::check_handshake(
            head.query_param("EIO").as_deref(),
            head.query_param("transport").as_deref(),
        );
        if let Err(refusal) = checked {
            self.refuse_socketio_request(key, refusal);
            return;
        }
        let Some(accept) = self.checked_upgrade(key, head) else {
            return;
        };
        self.send_accept(key, &accept);
        self.set_phase(key, Phase::SocketIo);
        self.open_socketio(key, head);
    }

    /// A request to the mount Engine.IO will not serve (long-polling, another protocol
    /// version): its 400 and JSON error body, then the connection closes.
    pub(super) fn refuse_socketio_request(&mut self, key: u32, refusal: HandshakeRefusal) {
        self.stats.record_http("socketio", 400);
        let body = refusal.body().as_bytes();
        self.push_control(
            key,
            response::response(400, "application/json", body, &[], false),
        );
        self.set_phase(key, Phase::Finished);
    }

    /// After the 101 on the Socket.IO mount: the session, the message-size bound of the
    /// dialect, and the Engine.IO open packet.
    pub(super) fn open_socketio(&mut self, key: u32, head: &RequestHead) {
        let settings = &self.settings.socketio;
        let (interval, timeout, max_payload) = (
            settings.ping_interval_ms,
            settings.ping_timeout_ms,
            settings.max_payload_bytes,
        );
        let sid = self.socket_id(self.conns[key as usize].serial);
        let now_ms = self.now_ms;
        let conn = &mut self.conns[key as usize];
        conn.decoder = frame::Decoder::new(max_payload);
        conn.socketio = Some(Box::new(SocketIoSession::new(
            head.header("origin"),
            now_ms,
            interval,
        )));
        self.stats.socketio_sessions_opened += 1;
        self.send_text(key, &packet::open(&sid, interval, timeout, max_payload));
    }

    /// One text frame of a Socket.IO connection: one Engine.IO packet.
    pub(super) fn handle_socketio_text(&mut self, key: u32, payload: &[u8]) {
        // The frame decoder has checked the UTF-8 of every text message.
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        match packet::parse_engine(text) {
            Ok(EnginePacket::Pong) | Ok(EnginePacket::Ignored) => {}
            Ok(EnginePacket::Ping) => self.send_text(key, packet::PONG),
            Ok(EnginePacket::Close) => self.close_ws(key, frame::CLOSE_NORMAL, ""),
            Ok(EnginePacket::Message(inner)) => match packet::parse_socketio(inner) {
                Ok(sio) => self.handle_socketio_packet(key, sio),
                Err(err) => self.socketio_refuse(key, "/", refusal_text(err)),
            },
            Err(_) => self.socketio_refuse(key, "/", "Unknown Engine.IO packet type"),
        }
    }

    /// A binary frame: Socket.IO attachments, which this server does not take.
    pub(super) fn handle_socketio_binary(&mut self, key: u32) {
        self.socketio_refuse(key, "/", refusal_text(PacketError::Binary));
    }

    fn handle_socketio_packet(&mut self, key: u32, sio: SioPacket<'_>) {
        match sio.kind {
            SioKind::Connect => self.socketio_connect(key, sio.namespace, sio.payload),
            SioKind::Disconnect => self.socketio_leave(key, sio.namespace),
            SioKind::Event => self.socketio_event(key, sio),
            // The server never asks for acknowledgements: an answer has nothing to answer.
            SioKind::Ack => {}
            SioKind::ConnectError => {
                self.socketio_refuse(key, sio.namespace, "Only the server sends CONNECT_ERROR")
            }
        }
    }

    /// CONNECT: the namespace names an app by id; the token in the auth object must be valid
    /// for it, and the upgrade's Origin allowed by it.
    fn socketio_connect(&mut self, key: u32, namespace: &str, payload: Option<&str>) {
        let Some(session) = self.conns[key as usize].socketio.as_deref() else {
            return;
        };
        if session.namespace_index(namespace).is_some() {
            // Joined already (a client reconnecting the namespace): confirmed again.
            let sid = self.namespace_sid(key, namespace);
            self.send_text(key, &packet::connect_ok(namespace, &sid));
            return;
        }
        if session.namespaces.len() >= SOCKETIO_NAMESPACES_PER_CONNECTION_MAX {
            self.stats.socketio_connects_refused += 1;
            self.send_text(
                key,
                &packet::connect_error(namespace, "Too many namespaces"),
            );
            return;
        }
        let origin_ok = |shard: &Shard, app| {
            shard
                .apps
                .get(app)
                .allowed_origins
                .allows(session.origin.as_deref())
        };
        let app = namespace
            .strip_prefix('/')
            .and_then(|id| self.apps.index_by_id(id));
        let Some(app) = app else {
            self.stats.socketio_connects_refused += 1;
            self.send_text(key, &packet::connect_error(namespace, "Invalid namespace"));
            return;
        };
        if !origin_ok(self, app) {
            self.stats.origin_refusals += 1;
            self.send_text(key, &packet::connect_error(namespace, AUTHORIZATION_ERROR));
            return;
        }
        let Some((jwt, uuid)) = payload.and_then(connect_auth) else {
            self.stats.socketio_connects_refused += 1;
            self.send_text(key, &packet::connect_error(namespace, AUTHORIZATION_ERROR));
            return;
        };
        let config = self.apps.get(app);
        if !config.enabled {
            self.stats.socketio_connects_refused += 1;
            self.send_text(key, &packet::connect_error(namespace, "App is disabled"));
            return;
        }
        let server_secret = self.settings.socketio.jwt_secret.as_deref().unwrap_or("");
        let secrets = [config.secret.as_str(), server_secret];
        let grant = match token::verify(&jwt, &secrets, &config.id, self.unix_s) {
            Ok(grant) => grant,
            Err(_) => {
                self.stats.socketio_connects_refused += 1;
                self.send_text(key, &packet::connect_error(namespace, AUTHORIZATION_ERROR));
                return;
            }
        };
        if !self.apps.try_admit(app) {
            self.stats.socketio_connects_refused += 1;
            let message = "App is over its connection quota";
            self.send_text(key, &packet::connect_error(namespace, message));
            return;
        }
        let Some(session) = self.conns[key as usize].socketio.as_deref_mut() else {
            self.apps.release(app);
            return;
        };
        session.joins += 1;
        let uuid: Option<Box<str>> = uuid.map(Box::from);
        session.namespaces.push(Namespace {
            app,
            name: Box::from(namespace),
            uuid: uuid.clone(),
            admin: grant.admin,
            rooms: Vec::new(),
        });
        let sid = self.namespace_sid(key, namespace);
        self.send_text(key, &packet::connect_ok(namespace, &sid));
        if grant.admin {
            self.socketio_join_admin_room(key, app);
        }
        self.publish_status(
            app,
            StatusEvent::Connection,
            uuid.as_deref(),
            grant.admin,
            None,
        );
    }

    /// The client leaves a namespace (a namespace never joined: nothing to do).
    fn socketio_leave(&mut self, key: u32, namespace: &str) {
        let Some(session) = self.conns[key as usize].socketio.as_deref_mut() else {
            return;
        };
        if let Some(index) = session.namespace_index(namespace) {
            let left = session.namespaces.swap_remove(index);
            self.socketio_leave_namespace(key, left);
        }
    }

    /// The connection is going away: it leaves every namespace. Idempotent.
    pub(super) fn socketio_detach(&mut self, key: u32) {
        let Some(session) = self
            .conns
            .get_mut(key as usize)
            .and_then(|c| c.socketio.as_deref_mut())
        else {
            return;
        };
        for namespace in std::mem::take(&mut session.namespaces) {
            self.socketio_leave_namespace(key, namespace);
        }
    }

    /// An EVENT: `["name", payload]` in a joined namespace, carried out by its feature.
    fn socketio_event(&mut self, key: u32, sio: SioPacket<'_>) {
        let app = self.conns[key as usize].socketio.as_deref().and_then(|s| {
            let index = s.namespace_index(sio.namespace)?;
            Some(s.namespaces[index].app)
        });
        let Some(app) = app else {
            self.socketio_refuse(key, sio.namespace, "Join the namespace first");
            return;
        };
        let Some(payload) = sio.payload else {
            self.socketio_refuse(key, sio.namespace, "An event needs a name");
            return;
        };
        match event::parse(payload) {
            Ok(parsed) => self.socketio_client_event(key, app, parsed, sio.ack_id),
            Err(EventError(reason)) => {
                if let Some(id) = sio.ack_id {
                    if self.socketio_count_error(key) {
                        let mut args = String::from("{\"ok\":false,\"error\":");
                        crate::pusher::json_escape::push_json_string(&mut args, reason);
                        args.push('}');
                        self.send_text(key, &packet::ack(sio.namespace, id, &args));
                    }
                } else {
                    self.socketio_refuse(key, sio.namespace, reason);
                }
            }
        }
    }

    /// Answers a packet the server will not take with an `error` event (the connection stays:
    /// CONNECT_ERROR would end the client's namespace socket), and closes a connection that
    /// keeps sending such packets.
    pub(super) fn socketio_refuse(&mut self, key: u32, namespace: &str, message: &str) {
        if !self.socketio_count_error(key) {
            return;
        }
        let mut args = String::from("{\"message\":");
        crate::pusher::json_escape::push_json_string(&mut args, message);
        args.push('}');
        self.send_text(key, &packet::event(namespace, "error", &args));
    }

    /// Counts a refused packet; past `SOCKETIO_ERRORS_PER_CONNECTION_MAX` the connection is
    /// closed with 1008 and false returned (nothing more is to be sent).
    pub(super) fn socketio_count_error(&mut self, key: u32) -> bool {
        self.stats.socketio_errors += 1;
        let Some(session) = self.conns[key as usize].socketio.as_deref_mut() else {
            return false;
        };
        session.errors += 1;
        if session.errors > SOCKETIO_ERRORS_PER_CONNECTION_MAX {
            self.close_ws(
                key,
                frame::CLOSE_POLICY_VIOLATION,
                "Too many protocol errors",
            );
            return false;
        }
        true
    }

    /// A namespace's sid: the connection's socket id and the namespace.
    fn namespace_sid(&self, key: u32, namespace: &str) -> String {
        let serial = self.conns[key as usize].serial;
        format!("{}{}", self.socket_id(serial), namespace.replace('/', "-"))
    }

    /// What the sweep owes a Socket.IO connection now, if anything.
    pub(super) fn socketio_tick(&self, key: u32, now_ms: u64) -> Option<SocketIoTick> {
        let conn = self.conns.get(key as usize)?;
        let session = conn.socketio.as_deref()?;
        if conn.ping_sent_ms != 0 {
            let waited = now_ms.saturating_sub(conn.ping_sent_ms);
            return (waited >= u64::from(self.settings.socketio.ping_timeout_ms))
                .then_some(SocketIoTick::PingTimeout);
        }
        (now_ms >= session.ping_due_ms).then_some(SocketIoTick::Ping)
    }

    /// Carries out what the sweep decided.
    pub(super) fn apply_socketio_tick(&mut self, key: u32, action: SocketIoTick, now_ms: u64) {
        match action {
            SocketIoTick::Ping => {
                let interval = u64::from(self.settings.socketio.ping_interval_ms);
                let Some(conn) = self.conns.get_mut(key as usize) else {
                    return;
                };
                if let Some(session) = conn.socketio.as_deref_mut() {
                    session.ping_due_ms = now_ms + interval;
                }
                conn.ping_sent_ms = now_ms;
                self.send_text(key, packet::PING);
            }
            SocketIoTick::PingTimeout => {
                self.stats.socketio_ping_timeouts += 1;
                self.close_ws(key, frame::CLOSE_NORMAL, "ping timeout");
            }
        }
    }
}

/// The `jwt` and `uuid` of a CONNECT's auth object (`{"jwt":…,"uuid":…}`); None when there is
/// no object or no `jwt` string.
fn connect_auth(payload: &str) -> Option<(String, Option<String>)> {
    let mut buf = payload.as_bytes().to_vec();
    let tape = parse_json(&mut buf).ok()?;
    let value = tape.as_value();
    let object = value.as_object()?;
    let jwt = object.get("jwt")?.into_string()?.to_owned();
    let uuid = object
        .get("uuid")
        .and_then(|u| u.into_string())
        .map(str::to_owned);
    Some((jwt, uuid))
}

fn refusal_text(err: PacketError) -> &'static str {
    match err {
        PacketError::Malformed => "Malformed Socket.IO packet",
        PacketError::Binary => "Binary packets are not supported",
        PacketError::NamespaceTooLong => "Namespace too long",
    }
}
