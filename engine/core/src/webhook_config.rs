//! The apps' webhook settings as the engine hands them to the bridge (which sends the
//! webhooks): one JSON document, sent on every link after `Hello`, so that a bridge run by the
//! operator needs no configuration of its own. One serde type, [`WebhookSettings`], is written by
//! the engine and read by the bridge; the shape:
//!
//! ```json
//! {"apps":[{"app_id":"1","app_key":"k","app_secret":"s","batching":false,
//!           "webhooks":[{"url":"http://…","event_types":["channel_occupied"],
//!                        "channel_name_starts_with":null,"channel_name_ends_with":null,
//!                        "headers":[["X-Name","value"]]}]}]}
//! ```

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::app::{AppConfig, WebhookEventType};
use crate::pusher::json_escape::push_json_string;

/// The whole document: every app that has at least one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    /// The apps, in the engine's order.
    pub apps: Vec<AppWebhooks>,
}

/// One app's credentials (the bridge signs with them) and webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppWebhooks {
    /// The app's id.
    pub app_id: String,
    /// Sent as `X-Pusher-Key`.
    pub app_key: String,
    /// Signs every request.
    pub app_secret: String,
    /// Events are collected into batches.
    pub batching: bool,
    /// The app's webhooks, flat switches first.
    pub webhooks: Vec<WebhookSettingsTarget>,
}

/// One webhook of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettingsTarget {
    /// Where the events are POSTed.
    pub url: String,
    /// The event names it wants ([`WebhookEventType::name`]); a name the reader does not know
    /// is its to ignore.
    pub event_types: Vec<String>,
    /// Only channels whose name starts with this.
    pub channel_name_starts_with: Option<String>,
    /// Only channels whose name ends with this.
    pub channel_name_ends_with: Option<String>,
    /// Extra headers of every request.
    pub headers: Vec<(String, String)>,
}

impl WebhookSettings {
    /// The settings of `apps`: only the apps that have a webhook.
    pub fn of<'a>(apps: impl IntoIterator<Item = &'a AppConfig>) -> Self {
        let apps = apps
            .into_iter()
            .filter_map(|app| {
                let targets = app.webhooks.effective_targets();
                if targets.is_empty() {
                    return None;
                }
                let webhooks = targets
                    .iter()
                    .map(|target| WebhookSettingsTarget {
                        url: target.url.clone(),
                        event_types: target
                            .event_types
                            .iter()
                            .map(|kind| kind.name().to_owned())
                            .collect(),
                        channel_name_starts_with: target.channel_name_starts_with.clone(),
                        channel_name_ends_with: target.channel_name_ends_with.clone(),
                        headers: target.headers.clone(),
                    })
                    .collect();
                Some(AppWebhooks {
                    app_id: app.id.clone(),
                    app_key: app.key.clone(),
                    app_secret: app.secret.clone(),
                    batching: app.webhooks.batching,
                    webhooks,
                })
            })
            .collect();
        Self { apps }
    }

    /// Reads the document the engine sent.
    pub fn from_json(document: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(document)
    }
}

/// The document for `apps`, or `None` when no app has a webhook (no bridge needed for them).
pub fn link_json<'a>(apps: impl IntoIterator<Item = &'a AppConfig>) -> Option<Bytes> {
    let settings = WebhookSettings::of(apps);
    if settings.apps.is_empty() {
        return None;
    }
    // Serializing plain strings, bools and vectors cannot fail.
    serde_json::to_vec(&settings).ok().map(Bytes::from)
}

/// The kinds of event any of the app's webhooks wants, one bit per kind (see [`kind_bit`]):
/// the shard checks this before building an event.
pub fn wanted_kinds(app: &AppConfig) -> u8 {
    app.webhooks
        .effective_targets()
        .iter()
        .flat_map(|target| target.event_types.iter())
        .fold(0, |mask, kind| mask | kind_bit(*kind))
}

/// The bit of `kind` in a [`wanted_kinds`] mask.
pub fn kind_bit(kind: WebhookEventType) -> u8 {
    let position = WebhookEventType::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(0);
    1 << position
}

/// The webhook event object `{"name":…,"channel":…[,"user_id":…]}` of the channel and member
/// kinds (made by the engine on a node alone and by the bridge for the cluster).
pub fn event_body(kind: WebhookEventType, channel: &str, user_id: Option<&str>) -> String {
    let mut body = String::with_capacity(48 + channel.len() + user_id.map_or(0, str::len));
    body.push_str("{\"name\":\"");
    body.push_str(kind.name());
    body.push_str("\",\"channel\":");
    push_json_string(&mut body, channel);
    if let Some(user_id) = user_id {
        body.push_str(",\"user_id\":");
        push_json_string(&mut body, user_id);
    }
    body.push('}');
    body
}

/// The `subscription_count` event object `{"name":…,"channel":…,"subscription_count":n}` (a
/// shard's own count on the link, the node's or cluster's total in the webhook).
pub fn subscription_count_body(channel: &str, count: u64) -> String {
    let mut body = String::with_capacity(72 + channel.len());
    body.push_str("{\"name\":\"subscription_count\",\"channel\":");
    push_json_string(&mut body, channel);
    body.push_str(",\"subscription_count\":");
    body.push_str(&count.to_string());
    body.push('}');
    body
}

/// The `client_event` event object. `data_json` is the event's `data` as the client sent it;
/// receivers get it as a string, as Pusher sends it.
pub fn client_event_body(
    channel: &str,
    event: &str,
    data_json: &str,
    socket_id: &str,
    user_id: Option<&str>,
) -> String {
    let mut body = String::with_capacity(96 + channel.len() + event.len() + data_json.len());
    body.push_str("{\"name\":\"client_event\",\"channel\":");
    push_json_string(&mut body, channel);
    body.push_str(",\"event\":");
    push_json_string(&mut body, event);
    body.push_str(",\"data\":");
    match serde_json::from_str::<String>(data_json) {
        // Already a string: pass it on as it is.
        Ok(_) => body.push_str(data_json),
        Err(_) => push_json_string(&mut body, data_json),
    }
    body.push_str(",\"socket_id\":");
    push_json_string(&mut body, socket_id);
    if let Some(user_id) = user_id {
        body.push_str(",\"user_id\":");
        push_json_string(&mut body, user_id);
    }
    body.push('}');
    body
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::app::WebhookTarget;
    use serde_json::{json, Value};

    #[test]
    fn subscription_count_bodies_are_json_with_the_count() {
        let body = subscription_count_body("private-\"q\"", 12);
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value,
            json!({"name": "subscription_count", "channel": "private-\"q\"",
                   "subscription_count": 12})
        );
        let mut app = AppConfig::with_credentials("1", "k", "s");
        app.webhooks.enabled = true;
        app.webhooks.targets.push(crate::app::WebhookTarget {
            url: "http://127.0.0.1:9/x".into(),
            event_types: vec![WebhookEventType::SubscriptionCount],
            channel_name_starts_with: None,
            channel_name_ends_with: None,
            headers: Vec::new(),
        });
        assert_eq!(
            wanted_kinds(&app),
            kind_bit(WebhookEventType::SubscriptionCount)
        );
        assert_ne!(
            kind_bit(WebhookEventType::SubscriptionCount),
            kind_bit(WebhookEventType::ChannelOccupied),
            "the seventh kind has a bit of its own in the u8 mask"
        );
    }

    #[test]
    fn client_event_data_reaches_receivers_as_a_string() {
        let object = client_event_body("private-a", "client-x", r#"{"n":1}"#, "1.2", None);
        let value: Value = serde_json::from_str(&object).unwrap();
        assert_eq!(
            value,
            json!({"name": "client_event", "channel": "private-a", "event": "client-x",
                   "data": "{\"n\":1}", "socket_id": "1.2"})
        );
        let string = client_event_body("presence-a", "client-y", r#""hi""#, "1.3", Some("u"));
        let value: Value = serde_json::from_str(&string).unwrap();
        assert_eq!(value["data"], json!("hi"), "a string is passed on as it is");
        assert_eq!(value["user_id"], json!("u"));
    }

    #[test]
    fn apps_without_webhooks_are_left_out() {
        let quiet = AppConfig::with_credentials("1", "k1", "s1");
        assert_eq!(link_json([&quiet]), None);
        assert_eq!(wanted_kinds(&quiet), 0);
        let mut switched_off = AppConfig::with_credentials("2", "k2", "s2");
        switched_off.webhooks.url = Some("http://127.0.0.1:9/hook".into());
        switched_off.webhooks.channel_occupied = true;
        assert_eq!(link_json([&quiet, &switched_off]), None, "not enabled");
    }

    #[test]
    fn the_document_lists_flat_and_extra_webhooks() {
        let mut app = AppConfig::with_credentials("7", "key7", "secret7");
        app.webhooks.enabled = true;
        app.webhooks.batching = true;
        app.webhooks.url = Some("http://127.0.0.1:9/flat".into());
        app.webhooks.member_added = true;
        app.webhooks.client_event = true;
        app.webhooks.targets.push(WebhookTarget {
            url: "https://example.test/x".into(),
            event_types: vec![WebhookEventType::ChannelVacated],
            channel_name_starts_with: Some("private-".into()),
            channel_name_ends_with: None,
            headers: vec![("X-Team".into(), "blue".into())],
        });
        let quiet = AppConfig::with_credentials("8", "k8", "s8");
        let text = link_json([&quiet, &app]).unwrap();
        let doc: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(
            doc,
            json!({"apps": [{
                "app_id": "7", "app_key": "key7", "app_secret": "secret7", "batching": true,
                "webhooks": [
                    {"url": "http://127.0.0.1:9/flat",
                     "event_types": ["member_added", "client_event"],
                     "channel_name_starts_with": null, "channel_name_ends_with": null,
                     "headers": []},
                    {"url": "https://example.test/x", "event_types": ["channel_vacated"],
                     "channel_name_starts_with": "private-", "channel_name_ends_with": null,
                     "headers": [["X-Team", "blue"]]}
                ]
            }]})
        );
        let mask = wanted_kinds(&app);
        for kind in WebhookEventType::ALL {
            let wanted = matches!(
                kind,
                WebhookEventType::MemberAdded
                    | WebhookEventType::ClientEvent
                    | WebhookEventType::ChannelVacated
            );
            assert_eq!(mask & kind_bit(kind) != 0, wanted, "{kind:?}");
        }
    }
}
