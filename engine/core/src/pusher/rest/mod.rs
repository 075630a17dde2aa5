//! The HTTP REST API's pure pieces (`docs/protocol-notes.md`: REST API, REST signing): request
//! signing ([`signature`]), the publish bodies of `POST /apps/{id}/events` and `/batch_events`
//! ([`body`]), the `info` query attributes, and [`RestError`] ([`error`]), the one error type
//! every REST rejection is expressed as (HTTP status + `{"error":"…"}`).
//!
//! Routing, app lookup, channel state and the replies themselves belong to the shard; this
//! module only decides whether a request is authentic and well-formed.

pub mod body;
pub mod error;
pub mod signature;

pub use body::{event_json, parse_batch, parse_publish, PublishEvent};
pub use error::RestError;
pub use signature::{
    body_md5_hex, sign_query, string_to_sign, verify_request, AUTH_VERSION, EMPTY_BODY_MD5,
    TIMESTAMP_TOLERANCE_S,
};

use super::json_escape::push_json_string;

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
        crate::pusher::json_escape::json_string(s)
    }
}
