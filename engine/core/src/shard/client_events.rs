//! Client events on a shard (`client-*` from a connection): the app's switch, the channel's
//! kind, the name and payload bounds, the subscription and the per-connection rate, then the
//! relay to the channel's other subscribers, the other nodes and the webhooks.

use std::sync::Arc;

use super::conn::SubState;
use super::message::AppIndex;
use super::Shard;
use crate::dialect::Published;
use crate::functions::Publication;
use crate::pusher::{channel, close};

impl Shard {
    /// A client's `client-*` event; refused with a 4301 error when a check fails.
    pub(super) fn client_event(
        &mut self,
        key: u32,
        app: AppIndex,
        event: &str,
        channel: &str,
        data: &str,
    ) {
        match self.check_client_event(key, app, event, channel, data) {
            Ok(index) => self.relay_client_event(key, app, index, event, channel, data),
            Err(reason) => self.send_error(key, close::CLIENT_EVENT_REJECTED, reason),
        }
    }

    /// The index of the connection's subscription the event is sent on, or why it is refused.
    fn check_client_event(
        &mut self,
        key: u32,
        app: AppIndex,
        event: &str,
        channel: &str,
        data: &str,
    ) -> Result<usize, &'static str> {
        let app_config = self.apps.get(app);
        if !app_config.enable_client_messages {
            return Err("Client events are not enabled for this app");
        }
        let max_name = app_config.max_event_name_length as usize;
        let max_payload = app_config.max_event_payload_kb as usize * 1024;
        let rate_max = app_config.max_client_events_per_second;
        let class = channel::classify(channel, app_config.max_channel_name_length as usize);
        if !class.is_ok_and(|c| c.allows_client_events()) {
            return Err("Client events are only allowed on private and presence channels");
        }
        if event.len() > max_name {
            return Err("Event name is too long");
        }
        if data.len() > max_payload {
            return Err("Event payload is too large");
        }
        let now_s = self.now_ms / 1000;
        let conn = &mut self.conns[key as usize];
        let Some(index) = conn.subscription_index(channel) else {
            return Err("Client events require a subscription to the channel");
        };
        if conn.subscriptions[index].state != SubState::Active {
            return Err("Subscription to the channel is not confirmed yet");
        }
        if !conn.take_client_event(now_s, rate_max) {
            return Err("Client event rate limit exceeded");
        }
        Ok(index)
    }

    /// Sends a checked event to the channel's subscribers but its sender, on every shard, and
    /// with a bridge to the other nodes and the webhooks.
    fn relay_client_event(
        &mut self,
        key: u32,
        app: AppIndex,
        index: usize,
        event: &str,
        channel: &str,
        data: &str,
    ) {
        let conn = &self.conns[key as usize];
        let user_id = conn.subscriptions[index]
            .member
            .as_ref()
            .map(|m| m.user_id.clone());
        let serial = conn.serial;
        if let Some(pipeline) = self.functions_of(app, channel) {
            let socket_id = self.socket_id(serial);
            if self.link.enabled {
                self.hook_client_event(app, channel, event, data, &socket_id, user_id.as_deref());
            }
            let publication = Publication::Pusher {
                event: event.to_owned(),
                data_json: data.to_owned(),
                user_id: user_id.map(|u| u.to_string()),
                except_socket_id: Some(socket_id),
            };
            self.publish_through_functions(app, channel, publication, pipeline);
            return;
        }
        let message = Arc::new(Published::pusher_event(
            event,
            channel,
            data,
            user_id.as_deref(),
        ));
        let except = Some((self.settings.shard_index, serial));
        self.deliver_channel(app, channel, &message, except, true);
        if self.link.enabled {
            let socket_id = self.socket_id(serial);
            self.relay_publish(app, channel, &message, &socket_id);
            self.hook_client_event(app, channel, event, data, &socket_id, user_id.as_deref());
        }
    }
}
