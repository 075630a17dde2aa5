//! Server → client events (`docs/protocol-notes.md`: Envelope, Events): builders of the JSON
//! *text* of each event.
//! The caller wraps the text in a WebSocket frame (once per event, shared by every recipient).
//!
//! Wire rules: `pusher:*` and `pusher_internal:*` events carry `data` as a JSON **string**
//! holding JSON (pusher-js `JSON.parse`s a string `data` once more), except `pusher:error`,
//! whose `data` is an object. Channel events carry `data` exactly as published. Every string
//! that comes from a client or an app goes through [`push_json_string`], so no input can break
//! out of its JSON string.

use core::fmt::Write as _;
use std::ops::Range;

pub use super::json_escape::{json_string, push_json_string};

/// `{"event":event[,"channel":channel],"data":<data_json as a JSON string>}`: the envelope of
/// every `pusher:*` / `pusher_internal:*` event whose data is JSON-in-a-string.
fn string_data_event(event: &str, channel: Option<&str>, data_json: &str) -> String {
    let mut out = String::with_capacity(
        32 + event.len() + channel.map_or(0, str::len) + data_json.len() * 5 / 4,
    );
    out.push_str("{\"event\":");
    push_json_string(&mut out, event);
    if let Some(c) = channel {
        out.push_str(",\"channel\":");
        push_json_string(&mut out, c);
    }
    out.push_str(",\"data\":");
    push_json_string(&mut out, data_json);
    out.push('}');
    out
}

/// `pusher:connection_established` with the socket id and the activity timeout in seconds.
pub fn connection_established(socket_id: &str, activity_timeout_s: u32) -> String {
    let mut data = String::with_capacity(48 + socket_id.len());
    data.push_str("{\"socket_id\":");
    push_json_string(&mut data, socket_id);
    let _ = write!(data, ",\"activity_timeout\":{activity_timeout_s}}}");
    string_data_event("pusher:connection_established", None, &data)
}

/// `pusher:error` with `data` as an *object* `{"code":N|null,"message":"…"}`. `None` is the
/// `null` code used for malformed client messages (see [`super::close::INVALID_MESSAGE`]).
pub fn error(code: Option<u16>, message: &str) -> String {
    let mut out = String::with_capacity(64 + message.len());
    out.push_str("{\"event\":\"pusher:error\",\"data\":{\"code\":");
    match code {
        Some(c) => {
            let _ = write!(out, "{c}");
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"message\":");
    push_json_string(&mut out, message);
    out.push_str("}}");
    out
}

/// `pusher:ping` from the server (sent after `activity_timeout` of silence).
pub fn ping() -> String {
    string_data_event("pusher:ping", None, "{}")
}

/// `pusher:pong`, the reply to a client `pusher:ping`. pusher-js ignores the data; it is the
/// string `"{}"` like every other `pusher:` event.
pub fn pong() -> String {
    string_data_event("pusher:pong", None, "{}")
}

/// `pusher_internal:subscription_succeeded` for a non-presence channel (data `"{}"`).
pub fn subscription_succeeded(channel: &str) -> String {
    string_data_event(
        "pusher_internal:subscription_succeeded",
        Some(channel),
        "{}",
    )
}

/// `pusher_internal:subscription_succeeded` for a presence channel:
/// `data = "{\"presence\":{\"ids\":[…],\"hash\":{id:info,…},\"count\":n}}"`.
///
/// `members` yields `(user_id, user_info JSON text)` once per distinct user (the subscriber
/// included); `user_info` must be valid JSON text, as produced by
/// [`super::user::parse_presence_member`].
pub fn presence_subscription_succeeded<'a>(
    channel: &str,
    members: impl Iterator<Item = (&'a str, &'a str)>,
    count: usize,
) -> String {
    let mut ids = String::from("[");
    let mut hash = String::from("{");
    for (i, (user_id, user_info)) in members.enumerate() {
        if i > 0 {
            ids.push(',');
            hash.push(',');
        }
        push_json_string(&mut ids, user_id);
        push_json_string(&mut hash, user_id);
        hash.push(':');
        hash.push_str(user_info);
    }
    ids.push(']');
    hash.push('}');
    let mut data = String::with_capacity(48 + ids.len() + hash.len());
    data.push_str("{\"presence\":{\"ids\":");
    data.push_str(&ids);
    data.push_str(",\"hash\":");
    data.push_str(&hash);
    let _ = write!(data, ",\"count\":{count}}}}}");
    string_data_event(
        "pusher_internal:subscription_succeeded",
        Some(channel),
        &data,
    )
}

/// `pusher:subscription_error` (sent once per failed subscribe):
/// `data = "{\"type\":\"AuthError\",\"error\":\"…\",\"status\":401}"`. pusher-js and Laravel
/// Echo bind it on the channel.
pub fn subscription_error(channel: &str, error_type: &str, error: &str, status: u16) -> String {
    let mut data = String::with_capacity(48 + error_type.len() + error.len());
    data.push_str("{\"type\":");
    push_json_string(&mut data, error_type);
    data.push_str(",\"error\":");
    push_json_string(&mut data, error);
    let _ = write!(data, ",\"status\":{status}}}");
    string_data_event("pusher:subscription_error", Some(channel), &data)
}

/// `pusher_internal:member_added`: `data = "{\"user_id\":\"u\",\"user_info\":{…}}"`;
/// `user_info` is JSON text (`null` when the member has none).
pub fn member_added(channel: &str, user_id: &str, user_info: &str) -> String {
    let mut data = String::with_capacity(32 + user_id.len() + user_info.len());
    data.push_str("{\"user_id\":");
    push_json_string(&mut data, user_id);
    data.push_str(",\"user_info\":");
    data.push_str(user_info);
    data.push('}');
    string_data_event("pusher_internal:member_added", Some(channel), &data)
}

/// `pusher_internal:member_removed`: `data = "{\"user_id\":\"u\"}"`.
pub fn member_removed(channel: &str, user_id: &str) -> String {
    let mut data = String::with_capacity(16 + user_id.len());
    data.push_str("{\"user_id\":");
    push_json_string(&mut data, user_id);
    data.push('}');
    string_data_event("pusher_internal:member_removed", Some(channel), &data)
}

/// `pusher:signin_success`: `data = "{\"user_data\":\"<user_data>\"}"`. pusher-js 8 parses the
/// outer `data` string, then `JSON.parse`s `data.user_data` itself and requires a non-empty
/// string `id` in it, so `user_data` stays a string (the one the client signed).
pub fn signin_success(user_data: &str) -> String {
    let mut data = String::with_capacity(16 + user_data.len() * 5 / 4);
    data.push_str("{\"user_data\":");
    push_json_string(&mut data, user_data);
    data.push('}');
    string_data_event("pusher:signin_success", None, &data)
}

/// `pusher:cache_miss` on a cache channel with nothing cached: `{"event":…,"channel":c}`, no
/// data (pusher-js emits it on the channel as is).
pub fn cache_miss(channel: &str) -> String {
    let mut out = String::with_capacity(48 + channel.len());
    out.push_str("{\"event\":\"pusher:cache_miss\",\"channel\":");
    push_json_string(&mut out, channel);
    out.push('}');
    out
}

/// `pusher_internal:subscription_count`: `data = "{\"subscription_count\":n}"` (pusher-js
/// re-emits it as `pusher:subscription_count`). Not sent on presence channels.
pub fn subscription_count(channel: &str, count: u64) -> String {
    let data = format!("{{\"subscription_count\":{count}}}");
    string_data_event("pusher_internal:subscription_count", Some(channel), &data)
}

/// `pusher_internal:watchlist_events`:
/// `data = "{\"events\":[{\"name\":\"online\",\"user_ids\":[…]},…]}"`, one entry per
/// `(name, user_ids)` with `name` `"online"` or `"offline"`.
pub fn watchlist_events(events: &[(&str, &[String])]) -> String {
    let mut data = String::from("{\"events\":[");
    for (i, (name, user_ids)) in events.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        data.push_str("{\"name\":");
        push_json_string(&mut data, name);
        data.push_str(",\"user_ids\":[");
        for (j, id) in user_ids.iter().enumerate() {
            if j > 0 {
                data.push(',');
            }
            push_json_string(&mut data, id);
        }
        data.push_str("]}");
    }
    data.push_str("]}");
    string_data_event("pusher_internal:watchlist_events", None, &data)
}

/// A channel event `{"event":e,"channel":c,"data":<data_json>[,"user_id":u]}`. `data_json` is
/// already JSON text and is copied verbatim: a JSON string literal for REST publishes (see
/// [`json_string`]), any JSON value for client events. `user_id` is added to client events on
/// presence channels.
pub fn channel_event(event: &str, channel: &str, data_json: &str, user_id: Option<&str>) -> String {
    channel_event_parts(event, channel, data_json, user_id).text
}

/// A channel event's JSON text and where in it its parts lie, so other framings can reuse them
/// without a copy (`crate::dialect::Published`).
#[derive(Debug)]
pub struct ChannelEventText {
    /// The whole JSON text, as [`channel_event`] returns it.
    pub text: String,
    /// The event name as a JSON string literal.
    pub name: Range<usize>,
    /// The data's JSON text.
    pub data: Range<usize>,
}

/// [`channel_event`], with the positions of its name and data.
pub fn channel_event_parts(
    event: &str,
    channel: &str,
    data_json: &str,
    user_id: Option<&str>,
) -> ChannelEventText {
    let mut out = String::with_capacity(
        40 + event.len() + channel.len() + data_json.len() + user_id.map_or(0, str::len),
    );
    out.push_str("{\"event\":");
    let name_start = out.len();
    push_json_string(&mut out, event);
    let name = name_start..out.len();
    out.push_str(",\"channel\":");
    push_json_string(&mut out, channel);
    out.push_str(",\"data\":");
    let data_start = out.len();
    out.push_str(data_json);
    let data = data_start..out.len();
    if let Some(u) = user_id {
        out.push_str(",\"user_id\":");
        push_json_string(&mut out, u);
    }
    out.push('}');
    ChannelEventText {
        text: out,
        name,
        data,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::{json, Value};

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// The envelope, with a string `data` parsed once more (as pusher-js does).
    fn decode(text: &str) -> Value {
        let mut v = parse(text);
        if let Some(Value::String(s)) = v.get("data") {
            let inner = parse(s);
            v["data"] = inner;
        }
        v
    }

    fn data_is_string(text: &str) -> bool {
        matches!(parse(text).get("data"), Some(Value::String(_)))
    }

    const NASTY: &str = "q\"b\\s/\n\r\t\u{0}\u{1f}\u{7f}é😀\u{2028}";

    #[test]
    fn json_string_escapes_everything_needed() {
        for s in ["", "plain", NASTY, "\u{8}\u{c}\u{b}", "\\\"", "</script>"] {
            assert_eq!(parse(&json_string(s)), Value::String(s.to_owned()), "{s:?}");
        }
        assert_eq!(json_string("a\"b\n\u{1}"), r#""a\"b\n\u0001""#);
    }

    #[test]
    fn connection_established_shape() {
        let text = connection_established("123.456", 120);
        assert_eq!(
            text,
            r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}"#
        );
        assert!(data_is_string(&text));
    }

    #[test]
    fn error_shape() {
        assert_eq!(
            parse(&error(Some(4001), "App key x not in this cluster")),
            json!({"event":"pusher:error","data":{"code":4001,"message":"App key x not in this cluster"}})
        );
        assert_eq!(
            parse(&error(None, NASTY)),
            json!({"event":"pusher:error","data":{"code":null,"message":NASTY}})
        );
    }

    #[test]
    fn ping_pong_shape() {
        assert_eq!(decode(&ping()), json!({"event":"pusher:ping","data":{}}));
        assert_eq!(decode(&pong()), json!({"event":"pusher:pong","data":{}}));
        assert_eq!(pong(), r#"{"event":"pusher:pong","data":"{}"}"#);
    }

    #[test]
    fn subscription_succeeded_shapes() {
        let text = subscription_succeeded("my-channel");
        assert!(data_is_string(&text));
        assert_eq!(
            decode(&text),
            json!({"event":"pusher_internal:subscription_succeeded","channel":"my-channel","data":{}})
        );

        let members = [("u1", r#"{"name":"A"}"#), ("u\"2", "null")];
        let text =
            presence_subscription_succeeded("presence-a", members.iter().map(|(a, b)| (*a, *b)), 2);
        assert!(data_is_string(&text));
        assert_eq!(
            decode(&text),
            json!({
                "event":"pusher_internal:subscription_succeeded",
                "channel":"presence-a",
                "data":{"presence":{"ids":["u1","u\"2"],"hash":{"u1":{"name":"A"},"u\"2":null},"count":2}}
            })
        );
        let empty = presence_subscription_succeeded("presence-a", std::iter::empty(), 0);
        assert_eq!(
            decode(&empty)["data"],
            json!({"presence":{"ids":[],"hash":{},"count":0}})
        );
    }

    #[test]
    fn subscription_error_shape() {
        let text = subscription_error("private-a", "AuthError", "Invalid \"signature\"", 401);
        assert!(data_is_string(&text));
        assert_eq!(
            decode(&text),
            json!({
                "event":"pusher:subscription_error",
                "channel":"private-a",
                "data":{"type":"AuthError","error":"Invalid \"signature\"","status":401}
            })
        );
    }

    #[test]
    fn member_events_shape() {
        let text = member_added("presence-a", "u1", r#"{"name":"A"}"#);
        assert!(data_is_string(&text));
        assert_eq!(
            decode(&text),
            json!({"event":"pusher_internal:member_added","channel":"presence-a","data":{"user_id":"u1","user_info":{"name":"A"}}})
        );
        let text = member_removed("presence-a", NASTY);
        assert_eq!(
            decode(&text),
            json!({"event":"pusher_internal:member_removed","channel":"presence-a","data":{"user_id":NASTY}})
        );
    }

    #[test]
    fn signin_success_shape_matches_pusher_js() {
        let user_data = r#"{"id":"u1","user_info":{"name":"A"}}"#;
        let v = decode(&signin_success(user_data));
        assert_eq!(v["event"], "pusher:signin_success");
        // pusher-js: JSON.parse(data.user_data).id must be a non-empty string.
        let user = parse(v["data"]["user_data"].as_str().unwrap());
        assert_eq!(user["id"], "u1");
    }

    #[test]
    fn cache_miss_and_subscription_count_shape() {
        assert_eq!(
            parse(&cache_miss("cache-a")),
            json!({"event":"pusher:cache_miss","channel":"cache-a"})
        );
        let text = subscription_count("my-channel", 42);
        assert!(data_is_string(&text));
        assert_eq!(
            decode(&text),
            json!({"event":"pusher_internal:subscription_count","channel":"my-channel","data":{"subscription_count":42}})
        );
    }

    #[test]
    fn watchlist_events_shape() {
        let online = vec!["u1".to_owned(), "u2".to_owned()];
        let offline = vec!["u3".to_owned()];
        let text = watchlist_events(&[("online", &online), ("offline", &offline)]);
        assert!(data_is_string(&text));
        assert_eq!(
            decode(&text),
            json!({"event":"pusher_internal:watchlist_events","data":{"events":[
                {"name":"online","user_ids":["u1","u2"]},
                {"name":"offline","user_ids":["u3"]}
            ]}})
        );
        assert_eq!(decode(&watchlist_events(&[]))["data"], json!({"events":[]}));
    }

    #[test]
    fn channel_event_shapes() {
        // REST publish: data is a string, relayed as a JSON string literal.
        let text = channel_event(
            "my-event",
            "my-channel",
            &json_string(r#"{"msg":"hi"}"#),
            None,
        );
        assert_eq!(
            text,
            r#"{"event":"my-event","channel":"my-channel","data":"{\"msg\":\"hi\"}"}"#
        );
        // Client event on a presence channel: any JSON value, plus user_id.
        let text = channel_event("client-x", "presence-a", r#"{"a":[1,2]}"#, Some("u1"));
        assert_eq!(
            parse(&text),
            json!({"event":"client-x","channel":"presence-a","data":{"a":[1,2]},"user_id":"u1"})
        );
        let text = channel_event(NASTY, NASTY, "null", Some(NASTY));
        assert_eq!(
            parse(&text),
            json!({"event":NASTY,"channel":NASTY,"data":null,"user_id":NASTY})
        );
    }

    #[test]
    fn client_event_round_trip_through_the_parser() {
        use crate::pusher::client_message::{parse_client_message, ClientMessage};
        let frame = r#"{"event":"client-x","channel":"private-a","data":{"t":"a\"b\u0001","n":[1,2.5,null,true]}}"#;
        let ClientMessage::ClientEvent {
            event,
            channel,
            data,
        } = parse_client_message(frame.as_bytes()).unwrap()
        else {
            panic!("not a client event");
        };
        let out = channel_event(&event, &channel, &data, None);
        assert_eq!(parse(&out)["data"], parse(frame)["data"]);
    }
}
