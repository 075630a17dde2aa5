//! WebSocket-over-HTTP on a shard (`docs/slip.md`): the upgrade on `/slip/{app_key}` waits
//! for the app's backend to accept it; each text message and the close go to the backend
//! through the bridge (one connection's calls in order, a bounded number in flight; past it the
//! connection's input waits); the commands of each answer, and of the control API
//! (`POST /slip/{app_key}/control`), run in order: text to a connection, close, metadata,
//! subscribe / unsubscribe, publish to a channel (every dialect, every node), close a channel.
//! A command for a connection of another shard goes there over the rings.

use std::sync::Arc;

use bytes::Bytes;

use super::bridge_waits::{PendingSlipCall, SlipCallKind};
use super::conn::Phase;
use super::http_reply::{HttpOutcome, Reply};
use super::message::{AppIndex, ConnRef, ShardMessage};
use super::slip_state::{SlipChannel, SlipSession};
use super::Shard;
use crate::dialect::{slip_data_json, Dialect, Published};
use crate::functions::Publication;
use crate::http::request::{HttpError, RequestHead};
use crate::limits::{
    PENDING_SLIP_CALLS_PER_APP_MAX, PENDING_SLIP_CALL_BYTES_MAX, SLIP_METADATA_BYTES_MAX,
    SUBSCRIPTIONS_PER_CONNECTION_MAX,
};
use crate::link::{LinkMessage, SlipCall, SlipOutcome};
use crate::slip::event::{self, Command, SocketEvent};
use crate::slip::token;
use crate::socketio::rooms;
use crate::ws::frame;

/// The refusal of an upgrade whose backend cannot be asked (no bridge, calls at their bound).
const BACKEND_UNREACHABLE: &str = "the backend cannot be asked now; try again later";

/// The control API's answers, byte for byte as the original's.
const CONTROL_FORBIDDEN: &str = "Invalid token";
const CONTROL_INVALID: &str = "{\"message\": \"invalid commands\"}";
const CONTROL_DONE: &str = "{\"message\": \"processed successfully\"}";

impl Shard {
    /// An upgrade on `/slip/{app_key}`: refused with an HTTP error for an unknown or disabled
    /// app, one without a backend, another origin, an app at its quota, or when the backend
    /// cannot be asked; else the open event goes to the backend and the upgrade waits.
    pub(super) fn handle_slip_upgrade(&mut self, key: u32, app_key: &str, head: &RequestHead) {
        let app = self.apps.index_by_key(app_key);
        let refusal = match app {
            None => Some(HttpError::new(404, "no app has this key")),
            Some(app) if !self.apps.get(app).enabled => Some(HttpError::new(403, "app disabled")),
            Some(app) if self.apps.get(app).slip_target_url.is_none() => Some(HttpError::new(
                404,
                "this app has no WebSocket-over-HTTP backend (app_slip_target_url)",
            )),
            Some(app) => self.origin_refusal(app, head).or_else(|| {
                if self.draining {
                    Some(HttpError::new(503, "server is shutting down"))
                } else if !self.slip_can_call(app) {
                    self.stats.slip_upgrades_refused += 1;
                    Some(HttpError::new(503, BACKEND_UNREACHABLE))
                } else {
                    None
                }
            }),
        };
        if let Some(err) = refusal {
            self.refuse_request(key, &err);
            return;
        }
        let Some(app) = app else {
            return; // refused above
        };
        let Some(accept) = self.admit_upgrade(key, app, head) else {
            return;
        };
        let ip = self.peer_ips.get(&key).map(ToString::to_string);
        let metadata = event::open_metadata(head, ip.as_deref());
        let metadata = (metadata.len() <= SLIP_METADATA_BYTES_MAX).then_some(metadata);
        let serial = self.conns[key as usize].serial;
        let connection_id = self.format_socket_id(self.settings.shard_index, serial);
        let conn = &mut self.conns[key as usize];
        conn.slip = Some(Box::new(SlipSession::new(connection_id, metadata)));
        conn.phase = Phase::HttpWaiting;
        self.slip_keys.insert(serial, key);
        let kind = SlipCallKind::Open {
            accept: accept.into_boxed_str(),
        };
        if !self.slip_call(key, app, kind, SocketEvent::Open) {
            self.stats.slip_upgrades_refused += 1;
            if let Some(conn) = self.conns.get_mut(key as usize) {
                conn.slip = None;
            }
            self.slip_keys.remove(&serial);
            self.refuse_request(key, &HttpError::new(503, BACKEND_UNREACHABLE));
        }
    }

    /// Whether a call for `app` can go to the backend now: the link is up and neither the
    /// shard's nor the app's calls in flight are at their bound.
    fn slip_can_call(&self, app: AppIndex) -> bool {
        self.link.is_up()
            && !self.waits.slip_calls.is_full()
            && self.waits.slip_calls_by_app.get(app) < PENDING_SLIP_CALLS_PER_APP_MAX
    }

    /// Sends one socket event of the connection to its app's backend (the caller checked
    /// [`Self::slip_can_call`]); an open or text event counts against the connection's bound.
    /// False when it was not sent: the shard's calls hold their most bytes.
    fn slip_call(
        &mut self,
        key: u32,
        app: AppIndex,
        kind: SlipCallKind,
        socket_event: SocketEvent,
    ) -> bool {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return false;
        };
        let serial = conn.serial;
        let Some(session) = conn.slip.as_deref_mut() else {
            return false;
        };
        let body = event::request_body(
            &session.connection_id,
            session.metadata_json.as_deref(),
            socket_event,
        );
        let bytes = body.len();
        if self.waits.slip_call_bytes + bytes > PENDING_SLIP_CALL_BYTES_MAX {
            return false;
        }
        let connection_id = session.connection_id.to_string();
        let counts_in_flight = !matches!(kind, SlipCallKind::Close);
        let pending = PendingSlipCall {
            app,
            conn: ConnRef {
                shard: self.settings.shard_index,
                key,
                serial,
            },
            kind,
            bytes,
        };
        let Ok(call_id) = self.waits.slip_calls.insert(self.now_ms, pending) else {
            return false; // checked by the caller
        };
        if counts_in_flight {
            session.calls_in_flight += 1;
        }
        self.waits.slip_calls_by_app.add(app);
        self.waits.slip_call_bytes += bytes;
        self.stats.slip_calls += 1;
        let config = self.apps.get(app);
        let call = SlipCall {
            call_id,
            app_id: config.id.clone(),
            connection_id,
            url: config.slip_target_url.clone().unwrap_or_default(),
            secret: config.slip_secret().to_owned(),
            body: Bytes::from(body),
        };
        self.link.send(LinkMessage::SlipCall(call));
        true
    }

    /// A call is answered or given up: its share of the bounds comes back.
    fn slip_release(&mut self, pending: &PendingSlipCall) {
        self.waits.slip_calls_by_app.remove(pending.app);
        self.waits.slip_call_bytes = self.waits.slip_call_bytes.saturating_sub(pending.bytes);
    }

    /// A text message from an accepted connection: to the backend. When the backend cannot be
    /// asked the connection is closed (1013, or 1011 without a bridge): nothing it sends is
    /// dropped without it knowing.
    pub(super) fn handle_slip_text(&mut self, key: u32, payload: &[u8]) {
        let Some(app) = self.conns.get(key as usize).and_then(|c| c.app) else {
            return;
        };
        // The decoder checked UTF-8 for text messages.
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        if !self.link.is_up() {
            self.close_ws(key, frame::CLOSE_INTERNAL_ERROR, "Backend unavailable");
            return;
        }
        if !self.slip_can_call(app)
            || !self.slip_call(key, app, SlipCallKind::Text, SocketEvent::Text(text))
        {
            self.stats.slip_calls_failed += 1;
            self.close_ws(key, frame::CLOSE_TRY_AGAIN_LATER, "Backend overloaded");
        }
    }

    /// The bridge's answer to a call.
    pub(super) fn slip_answer(&mut self, call_id: u32, outcome: SlipOutcome) {
        let Some(pending) = self.waits.slip_calls.take(call_id) else {
            return; // answered already (timeout or link down)
        };
        self.slip_release(&pending);
        let answer = match outcome {
            SlipOutcome::Answered { status, body } if (200..300).contains(&status) => {
                event::parse_answer(&body).map_err(|_| SlipFailure::BadBody)
            }
            SlipOutcome::Answered { .. } => Err(SlipFailure::Status),
            SlipOutcome::Failed(_) => Err(SlipFailure::NoAnswer),
        };
        self.slip_settle(pending, answer);
    }

    /// A call nobody will answer (its wait passed, or the link went down).
    pub(super) fn slip_unanswered(&mut self, pending: PendingSlipCall, timed_out: bool) {
        self.slip_release(&pending);
        let failure = if timed_out {
            SlipFailure::Timeout
        } else {
            SlipFailure::NoAnswer
        };
        self.slip_settle(pending, Err(failure));
    }

    /// What a call's answer (or its absence) does.
    fn slip_settle(&mut self, pending: PendingSlipCall, answer: Result<Vec<Command>, SlipFailure>) {
        let key = pending.conn.key;
        let live = self
            .conns
            .get_mut(key as usize)
            .filter(|conn| conn.serial == pending.conn.serial && conn.slip.is_some());
        if let Some(conn) = live {
            if let Some(session) = conn.slip.as_deref_mut() {
                if !matches!(pending.kind, SlipCallKind::Close) {
                    session.calls_in_flight = session.calls_in_flight.saturating_sub(1);
                }
            }
            // Its input may have waited for this answer.
            if !conn.wake_queued {
                conn.wake_queued = true;
                self.wake.push(key);
            }
        }
        let alive = self
            .conns
            .get(key as usize)
            .is_some_and(|c| c.serial == pending.conn.serial && c.is_open());
        if answer.is_err() {
            self.stats.slip_calls_failed += 1;
        }
        match (pending.kind, answer) {
            (SlipCallKind::Open { accept }, answer) => {
                self.slip_opened(key, pending.app, alive, &accept, answer)
            }
            (SlipCallKind::Text, Ok(commands)) | (SlipCallKind::Close, Ok(commands)) => {
                self.slip_run(pending.app, commands);
            }
            (SlipCallKind::Text, Err(_)) => {
                if alive {
                    // The message was not taken: the client must know.
                    self.close_ws(key, frame::CLOSE_INTERNAL_ERROR, "Backend unavailable");
                }
            }
            (SlipCallKind::Close, Err(_)) => {}
        }
    }

    /// The open event's answer: the 101 and then the answer's other commands, or the upgrade's
    /// HTTP error.
    fn slip_opened(
        &mut self,
        key: u32,
        app: AppIndex,
        alive: bool,
        accept: &str,
        answer: Result<Vec<Command>, SlipFailure>,
    ) {
        let waiting = alive && self.conns[key as usize].phase == Phase::HttpWaiting;
        let connection_id = match self.conns.get(key as usize).and_then(|c| c.slip.as_deref()) {
            Some(session) if waiting => session.connection_id.to_string(),
            _ => {
                // The client left while the backend decided: a connection it accepted is closed
                // for it at once.
                if let Ok(commands) = answer {
                    self.slip_run(app, commands);
                }
                return;
            }
        };
        let refusal = match answer {
            Ok(mut commands) => {
                if event::take_acceptance(&mut commands, &connection_id) {
                    self.slip_accept(key, accept);
                    self.slip_run(app, commands);
                    return;
                }
                // Refused: what else the answer says still runs (a publish to others, …).
                self.slip_run(app, commands);
                HttpError::new(403, "the backend did not accept the connection")
            }
            Err(SlipFailure::Status) => HttpError::new(502, "the backend answered with an error"),
            Err(SlipFailure::BadBody) => {
                HttpError::new(502, "the backend's answer is not a list of events")
            }
            Err(SlipFailure::NoAnswer) => HttpError::new(502, "the backend did not answer"),
            Err(SlipFailure::Timeout) => HttpError::new(504, "the backend did not answer in time"),
        };
        self.stats.slip_upgrades_refused += 1;
        if let Some(conn) = self.conns.get_mut(key as usize) {
            // Not accepted: its close is nothing the backend needs to hear about.
            conn.slip = None;
            self.slip_keys.remove(&conn.serial);
        }
        self.refuse_request(key, &refusal);
    }

    /// The handshake timeout passed while the backend decided about the upgrade: a gateway
    /// timeout (true), not a silent close; false for any other connection.
    pub(super) fn slip_open_expired(&mut self, key: u32) -> bool {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return false;
        };
        if conn.phase != Phase::HttpWaiting || conn.slip.is_none() {
            return false;
        }
        conn.slip = None;
        let serial = conn.serial;
        self.slip_keys.remove(&serial);
        self.stats.slip_upgrades_refused += 1;
        let err = HttpError::new(504, "the backend did not answer in time");
        self.refuse_request(key, &err);
        true
    }

    /// The backend accepted: the 101 goes out and the connection is open.
    fn slip_accept(&mut self, key: u32, accept: &str) {
        self.send_accept(key, accept);
        let now_ms = self.now_ms;
        let conn = &mut self.conns[key as usize];
        conn.opened_ms = now_ms;
        conn.last_seen_ms = now_ms;
        if let Some(session) = conn.slip.as_deref_mut() {
            session.accepted = true;
        }
        self.set_phase(key, Phase::Slip);
    }

    /// Runs a backend's commands in order: each for a connection goes to that connection's
    /// shard (this one: at once), the channel commands to every shard; with several nodes the
    /// commands for connections of other nodes, and `CLOSE_CHANNEL`, go to the other nodes too
    /// (publishes reach them as every publish does).
    fn slip_run(&mut self, app: AppIndex, commands: Vec<Command>) {
        let mut for_other_nodes = Vec::new();
        for command in commands {
            match command {
                Command::PublishText { channel, data } => self.slip_publish(app, &channel, &data),
                Command::CloseChannel { channel } => {
                    let shared: Arc<str> = Arc::from(channel.as_str());
                    self.broadcast(ShardMessage::SlipCloseChannel {
                        app,
                        channel: shared.clone(),
                    });
                    self.slip_close_channel_here(app, &shared);
                    if self.link.is_cluster() {
                        for_other_nodes.push(Command::CloseChannel { channel });
                    }
                }
                // Here a connection is usable once accepted: nothing to wait for.
                Command::PollForConnection { .. } => {}
                command => {
                    let target = command
                        .connection_id()
                        .and_then(|id| self.parse_socket_id(id));
                    match target {
                        Some((shard, serial)) => self.slip_route(app, shard, serial, command),
                        None if self.link.is_cluster() => for_other_nodes.push(command),
                        // Not a connection of this node, and there is no other.
                        None => self.stats.slip_commands_refused += 1,
                    }
                }
            }
        }
        if !for_other_nodes.is_empty() {
            let app_id = self.apps.get(app).id.clone();
            let commands = Bytes::from(event::encode_commands(&for_other_nodes));
            let sent = self
                .link
                .send_to_cluster(|| LinkMessage::SlipCommands { app_id, commands });
            if !sent {
                self.stats.slip_commands_refused += for_other_nodes.len() as u64;
            }
        }
    }

    /// A command for connection `serial` of `shard` (this node's).
    fn slip_route(&mut self, app: AppIndex, shard: u16, serial: u64, command: Command) {
        if shard == self.settings.shard_index {
            self.slip_command_here(app, serial, command);
        } else {
            let message = ShardMessage::SlipCommand {
                app,
                serial,
                command: Box::new(command),
            };
            self.route(shard, message);
        }
    }

    /// Commands another node's backend call or control request had for this node (every shard
    /// of the node gets them): this shard runs those for its own connections and closes its
    /// own subscribers of a closed channel.
    pub(super) fn slip_commands_from_link(&mut self, app_id: &str, commands: &[u8]) {
        let Some(app) = self.apps.index_by_id(app_id) else {
            return; // an app this node does not serve
        };
        let Ok(commands) = event::parse_control(commands) else {
            return; // never: the other node encoded them
        };
        for command in commands {
            match command {
                Command::CloseChannel { channel } => self.slip_close_channel_here(app, &channel),
                command => {
                    let target = command
                        .connection_id()
                        .and_then(|id| self.parse_socket_id(id));
                    if let Some((shard, serial)) = target {
                        if shard == self.settings.shard_index {
                            self.slip_command_here(app, serial, command);
                        }
                    }
                }
            }
        }
    }

    /// `PUBLISH_TEXT`: to every subscriber of the channel in every dialect (through the
    /// channel's functions when it has some).
    fn slip_publish(&mut self, app: AppIndex, channel: &str, text: &str) {
        let config = self.apps.get(app);
        let max_len = config.max_channel_name_length as usize;
        let too_big = text.len() > config.max_event_payload_kb as usize * 1024;
        if too_big || rooms::check_channel(channel, max_len).is_err() {
            self.stats.slip_commands_refused += 1;
            return;
        }
        if let Some(pipeline) = self.functions_of(app, channel) {
            let publication = Publication::Slip {
                data_json: slip_data_json(text),
            };
            self.publish_through_functions(app, channel, publication, pipeline);
        } else {
            let now_ms = self.now_ms;
            self.publish(app, channel, Published::slip_text(text), None, now_ms);
        }
    }

    /// A command for a connection of this shard, by its serial; a connection that is gone,
    /// not WebSocket-over-HTTP or of another app is left alone (counted).
    pub(super) fn slip_command_here(&mut self, app: AppIndex, serial: u64, command: Command) {
        let key = self.slip_keys.get(&serial).copied().filter(|key| {
            self.conns
                .get(*key as usize)
                .is_some_and(|conn| conn.app == Some(app) && conn.phase == Phase::Slip)
        });
        let Some(key) = key else {
            self.stats.slip_commands_refused += 1;
            return;
        };
        match command {
            Command::Text { data, .. } => self.push_data(key, frame::encode_text(data.as_bytes())),
            Command::Close { .. } => self.close_ws(key, frame::CLOSE_NORMAL, ""),
            Command::SetMetadata { metadata_json, .. } => {
                self.slip_set_metadata(key, metadata_json)
            }
            Command::Subscribe { channel, .. } => self.slip_subscribe(key, app, channel),
            Command::Unsubscribe { channel, .. } => self.slip_unsubscribe(key, app, &channel),
            Command::Accept { .. }
            | Command::PollForConnection { .. }
            | Command::PublishText { .. }
            | Command::CloseChannel { .. } => {}
        }
    }

    fn slip_session(&mut self, key: u32) -> Option<&mut SlipSession> {
        self.conns.get_mut(key as usize)?.slip.as_deref_mut()
    }

    fn slip_set_metadata(&mut self, key: u32, metadata_json: String) {
        if metadata_json.len() > SLIP_METADATA_BYTES_MAX {
            self.stats.slip_commands_refused += 1;
            return;
        }
        if let Some(session) = self.slip_session(key) {
            session.metadata_json =
                (metadata_json != "null").then(|| metadata_json.into_boxed_str());
        }
    }

    /// `SUBSCRIBE`: the connection joins the channel (a public channel name, as for the
    /// other dialects that have no authorization); receiving once the interest is confirmed.
    fn slip_subscribe(&mut self, key: u32, app: AppIndex, channel: String) {
        let max_len = self.apps.get(app).max_channel_name_length as usize;
        let full = self.registry.channel(app, &channel).is_none() && self.registry.is_full();
        let Some(session) = self.slip_session(key) else {
            return;
        };
        if session.channel_index(&channel).is_some() {
            return; // already in it
        }
        let refused = full
            || session.channels.len() >= SUBSCRIPTIONS_PER_CONNECTION_MAX
            || rooms::check_channel(&channel, max_len).is_err();
        if refused {
            self.stats.slip_commands_refused += 1;
            return;
        }
        let channel: Arc<str> = Arc::from(channel);
        session.channels.push(SlipChannel {
            channel: channel.clone(),
            active: false,
        });
        self.enter_and_advance(key, app, &channel);
    }

    /// The channel's interest is confirmed for this shard: the connection receives it.
    pub(super) fn slip_activate(&mut self, key: u32, app: AppIndex, channel: &Arc<str>) {
        let Some(session) = self.slip_session(key) else {
            return;
        };
        let Some(index) = session.channel_index(channel) else {
            return;
        };
        if std::mem::replace(&mut session.channels[index].active, true) {
            return;
        }
        self.join_subscribers(key, app, channel, Dialect::Slip);
    }

    /// `UNSUBSCRIBE` (a channel it is not in: nothing to do).
    fn slip_unsubscribe(&mut self, key: u32, app: AppIndex, channel: &str) {
        let Some(session) = self.slip_session(key) else {
            return;
        };
        let Some(index) = session.channel_index(channel) else {
            return;
        };
        let left = session.channels.swap_remove(index);
        self.slip_leave(key, app, left);
    }

    fn slip_leave(&mut self, key: u32, app: AppIndex, left: SlipChannel) {
        if self.exit_channel(key, app, &left.channel, left.active, Dialect::Slip) {
            self.count_changed(app, &left.channel);
        }
        self.registry.remove_if_unused(app, &left.channel);
    }

    /// `CLOSE_CHANNEL` on this shard: every WebSocket-over-HTTP subscriber of the channel is
    /// closed (the other dialects' subscribers are not the backend's to close).
    pub(super) fn slip_close_channel_here(&mut self, app: AppIndex, channel: &str) {
        let keys: Vec<u32> = self
            .registry
            .channel(app, channel)
            .and_then(|entry| entry.subscribers.of(Dialect::Slip))
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        for key in keys {
            self.close_ws(key, frame::CLOSE_NORMAL, "");
        }
    }

    /// The connection is going away: out of its channels, and the backend hears about it
    /// (when it had accepted it and can be asked).
    pub(super) fn slip_detach(&mut self, key: u32) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        let Some(app) = conn.app else {
            return;
        };
        let serial = conn.serial;
        let Some(session) = conn.slip.as_deref_mut() else {
            return;
        };
        self.slip_keys.remove(&serial);
        let channels = std::mem::take(&mut session.channels);
        let accepted = std::mem::replace(&mut session.accepted, false);
        for left in channels {
            self.slip_leave(key, app, left);
        }
        if accepted {
            let sent = self.slip_can_call(app)
                && self.slip_call(key, app, SlipCallKind::Close, SocketEvent::Close);
            if !sent {
                self.stats.slip_calls_failed += 1;
            }
        }
    }

    /// `POST /slip/{app_key}/control`: the backend's commands out of band, with a token of the
    /// app's SLIP secret (`aud` `ControlEvent`). 403 `Invalid token`, 400 for a list with an
    /// unusable command (nothing runs), 200 once every command is on its way.
    pub(super) fn slip_control(&mut self, head: &RequestHead, body: &[u8]) -> HttpOutcome {
        let app = crate::slip::control_app_key_of(&head.path)
            .and_then(|key| self.apps.index_by_key(key))
            .filter(|app| self.apps.get(*app).slip_target_url.is_some());
        let Some(app) = app else {
            return control_reply(
                404,
                "text/plain",
                "no app with WebSocket-over-HTTP has this key",
            );
        };
        if head.method != "POST" {
            return control_reply(405, "text/plain", "method not allowed: POST");
        }
        let config = self.apps.get(app);
        let authorized = token::control_authorized(
            head.header("authorization"),
            config.slip_secret(),
            self.unix_s,
        );
        if !authorized {
            return control_reply(403, "text/plain", CONTROL_FORBIDDEN);
        }
        match event::parse_control(body) {
            Ok(commands) => {
                self.slip_run(app, commands);
                control_reply(200, "application/json", CONTROL_DONE)
            }
            Err(_) => control_reply(400, "application/json", CONTROL_INVALID),
        }
    }
}

/// An answer of the control API.
fn control_reply(status: u16, content_type: &'static str, body: &str) -> HttpOutcome {
    HttpOutcome::Reply(Reply {
        route: "slip_control",
        status,
        content_type,
        body: body.as_bytes().to_vec(),
    })
}

/// Why a call has no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlipFailure {
    /// The backend answered with a status other than 2xx.
    Status,
    /// A 2xx whose body is not a usable list of commands.
    BadBody,
    /// No answer (connect error, the bridge's timeout, no bridge).
    NoAnswer,
    /// The shard's own wait passed.
    Timeout,
}
