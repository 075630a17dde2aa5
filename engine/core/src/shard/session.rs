//! The Pusher v7 socket protocol on a shard: connection admission, subscribe / unsubscribe for
//! every channel type, presence via the owner shard, client events, sign-in and watchlists, and
//! the handling of messages from other shards. See the `shard` module docs for the protocol
//! between shards.

use std::sync::Arc;

use bytes::Bytes;

use super::conn::{Phase, SignedIn, SubState, Subscription};
use super::message::{AppIndex, ConnRef, MemberData, OwnerJoin, Query, ShardMessage};
use super::owner::JoinOutcome;
use super::Shard;
use crate::limits;
use crate::link::UserAction;
use crate::pusher::channel::{self, ChannelKind};
use crate::pusher::client_message::{self, ClientMessage};
use crate::pusher::{auth, close, server_message, user};
use crate::ws::frame;

pub(super) fn text_frame(json: &str) -> Bytes {
    frame::encode_text(json.as_bytes())
}

impl Shard {
    /// A message from another shard (or from this one, routed to itself).
    pub fn handle_message(&mut self, message: ShardMessage, now_ms: u64) {
        self.now_ms = now_ms;
        self.handle_message_inner(message);
        self.run_detach_queue();
    }

    /// Publishes an encoded event frame to a channel of an app from this shard: local
    /// subscribers, every interested shard, and the cache of a cache channel. `except` is the
    /// publisher's socket id (Pusher's `socket_id` exclusion).
    pub fn publish(
        &mut self,
        app: AppIndex,
        channel_name: &str,
        frame: Bytes,
        except_socket_id: Option<&str>,
        now_ms: u64,
    ) {
        self.now_ms = now_ms;
        let except = except_socket_id.and_then(|s| self.parse_socket_id(s));
        self.deliver_channel(app, channel_name, &frame, except, true);
        self.link_publish(app, channel_name, &frame, except_socket_id.unwrap_or(""));
        let max_len = self.apps.get(app).max_channel_name_length as usize;
        if channel::classify(channel_name, max_len).is_ok_and(|c| c.cache) {
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
        self.cluster_user_command(app, user_id, UserAction::Deliver(frame));
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
        self.cluster_user_command(app, user_id, UserAction::Terminate);
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

    pub(super) fn subscription_error(
        &mut self,
        key: u32,
        channel: &str,
        error_type: &str,
        error: &str,
        status: u16,
    ) {
        let json = server_message::subscription_error(channel, error_type, error, status);
        self.send_text(key, &json);
    }

    pub(super) fn subscribe(
        &mut self,
        key: u32,
        app: AppIndex,
        channel_name: String,
        auth_token: Option<String>,
        channel_data: Option<String>,
    ) {
        if let Some(user_id) = channel::server_to_user_id(&channel_name) {
            // pusher-js subscribes to its own server-to-user channel after sign-in. Delivery
            // goes through the per-user index, never through channel subscribers, so this
            // only confirms (or refuses) the name; a forged subscription receives nothing.
            let signed_in_as = self.conns[key as usize]
                .signed_in
                .as_ref()
                .map(|s| s.user_id.clone());
            if signed_in_as.as_deref() == Some(user_id) {
                self.send_text(key, &server_message::subscription_succeeded(&channel_name));
            } else {
                self.subscription_error(
                    key,
                    &channel_name,
                    "AuthError",
                    "Sign in as this user before subscribing to its server-to-user channel",
                    403,
                );
            }
            return;
        }
        let app_config = self.apps.get(app);
        let max_channel_len = app_config.max_channel_name_length as usize;
        let member_bytes_max = app_config.max_presence_member_size_kb as usize * 1024;
        let class = match channel::classify(&channel_name, max_channel_len) {
            Ok(class) => class,
            Err(err) => {
                self.subscription_error(key, &channel_name, "InvalidChannel", err.message(), 400);
                return;
            }
        };
        let conn = &self.conns[key as usize];
        if let Some(index) = conn.subscription_index(&channel_name) {
            // Re-subscribing to an active non-presence channel is answered again (pusher-js
            // does this after reconnect logic); anything in flight is left to finish.
            let sub = &conn.subscriptions[index];
            if sub.state == SubState::Active && class.kind != ChannelKind::Presence {
                self.send_text(key, &server_message::subscription_succeeded(&channel_name));
            }
            return;
        }
        if conn.subscriptions.len() >= limits::SUBSCRIPTIONS_PER_CONNECTION_MAX {
            self.subscription_error(
                key,
                &channel_name,
                "LimitReached",
                "Too many subscriptions on this connection",
                4100,
            );
            return;
        }
        let mut member = None;
        if class.needs_auth() {
            let Some(token) = auth_token.as_deref() else {
                // The app's endpoint may authorize it for the client (auth offload).
                if self.offload_auth(key, app, &channel_name, class.cache) {
                    return;
                }
                self.subscription_error(
                    key,
                    &channel_name,
                    "AuthError",
                    "Subscription to this channel requires auth",
                    401,
                );
                return;
            };
            let socket_id = self.socket_id(conn.serial);
            let data_for_auth = if class.kind == ChannelKind::Presence {
                let Some(data) = channel_data.as_deref() else {
                    self.subscription_error(
                        key,
                        &channel_name,
                        "AuthError",
                        "Presence channels require channel_data",
                        401,
                    );
                    return;
                };
                Some(data)
            } else {
                None
            };
            let app_secrets = self.apps.get(app);
            if !auth::verify_channel_auth(
                &app_secrets.key,
                &app_secrets.secret,
                &socket_id,
                &channel_name,
                data_for_auth,
                token,
            ) {
                self.subscription_error(key, &channel_name, "AuthError", "Invalid signature", 401);
                return;
            }
            if let Some(data) = data_for_auth {
                match user::parse_presence_member(data, member_bytes_max) {
                    Ok(parsed) => {
                        member = Some(MemberData {
                            user_id: Arc::from(parsed.user_id.as_str()),
                            user_info: Arc::from(parsed.user_info.as_str()),
                        })
                    }
                    Err(err) => {
                        self.subscription_error(key, &channel_name, "AuthError", &err.message, 400);
                        return;
                    }
                }
            }
        }
        let channel: Arc<str> = Arc::from(channel_name.as_str());
        let conn = &mut self.conns[key as usize];
        if class.needs_auth() {
            conn.authorized = true;
        }
        // Most connections hold one or two channels: grow one slot at a time, not by four.
        conn.subscriptions.reserve_exact(1);
        conn.subscriptions.push(Subscription {
            channel: channel.clone(),
            state: SubState::AwaitingAcks,
            member,
            cache: class.cache,
        });
        let shard_count = self.settings.shard_count;
        let from = self.settings.shard_index;
        let entry = self.registry.channel_entry(app, &channel);
        entry.pending.push(key);
        if !entry.announced {
            let node_had_it = entry.remote_interest != 0;
            entry.announced = true;
            entry.interest_seq = entry.interest_seq.wrapping_add(1);
            entry.acks_outstanding = shard_count - 1;
            let seq = entry.interest_seq;
            self.broadcast(ShardMessage::Interest {
                app,
                channel: channel.clone(),
                from,
                on: true,
                seq,
            });
            self.hook_occupancy(app, &channel, node_had_it, true);
            if self.link_announce(app, &channel, seq) {
                self.registry.channel_entry(app, &channel).link_ack_pending = true;
            }
        }
        let ready = self
            .registry
            .channel(app, &channel)
            .is_some_and(|e| e.is_confirmed());
        if ready {
            self.advance_subscription(key, app, &channel);
        }
    }

    /// Interest is confirmed for this shard: go to the owner, or activate.
    pub(super) fn advance_subscription(&mut self, key: u32, app: AppIndex, channel: &Arc<str>) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        let Some(index) = conn.subscription_index(channel) else {
            return;
        };
        let sub = &mut conn.subscriptions[index];
        if sub.state != SubState::AwaitingAcks {
            return;
        }
        if sub.member.is_some() || sub.cache {
            sub.state = SubState::AwaitingOwner;
            let join = OwnerJoin {
                app,
                channel: channel.clone(),
                conn: ConnRef {
                    shard: self.settings.shard_index,
                    key,
                    serial: conn.serial,
                },
                member: sub.member.clone(),
                want_cache: sub.cache,
            };
            let owner = self.owner_of(app, channel);
            self.route(owner, ShardMessage::OwnerJoin(Box::new(join)));
        } else {
            let frame = text_frame(&server_message::subscription_succeeded(channel));
            self.activate(key, app, channel, vec![frame]);
        }
    }

    fn activate(&mut self, key: u32, app: AppIndex, channel: &str, frames: Vec<Bytes>) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        let Some(index) = conn.subscription_index(channel) else {
            return;
        };
        conn.subscriptions[index].state = SubState::Active;
        if let Some(entry) = self.registry.channel_mut(app, channel) {
            entry.pending.retain(|k| *k != key);
            if entry.subscribers.insert(key) && self.counts_wanted(app) {
                // The interned name: a dirty mark costs a refcount, not a copy.
                if let Some((name, _)) = self.registry.channel_with_name(app, channel) {
                    let name = name.clone();
                    self.count_changed(app, &name);
                }
            }
        }
        for frame in frames {
            self.push_data(key, frame);
        }
    }

    fn unsubscribe(&mut self, key: u32, app: AppIndex, channel: &str) {
        let conn = &mut self.conns[key as usize];
        let Some(index) = conn.subscription_index(channel) else {
            return; // unknown channel: a no-op, as in the spec
        };
        let sub = conn.subscriptions.swap_remove(index);
        self.leave_channel(key, app, sub);
    }

    /// Takes one subscription of a connection out of the registry and the owner's state.
    fn leave_channel(&mut self, key: u32, app: AppIndex, sub: Subscription) {
        if let SubState::AwaitingAuth(request_id) = sub.state {
            // Never got further than the authorization: nothing registered yet.
            self.auth_forget(request_id);
            return;
        }
        let from = self.settings.shard_index;
        let mut counted = false;
        if let Some(entry) = self.registry.channel_mut(app, &sub.channel) {
            match sub.state {
                SubState::Active => {
                    counted = entry.subscribers.swap_remove(&key);
                }
                SubState::AwaitingAcks | SubState::AwaitingOwner | SubState::AwaitingAuth(_) => {
                    entry.pending.retain(|k| *k != key);
                }
            }
            if !entry.has_local() && entry.announced {
                entry.announced = false;
                entry.interest_seq = entry.interest_seq.wrapping_add(1);
                entry.acks_outstanding = 0;
                entry.link_ack_pending = false;
                let seq = entry.interest_seq;
                let node_keeps_it = entry.remote_interest != 0;
                self.broadcast(ShardMessage::Interest {
                    app,
                    channel: sub.channel.clone(),
                    from,
                    on: false,
                    seq,
                });
                self.link_withdraw(app, &sub.channel);
                self.hook_occupancy(app, &sub.channel, true, node_keeps_it);
            }
        }
        if counted {
            self.count_changed(app, &sub.channel);
        }
        if let Some(member) = &sub.member {
            if sub.state != SubState::AwaitingAcks {
                let owner = self.owner_of(app, &sub.channel);
                self.route(
                    owner,
                    ShardMessage::OwnerLeave {
                        app,
                        channel: sub.channel.clone(),
                        user_id: member.user_id.clone(),
                    },
                );
            }
        }
        self.registry.remove_if_unused(app, &sub.channel);
    }

    /// Removes a connection from everything it takes part in. Idempotent.
    pub(super) fn detach(&mut self, key: u32) {
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

    fn sign_out(&mut self, key: u32, app: AppIndex, signed_in: &SignedIn) {
        self.registry.remove_user_conn(app, &signed_in.user_id, key);
        let owner = self.owner_of(app, &signed_in.user_id);
        self.route(
            owner,
            ShardMessage::UserOffline {
                app,
                user_id: signed_in.user_id.clone(),
            },
        );
        for watched in &signed_in.watchlist {
            let owner = self.owner_of(app, watched);
            self.route(
                owner,
                ShardMessage::Unwatch {
                    app,
                    watcher: signed_in.user_id.clone(),
                    watched: watched.clone(),
                },
            );
        }
    }

    fn signin(&mut self, key: u32, app: AppIndex, auth_token: &str, user_data: &str) {
        let conn = &self.conns[key as usize];
        let socket_id = self.socket_id(conn.serial);
        let app_config = self.apps.get(app);
        if !auth::verify_signin(
            &app_config.key,
            &app_config.secret,
            &socket_id,
            user_data,
            auth_token,
        ) {
            self.close_pusher(key, close::UNAUTHORIZED, "Invalid sign-in signature");
            return;
        }
        let parsed = match user::parse_signin_user(user_data) {
            Ok(parsed) => parsed,
            Err(err) => {
                self.close_pusher(key, close::UNAUTHORIZED, &err.message);
                return;
            }
        };
        // A second sign-in replaces the first.
        if let Some(previous) = self.conns[key as usize].signed_in.take() {
            self.sign_out(key, app, &previous);
        }
        let user_id: Arc<str> = Arc::from(parsed.id.as_str());
        let watchlist: Vec<Arc<str>> = parsed
            .watchlist
            .iter()
            .map(|id| Arc::from(id.as_str()))
            .collect();
        let conn = &mut self.conns[key as usize];
        conn.authorized = true;
        conn.signed_in = Some(Box::new(SignedIn {
            user_id: user_id.clone(),
            watchlist: watchlist.clone(),
        }));
        let conn_ref = ConnRef {
            shard: self.settings.shard_index,
            key,
            serial: conn.serial,
        };
        self.registry.add_user_conn(app, &user_id, key);
        self.send_text(key, &server_message::signin_success(user_data));
        if parsed.watchlist_truncated {
            let message = format!(
                "Watchlist over limit: only the first {} ids are watched",
                limits::WATCHLIST_IDS_MAX
            );
            self.send_error(key, close::WATCHLIST_OVER_LIMIT, &message);
        }
        let owner = self.owner_of(app, &user_id);
        self.route(
            owner,
            ShardMessage::UserOnline {
                app,
                user_id: user_id.clone(),
            },
        );
        for watched in watchlist {
            let owner = self.owner_of(app, &watched);
            self.route(
                owner,
                ShardMessage::Watch {
                    app,
                    watcher: user_id.clone(),
                    watched,
                    conn: conn_ref,
                },
            );
        }
    }

    fn client_event(&mut self, key: u32, app: AppIndex, event: &str, channel: &str, data: &str) {
        let app_config = self.apps.get(app);
        if !app_config.enable_client_messages {
            self.send_error(
                key,
                close::CLIENT_EVENT_REJECTED,
                "Client events are not enabled for this app",
            );
            return;
        }
        let max_name = app_config.max_event_name_length as usize;
        let max_payload = app_config.max_event_payload_kb as usize * 1024;
        let rate_max = app_config.max_client_events_per_second;
        let class = channel::classify(channel, app_config.max_channel_name_length as usize);
        if !class.is_ok_and(|c| c.allows_client_events()) {
            self.send_error(
                key,
                close::CLIENT_EVENT_REJECTED,
                "Client events are only allowed on private and presence channels",
            );
            return;
        }
        if event.len() > max_name {
            self.send_error(key, close::CLIENT_EVENT_REJECTED, "Event name is too long");
            return;
        }
        if data.len() > max_payload {
            self.send_error(
                key,
                close::CLIENT_EVENT_REJECTED,
                "Event payload is too large",
            );
            return;
        }
        let now_s = self.now_ms / 1000;
        let conn = &mut self.conns[key as usize];
        let Some(index) = conn.subscription_index(channel) else {
            self.send_error(
                key,
                close::CLIENT_EVENT_REJECTED,
                "Client events require a subscription to the channel",
            );
            return;
        };
        if conn.subscriptions[index].state != SubState::Active {
            self.send_error(
                key,
                close::CLIENT_EVENT_REJECTED,
                "Subscription to the channel is not confirmed yet",
            );
            return;
        }
        if rate_max > 0 {
            if conn.client_event_window_s != now_s {
                conn.client_event_window_s = now_s;
                conn.client_events_in_window = 0;
            }
            conn.client_events_in_window += 1;
            if conn.client_events_in_window > rate_max {
                self.send_error(
                    key,
                    close::CLIENT_EVENT_REJECTED,
                    "Client event rate limit exceeded",
                );
                return;
            }
        }
        let user_id = conn.subscriptions[index]
            .member
            .as_ref()
            .map(|m| m.user_id.clone());
        let serial = conn.serial;
        let json = server_message::channel_event(event, channel, data, user_id.as_deref());
        let frame = text_frame(&json);
        let except = Some((self.settings.shard_index, serial));
        self.deliver_channel(app, channel, &frame, except, true);
        if self.link.enabled {
            let socket_id = self.socket_id(serial);
            self.link_publish(app, channel, &frame, &socket_id);
            self.hook_client_event(app, channel, event, data, &socket_id, user_id.as_deref());
        }
    }

    /// Handles one inter-shard message (also used for messages a shard routes to itself).
    pub(super) fn handle_message_inner(&mut self, message: ShardMessage) {
        match message {
            ShardMessage::Interest {
                app,
                channel,
                from,
                on,
                seq,
            } => {
                if app as usize >= self.apps.len() || from >= self.settings.shard_count {
                    return;
                }
                let entry = self.registry.channel_entry(app, &channel);
                let node_had_it = entry.announced || entry.remote_interest != 0;
                if on {
                    entry.remote_interest |= 1 << from;
                } else {
                    entry.remote_interest &= !(1 << from);
                }
                let node_has_it = entry.announced || entry.remote_interest != 0;
                self.hook_occupancy(app, &channel, node_had_it, node_has_it);
                if on {
                    self.route(from, ShardMessage::InterestAck { app, channel, seq });
                } else {
                    self.registry.remove_if_unused(app, &channel);
                }
            }
            ShardMessage::InterestAck { app, channel, seq } => {
                let Some(entry) = self.registry.channel_mut(app, &channel) else {
                    return;
                };
                if entry.interest_seq != seq || !entry.announced || entry.acks_outstanding == 0 {
                    return; // an ack of an older announcement
                }
                entry.acks_outstanding -= 1;
                if entry.is_confirmed() {
                    let waiting = entry.pending.clone();
                    for key in waiting {
                        self.advance_subscription(key, app, &channel);
                    }
                }
            }
            ShardMessage::Deliver {
                app,
                channel,
                frame,
                except,
            } => self.deliver_channel(app, &channel, &frame, except, false),
            ShardMessage::DeliverToUser {
                app,
                user_id,
                frame,
            } => {
                let keys: Vec<u32> = self.registry.user_conns(app, &user_id).to_vec();
                self.stats.deliveries += keys.len() as u64;
                for key in keys {
                    self.push_data(key, frame.clone());
                }
            }
            ShardMessage::DeliverToConn { conn, frame } => {
                if self.is_live(conn) {
                    self.push_data(conn.key, frame);
                }
            }
            ShardMessage::OwnerJoin(join) => self.owner_join(*join),
            ShardMessage::OwnerJoined {
                channel,
                conn,
                accepted,
                frames,
            } => self.owner_joined(conn, &channel, accepted, frames),
            ShardMessage::OwnerLeave {
                app,
                channel,
                user_id,
            } => {
                if self.owner.presence_leave(app, &channel, &user_id)
                    && !self.cluster_member_leave(app, &channel, &user_id)
                {
                    let json = server_message::member_removed(&channel, &user_id);
                    self.deliver_channel(app, &channel, &text_frame(&json), None, true);
                    self.hook_member(app, &channel, &user_id, false);
                }
            }
            ShardMessage::CacheStore {
                app,
                channel,
                frame,
            } => self
                .owner
                .cache_store(app, channel, frame, self.now_ms / 1000),
            ShardMessage::UserOnline { app, user_id } => {
                let watchers = self.owner.user_online(app, &user_id);
                self.notify_watchers(app, &user_id, watchers, "online");
            }
            ShardMessage::UserOffline { app, user_id } => {
                let watchers = self.owner.user_offline(app, &user_id);
                self.notify_watchers(app, &user_id, watchers, "offline");
            }
            ShardMessage::Watch {
                app,
                watcher,
                watched,
                conn,
            } => {
                if self.owner.watch(app, &watcher, &watched) {
                    let ids = [watched.to_string()];
                    let json = server_message::watchlist_events(&[("online", &ids)]);
                    self.route(
                        conn.shard,
                        ShardMessage::DeliverToConn {
                            conn,
                            frame: text_frame(&json),
                        },
                    );
                }
            }
            ShardMessage::Unwatch {
                app,
                watcher,
                watched,
            } => self.owner.unwatch(app, &watcher, &watched),
            ShardMessage::Query { id, from, query } => {
                // Several nodes: the users of a presence channel are the cluster's.
                if let Query::Users { app, channel } = &*query {
                    if self.cluster_defer_users(*app, channel, id, from) {
                        return;
                    }
                }
                let part = self.answer_query(&query);
                self.route(
                    from,
                    ShardMessage::QueryReply {
                        id,
                        part: Box::new(part),
                    },
                );
            }
            ShardMessage::QueryReply { id, part } => {
                let key = self.queries.get(id as usize).map(|q| q.conn_key);
                self.handle_query_reply(id, *part);
                // Pipelined requests behind the answered one.
                if let Some(key) = key {
                    if self
                        .conns
                        .get(key as usize)
                        .is_some_and(|c| c.phase == Phase::Http)
                    {
                        self.process_input(key);
                    }
                }
            }
            ShardMessage::TerminateUser { app, user_id } => {
                let keys: Vec<u32> = self.registry.user_conns(app, &user_id).to_vec();
                for key in keys {
                    self.close_pusher(key, close::UNAUTHORIZED, "Connection terminated by the app");
                }
            }
        }
    }

    fn is_live(&self, conn: ConnRef) -> bool {
        conn.shard == self.settings.shard_index
            && self
                .conns
                .get(conn.key as usize)
                .is_some_and(|c| c.serial == conn.serial && c.phase == Phase::Pusher)
    }

    fn notify_watchers(
        &mut self,
        app: AppIndex,
        user_id: &Arc<str>,
        watchers: Vec<Arc<str>>,
        event: &str,
    ) {
        if watchers.is_empty() {
            return;
        }
        let ids = [user_id.to_string()];
        let frame = text_frame(&server_message::watchlist_events(&[(event, &ids)]));
        for watcher in watchers {
            let message = ShardMessage::DeliverToUser {
                app,
                user_id: watcher,
                frame: frame.clone(),
            };
            self.broadcast(message.clone());
            self.handle_message_inner(message);
        }
    }

    /// Owner side of a presence / cache join.
    fn owner_join(&mut self, join: OwnerJoin) {
        if join.app as usize >= self.apps.len() {
            return;
        }
        let app = self.apps.get(join.app);
        let members_max = app.max_presence_members_per_channel as usize;
        let mut frames = Vec::with_capacity(2);
        let mut accepted = true;
        if let Some(member) = &join.member {
            let outcome = self.owner.presence_join(
                join.app,
                &join.channel,
                &member.user_id,
                &member.user_info,
                members_max,
            );
            match outcome {
                JoinOutcome::Full => {
                    accepted = false;
                    let json = server_message::subscription_error(
                        &join.channel,
                        "LimitReached",
                        "Presence channel is at its member limit",
                        close::OVER_CAPACITY,
                    );
                    frames.push(text_frame(&json));
                }
                JoinOutcome::FirstJoin => {
                    // Several nodes: the bridge decides whether this is the cluster's first
                    // join and every node delivers the event it publishes.
                    if !self.cluster_member_join(join.app, &join.channel, member) {
                        let json = server_message::member_added(
                            &join.channel,
                            &member.user_id,
                            &member.user_info,
                        );
                        let frame = text_frame(&json);
                        self.deliver_channel(join.app, &join.channel, &frame, None, true);
                        self.hook_member(join.app, &join.channel, &member.user_id, true);
                    }
                }
                JoinOutcome::AlreadyMember => {}
            }
            if accepted && self.is_linked() {
                // The member list must be the cluster's: answer once the bridge sent it.
                let after = if join.want_cache {
                    vec![self.cache_frame(join.app, &join.channel)]
                } else {
                    Vec::new()
                };
                if self.cluster_defer_join(join.app, &join.channel, join.conn, member, after) {
                    return;
                }
            }
            if accepted {
                let json = self.node_members_succeeded(join.app, &join.channel);
                frames.push(text_frame(&json));
            }
        } else {
            frames.push(text_frame(&server_message::subscription_succeeded(
                &join.channel,
            )));
            if join.want_cache {
                // Several nodes: the last event is the cluster's, whichever node published it.
                match self.cluster_defer_cache(join.app, &join.channel, join.conn, frames) {
                    Ok(()) => return,
                    Err(back) => frames = back,
                }
            }
        }
        if accepted && join.want_cache {
            frames.push(self.cache_frame(join.app, &join.channel));
        }
        self.route(
            join.conn.shard,
            ShardMessage::OwnerJoined {
                channel: join.channel,
                conn: join.conn,
                accepted,
                frames,
            },
        );
    }

    /// `subscription_succeeded` of a presence channel with this node's members.
    fn node_members_succeeded(&self, app: AppIndex, channel: &str) -> String {
        match self.owner.members(app, channel) {
            Some(members) => server_message::presence_subscription_succeeded(
                channel,
                members.iter().map(|(id, m)| (&**id, &*m.user_info)),
                members.len(),
            ),
            None => server_message::presence_subscription_succeeded(channel, std::iter::empty(), 0),
        }
    }

    /// The frame a new subscriber of a cache channel gets: the last event, or a cache miss
    /// (which the app's webhooks hear of).
    fn cache_frame(&mut self, app: AppIndex, channel: &str) -> Bytes {
        if let Some(frame) = self.owner.cache_lookup(app, channel, self.now_ms / 1000) {
            return frame.clone();
        }
        self.hook_cache_miss(app, channel);
        text_frame(&server_message::cache_miss(channel))
    }

    /// Subscriber side of the owner's answer.
    fn owner_joined(
        &mut self,
        conn_ref: ConnRef,
        channel: &Arc<str>,
        accepted: bool,
        frames: Vec<Bytes>,
    ) {
        if !self.is_live(conn_ref) {
            return; // gone; its leave already went to the owner
        }
        let key = conn_ref.key;
        let conn = &mut self.conns[key as usize];
        let Some(app) = conn.app else { return };
        let Some(index) = conn.subscription_index(channel) else {
            return;
        };
        if conn.subscriptions[index].state != SubState::AwaitingOwner {
            return;
        }
        if accepted {
            self.activate(key, app, channel, frames);
        } else {
            let mut sub = conn.subscriptions.swap_remove(index);
            // The owner did not count this member: no leave must follow.
            sub.member = None;
            self.leave_channel(key, app, sub);
            for frame in frames {
                self.push_data(key, frame);
            }
        }
    }
}
