//! The HTTP REST API's pure pieces (`specs/pusher.md` §7): request signing ([`signature`]),
//! the publish bodies of `POST /apps/{id}/events` and `/batch_events` ([`body`]), the `info`
//! query attributes, and [`RestError`], the one error type every REST rejection is expressed
//! as (HTTP status + `{"error":"…"}`).
//!
//! Routing, app lookup, channel state and the replies themselves belong to the shard; this
//! module only decides whether a request is authentic and well-formed.

pub mod body;
pub mod signature;

pub use body::{parse_batch, parse_publish, PublishEvent};
pub use signature::{
    body_md5_hex, sign_query, string_to_sign, verify_request, AUTH_VERSION, EMPTY_BODY_MD5,
    TIMESTAMP_TOLERANCE_S,
};

use super::server_message::{channel_event, push_json_string};

/// Why a REST request is refused; maps to the HTTP status and the JSON body
/// `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestError {
    /// HTTP status: 400 bad request, 401 bad auth, 413 over a limit (others come from the
    /// shard: 403, 404, 429).
    pub status: u16,
    /// Human-readable cause, sent as the `error` field.
    pub message: String,
}

impl RestError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401: missing or wrong authentication.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// 413: a name, a list or a payload over the app's limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, message)
    }

    /// The JSON response body `{"error":"…"}` (the message JSON-escaped).
    pub fn body(&self) -> String {
        let mut out = String::with_capacity(self.message.len() + 16);
        out.push_str("{\"error\":");
        push_json_string(&mut out, &self.message);
        out.push('}');
        out
    }

    /// The same error with `context: ` put in front of the message (`batch[3]: …`).
    pub(crate) fn in_context(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl core::fmt::Display for RestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for RestError {}

/// One attribute a REST caller may ask for with `info=…` (channel queries and publishes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoAttribute {
    /// `user_count`: distinct users on a presence channel.
    UserCount,
    /// `subscription_count`: connections subscribed to the channel.
    SubscriptionCount,
    /// `cache`: the cached last event of a cache channel (`GET /channels/{c}` only).
    Cache,
}

impl InfoAttribute {
    /// The attribute's name in queries and in replies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserCount => "user_count",
            Self::SubscriptionCount => "subscription_count",
            Self::Cache => "cache",
        }
    }
}

/// Parses an (already percent-decoded) `info` value such as `user_count,subscription_count`
/// into attributes, in order, without repeats. `None`, an empty string and empty items
/// (`user_count,,`) give nothing; items are trimmed of spaces. An unknown attribute → 400.
///
/// Which attributes make sense where (e.g. `user_count` only on presence channels) is the
/// route's decision.
pub fn parse_info_attributes(value: Option<&str>) -> Result<Vec<InfoAttribute>, RestError> {
    let mut out = Vec::new();
    for item in value.unwrap_or("").split(',') {
        let attribute = match item.trim_matches(' ') {
            "" => continue,
            "user_count" => InfoAttribute::UserCount,
            "subscription_count" => InfoAttribute::SubscriptionCount,
            "cache" => InfoAttribute::Cache,
            other => {
                let mut message = String::from("unknown info attribute ");
                push_json_string(&mut message, other);
                message.push_str(" (known: user_count, subscription_count, cache)");
                return Err(RestError::bad_request(message));
            }
        };
        if !out.contains(&attribute) {
            out.push(attribute);
        }
    }
    Ok(out)
}

/// The frame JSON text of `event` on one of its channels:
/// `{"event":name,"channel":c,"data":<data_json>}`.
pub fn event_json(event: &PublishEvent, channel: &str) -> String {
    channel_event(&event.name, channel, &event.data_json, None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn error_body_is_escaped_json() {
        let e = RestError::new(400, "bad \"thing\"\n\\");
        let v: Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(v, json!({"error": "bad \"thing\"\n\\"}));
        assert_eq!(RestError::unauthorized("x").status, 401);
        assert_eq!(RestError::too_large("x").status, 413);
        assert_eq!(RestError::bad_request("x").status, 400);
        assert_eq!(
            RestError::bad_request("x").in_context("batch[2]").message,
            "batch[2]: x"
        );
        assert_eq!(RestError::new(401, "nope").to_string(), "401 nope");
    }

    #[test]
    fn info_attributes() {
        use InfoAttribute::*;
        assert_eq!(parse_info_attributes(None), Ok(vec![]));
        assert_eq!(parse_info_attributes(Some("")), Ok(vec![]));
        assert_eq!(
            parse_info_attributes(Some("user_count,subscription_count,cache")),
            Ok(vec![UserCount, SubscriptionCount, Cache])
        );
        assert_eq!(
            parse_info_attributes(Some(" cache , user_count,,cache")),
            Ok(vec![Cache, UserCount])
        );
        let err = parse_info_attributes(Some("user_count,members")).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("\"members\""), "{}", err.message);
        // Not decoded here: the caller passes the decoded value.
        assert_eq!(
            parse_info_attributes(Some("user_count%2Ccache"))
                .unwrap_err()
                .status,
            400
        );
        for a in [UserCount, SubscriptionCount, Cache] {
            assert_eq!(parse_info_attributes(Some(a.as_str())), Ok(vec![a]));
        }
    }

    #[test]
    fn event_json_shape() {
        let event = PublishEvent {
            name: "my-event".into(),
            channels: vec!["a".into(), "b".into()],
            data_json: json_string_of(r#"{"x":"y"}"#),
            socket_id: None,
            info: vec![],
        };
        let text = event_json(&event, "b");
        assert_eq!(
            text,
            r#"{"event":"my-event","channel":"b","data":"{\"x\":\"y\"}"}"#
        );
    }

    fn json_string_of(s: &str) -> String {
        crate::pusher::server_message::json_string(s)
    }
}
