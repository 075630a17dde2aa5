//! Subscribe and unsubscribe on a shard, every channel type: the checks of a `pusher:subscribe`
//! (name, repeats, the per-connection cap, the signature and presence member), the interest
//! announcement of a shard's first subscriber, the way to active (the other shards' acks, then
//! the owner for presence and cache channels) and leaving a channel again.

use std::sync::Arc;

use bytes::Bytes;

use super::conn::{SubState, Subscription};
use super::frames::text_frame;
use super::message::{AppIndex, ConnRef, MemberData, OwnerJoin, ShardMessage};
use super::Shard;
use crate::dialect::Dialect;
use crate::limits;
use crate::pusher::channel::{self, ChannelClass, ChannelKind};
use crate::pusher::{auth, server_message, user};

/// The subscription has been answered (refused, confirmed again, or handed to the app's auth
/// endpoint): nothing more to do for it now.
struct Answered;

impl Shard {
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

    /// A client's `pusher:subscribe`.
    pub(super) fn subscribe(
        &mut self,
        key: u32,
        app: AppIndex,
        channel_name: String,
        auth_token: Option<String>,
        channel_data: Option<String>,
    ) {
        if let Some(user_id) = channel::server_to_user_id(&channel_name) {
            self.subscribe_server_to_user(key, &channel_name, user_id);
            return;
        }
        let checked = self.check_subscription(
            key,
            app,
            &channel_name,
            auth_token.as_deref(),
            channel_data.as_deref(),
        );
        if let Ok((class, member)) = checked {
            self.add_subscription(key, app, &channel_name, class, member);
        }
    }

    /// pusher-js subscribes to its own server-to-user channel after sign-in. Delivery goes
    /// through the per-user index, never through channel subscribers, so this only confirms (or
    /// refuses) the name; a forged subscription receives nothing.
    fn subscribe_server_to_user(&mut self, key: u32, channel_name: &str, user_id: &str) {
        let signed_in_as = self.conns[key as usize]
            .signed_in
            .as_ref()
            .map(|s| s.user_id.clone());
        if signed_in_as.as_deref() == Some(user_id) {
            self.send_text(key, &server_message::subscription_succeeded(channel_name));
        } else {
            self.subscription_error(
                key,
                channel_name,
                "AuthError",
                "Sign in as this user before subscribing to its server-to-user channel",
                403,
            );
        }
    }

    /// Every check before a subscription is added: its channel's class and, for channels that
    /// need auth, the presence member it joins as (if any).
    fn check_subscription(
        &mut self,
        key: u32,
        app: AppIndex,
        channel_name: &str,
        auth_token: Option<&str>,
        channel_data: Option<&str>,
    ) -> Result<(ChannelClass, Option<MemberData>), Answered> {
        let class = self.subscription_class(key, app, channel_name)?;
        self.check_new_subscription(key, app, channel_name, class)?;
        if !class.needs_auth() {
            return Ok((class, None));
        }
        let member =
            self.authorize_subscription(key, app, channel_name, class, auth_token, channel_data)?;
        Ok((class, member))
    }

    /// The channel's class; an invalid name is refused (400).
    fn subscription_class(
        &mut self,
        key: u32,
        app: AppIndex,
        channel_name: &str,
    ) -> Result<ChannelClass, Answered> {
        let max_channel_len = self.apps.get(app).max_channel_name_length as usize;
        channel::classify(channel_name, max_channel_len).map_err(|err| {
            self.subscription_error(key, channel_name, "InvalidChannel", err.message(), 400);
            Answered
        })
    }

    /// A channel the connection already has is not added again (an active non-presence one is
    /// confirmed again, as pusher-js expects after its reconnect logic; anything in flight is
    /// left to finish), and a connection at its cap gets no more, nor a shard that holds its
    /// most channels a new one.
    fn check_new_subscription(
        &mut self,
        key: u32,
        app: AppIndex,
        channel_name: &str,
        class: ChannelClass,
    ) -> Result<(), Answered> {
        let conn = &self.conns[key as usize];
        if let Some(index) = conn.subscription_index(channel_name) {
            let sub = &conn.subscriptions[index];
            if sub.state == SubState::Active && class.kind != ChannelKind::Presence {
                self.send_text(key, &server_message::subscription_succeeded(channel_name));
            }
            return Err(Answered);
        }
        if self.registry.channel(app, channel_name).is_none() && self.registry.is_full() {
            self.stats.channels_refused += 1;
            self.subscription_error(
                key,
                channel_name,
                "LimitReached",
                "Too many channels on this server",
                4100,
            );
            return Err(Answered);
        }
        let conn = &self.conns[key as usize];
        if conn.subscriptions.len() >= limits::SUBSCRIPTIONS_PER_CONNECTION_MAX {
            self.subscription_error(
                key,
                channel_name,
                "LimitReached",
                "Too many subscriptions on this connection",
                4100,
            );
            return Err(Answered);
        }
        Ok(())
    }

    /// The `auth` of a private or presence subscription: without one the app's endpoint may
    /// authorize it (auth offload), else 401; a presence channel needs `channel_data` (401), a
    /// valid signature (401) and a valid member in it (400).
    fn authorize_subscription(
        &mut self,
        key: u32,
        app: AppIndex,
        channel_name: &str,
        class: ChannelClass,
        auth_token: Option<&str>,
        channel_data: Option<&str>,
    ) -> Result<Option<MemberData>, Answered> {
        let Some(token) = auth_token else {
            if !self.offload_auth(key, app, channel_name, class.cache) {
                self.subscription_error(
                    key,
                    channel_name,
                    "AuthError",
                    "Subscription to this channel requires auth",
                    401,
                );
            }
            return Err(Answered);
        };
        let socket_id = self.socket_id(self.conns[key as usize].serial);
        let data_for_auth = match (class.kind, channel_data) {
            (ChannelKind::Presence, None) => {
                self.subscription_error(
                    key,
                    channel_name,
                    "AuthError",
                    "Presence channels require channel_data",
                    401,
                );
                return Err(Answered);
            }
            (ChannelKind::Presence, Some(data)) => Some(data),
            _ => None,
        };
        let app_secrets = self.apps.get(app);
        if !auth::verify_channel_auth(
            &app_secrets.key,
            &app_secrets.secret,
            &socket_id,
            channel_name,
            data_for_auth,
            token,
        ) {
            self.subscription_error(key, channel_name, "AuthError", "Invalid signature", 401);
            return Err(Answered);
        }
        match data_for_auth {
            Some(data) => self.presence_member(key, app, channel_name, data).map(Some),
            None => Ok(None),
        }
    }

    /// The member a presence subscription joins as, from its signed `channel_data`.
    fn presence_member(
        &mut self,
        key: u32,
        app: AppIndex,
        channel_name: &str,
        data: &str,
    ) -> Result<MemberData, Answered> {
        let member_bytes_max = self.apps.get(app).max_presence_member_size_kb as usize * 1024;
        match user::parse_presence_member(data, member_bytes_max) {
            Ok(parsed) => Ok(MemberData {
                user_id: Arc::from(parsed.user_id.as_str()),
                user_info: Arc::from(parsed.user_info.as_str()),
            }),
            Err(err) => {
                self.subscription_error(key, channel_name, "AuthError", &err.message, 400);
                Err(Answered)
            }
        }
    }

    /// A checked subscription: added to the connection, waiting for the shards' acks (or
    /// advanced at once when the channel's interest is already confirmed).
    fn add_subscription(
        &mut self,
        key: u32,
        app: AppIndex,
        channel_name: &str,
        class: ChannelClass,
        member: Option<MemberData>,
    ) {
        let channel: Arc<str> = Arc::from(channel_name);
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
        self.enter_and_advance(key, app, &channel);
    }

    /// Enters the channel and, when its interest is confirmed on this shard already, advances
    /// the subscription at once (in the connection's dialect); else the acks advance it.
    pub(super) fn enter_and_advance(&mut self, key: u32, app: AppIndex, channel: &Arc<str>) {
        self.enter_channel(key, app, channel);
        let ready = self
            .registry
            .channel(app, channel)
            .is_some_and(|e| e.is_confirmed());
        if ready {
            self.advance_subscription(key, app, channel);
        }
    }

    /// Puts the connection among the channel's pending subscribers. The shard's first one
    /// announces the channel: to the other shards (`Interest`), the webhooks and the bridge.
    pub(super) fn enter_channel(&mut self, key: u32, app: AppIndex, channel: &Arc<str>) {
        let shard_count = self.settings.shard_count;
        let from = self.settings.shard_index;
        let entry = self.registry.channel_entry(app, channel);
        entry.pending.push(key);
        if entry.announced {
            return;
        }
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
        self.hook_occupancy(app, channel, node_had_it, true);
        let app_id = &self.apps.get(app).id;
        if self.link.announce(app_id, app, channel, seq, self.now_ms) {
            self.registry.channel_entry(app, channel).link_ack_pending = true;
        }
    }

    /// Interest is confirmed for this shard: go to the owner, or activate.
    pub(super) fn advance_subscription(&mut self, key: u32, app: AppIndex, channel: &Arc<str>) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        if conn.socketio.is_some() {
            self.socketio_activate(key, app, channel);
            return;
        }
        if conn.channels_json.is_some() {
            self.channels_json_activate(key, app, channel);
            return;
        }
        if conn.slip.is_some() {
            self.slip_activate(key, app, channel);
            return;
        }
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

    /// Subscriber side of the owner's answer.
    pub(super) fn owner_joined(
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

    /// The subscription is active: the connection receives the channel's events from now on,
    /// starting with `frames` (`subscription_succeeded`, and a cache channel's last event).
    fn activate(&mut self, key: u32, app: AppIndex, channel: &str, frames: Vec<Bytes>) {
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return;
        };
        let Some(index) = conn.subscription_index(channel) else {
            return;
        };
        conn.subscriptions[index].state = SubState::Active;
        self.join_subscribers(key, app, channel, Dialect::Pusher);
        for frame in frames {
            self.push_data(key, frame);
        }
    }

    /// Moves a connection from a channel's pending subscribers to its active ones (of its
    /// dialect), counted for `subscription_count` where the app wants it.
    pub(super) fn join_subscribers(
        &mut self,
        key: u32,
        app: AppIndex,
        channel: &str,
        dialect: Dialect,
    ) {
        if let Some(entry) = self.registry.channel_mut(app, channel) {
            entry.pending.retain(|k| *k != key);
            if entry.subscribers.insert(dialect, key) && self.counts_wanted(app) {
                // The interned name: a dirty mark costs a refcount, not a copy.
                if let Some((name, _)) = self.registry.channel_with_name(app, channel) {
                    let name = name.clone();
                    self.count_changed(app, &name);
                }
            }
        }
    }

    /// A client's `pusher:unsubscribe`.
    pub(super) fn unsubscribe(&mut self, key: u32, app: AppIndex, channel: &str) {
        let conn = &mut self.conns[key as usize];
        let Some(index) = conn.subscription_index(channel) else {
            return; // unknown channel: a no-op, as in the Pusher protocol
        };
        let sub = conn.subscriptions.swap_remove(index);
        self.leave_channel(key, app, sub);
    }

    /// Takes one subscription of a connection out of the registry and the owner's state.
    pub(super) fn leave_channel(&mut self, key: u32, app: AppIndex, sub: Subscription) {
        if let SubState::AwaitingAuth(request_id) = sub.state {
            // Never got further than the authorization: nothing registered yet.
            self.auth_forget(request_id);
            return;
        }
        let active = sub.state == SubState::Active;
        if self.exit_channel(key, app, &sub.channel, active, Dialect::Pusher) {
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

    /// Takes the connection out of the channel's subscribers; the shard's last one withdraws the
    /// channel (from the other shards, the bridge and the webhooks). True when the connection
    /// was counted as a subscriber.
    pub(super) fn exit_channel(
        &mut self,
        key: u32,
        app: AppIndex,
        channel: &Arc<str>,
        active: bool,
        dialect: Dialect,
    ) -> bool {
        let from = self.settings.shard_index;
        let Some(entry) = self.registry.channel_mut(app, channel) else {
            return false;
        };
        let mut counted = false;
        if active {
            counted = entry.subscribers.remove(dialect, key);
        } else {
            entry.pending.retain(|k| *k != key);
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
                channel: channel.clone(),
                from,
                on: false,
                seq,
            });
            self.link.withdraw(&self.apps.get(app).id, channel);
            self.hook_occupancy(app, channel, true, node_keeps_it);
        }
        counted
    }
}
