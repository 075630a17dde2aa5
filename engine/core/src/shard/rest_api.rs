//! The Pusher HTTP REST API on a shard (`docs/behaviour-notes.md`, "REST API"): app lookup,
//! request signature, rate limits, then publish (encode once per channel, fan out like any
//! publish), channel queries (scatter-gather over the shards), presence users (asked of the
//! owner), and terminating a user's connections (every shard).

use std::sync::Arc;

use bytes::Bytes;

use super::http_reply::{json, HttpOutcome};
use super::message::{AppIndex, Query};
use super::query_state::Purpose;
use super::Shard;
use crate::dialect::Published;
use crate::functions::Publication;
use crate::http::request::{percent_decode, RequestHead};
use crate::pusher::channel::{self, ChannelKind};
use crate::pusher::rest::{self, InfoAttribute, PublishEvent, RestError};
use crate::ws::frame;

/// One REST route, parsed from the path.
enum Route {
    Events,
    BatchEvents,
    Channels,
    Channel(String),
    Users(String),
    Terminate(String),
}

impl Route {
    fn label(&self) -> &'static str {
        match self {
            Route::Events => "events",
            Route::BatchEvents => "batch_events",
            Route::Channels => "channels",
            Route::Channel(_) => "channel",
            Route::Users(_) => "users",
            Route::Terminate(_) => "terminate_connections",
        }
    }

    fn method(&self) -> &'static str {
        match self {
            Route::Events | Route::BatchEvents | Route::Terminate(_) => "POST",
            _ => "GET",
        }
    }
}

/// Splits `/apps/{id}/…` into the app id and the route. The Python SDK (pusher 3.3.x) sends
/// `terminate_connections` as `/users/{uid}/…` without the app prefix; that path is accepted
/// with no app id (the caller finds the app by the signed key).
fn parse_path(path: &str) -> Option<(Option<&str>, Route)> {
    if let Some(user) = path
        .strip_prefix("/users/")
        .and_then(|p| p.strip_suffix("/terminate_connections"))
        .filter(|u| !u.is_empty() && !u.contains('/'))
    {
        return Some((None, Route::Terminate(percent_decode(user))));
    }
    let rest = path.strip_prefix("/apps/")?;
    let (app_id, tail) = rest.split_once('/')?;
    let parts: Vec<&str> = tail.split('/').collect();
    let route = match parts.as_slice() {
        ["events"] => Route::Events,
        ["batch_events"] => Route::BatchEvents,
        ["channels"] => Route::Channels,
        ["channels", name] if !name.is_empty() => Route::Channel(percent_decode(name)),
        ["channels", name, "users"] if !name.is_empty() => Route::Users(percent_decode(name)),
        ["users", user, "terminate_connections"] if !user.is_empty() => {
            Route::Terminate(percent_decode(user))
        }
        _ => return None,
    };
    Some((Some(app_id), route))
}

fn error(route: &'static str, err: &RestError) -> HttpOutcome {
    json(route, err.status, err.body())
}

impl Shard {
    /// Answers (or parks) one request under `/apps/`.
    pub(super) fn route_rest(
        &mut self,
        key: u32,
        head: &RequestHead,
        body: &Bytes,
        keep_alive: bool,
    ) -> HttpOutcome {
        let Some((app_id, route)) = parse_path(&head.path) else {
            return error("other", &RestError::new(404, "Unknown API route"));
        };
        let label = route.label();
        let app = match app_id {
            Some(app_id) => self.apps.index_by_id(app_id),
            // The path carries no app id: the signed `auth_key` names the app.
            None => head
                .query_param("auth_key")
                .and_then(|key| self.apps.index_by_key(&key)),
        };
        let Some(app) = app else {
            let app_id = app_id.unwrap_or("(by auth_key)");
            return error(label, &RestError::new(404, format!("Unknown app {app_id}")));
        };
        if head.method != route.method() {
            return error(
                label,
                &RestError::new(405, format!("Use {}", route.method())),
            );
        }
        let config = self.apps.get(app);
        if let Err(err) = rest::verify_request(
            &head.method,
            &head.path,
            &head.query,
            body,
            &config.key,
            &config.secret,
            self.unix_s,
        ) {
            return error(label, &err);
        }
        if !config.enabled {
            return error(label, &RestError::new(403, "App is disabled"));
        }
        match route {
            Route::Events => self.rest_publish(key, app, body, keep_alive),
            Route::BatchEvents => self.rest_batch(key, app, body, keep_alive),
            Route::Channels => self.rest_channels(key, app, head, keep_alive),
            Route::Channel(name) => self.rest_channel(key, app, head, name, keep_alive),
            Route::Users(name) => self.rest_users(key, app, name, keep_alive),
            Route::Terminate(user_id) => {
                let now_ms = self.now_ms;
                self.terminate_user(app, &user_id, now_ms);
                json(label, 200, &b"{}"[..])
            }
        }
    }

    /// Sends one validated event to each of its channels: one frame per channel, fanned out.
    fn publish_event(&mut self, app: AppIndex, event: &PublishEvent) {
        let now_ms = self.now_ms;
        for channel_name in &event.channels {
            if let Some(user_id) = channel::server_to_user_id(channel_name) {
                let frame = frame::encode_text(rest::event_json(event, channel_name).as_bytes());
                self.publish_to_user(app, user_id, frame, now_ms);
            } else if let Some(pipeline) = self.functions_of(app, channel_name) {
                let publication = Publication::Pusher {
                    event: event.name.clone(),
                    data_json: event.data_json.clone(),
                    user_id: None,
                    except_socket_id: event.socket_id.clone(),
                };
                self.publish_through_functions(app, channel_name, publication, pipeline);
            } else {
                let message =
                    Published::pusher_event(&event.name, channel_name, &event.data_json, None);
                let except = event.socket_id.as_deref();
                self.publish(app, channel_name, message, except, now_ms);
            }
        }
    }

    fn rest_publish(
        &mut self,
        key: u32,
        app: AppIndex,
        body: &Bytes,
        keep_alive: bool,
    ) -> HttpOutcome {
        let event = match rest::parse_publish(body, self.apps.get(app)) {
            Ok(event) => event,
            Err(err) => return error("events", &err),
        };
        let attributes = match rest::parse_info_attributes(Some(&event.info.join(","))) {
            Ok(attributes) => attributes,
            Err(err) => return error("events", &err),
        };
        if !self.apps.try_take_backend_events(app, 1, self.unix_s) {
            return error(
                "events",
                &RestError::new(429, "Over the app's events per second"),
            );
        }
        self.publish_event(app, &event);
        if attributes.is_empty() {
            return json("events", 200, &b"{}"[..]);
        }
        let names: Vec<Arc<str>> = event
            .channels
            .iter()
            .map(|c| Arc::from(c.as_str()))
            .collect();
        self.park(
            key,
            Query::Named { app, names },
            None,
            Purpose::EventInfo { attributes },
            keep_alive,
            "events",
        )
    }

    fn rest_batch(
        &mut self,
        key: u32,
        app: AppIndex,
        body: &Bytes,
        keep_alive: bool,
    ) -> HttpOutcome {
        let events = match rest::parse_batch(body, self.apps.get(app)) {
            Ok(events) => events,
            Err(err) => return error("batch_events", &err),
        };
        let mut infos = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            match rest::parse_info_attributes(Some(&event.info.join(","))) {
                Ok(attributes) => infos.push(attributes),
                Err(err) => return error("batch_events", &err.in_context(&format!("batch[{i}]"))),
            }
        }
        if !self
            .apps
            .try_take_backend_events(app, events.len() as u64, self.unix_s)
        {
            return error(
                "batch_events",
                &RestError::new(429, "Over the app's events per second"),
            );
        }
        for event in &events {
            self.publish_event(app, event);
        }
        if infos.iter().all(Vec::is_empty) {
            return json("batch_events", 200, &b"{}"[..]);
        }
        let per_event: Vec<(Arc<str>, Vec<InfoAttribute>)> = events
            .iter()
            .zip(infos)
            .map(|(event, attributes)| {
                let channel = event.channels.first().map(String::as_str).unwrap_or("");
                (Arc::from(channel), attributes)
            })
            .collect();
        // Ask once per channel: several events of a batch may share one.
        let mut names: Vec<Arc<str>> = per_event.iter().map(|(name, _)| name.clone()).collect();
        names.sort();
        names.dedup();
        self.park(
            key,
            Query::Named { app, names },
            None,
            Purpose::BatchInfo { events: per_event },
            keep_alive,
            "batch_events",
        )
    }

    fn rest_channels(
        &mut self,
        key: u32,
        app: AppIndex,
        head: &RequestHead,
        keep_alive: bool,
    ) -> HttpOutcome {
        if let Err(refused) = self.take_read_request(app, "channels") {
            return refused;
        }
        let prefix = head
            .query_param("filter_by_prefix")
            .filter(|p| !p.is_empty());
        let attributes = match rest::parse_info_attributes(head.query_param("info").as_deref()) {
            Ok(attributes) => attributes,
            Err(err) => return error("channels", &err),
        };
        let user_count = attributes.contains(&InfoAttribute::UserCount);
        if user_count
            && !prefix
                .as_deref()
                .is_some_and(|p| p.starts_with("presence-"))
        {
            return error(
                "channels",
                &RestError::bad_request(
                    "info=user_count needs filter_by_prefix=presence- (user counts exist only for presence channels)",
                ),
            );
        }
        if attributes.iter().any(|a| *a != InfoAttribute::UserCount) {
            return error(
                "channels",
                &RestError::bad_request("only info=user_count is available when listing channels"),
            );
        }
        self.park(
            key,
            Query::Channels {
                app,
                prefix: prefix.map(|p| Arc::from(p.as_str())),
            },
            None,
            Purpose::ChannelList { user_count },
            keep_alive,
            "channels",
        )
    }

    fn rest_channel(
        &mut self,
        key: u32,
        app: AppIndex,
        head: &RequestHead,
        name: String,
        keep_alive: bool,
    ) -> HttpOutcome {
        if let Err(refused) = self.take_read_request(app, "channel") {
            return refused;
        }
        let max_len = self.apps.get(app).max_channel_name_length as usize;
        let class = match channel::classify(&name, max_len) {
            Ok(class) => class,
            Err(err) => return error("channel", &RestError::bad_request(err.message())),
        };
        let attributes = match rest::parse_info_attributes(head.query_param("info").as_deref()) {
            Ok(attributes) => attributes,
            Err(err) => return error("channel", &err),
        };
        if attributes.contains(&InfoAttribute::UserCount) && class.kind != ChannelKind::Presence {
            return error(
                "channel",
                &RestError::bad_request("user_count is only available for presence channels"),
            );
        }
        if attributes.contains(&InfoAttribute::Cache) && !class.cache {
            return error(
                "channel",
                &RestError::bad_request("cache is only available for cache channels"),
            );
        }
        let name: Arc<str> = Arc::from(name.as_str());
        self.park(
            key,
            Query::Named {
                app,
                names: vec![name.clone()],
            },
            None,
            Purpose::ChannelInfo { name, attributes },
            keep_alive,
            "channel",
        )
    }

    fn rest_users(
        &mut self,
        key: u32,
        app: AppIndex,
        name: String,
        keep_alive: bool,
    ) -> HttpOutcome {
        if let Err(refused) = self.take_read_request(app, "users") {
            return refused;
        }
        let max_len = self.apps.get(app).max_channel_name_length as usize;
        match channel::classify(&name, max_len) {
            Ok(class) if class.kind == ChannelKind::Presence => {}
            Ok(_) => {
                return error(
                    "users",
                    &RestError::bad_request("users are only available for presence channels"),
                )
            }
            Err(err) => return error("users", &RestError::bad_request(err.message())),
        }
        let channel: Arc<str> = Arc::from(name.as_str());
        self.park(
            key,
            Query::Users {
                app,
                channel: channel.clone(),
            },
            Some((app, &channel)),
            Purpose::Users,
            keep_alive,
            "users",
        )
    }

    /// Counts one read request against the app's per-second budget; 429 when over.
    fn take_read_request(&self, app: AppIndex, route: &'static str) -> Result<(), HttpOutcome> {
        if self.apps.try_take_read_request(app, self.unix_s) {
            Ok(())
        } else {
            Err(error(
                route,
                &RestError::new(429, "Over the app's read requests per second"),
            ))
        }
    }

    /// Starts a question and parks the connection, or answers 503 when too many are in flight.
    fn park(
        &mut self,
        key: u32,
        query: Query,
        owner: Option<(AppIndex, &str)>,
        purpose: Purpose,
        keep_alive: bool,
        route: &'static str,
    ) -> HttpOutcome {
        if self.start_query(key, query, owner, purpose, keep_alive, route) {
            HttpOutcome::Waiting
        } else {
            error(
                route,
                &RestError::new(503, "Too many requests in flight; retry"),
            )
        }
    }
}
