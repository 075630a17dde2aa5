//! The Pusher v7 socket protocol on a shard, its entry points: connection admission, the
//! dispatch of a client's messages (to `subscribe`, `signin`, `client_events`), the shell's
//! publishes and user commands, messages from other shards (handled in `inbox`) and detaching
//! a connection that is gone. See the `shard` module docs for the protocol between shards.

use std::sync::Arc;

use bytes::Bytes;

use super::message::{AppIndex, ShardMessage};
use super::Shard;
use crate::dialect::Published;
use crate::link::UserAction;
use crate::pusher::channel;
use crate::pusher::client_message::{self, ClientMessage};
use crate::pusher::{close, server_message};

impl Shard {
    /// A message from another shard (or from this one, routed to itself).
    pub fn handle_message(&mut self, message: ShardMessage, now_ms: u64) {
        self.now_ms = now_ms;
        self.handle_message_inner(message);
        self.run_detach_queue();
    }

    /// Publishes a message to a channel of an app from this shard: local subscribers of every
    /// dialect, every interested shard, the other nodes, and the cache of a cache channel.
    /// `except` is the publisher's socket id (Pusher's `socket_id` exclusion).
    pub fn publish(
        &mut self,
        app: AppIndex,
        channel_name: &str,
        message: Published,
        except_socket_id: Option<&str>,
        now_ms: u64,
    ) {
        self.now_ms = now_ms;
        let except = except_socket_id.and_then(|s| self.parse_socket_id(s));
        let message = Arc::new(message);
        self.deliver_channel(app, channel_name, &message, except, true);
        self.relay_publish(app, channel_name, &message, except_socket_id.unwrap_or(""));
        let max_len = self.apps.get(app).max_channel_name_length as usize;
        if channel::classify(channel_name, max_len).is_ok_and(|c| c.cache) {
            let frame = message.pusher_frame(&self.apps.get(app).id, channel_name);
            let owner = self.owner_of(app, channel_name);
            self.route(
                owner,
                ShardMessage::CacheStore {
                    app,
                    channel: Arc::from(channel_name),
                    frame,
                },
            );
        }
        self.run_detach_queue();
    }

    /// Delivers an encoded frame to every connection signed in as `user_id`, on every shard.
    pub fn publish_to_user(&mut self, app: AppIndex, user_id: &str, frame: Bytes, now_ms: u64) {
        self.now_ms = now_ms;
        let message = ShardMessage::DeliverToUser {
            app,
            user_id: Arc::from(user_id),
            frame: frame.clone(),
        };
        self.broadcast(message.clone());
        self.handle_message_inner(message);
        self.relay_user_command(app, user_id, UserAction::Deliver(frame));
        self.run_detach_queue();
    }

    /// Closes every connection signed in as `user_id` with 4009, on every shard.
    pub fn terminate_user(&mut self, app: AppIndex, user_id: &str, now_ms: u64) {
        self.now_ms = now_ms;
        let message = ShardMessage::TerminateUser {
            app,
            user_id: Arc::from(user_id),
        };
        self.broadcast(message.clone());
        self.handle_message_inner(message);
        self.relay_user_command(app, user_id, UserAction::Terminate);
        self.run_detach_queue();
    }

    /// After the upgrade on `/app/{key}`: protocol version, app, admission, then
    /// `connection_established`.
    pub(super) fn open_pusher(&mut self, key: u32, app_key: &str, protocol: Option<String>) {
        let protocol_ok = match protocol.as_deref() {
            None | Some("") => true,
            Some(p) => p.parse::<u8>().is_ok_and(|v| (5..=7).contains(&v)),
        };
        if !protocol_ok {
            self.close_pusher(
                key,
                close::UNSUPPORTED_PROTOCOL,
                "Unsupported protocol version (supported: 5 to 7)",
            );
            return;
        }
        if self.draining {
            self.close_pusher(key, close::RECONNECT, "Server is shutting down");
            return;
        }
        let Some(app_index) = self.apps.index_by_key(app_key) else {
            let message = format!("App key {app_key} does not exist");
            self.close_pusher(key, close::APP_NOT_FOUND, &message);
            return;
        };
        if !self.apps.get(app_index).enabled {
            self.close_pusher(key, close::APP_DISABLED, "App is disabled");
            return;
        }
        if !self.apps.try_admit(app_index) {
            self.close_pusher(
                key,
                close::OVER_CONNECTION_QUOTA,
                "App is over its connection quota",
            );
            return;
        }
        let now_ms = self.now_ms;
        let conn = &mut self.conns[key as usize];
        conn.app = Some(app_index);
        conn.counted = true;
        conn.opened_ms = now_ms;
        let serial = conn.serial;
        let socket_id = self.socket_id(serial);
        let activity_timeout_s = self.apps.get(app_index).activity_timeout_s;
        self.send_text(
            key,
            &server_message::connection_established(&socket_id, activity_timeout_s),
        );
    }

    pub(super) fn handle_pusher_text(&mut self, key: u32, payload: &[u8]) {
        let Some(app) = self.conns[key as usize].app else {
            return; // refused at the handshake; waiting for the client's close
        };
        let message = match client_message::parse_client_message(payload) {
            Ok(message) => message,
            Err(err) => {
                self.send_text(key, &server_message::error(None, &err.message));
                return;
            }
        };
        #[cfg(debug_assertions)]
        if self.settings.fault_trigger
            && matches!(&message, ClientMessage::Unknown { event } if event == "ringcast:test_panic")
        {
            panic!("the test fault trigger (debug builds only)");
        }
        match message {
            ClientMessage::Ping => self.send_text(key, &server_message::pong()),
            ClientMessage::Pong => {}
            ClientMessage::Subscribe {
                channel,
                auth,
                channel_data,
            } => self.subscribe(key, app, channel, auth, channel_data),
            ClientMessage::Unsubscribe { channel } => self.unsubscribe(key, app, &channel),
            ClientMessage::Signin { auth, user_data } => self.signin(key, app, &auth, &user_data),
            ClientMessage::ClientEvent {
                event,
                channel,
                data,
            } => self.client_event(key, app, &event, &channel, &data),
            ClientMessage::Reserved { event } => {
                let message = format!("Event {event} is reserved for the server");
                self.send_error(key, close::CLIENT_EVENT_REJECTED, &message);
            }
            ClientMessage::Unknown { event } => {
                let message =
                    format!("Unknown event {event}: client events must start with client-");
                self.send_error(key, close::CLIENT_EVENT_REJECTED, &message);
            }
        }
    }

    /// Removes a connection from everything it takes part in. Idempotent.
    pub(super) fn detach(&mut self, key: u32) {
        self.socketio_detach(key);
        self.channels_json_detach(key);
        self.slip_detach(key);
        self.relay_detach(key);
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        let Some(app) = conn.app else {
            return;
        };
        let subscriptions = std::mem::take(&mut conn.subscriptions);
        let signed_in = conn.signed_in.take();
        let counted = std::mem::replace(&mut conn.counted, false);
        for sub in subscriptions {
            self.leave_channel(key, app, sub);
        }
        if let Some(signed_in) = signed_in {
            self.sign_out(key, app, &signed_in);
        }
        if counted {
            self.apps.release(app);
        }
    }
}
