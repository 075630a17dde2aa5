//! The channels JSON dialect on a shard (`docs/channels-json.md`): the upgrade on
//! `/channels/{app_key}`, a connection in at most one channel (a new `join` moves it, with a
//! fresh sender id), `publish` to everyone in the channel, the publisher included, then
//! `publishSuccess`; `ping` / `pong`; the idle and lifetime limits on the sweep. The channel
//! is one of the engine's channels: Pusher and Socket.IO subscribers of it get these publishes
//! in their framing, and this dialect's subscribers get theirs.

use std::sync::Arc;

use super::channels_json_state::{ChannelsJsonSession, Joined};
use super::conn::Phase;
use super::message::AppIndex;
use super::Shard;
use crate::channels_json::message::{self, ClientMessage};
use crate::dialect::{Dialect, Published};
use crate::functions::Publication;
use crate::http::request::{HttpError, RequestHead};
use crate::limits::CHANNELS_JSON_ERRORS_PER_CONNECTION_MAX;
use crate::socketio::rooms;
use crate::ws::frame;

impl Shard {
    /// An upgrade on `/channels/{app_key}`: refused with an HTTP error for an unknown or
    /// disabled app, another origin, or an app at its connection quota; else the session.
    pub(super) fn handle_channels_json_upgrade(
        &mut self,
        key: u32,
        app_key: &str,
        head: &RequestHead,
    ) {
        let app = self.apps.index_by_key(app_key);
        let refusal = match app {
            None => Some(HttpError::new(404, "no app has this key")),
            Some(app) if !self.apps.get(app).enabled => Some(HttpError::new(403, "app disabled")),
            Some(app) => self.origin_refusal(app, head).or_else(|| {
                self.draining
                    .then(|| HttpError::new(503, "server is shutting down"))
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
        self.send_accept(key, &accept);
        let conn = &mut self.conns[key as usize];
        conn.opened_ms = self.now_ms;
        conn.channels_json = Some(Box::default());
        self.set_phase(key, Phase::ChannelsJson);
    }

    /// One text message of a channels JSON connection.
    pub(super) fn handle_channels_json_text(&mut self, key: u32, payload: &[u8]) {
        let Some(app) = self.conns[key as usize].app else {
            return;
        };
        match message::parse(payload) {
            Ok(ClientMessage::Join(channel)) => self.channels_json_join(key, app, channel),
            Ok(ClientMessage::Publish(data_json)) => {
                if let Err(reason) = self.channels_json_publish(key, app, data_json) {
                    self.send_text(key, &message::publish_failure(reason));
                }
            }
            Ok(ClientMessage::Ping(data_json)) => {
                self.send_text(key, &message::pong(data_json.as_deref()))
            }
            Ok(ClientMessage::Unknown) => {
                self.channels_json_refuse(key, "Unknown message type (join, publish or ping)")
            }
            Err(_) => self.channels_json_refuse(key, "A message must be a JSON object"),
        }
    }

    /// A binary frame: the protocol is JSON text.
    pub(super) fn handle_channels_json_binary(&mut self, key: u32) {
        self.channels_json_refuse(key, "Binary frames are not supported; send JSON text");
    }

    /// Answers a message the server does not take and keeps the connection, up to a bound.
    fn channels_json_refuse(&mut self, key: u32, reason: &str) {
        let Some(session) = self.channels_json_session(key) else {
            return;
        };
        session.errors += 1;
        let errors = session.errors;
        self.stats.channels_json_errors += 1;
        self.send_text(key, &message::error(reason));
        if errors >= CHANNELS_JSON_ERRORS_PER_CONNECTION_MAX {
            self.close_ws(
                key,
                frame::CLOSE_POLICY_VIOLATION,
                "Too many invalid messages",
            );
        }
    }

    fn channels_json_session(&mut self, key: u32) -> Option<&mut ChannelsJsonSession> {
        self.conns
            .get_mut(key as usize)?
            .channels_json
            .as_deref_mut()
    }

    /// `join`: leaves the current channel (if any), enters the new one with a fresh sender id;
    /// `joinSuccess` once the channel's interest is confirmed (so a publish after it reaches
    /// the connection wherever it is made).
    fn channels_json_join(&mut self, key: u32, app: AppIndex, channel: Option<String>) {
        let max_len = self.apps.get(app).max_channel_name_length as usize;
        let Some(channel) = channel.filter(|c| rooms::check_channel(c, max_len).is_ok()) else {
            self.send_text(key, message::JOIN_FAILURE);
            return;
        };
        if self.registry.channel(app, &channel).is_none() && self.registry.is_full() {
            self.stats.channels_refused += 1;
            self.send_text(key, message::JOIN_FAILURE);
            return;
        }
        self.channels_json_leave(key, app);
        let sender_id = self.next_sender_id(key);
        let channel: Arc<str> = Arc::from(channel);
        let Some(session) = self.channels_json_session(key) else {
            return;
        };
        session.joined = Some(Joined {
            channel: channel.clone(),
            sender_id: sender_id.into_boxed_str(),
            active: false,
        });
        self.enter_and_advance(key, app, &channel);
    }

    /// A fresh sender id for the connection's next join: 126 bits of a keyed hash of the
    /// process's random socket-id base, the connection and its join count (unique per join,
    /// not guessable from outside the process; the core reads no random source of its own).
    fn next_sender_id(&mut self, key: u32) -> String {
        let base = self.settings.socket_id_base;
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return String::new();
        };
        let serial = conn.serial;
        let joins = conn.channels_json.as_deref_mut().map_or(0, |s| {
            s.joins += 1;
            s.joins
        });
        let hasher = ahash::RandomState::with_seeds(base, !base, base.rotate_left(17), 0x636a);
        let high = hasher.hash_one((serial, joins, self.settings.shard_index, 1u8));
        let low = hasher.hash_one((serial, joins, self.settings.shard_index, 2u8));
        message::sender_id((u128::from(high) << 64) | u128::from(low))
    }

    /// The channel's interest is confirmed for this shard: the connection receives it.
    pub(super) fn channels_json_activate(&mut self, key: u32, app: AppIndex, channel: &Arc<str>) {
        let Some(session) = self.channels_json_session(key) else {
            return;
        };
        let Some(joined) = session.joined.as_mut().filter(|j| j.channel == *channel) else {
            return;
        };
        if joined.active {
            return;
        }
        joined.active = true;
        self.join_subscribers(key, app, channel, Dialect::ChannelsJson);
        self.send_text(key, message::JOIN_SUCCESS);
    }

    /// Leaves the connection's channel (a new join, or the connection went away).
    pub(super) fn channels_json_leave(&mut self, key: u32, app: AppIndex) {
        let Some(joined) = self
            .channels_json_session(key)
            .and_then(|session| session.joined.take())
        else {
            return;
        };
        let channel = joined.channel;
        if self.exit_channel(key, app, &channel, joined.active, Dialect::ChannelsJson) {
            self.count_changed(app, &channel);
        }
        self.registry.remove_if_unused(app, &channel);
    }

    /// `publish`: to every subscriber of the channel in every dialect, the publisher included;
    /// `publishSuccess` once the fan-out is queued. The app's client-event rate and payload
    /// bounds apply, as the publish reaches Pusher subscribers too.
    fn channels_json_publish(
        &mut self,
        key: u32,
        app: AppIndex,
        data_json: String,
    ) -> Result<(), &'static str> {
        let config = self.apps.get(app);
        if data_json.len() > config.max_event_payload_kb as usize * 1024 {
            return Err("Event payload is too large");
        }
        let rate_max = config.max_client_events_per_second;
        let now_s = self.now_ms / 1000;
        let conn = &mut self.conns[key as usize];
        let (channel, sender_id) = match conn
            .channels_json
            .as_deref()
            .and_then(|s| s.joined.as_ref())
        {
            None => return Err("Join a channel before publishing"),
            Some(joined) if !joined.active => return Err("The join is not complete yet"),
            Some(joined) => (joined.channel.clone(), joined.sender_id.clone()),
        };
        if !conn.take_client_event(now_s, rate_max) {
            return Err("Publish rate limit exceeded");
        }
        if let Some(pipeline) = self.functions_of(app, &channel) {
            let publication = Publication::ChannelsJson {
                sender_id: sender_id.to_string(),
                data_json,
            };
            self.publish_through_functions(app, &channel, publication, pipeline);
        } else {
            let message = Published::channels_json_event(&sender_id, data_json);
            let now_ms = self.now_ms;
            self.publish(app, &channel, message, None, now_ms);
        }
        self.send_text(key, message::PUBLISH_SUCCESS);
        Ok(())
    }

    /// On the sweep: a connection past its idle limit or its lifetime is closed (1000, with
    /// the reason), as the original's gateway did.
    pub(super) fn channels_json_expired(&self, key: u32, now_ms: u64) -> Option<&'static str> {
        let conn = self.conns.get(key as usize)?;
        let settings = &self.settings.channels_json;
        let idle_ms = settings.idle_timeout_s.saturating_mul(1000);
        let life_ms = settings.max_lifetime_s.saturating_mul(1000);
        if idle_ms > 0 && now_ms.saturating_sub(conn.last_seen_ms) >= idle_ms {
            return Some("Idle timeout");
        }
        if life_ms > 0 && now_ms.saturating_sub(conn.opened_ms) >= life_ms {
            return Some("Connection lifetime reached");
        }
        None
    }

    /// The connection is going away: out of its channel.
    pub(super) fn channels_json_detach(&mut self, key: u32) {
        let Some(app) = self.conns.get(key as usize).and_then(|c| c.app) else {
            return;
        };
        if self.conns[key as usize].channels_json.is_some() {
            self.channels_json_leave(key, app);
        }
    }
}
