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

use ahash::AHashMap;

use super::bridge::overdue;
use super::conn::{SubState, Subscription};
use super::message::AppIndex;
use super::Shard;
use crate::http::request::RequestHead;
use crate::link::{AuthOutcome, AuthRequest, LinkMessage, AUTH_HEADERS_MAX};

/// Authorizations in flight per shard; beyond it a subscribe without `auth` is refused as
/// before (401).
pub const PENDING_AUTH_MAX: usize = 16_384;
/// Longest wait for the endpoint's answer (the bridge gives up after 5 s and says so).
pub const AUTH_OFFLOAD_TIMEOUT_MS: u64 = 10_000;
/// Most bytes of headers and query kept per connection for its authorizations.
pub const AUTH_FORWARD_BYTES_MAX: usize = 8 * 1024;
/// Query parameters that belong to the Pusher protocol, not to the app.
const PUSHER_QUERY_PARAMS: [&str; 4] = ["protocol", "client", "version", "flash"];

/// What a connection's authorizations send along to the endpoint.
#[derive(Debug, Clone, Default)]
pub struct AuthForward {
    /// Upgrade request headers (name as configured, value).
    pub headers: Vec<(String, String)>,
    /// The connection's own query parameters, URL-encoded as received.
    pub form: String,
}

/// One authorization in flight.
#[derive(Debug)]
struct PendingAuth {
    key: u32,
    serial: u64,
    app: AppIndex,
    channel: Arc<str>,
    deadline_ms: u64,
}

/// The shard's authorizations in flight, by request id.
#[derive(Debug, Default)]
pub struct PendingAuths {
    by_request: AHashMap<u32, PendingAuth>,
    next_request: u32,
}

impl Shard {
    /// After the upgrade of a connection whose app has an authorization URL: keep the headers
    /// and query its authorizations will send along (bounded).
    pub(super) fn capture_auth_forward(&mut self, key: u32, head: &RequestHead) {
        let Some(app) = self.conns.get(key as usize).and_then(|conn| conn.app) else {
            return;
        };
        let config = self.apps.get(app);
        if config.channel_authorization_url.is_none() {
            return;
        }
        let mut bytes = 0usize;
        let mut forward = AuthForward::default();
        for name in &config.channel_authorization_headers {
            for value in head.headers_named(name) {
                bytes += name.len() + value.len();
                if bytes > AUTH_FORWARD_BYTES_MAX || forward.headers.len() >= AUTH_HEADERS_MAX {
                    break;
                }
                forward.headers.push((name.clone(), value.to_owned()));
            }
        }
        if config.channel_authorization_query {
            let own: Vec<&str> = head
                .query
                .split('&')
                .filter(|pair| {
                    let name = pair.split('=').next().unwrap_or_default();
                    !pair.is_empty() && !PUSHER_QUERY_PARAMS.contains(&name)
                })
                .collect();
            let form = own.join("&");
            if bytes + form.len() <= AUTH_FORWARD_BYTES_MAX {
                forward.form = form;
            }
        }
        if let Some(conn) = self.conns.get_mut(key as usize) {
            conn.auth_forward = Some(Box::new(forward));
        }
    }

    /// A subscribe without `auth` to a channel that needs it: asks the app's endpoint when the
    /// app has one and the bridge is there (true: the answer follows later).
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
        if !self.link.is_up() || self.pending_auth.by_request.len() >= PENDING_AUTH_MAX {
            return false;
        }
        let Some(conn) = self.conns.get_mut(key as usize) else {
            return false;
        };
        let request_id = self.pending_auth.next_request;
        self.pending_auth.next_request = request_id.wrapping_add(1);
        let channel: Arc<str> = Arc::from(channel);
        conn.subscriptions.push(Subscription {
            channel: channel.clone(),
            state: SubState::AwaitingAuth(request_id),
            member: None,
            cache,
        });
        let serial = conn.serial;
        let forward = conn.auth_forward.as_deref().cloned().unwrap_or_default();
        self.pending_auth.by_request.insert(
            request_id,
            PendingAuth {
                key,
                serial,
                app,
                channel: channel.clone(),
                deadline_ms: self.now_ms + AUTH_OFFLOAD_TIMEOUT_MS,
            },
        );
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
        self.link.push(LinkMessage::AuthRequest(request));
        true
    }

    /// The endpoint's answer, through the bridge.
    pub(super) fn auth_answer(&mut self, request_id: u32, outcome: AuthOutcome) {
        let Some(pending) = self.pending_auth.by_request.remove(&request_id) else {
            return; // answered already (timeout or link down)
        };
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

    /// Authorizations overdue (`now_ms` given) or all of them (link down, `None`) fail.
    pub(super) fn auth_expire(&mut self, now_ms: Option<u64>) {
        let due = overdue(&self.pending_auth.by_request, now_ms, |p| p.deadline_ms);
        for request_id in due {
            let reason = if now_ms.is_some() {
                "The authorization endpoint did not answer in time"
            } else {
                "The authorization service is unavailable"
            };
            let status = if now_ms.is_some() { 504 } else { 503 };
            self.auth_answer(
                request_id,
                AuthOutcome::Refused {
                    status,
                    reason: reason.to_owned(),
                },
            );
        }
    }

    /// A connection dropped a subscription that waited for its authorization.
    pub(super) fn auth_forget(&mut self, request_id: u32) {
        self.pending_auth.by_request.remove(&request_id);
    }
}
