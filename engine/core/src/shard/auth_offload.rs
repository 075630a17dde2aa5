//! Auth offload, the shard's side: for an app with `app_channel_authorization_url`, a
//! private/presence subscribe that arrives without `auth` is authorized by the app's endpoint
//! through the bridge (which POSTs the form pusher-js would send), and the signed answer is
//! then checked and applied exactly like an `auth` the client sent. Thin clients (devices,
//! server processes) can subscribe without their own authorization round trip.
//!
//! The subscription waits as `AwaitingAuth` in the connection's list (an unsubscribe or a
//! disconnect drops it; a late answer finds nothing); the shard bounds the requests in flight
//! and answers every one: granted, refused with the endpoint's status, or failed (no bridge,
//! timeout) with a `pusher:subscription_error`.

use std::sync::Arc;

use super::auth_forward::AuthForward;
use super::bridge_waits::PendingAuth;
use super::conn::{SubState, Subscription};
use super::message::AppIndex;
use super::Shard;
use crate::http::request::RequestHead;
use crate::limits::AUTHS_PER_CONNECTION_MAX;
use crate::link::{AuthOutcome, AuthRequest, LinkMessage};

impl Shard {
    /// After the upgrade of a connection whose app has an authorization URL: keep the headers
    /// and query its authorizations will send along (bounded).
    pub(super) fn capture_auth_forward(&mut self, key: u32, head: &RequestHead) {
        let Some(app) = self.conns.get(key as usize).and_then(|conn| conn.app) else {
            return;
        };
        let Some(forward) = AuthForward::capture(self.apps.get(app), head) else {
            return;
        };
        if let Some(conn) = self.conns.get_mut(key as usize) {
            conn.auth_forward = Some(Box::new(forward));
        }
    }

    /// A subscribe without `auth` to a channel that needs it: asks the app's endpoint when the
    /// app has one and the bridge is there (true: answered, or the answer follows later). A
    /// connection with [`AUTHS_PER_CONNECTION_MAX`] already waiting gets 429 at once.
    pub(super) fn offload_auth(
        &mut self,
        key: u32,
        app: AppIndex,
        channel: &str,
        cache: bool,
    ) -> bool {
        let config = self.apps.get(app);
        let Some(url) = config.channel_authorization_url.clone() else {
            return false;
        };
        if !self.link.is_up() || self.waits.auths.is_full() {
            return false;
        }
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return false;
        };
        let waiting = conn
            .subscriptions
            .iter()
            .filter(|s| matches!(s.state, SubState::AwaitingAuth(_)))
            .count();
        if waiting >= AUTHS_PER_CONNECTION_MAX {
            self.subscription_error(
                key,
                channel,
                "AuthError",
                "Too many authorizations in flight on this connection",
                429,
            );
            return true; // answered
        }
        let channel: Arc<str> = Arc::from(channel);
        let serial = conn.serial;
        let pending = PendingAuth {
            key,
            serial,
            app,
            channel: channel.clone(),
        };
        let Ok(request_id) = self.waits.auths.insert(self.now_ms, pending) else {
            return false;
        };
        conn.subscriptions.push(Subscription {
            channel: channel.clone(),
            state: SubState::AwaitingAuth(request_id),
            member: None,
            cache,
        });
        let forward = conn.auth_forward.as_deref().cloned().unwrap_or_default();
        let request = AuthRequest {
            request_id,
            app_id: self.apps.get(app).id.clone(),
            url,
            socket_id: self.socket_id(serial),
            channel: channel.to_string(),
            headers: forward.headers,
            form: forward.form,
        };
        self.stats.auth_offloaded += 1;
        self.link.send(LinkMessage::AuthRequest(request));
        true
    }

    /// The endpoint's answer, through the bridge.
    pub(super) fn auth_answer(&mut self, request_id: u32, outcome: AuthOutcome) {
        let Some(pending) = self.waits.auths.take(request_id) else {
            return; // answered already (timeout or link down)
        };
        self.auth_settle(request_id, pending, outcome);
    }

    /// What an authorization taken out of the table comes to, if its subscription still waits.
    fn auth_settle(&mut self, request_id: u32, pending: PendingAuth, outcome: AuthOutcome) {
        let Some(conn) = self.conns.get_mut(pending.key as usize) else {
            return;
        };
        let waiting = conn.serial == pending.serial
            && conn
                .subscription_index(&pending.channel)
                .is_some_and(|index| {
                    conn.subscriptions[index].state == SubState::AwaitingAuth(request_id)
                });
        if !waiting {
            return; // unsubscribed or gone meanwhile
        }
        if let Some(index) = conn.subscription_index(&pending.channel) {
            conn.subscriptions.swap_remove(index);
        }
        match outcome {
            AuthOutcome::Granted { auth, channel_data } => {
                let channel_data = (!channel_data.is_empty()).then_some(channel_data);
                // Checked and applied exactly as if the client had sent it.
                self.subscribe(
                    pending.key,
                    pending.app,
                    pending.channel.to_string(),
                    Some(auth),
                    channel_data,
                );
            }
            AuthOutcome::Refused { status, reason } => {
                self.stats.auth_offload_refused += 1;
                // No answer at all is a gateway timeout for the client.
                let status = if status == 0 { 504 } else { status };
                self.subscription_error(
                    pending.key,
                    &pending.channel,
                    "AuthError",
                    &reason,
                    status,
                );
            }
        }
    }

    /// An authorization the bridge will not answer fails: overdue (`timeout`, 504) or the
    /// link went down (503).
    pub(super) fn auth_unanswered(&mut self, request_id: u32, pending: PendingAuth, timeout: bool) {
        let (status, reason) = if timeout {
            (504, "The authorization endpoint did not answer in time")
        } else {
            (503, "The authorization service is unavailable")
        };
        let outcome = AuthOutcome::Refused {
            status,
            reason: reason.to_owned(),
        };
        self.auth_settle(request_id, pending, outcome);
    }

    /// A connection dropped a subscription that waited for its authorization.
    pub(super) fn auth_forget(&mut self, request_id: u32) {
        self.waits.auths.take(request_id);
    }
}
