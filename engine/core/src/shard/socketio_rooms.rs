//! Ekko's rooms on a shard, in the engine's one channel space: a Socket.IO client's
//! `subscribe` / `unsubscribe` / `publish` go through the same registry, interest protocol and
//! fan-out as Pusher's (its subscribers kept in their own per-dialect set), the presence rooms'
//! `joined` / `left`, the admin room's `status` events, and the acknowledgements a client asks
//! for (`docs/socketio.md`).
//!
//! A `subscribe` is acknowledged once every room it asked for is active, so a publish made after
//! the acknowledgement reaches the client wherever it is published (the Pusher guarantee of
//! `subscription_succeeded`).

use std::sync::Arc;

use super::message::AppIndex;
use super::socketio_state::{Namespace, Room, RoomRole};
use super::Shard;
use crate::dialect::{Dialect, Published};
use crate::functions::Publication;
use crate::limits::SUBSCRIPTIONS_PER_CONNECTION_MAX;
use crate::socketio::event::ClientEvent;
use crate::socketio::packet;
use crate::socketio::rooms::{self, StatusEvent, ADMIN_CHANNEL, ADMIN_ROOM, PRESENCE_SUFFIX};

/// The acknowledgement of an event that was carried out.
const ACK_OK: &str = "{\"ok\":true}";

impl Shard {
    /// A client event in the (joined) namespace of `app`.
    pub(super) fn socketio_client_event(
        &mut self,
        key: u32,
        app: AppIndex,
        event: ClientEvent,
        ack: Option<u64>,
    ) {
        match event {
            ClientEvent::Subscribe {
                channels,
                with_presence,
                uuid,
            } => {
                if let Err(reason) =
                    self.socketio_subscribe(key, app, &channels, with_presence, uuid, ack)
                {
                    self.socketio_answer(key, app, ack, Err(reason));
                }
            }
            ClientEvent::Unsubscribe { channels } => {
                for channel in &channels {
                    self.socketio_unsubscribe(key, app, channel);
                }
                self.socketio_answer(key, app, ack, Ok(()));
            }
            ClientEvent::Publish {
                channel,
                args_json,
                message_json,
            } => {
                let outcome = self.socketio_publish(key, app, &channel, args_json, message_json);
                self.socketio_answer(key, app, ack, outcome);
            }
            ClientEvent::Unknown { name } => {
                let reason = format!("Unknown event: {name}");
                self.socketio_answer(key, app, ack, Err(&reason));
            }
        }
    }

    /// Tells the client how an event went: its acknowledgement when it asked for one, else an
    /// `error` event when it was refused (nothing when it was carried out).
    fn socketio_answer(
        &mut self,
        key: u32,
        app: AppIndex,
        ack: Option<u64>,
        outcome: Result<(), &str>,
    ) {
        let Some(namespace) = self.socketio_namespace_name(key, app) else {
            return;
        };
        match (ack, outcome) {
            (Some(id), Ok(())) => self.send_text(key, &packet::ack(&namespace, id, ACK_OK)),
            (None, Ok(())) => {}
            (Some(id), Err(reason)) => {
                if self.socketio_count_error(key) {
                    let mut args = String::from("{\"ok\":false,\"error\":");
                    crate::pusher::json_escape::push_json_string(&mut args, reason);
                    args.push('}');
                    self.send_text(key, &packet::ack(&namespace, id, &args));
                }
            }
            (None, Err(reason)) => self.socketio_refuse(key, &namespace, reason),
        }
    }

    fn socketio_namespace_name(&self, key: u32, app: AppIndex) -> Option<String> {
        let session = self.conns.get(key as usize)?.socketio.as_deref()?;
        let index = session.namespace_of_app(app)?;
        Some(session.namespaces[index].name.to_string())
    }

    fn socketio_namespace_mut(&mut self, key: u32, app: AppIndex) -> Option<&mut Namespace> {
        let session = self.conns.get_mut(key as usize)?.socketio.as_deref_mut()?;
        let index = session.namespace_of_app(app)?;
        Some(&mut session.namespaces[index])
    }

    /// `subscribe`: every name is checked before any room is joined (all or nothing), then the
    /// rooms are added, and then each enters its channel.
    fn socketio_subscribe(
        &mut self,
        key: u32,
        app: AppIndex,
        channels: &[String],
        with_presence: bool,
        uuid: Option<String>,
        ack: Option<u64>,
    ) -> Result<(), &'static str> {
        let max_len = self.apps.get(app).max_channel_name_length as usize;
        let Some(session) = self.conns[key as usize].socketio.as_deref() else {
            return Ok(());
        };
        let Some(index) = session.namespace_of_app(app) else {
            return Ok(());
        };
        let namespace = &session.namespaces[index];
        let uuid: Option<Box<str>> = uuid.map(Box::from).or_else(|| namespace.uuid.clone());
        let mut wanted: Vec<(Arc<str>, RoomRole)> = Vec::new();
        for name in channels {
            if name == ADMIN_ROOM {
                if namespace.admin {
                    continue; // admins are in it from their CONNECT on
                }
                return Err("Only admin tokens may join the admin room");
            }
            rooms::check_channel(name, max_len)?;
            let presence = with_presence.then(|| rooms::presence_room(name));
            if let Some(presence) = &presence {
                rooms::check_channel(presence, max_len)
                    .map_err(|_| "The channel's presence room name would be too long")?;
            }
            let joined = namespace.room_index(name).is_some()
                || wanted.iter().any(|(channel, _)| **channel == **name);
            if !joined {
                let role = match with_presence {
                    true => RoomRole::WithPresence(uuid.clone()),
                    false => RoomRole::Plain,
                };
                wanted.push((Arc::from(name.as_str()), role));
            }
            if let Some(presence) = presence {
                let joined = namespace.room_index(&presence).is_some()
                    || wanted.iter().any(|(channel, _)| **channel == *presence);
                if !joined {
                    wanted.push((Arc::from(presence), RoomRole::PresenceOf(uuid.clone())));
                }
            }
        }
        if session.room_count() + wanted.len() > SUBSCRIPTIONS_PER_CONNECTION_MAX {
            return Err("Too many subscriptions on this connection");
        }
        let new_channels = wanted
            .iter()
            .filter(|(channel, _)| self.registry.channel(app, channel).is_none())
            .count();
        if new_channels > 0 && self.registry.is_full() {
            self.stats.channels_refused += 1;
            return Err("Too many channels on this server");
        }
        if wanted.is_empty() {
            self.socketio_answer(key, app, ack, Ok(()));
            return Ok(());
        }
        let (status_uuid, admin) = (uuid.clone(), namespace.admin);
        self.socketio_join_rooms(key, app, wanted.clone(), ack);
        for (channel, role) in &wanted {
            if !matches!(role, RoomRole::PresenceOf(_)) {
                self.publish_status(
                    app,
                    StatusEvent::Joined,
                    status_uuid.as_deref(),
                    admin,
                    Some(channel),
                );
            }
        }
        Ok(())
    }

    /// Adds the rooms (all of them first, so the acknowledgement waits for the last), then has
    /// each enter its channel; a channel whose interest is confirmed already is active at once.
    fn socketio_join_rooms(
        &mut self,
        key: u32,
        app: AppIndex,
        wanted: Vec<(Arc<str>, RoomRole)>,
        ack: Option<u64>,
    ) {
        let Some(namespace) = self.socketio_namespace_mut(key, app) else {
            return;
        };
        for (channel, role) in &wanted {
            namespace.rooms.push(Room {
                channel: channel.clone(),
                active: false,
                role: role.clone(),
                ack,
            });
        }
        for (channel, _) in &wanted {
            self.enter_and_advance(key, app, channel);
        }
    }

    /// The channel's interest is confirmed for this shard: the room is active; a presence
    /// room announces its joiner, and the last room of a `subscribe` sends its acknowledgement.
    pub(super) fn socketio_activate(&mut self, key: u32, app: AppIndex, channel: &Arc<str>) {
        let Some(namespace) = self.socketio_namespace_mut(key, app) else {
            return;
        };
        let Some(index) = namespace.room_index(channel) else {
            return;
        };
        let room = &mut namespace.rooms[index];
        if room.active {
            return;
        }
        room.active = true;
        let ack = room.ack.take();
        let announce = match &room.role {
            RoomRole::PresenceOf(uuid) => Some(uuid.clone()),
            _ => None,
        };
        let ack_done = ack.filter(|id| !namespace.ack_waits(*id));
        let namespace_name = namespace.name.to_string();
        self.join_subscribers(key, app, channel, Dialect::SocketIo);
        if let Some(uuid) = announce {
            let main = channel.strip_suffix(PRESENCE_SUFFIX).unwrap_or(channel);
            self.publish_presence(app, main, uuid.as_deref(), true);
        }
        if let Some(id) = ack_done {
            self.send_text(key, &packet::ack(&namespace_name, id, ACK_OK));
        }
    }

    /// `unsubscribe` of one channel: a channel never joined is a no-op (the admin room is left
    /// only with the namespace). A channel joined `withPresence` leaves its presence room too
    /// and announces `left` there.
    fn socketio_unsubscribe(&mut self, key: u32, app: AppIndex, channel: &str) {
        let Some(namespace) = self.socketio_namespace_mut(key, app) else {
            return;
        };
        let Some(index) = namespace.room_index(channel) else {
            return;
        };
        let room = namespace.rooms.swap_remove(index);
        let presence = match &room.role {
            RoomRole::WithPresence(uuid) => {
                let name = rooms::presence_room(channel);
                let taken = namespace
                    .room_index(&name)
                    .map(|i| namespace.rooms.swap_remove(i));
                Some((uuid.clone(), taken))
            }
            _ => None,
        };
        let admin = namespace.admin;
        let uuid = namespace.uuid.clone();
        self.socketio_leave_room(key, app, &room);
        if let Some((presence_uuid, taken)) = presence {
            if let Some(taken) = &taken {
                self.socketio_leave_room(key, app, taken);
            }
            self.publish_presence(app, channel, presence_uuid.as_deref(), false);
        }
        self.publish_status(
            app,
            StatusEvent::Left,
            uuid.as_deref(),
            admin,
            Some(channel),
        );
    }

    /// Takes the connection out of a room's channel; an acknowledgement that waited only for
    /// this room is sent (the client asked for it; what it asked for is settled).
    fn socketio_leave_room(&mut self, key: u32, app: AppIndex, room: &Room) {
        if self.exit_channel(key, app, &room.channel, room.active, Dialect::SocketIo) {
            self.count_changed(app, &room.channel);
        }
        self.registry.remove_if_unused(app, &room.channel);
        if let Some(id) = room.ack {
            let waits = self
                .socketio_namespace_mut(key, app)
                .map(|n| n.ack_waits(id));
            if waits == Some(false) {
                if let Some(name) = self.socketio_namespace_name(key, app) {
                    self.send_text(key, &packet::ack(&name, id, ACK_OK));
                }
            }
        }
    }

    /// Leaves a namespace (DISCONNECT, or the connection went away): every room, `left` in
    /// each presence room, `disconnect` to the admins, and the app's connection count.
    pub(super) fn socketio_leave_namespace(&mut self, key: u32, namespace: Namespace) {
        let app = namespace.app;
        for room in &namespace.rooms {
            if self.exit_channel(key, app, &room.channel, room.active, Dialect::SocketIo) {
                self.count_changed(app, &room.channel);
            }
            self.registry.remove_if_unused(app, &room.channel);
        }
        for room in &namespace.rooms {
            if let RoomRole::WithPresence(uuid) = &room.role {
                self.publish_presence(app, &room.channel, uuid.as_deref(), false);
            }
        }
        self.publish_status(
            app,
            StatusEvent::Disconnect,
            namespace.uuid.as_deref(),
            namespace.admin,
            None,
        );
        self.apps.release(app);
    }

    /// Joins the admin room of an admin's namespace (at CONNECT); never refused for room
    /// limits (one room, counted).
    pub(super) fn socketio_join_admin_room(&mut self, key: u32, app: AppIndex) {
        let channel: Arc<str> = Arc::from(ADMIN_CHANNEL);
        self.socketio_join_rooms(key, app, vec![(channel, RoomRole::Plain)], None);
    }

    /// `publish`: to every subscriber of the channel in every dialect, the sender included (as
    /// Ekko did). No subscription is needed; the app's client-event rate and payload bounds
    /// apply, as the publish reaches Pusher subscribers too.
    fn socketio_publish(
        &mut self,
        key: u32,
        app: AppIndex,
        channel: &str,
        args_json: String,
        message_json: String,
    ) -> Result<(), &'static str> {
        let config = self.apps.get(app);
        rooms::check_channel(channel, config.max_channel_name_length as usize)?;
        if message_json.len() > config.max_event_payload_kb as usize * 1024 {
            return Err("Event payload is too large");
        }
        let rate_max = config.max_client_events_per_second;
        let now_s = self.now_ms / 1000;
        if !self.conns[key as usize].take_client_event(now_s, rate_max) {
            return Err("Publish rate limit exceeded");
        }
        if let Some(pipeline) = self.functions_of(app, channel) {
            let publication = Publication::SocketIo {
                args_json,
                message_json,
            };
            self.publish_through_functions(app, channel, publication, pipeline);
            return Ok(());
        }
        let message = Published::socketio_event("message", args_json, Some(message_json));
        let now_ms = self.now_ms;
        self.publish(app, channel, message, None, now_ms);
        Ok(())
    }

    /// `presence` to a channel's presence room.
    fn publish_presence(&mut self, app: AppIndex, channel: &str, uuid: Option<&str>, joined: bool) {
        let args = rooms::presence_args(joined, channel, uuid);
        let message = Published::socketio_event("presence", args, None);
        let now_ms = self.now_ms;
        self.publish(app, &rooms::presence_room(channel), message, None, now_ms);
    }

    /// `status` to the app's admin room, on every node.
    pub(super) fn publish_status(
        &mut self,
        app: AppIndex,
        event: StatusEvent,
        uuid: Option<&str>,
        admin: bool,
        channel: Option<&str>,
    ) {
        if !self.admins_may_listen(app) {
            return; // a node alone with no admin: nothing to encode
        }
        let args = rooms::status_args(event, uuid, admin, &self.apps.get(app).id, channel);
        self.publish_admin_status(app, args);
    }

    /// A `status` event with these arguments to the app's admin room, on every node.
    pub(super) fn publish_admin_status(&mut self, app: AppIndex, args: String) {
        if !self.admins_may_listen(app) {
            return;
        }
        let message = Published::socketio_event("status", args, None);
        let now_ms = self.now_ms;
        self.publish(app, ADMIN_CHANNEL, message, None, now_ms);
    }

    /// An admin may hear a status event: one is on some shard of this node, or other nodes
    /// may have one.
    fn admins_may_listen(&self, app: AppIndex) -> bool {
        self.link.enabled
            || self
                .registry
                .channel(app, ADMIN_CHANNEL)
                .is_some_and(|e| e.remote_interest != 0 || !e.subscribers.is_empty())
    }
}
