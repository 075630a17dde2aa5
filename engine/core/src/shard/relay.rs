//! The relay on a shard (`docs/relay.md`): the upgrade on `/relay/{app_key}?room=`, each
//! connection's messages to its room's owner shard (a fixed hash of app and room, so a room's
//! connections on every shard share one state), the owner's frames back to them, the leave
//! when a connection goes. Rooms are their own space: nothing here touches channels.

use std::sync::Arc;

use bytes::Bytes;

use super::conn::Phase;
use super::message::{AppIndex, ConnRef, RelayInput, ShardMessage};
use super::relay_rooms::{Refused, Sends};
use super::relay_state::RelaySession;
use super::Shard;
use crate::http::request::{HttpError, RequestHead};
use crate::relay::message::{self, Role};
use crate::ws::frame;

impl Shard {
    /// An upgrade on `/relay/{app_key}`: refused with an HTTP error for an unknown or disabled
    /// app, another origin, a room name too long, an app at its connection quota; else the
    /// connection is in the room, with no role until it sends `connect`.
    pub(super) fn handle_relay_upgrade(&mut self, key: u32, app_key: &str, head: &RequestHead) {
        let app = self.apps.index_by_key(app_key);
        let room = crate::relay::room_of(head);
        let refusal = match (app, &room) {
            (None, _) => Some(HttpError::new(404, "no app has this key")),
            (Some(app), _) if !self.apps.get(app).enabled => {
                Some(HttpError::new(403, "app disabled"))
            }
            (Some(app), room) => self.origin_refusal(app, head).or_else(|| match room {
                Err(why) => Some(HttpError::new(400, why)),
                Ok(_) if self.draining => Some(HttpError::new(503, "server is shutting down")),
                Ok(_) => None,
            }),
        };
        if let Some(err) = refusal {
            self.refuse_request(key, &err);
            return;
        }
        let (Some(app), Ok(room)) = (app, room) else {
            return; // refused above
        };
        let Some(accept) = self.admit_upgrade(key, app, head) else {
            return;
        };
        self.send_accept(key, &accept);
        let conn = &mut self.conns[key as usize];
        conn.opened_ms = self.now_ms;
        conn.relay = Some(Box::new(RelaySession {
            room: Arc::from(room),
        }));
        self.set_phase(key, Phase::Relay);
    }

    /// One text message of a relay connection: to its room's owner. What the room cannot use
    /// is ignored, as in the original, and counted.
    pub(super) fn handle_relay_text(&mut self, key: u32, payload: &[u8]) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        let (Some(app), Some(session)) = (conn.app, conn.relay.as_deref()) else {
            return;
        };
        let room = session.room.clone();
        let Ok(parsed) = message::parse(payload) else {
            self.stats.relay_messages_ignored += 1;
            return;
        };
        let rate_max = self.apps.get(app).max_client_events_per_second;
        if parsed.data.is_some() && !conn.take_client_event(self.now_ms / 1000, rate_max) {
            // The app's client-event rate: a flooding connection's data are dropped.
            self.stats.relay_messages_ignored += 1;
            return;
        }
        let me = ConnRef {
            shard: self.settings.shard_index,
            key,
            serial: conn.serial,
        };
        if let Some(role) = parsed.connect {
            self.relay_to_owner(app, &room, me, RelayInput::Connect(role));
        }
        if let Some((data, target)) = parsed.data {
            self.relay_to_owner(app, &room, me, RelayInput::Data(data, target));
        }
    }

    /// A binary message: the protocol is JSON text (ignored, counted).
    pub(super) fn handle_relay_binary(&mut self) {
        self.stats.relay_messages_ignored += 1;
    }

    fn relay_to_owner(&mut self, app: AppIndex, room: &Arc<str>, conn: ConnRef, input: RelayInput) {
        let owner = self.owner_of(app, room);
        let message = ShardMessage::RelayIn {
            app,
            room: room.clone(),
            conn,
            input,
        };
        self.route(owner, message);
    }

    /// The owner's side: the room takes the message and says what goes where.
    pub(super) fn relay_in(
        &mut self,
        app: AppIndex,
        room: &Arc<str>,
        conn: ConnRef,
        input: RelayInput,
    ) {
        if app as usize >= self.apps.len() {
            return;
        }
        let result = match input {
            RelayInput::Connect(Role::Client) => self.relay_rooms.connect_client(app, room, conn),
            RelayInput::Connect(Role::Server) => self.relay_rooms.connect_server(app, room, conn),
            RelayInput::Data(data, target) => self.relay_rooms.data(app, room, conn, data, target),
            RelayInput::Leave => Ok(self.relay_rooms.leave(app, room, conn)),
        };
        match result {
            Ok(sends) => self.relay_send(sends),
            Err(Refused::Ignored) => self.stats.relay_messages_ignored += 1,
            Err(Refused::Full) => {
                self.stats.relay_connects_refused += 1;
                self.route(conn.shard, ShardMessage::RelayRefused { conn });
            }
        }
    }

    /// The room's frames: this shard's connections get theirs at once, each other shard one
    /// message with its connections' frames, in order (a server broadcast is one ring message
    /// per shard, not one per client).
    fn relay_send(&mut self, sends: Sends) {
        let me = self.settings.shard_index;
        let mut others: Vec<(u16, Sends)> = Vec::new();
        for (conn, frame) in sends {
            if conn.shard == me {
                self.relay_out(conn, frame);
                continue;
            }
            match others.iter_mut().find(|(shard, _)| *shard == conn.shard) {
                Some((_, batch)) => batch.push((conn, frame)),
                None => others.push((conn.shard, vec![(conn, frame)])),
            }
        }
        for (shard, sends) in others {
            self.route(shard, ShardMessage::RelayOut(sends));
        }
    }

    /// The room owner's frames for connections of this shard, in order.
    pub(super) fn relay_out_batch(&mut self, sends: Sends) {
        for (conn, frame) in sends {
            self.relay_out(conn, frame);
        }
    }

    /// A frame from the room's owner for a connection of this shard (gone: dropped).
    fn relay_out(&mut self, conn: ConnRef, frame: Bytes) {
        if self.is_relay_conn(conn) {
            self.push_data(conn.key, frame);
        }
    }

    /// The room or the owner is full: the connection is closed (1013, try again later).
    pub(super) fn relay_refused(&mut self, conn: ConnRef) {
        if self.is_relay_conn(conn) {
            self.close_ws(conn.key, frame::CLOSE_TRY_AGAIN_LATER, "Relay room is full");
        }
    }

    fn is_relay_conn(&self, conn: ConnRef) -> bool {
        conn.shard == self.settings.shard_index
            && self
                .conns
                .get(conn.key as usize)
                .is_some_and(|c| c.serial == conn.serial && c.phase == Phase::Relay)
    }

    /// The connection is going away: its room hears of it.
    pub(super) fn relay_detach(&mut self, key: u32) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        let Some(app) = conn.app else {
            return;
        };
        let Some(session) = conn.relay.take() else {
            return;
        };
        let me = ConnRef {
            shard: self.settings.shard_index,
            key,
            serial: conn.serial,
        };
        self.relay_to_owner(app, &session.room, me, RelayInput::Leave);
    }
}
