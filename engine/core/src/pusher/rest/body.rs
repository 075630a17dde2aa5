//! The publish bodies of the REST API (`docs/protocol-notes.md`, REST API):
//! `POST /apps/{id}/events` and `POST /apps/{id}/batch_events`, parsed from untrusted JSON and
//! checked against the app's limits into [`PublishEvent`]s the shard can fan out as they are,
//! and [`event_json`], the frame text of one event on one of its channels.
//!
//! Everything is validated before anything is returned, so a caller that gets `Ok` can send
//! every event and one that gets `Err` sends none (a batch is all or nothing).

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::error::RestError;
use crate::app::AppConfig;
use crate::pusher::channel::{classify, server_to_user_id, ChannelNameError};
use crate::pusher::client_message::{encode_value, parse_json};
use crate::pusher::json_escape::json_string;
use crate::pusher::server_message::channel_event;
use crate::pusher::user::MAX_USER_ID_BYTES;

type Object<'t, 'i> = simd_json::tape::Object<'t, 'i>;

/// One event to publish, validated against the app's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishEvent {
    /// The event name (non-empty, at most `max_event_name_length` bytes).
    pub name: String,
    /// The target channels, in the order given, without repeats (at least one). Each is a
    /// valid channel name or `#server-to-user-{id}` (delivered to the user's sockets).
    pub channels: Vec<String>,
    /// The `data` field as JSON text ready to splice into a frame: always a JSON *string*
    /// literal. The API defines `data` as a string and clients `JSON.parse` it; a client that
    /// sends another JSON value (object, number, …) gets it serialised to JSON text and sent as
    /// that string, as soketi does, so subscribers see the same thing as if the publisher had
    /// stringified it itself.
    pub data_json: String,
    /// The socket to leave out of the fan-out (`^\d+\.\d+$`), if any.
    pub socket_id: Option<String>,
    /// The `info` attributes asked for, split on `,`, trimmed, empty items dropped (validated
    /// by the route with [`super::parse_info_attributes`] semantics).
    pub info: Vec<String>,
}

/// Parses and validates the body of `POST /apps/{id}/events`:
/// `{name, data, channel | channels[], socket_id?, info?}` (other fields are ignored; a `null`
/// field counts as absent).
///
/// 400: not JSON / not an object / nested too deeply; `name` missing, not a string, empty or
/// starting with `pusher_internal:` (clients treat those as protocol messages); `data` missing
/// or `null`; neither or both of `channel` and `channels`; `channel` not a string; `channels`
/// not an array of strings or empty; a channel name empty or with a character outside
/// `[A-Za-z0-9_\-=@,.;]`; `socket_id` not a string matching `^\d+\.\d+$` (an empty string is
/// taken as absent: the Node SDK forwards `socket_id: ""` unchecked); `info` not a string.
///
/// 413: `name` longer than `max_event_name_length`; more channels than
/// `max_event_channels_at_once`; a channel name longer than `max_channel_name_length` (or a
/// `#server-to-user-` id longer than [`MAX_USER_ID_BYTES`]); `data` over
/// `max_event_payload_kb` KiB (the byte length of the string as sent, or of the JSON text of
/// a non-string value).
pub fn parse_publish(body: &[u8], app: &AppConfig) -> Result<PublishEvent, RestError> {
    // simd-json parses in place, so it needs its own mutable copy.
    let mut buf = body.to_vec();
    let tape = parse_json(&mut buf).map_err(|e| RestError::bad_request(e.message))?;
    let obj = tape
        .as_value()
        .as_object()
        .ok_or_else(|| RestError::bad_request("body must be a JSON object"))?;
    parse_event(&obj, app)
}

/// Parses and validates the body of `POST /apps/{id}/batch_events`: `{"batch":[event, …]}`,
/// each event as in [`parse_publish`] (Pusher's batch items carry `channel`; `channels` is
/// accepted too). The batch must be a non-empty array (400) of at most
/// `max_event_batch_size` events (413). Every event is checked before returning; the first
/// failing one is reported with its index: `batch[3]: missing data`.
pub fn parse_batch(body: &[u8], app: &AppConfig) -> Result<Vec<PublishEvent>, RestError> {
    let mut buf = body.to_vec();
    let tape = parse_json(&mut buf).map_err(|e| RestError::bad_request(e.message))?;
    let obj = tape
        .as_value()
        .as_object()
        .ok_or_else(|| RestError::bad_request("body must be a JSON object"))?;
    let items = match field(&obj, "batch") {
        None => return Err(RestError::bad_request("missing batch")),
        Some(v) => v
            .as_array()
            .ok_or_else(|| RestError::bad_request("batch must be an array of events"))?,
    };
    if items.is_empty() {
        return Err(RestError::bad_request("batch is empty"));
    }
    let max = app.max_event_batch_size as usize;
    if items.len() > max {
        return Err(RestError::too_large(format!(
            "batch has {} events, over the limit of {max}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_object()
                .ok_or_else(|| RestError::bad_request("event must be a JSON object"))
                .and_then(|obj| parse_event(&obj, app))
                .map_err(|e| e.in_context(&format!("batch[{i}]")))
        })
        .collect()
}

/// A field's value, with JSON `null` treated as absent (clients serialise unset optional
/// fields either way).
fn field<'t, 'i>(obj: &Object<'t, 'i>, key: &str) -> Option<Value<'t, 'i>> {
    obj.get(key).filter(|v| !v.is_null())
}

/// One event object, checked field by field in order: name, data, channels, socket_id, info.
fn parse_event(obj: &Object<'_, '_>, app: &AppConfig) -> Result<PublishEvent, RestError> {
    let name = parse_name(obj, app)?;
    let data_json = parse_data(obj, app)?;
    let channels = parse_channels(obj, app)?;
    let socket_id = parse_socket_id(obj)?;
    let info = parse_info(obj)?;
    Ok(PublishEvent {
        name: name.to_owned(),
        channels,
        data_json,
        socket_id,
        info,
    })
}

/// `name`: a non-empty string of at most `max_event_name_length` bytes, not starting with
/// `pusher_internal:`.
fn parse_name<'i>(obj: &Object<'_, 'i>, app: &AppConfig) -> Result<&'i str, RestError> {
    let name = match field(obj, "name") {
        None => return Err(RestError::bad_request("missing name")),
        Some(v) => v
            .into_string()
            .ok_or_else(|| RestError::bad_request("name must be a string"))?,
    };
    if name.is_empty() {
        return Err(RestError::bad_request("name must not be empty"));
    }
    let max_name = app.max_event_name_length as usize;
    if name.len() > max_name {
        return Err(RestError::too_large(format!(
            "event name is longer than {max_name} bytes"
        )));
    }
    // pusher-js handles `pusher_internal:` events itself (subscription_succeeded,
    // member_added, …): publishing one would forge protocol state in every client.
    if name.starts_with("pusher_internal:") {
        return Err(RestError::bad_request(
            "event names starting with pusher_internal: are reserved",
        ));
    }
    Ok(name)
}

/// `data` as a JSON string literal (a non-string value is sent as its JSON text), at most
/// `max_event_payload_kb` KiB as sent.
fn parse_data(obj: &Object<'_, '_>, app: &AppConfig) -> Result<String, RestError> {
    let (data_len, data_json) = match field(obj, "data") {
        None => return Err(RestError::bad_request("missing data")),
        Some(v) => match v.as_str() {
            Some(s) => (s.len(), json_string(s)),
            None => {
                let text = encode_value(v);
                (text.len(), json_string(&text))
            }
        },
    };
    let max_data = (app.max_event_payload_kb as usize).saturating_mul(1024);
    if data_len > max_data {
        return Err(RestError::too_large(format!(
            "data is {data_len} bytes, over the limit of {} KiB",
            app.max_event_payload_kb
        )));
    }
    Ok(data_json)
}

/// `socket_id`, if given and not empty: a string like `123.456`.
fn parse_socket_id(obj: &Object<'_, '_>) -> Result<Option<String>, RestError> {
    match field(obj, "socket_id") {
        None => Ok(None),
        Some(v) => match v.as_str() {
            Some("") => Ok(None),
            Some(s) if is_socket_id(s) => Ok(Some(s.to_owned())),
            _ => Err(RestError::bad_request(
                "socket_id must be a string like \"123.456\"",
            )),
        },
    }
}

/// `info`, if given: a comma-separated string, split into trimmed, non-empty attributes.
fn parse_info(obj: &Object<'_, '_>) -> Result<Vec<String>, RestError> {
    let info = match field(obj, "info") {
        None => Vec::new(),
        Some(v) => v
            .as_str()
            .ok_or_else(|| RestError::bad_request("info must be a comma-separated string"))?
            .split(',')
            .map(|s| s.trim_matches(' '))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    Ok(info)
}

/// `channel` or `channels` (exactly one of them): the target channel names, each checked.
fn parse_channels(obj: &Object<'_, '_>, app: &AppConfig) -> Result<Vec<String>, RestError> {
    match (field(obj, "channel"), field(obj, "channels")) {
        (Some(_), Some(_)) => Err(RestError::bad_request(
            "give either channel or channels, not both",
        )),
        (None, None) => Err(RestError::bad_request("missing channel or channels")),
        (Some(v), None) => {
            let name = v
                .as_str()
                .ok_or_else(|| RestError::bad_request("channel must be a string"))?;
            check_channel(name, app).map_err(|e| e.in_context("channel"))?;
            Ok(vec![name.to_owned()])
        }
        (None, Some(v)) => {
            let items = v
                .as_array()
                .ok_or_else(|| RestError::bad_request("channels must be an array of strings"))?;
            if items.is_empty() {
                return Err(RestError::bad_request("channels is empty"));
            }
            let max = app.max_event_channels_at_once as usize;
            if items.len() > max {
                return Err(RestError::too_large(format!(
                    "{} channels given, over the limit of {max}",
                    items.len()
                )));
            }
            let mut out: Vec<String> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let name = item.as_str().ok_or_else(|| {
                    RestError::bad_request(format!("channels[{i}] must be a string"))
                })?;
                check_channel(name, app).map_err(|e| e.in_context(&format!("channels[{i}]")))?;
                // A repeated channel would deliver the event twice to its subscribers. The
                // list is at most `max_event_channels_at_once` long, so the scan is cheap.
                if !out.iter().any(|c| c == name) {
                    out.push(name.to_owned());
                }
            }
            Ok(out)
        }
    }
}

/// A publish target: a valid channel name, or `#server-to-user-{id}` (which [`classify`]
/// rejects because `#` is reserved, but which the REST API publishes to: `sendToUser` in the
/// Node SDK).
fn check_channel(name: &str, app: &AppConfig) -> Result<(), RestError> {
    if let Some(user_id) = server_to_user_id(name) {
        if user_id.len() > MAX_USER_ID_BYTES {
            return Err(RestError::too_large(format!(
                "user id is longer than {MAX_USER_ID_BYTES} bytes"
            )));
        }
        return Ok(());
    }
    match classify(name, app.max_channel_name_length as usize) {
        Ok(_) => Ok(()),
        Err(e @ ChannelNameError::TooLong) => Err(RestError::too_large(format!(
            "{} (at most {} bytes)",
            e.message(),
            app.max_channel_name_length
        ))),
        Err(e) => Err(RestError::bad_request(e.message())),
    }
}

/// `^\d+\.\d+$`, the socket id format every SDK checks.
fn is_socket_id(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    s.split_once('.')
        .is_some_and(|(a, b)| digits(a) && digits(b))
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

    fn app() -> AppConfig {
        AppConfig::with_credentials("1", "key", "secret")
    }

    fn publish(body: &Value) -> Result<PublishEvent, RestError> {
        parse_publish(body.to_string().as_bytes(), &app())
    }

    fn publish_status(body: &Value) -> u16 {
        publish(body).err().map_or(200, |e| e.status)
    }

    fn batch(body: &Value) -> Result<Vec<PublishEvent>, RestError> {
        parse_batch(body.to_string().as_bytes(), &app())
    }

    #[test]
    fn node_sdk_publish() {
        // What `pusher.trigger(["a","b"], "e", {x:1}, {socket_id, info})` sends.
        let body = r#"{"name":"my-event","data":"{\"x\":1}","channels":["a","private-b"],"socket_id":"123.456","info":"subscription_count,user_count"}"#;
        let e = parse_publish(body.as_bytes(), &app()).unwrap();
        assert_eq!(e.name, "my-event");
        assert_eq!(e.channels, vec!["a", "private-b"]);
        assert_eq!(e.data_json, r#""{\"x\":1}""#);
        assert_eq!(e.socket_id.as_deref(), Some("123.456"));
        assert_eq!(e.info, vec!["subscription_count", "user_count"]);
        let frame: Value = serde_json::from_str(&event_json(&e, "a")).unwrap();
        assert_eq!(
            frame,
            json!({"event":"my-event","channel":"a","data":"{\"x\":1}"})
        );
    }

    #[test]
    fn python_sdk_publish() {
        // json.dumps: ", " / ": " separators, non-ASCII as \u escapes.
        let body = r#"{"name": "e", "channels": ["c"], "data": "caf\u00e9 \"q\""}"#;
        let e = parse_publish(body.as_bytes(), &app()).unwrap();
        assert_eq!(e.channels, vec!["c"]);
        assert_eq!(
            serde_json::from_str::<Value>(&e.data_json).unwrap(),
            json!("café \"q\"")
        );
        assert_eq!(e.socket_id, None);
        assert!(e.info.is_empty());
    }

    #[test]
    fn single_channel_and_server_to_user() {
        let e = publish(&json!({"name":"e","data":"d","channel":"presence-x"})).unwrap();
        assert_eq!(e.channels, vec!["presence-x"]);
        let e = publish(&json!({"name":"e","data":"d","channels":["#server-to-user-42"]})).unwrap();
        assert_eq!(e.channels, vec!["#server-to-user-42"]);
        // Repeats are dropped, order kept.
        let e = publish(&json!({"name":"e","data":"d","channels":["b","a","b"]})).unwrap();
        assert_eq!(e.channels, vec!["b", "a"]);
        // null optional fields are absent; empty socket_id too.
        let e = publish(&json!({"name":"e","data":"d","channel":"a","channels":null,"socket_id":"","info":null})).unwrap();
        assert_eq!((e.channels.len(), e.socket_id, e.info.len()), (1, None, 0));
    }

    #[test]
    fn non_string_data_is_stringified() {
        let e = publish(&json!({"name":"e","data":{"a":[1,true,null]},"channel":"c"})).unwrap();
        assert_eq!(e.data_json, r#""{\"a\":[1,true,null]}""#);
        let e = publish(&json!({"name":"e","data":42,"channel":"c"})).unwrap();
        assert_eq!(e.data_json, r#""42""#);
        let e = publish(&json!({"name":"e","data":"","channel":"c"})).unwrap();
        assert_eq!(e.data_json, r#""""#);
    }

    /// A non-string `data` of more than 32 members is stringified in the order it was sent (it
    /// was in hash order; see the `client_message` test `relayed_objects_keep_their_member_order`).
    #[test]
    fn stringified_data_keeps_its_member_order() {
        let members: Vec<String> = (0..40).map(|i| format!(r#""m{i}":{i}"#)).collect();
        let data = format!("{{{}}}", members.join(","));
        let body = format!(r#"{{"name":"e","channel":"c","data":{data}}}"#);
        let e = parse_publish(body.as_bytes(), &app()).unwrap();
        assert_eq!(e.data_json, json_string(&data));
    }

    #[test]
    fn structural_errors_are_400() {
        let cases = [
            (json!([1]), "body must be a JSON object"),
            (json!("x"), "body must be a JSON object"),
            (json!({"data":"d","channel":"c"}), "missing name"),
            (
                json!({"name":null,"data":"d","channel":"c"}),
                "missing name",
            ),
            (
                json!({"name":1,"data":"d","channel":"c"}),
                "name must be a string",
            ),
            (
                json!({"name":"","data":"d","channel":"c"}),
                "name must not be empty",
            ),
            (
                json!({"name":"pusher_internal:member_added","data":"d","channel":"c"}),
                "reserved",
            ),
            (json!({"name":"e","channel":"c"}), "missing data"),
            (
                json!({"name":"e","data":null,"channel":"c"}),
                "missing data",
            ),
            (
                json!({"name":"e","data":"d"}),
                "missing channel or channels",
            ),
            (
                json!({"name":"e","data":"d","channel":"a","channels":["b"]}),
                "not both",
            ),
            (
                json!({"name":"e","data":"d","channel":["a"]}),
                "channel must be a string",
            ),
            (
                json!({"name":"e","data":"d","channels":"a"}),
                "channels must be an array",
            ),
            (
                json!({"name":"e","data":"d","channels":[]}),
                "channels is empty",
            ),
            (
                json!({"name":"e","data":"d","channels":["a",1]}),
                "channels[1] must be a string",
            ),
            (
                json!({"name":"e","data":"d","channels":["a","b c"]}),
                "channels[1]: Channel name contains an invalid character",
            ),
            (
                json!({"name":"e","data":"d","channel":""}),
                "channel: Channel name is empty",
            ),
            (
                json!({"name":"e","data":"d","channel":"#other"}),
                "invalid character",
            ),
            (
                json!({"name":"e","data":"d","channel":"#server-to-user-"}),
                "invalid character",
            ),
            (
                json!({"name":"e","data":"d","channel":"c","socket_id":"1.2.3"}),
                "socket_id",
            ),
            (
                json!({"name":"e","data":"d","channel":"c","socket_id":"abc"}),
                "socket_id",
            ),
            (
                json!({"name":"e","data":"d","channel":"c","socket_id":"1."}),
                "socket_id",
            ),
            (
                json!({"name":"e","data":"d","channel":"c","socket_id":".1"}),
                "socket_id",
            ),
            (
                json!({"name":"e","data":"d","channel":"c","socket_id":123.456}),
                "socket_id",
            ),
            (
                json!({"name":"e","data":"d","channel":"c","info":["user_count"]}),
                "info must be",
            ),
        ];
        for (body, want) in cases {
            let err = publish(&body).unwrap_err();
            assert_eq!(err.status, 400, "{body}: {err:?}");
            assert!(
                err.message.contains(want),
                "{body}: {} !~ {want}",
                err.message
            );
        }
        for bad in [
            "",
            "{",
            "nul",
            "{\"name\":",
            "[1,2",
            "\u{0}",
            "{\"a\":\"\\ud800\"}",
        ] {
            assert_eq!(
                parse_publish(bad.as_bytes(), &app()).unwrap_err().status,
                400,
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_publish(&[0xff, 0xfe], &app()).unwrap_err().status,
            400
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse_publish(deep.as_bytes(), &app()).unwrap_err().status,
            400
        );
    }

    #[test]
    fn limits_are_413() {
        let a = app();
        let name_max = a.max_event_name_length as usize;
        let ok = json!({"name":"n".repeat(name_max),"data":"d","channel":"c"});
        assert_eq!(publish_status(&ok), 200);
        let long = json!({"name":"n".repeat(name_max + 1),"data":"d","channel":"c"});
        assert_eq!(publish_status(&long), 413);

        let max = a.max_event_channels_at_once as usize;
        let chans: Vec<String> = (0..max).map(|i| format!("c{i}")).collect();
        assert_eq!(
            publish_status(&json!({"name":"e","data":"d","channels":chans})),
            200
        );
        let chans: Vec<String> = (0..=max).map(|i| format!("c{i}")).collect();
        assert_eq!(
            publish_status(&json!({"name":"e","data":"d","channels":chans})),
            413
        );

        let chan_max = a.max_channel_name_length as usize;
        assert_eq!(
            publish_status(&json!({"name":"e","data":"d","channel":"c".repeat(chan_max)})),
            200
        );
        let err =
            publish(&json!({"name":"e","data":"d","channels":["a","c".repeat(chan_max + 1)]}))
                .unwrap_err();
        assert_eq!(err.status, 413);
        assert!(err.message.starts_with("channels[1]: "), "{}", err.message);
        let user = format!("#server-to-user-{}", "u".repeat(MAX_USER_ID_BYTES));
        assert_eq!(
            publish_status(&json!({"name":"e","data":"d","channel":user})),
            200
        );
        let user = format!("#server-to-user-{}", "u".repeat(MAX_USER_ID_BYTES + 1));
        assert_eq!(
            publish_status(&json!({"name":"e","data":"d","channel":user})),
            413
        );

        let data_max = a.max_event_payload_kb as usize * 1024;
        assert_eq!(
            publish_status(&json!({"name":"e","data":"x".repeat(data_max),"channel":"c"})),
            200
        );
        assert_eq!(
            publish_status(&json!({"name":"e","data":"x".repeat(data_max + 1),"channel":"c"})),
            413
        );
        // Measured in bytes of the string, not in escaped JSON characters.
        let multibyte = "é".repeat(data_max / 2);
        assert_eq!(
            publish_status(&json!({"name":"e","data":multibyte,"channel":"c"})),
            200
        );
        let multibyte = "é".repeat(data_max / 2 + 1);
        assert_eq!(
            publish_status(&json!({"name":"e","data":multibyte,"channel":"c"})),
            413
        );
        // A non-string value counts its JSON text.
        let big = json!({"name":"e","data":{"k":"x".repeat(data_max)},"channel":"c"});
        assert_eq!(publish_status(&big), 413);
    }

    #[test]
    fn batch_happy_path() {
        let events = batch(&json!({"batch":[
            {"name":"e1","channel":"a","data":"1"},
            {"name":"e2","channel":"private-b","data":"{\"x\":2}","socket_id":"1.2","info":"subscription_count"},
            {"name":"e3","channels":["c","d"],"data":"3"},
        ]}))
        .unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1].channels, vec!["private-b"]);
        assert_eq!(events[1].socket_id.as_deref(), Some("1.2"));
        assert_eq!(events[1].info, vec!["subscription_count"]);
        assert_eq!(events[2].channels, vec!["c", "d"]);
    }

    #[test]
    fn batch_errors() {
        let item = json!({"name":"e","channel":"a","data":"d"});
        let cases = [
            (json!({}), 400, "missing batch"),
            (json!({"batch":null}), 400, "missing batch"),
            (json!({"batch":{}}), 400, "batch must be an array"),
            (json!({"batch":[]}), 400, "batch is empty"),
            (json!([item]), 400, "body must be a JSON object"),
            (
                json!({"batch":[item, item, item, 7]}),
                400,
                "batch[3]: event must be a JSON object",
            ),
            (
                json!({"batch":[item, {"name":"e","channel":"a"}]}),
                400,
                "batch[1]: missing data",
            ),
            (
                json!({"batch":[{"name":"e","data":"d"}]}),
                400,
                "batch[0]: missing channel",
            ),
            (
                json!({"batch":[item, {"name":"e","data":"d","channel":"a b"}]}),
                400,
                "batch[1]: channel: ",
            ),
            (
                json!({"batch":[item, {"name":"n".repeat(201),"data":"d","channel":"a"}]}),
                413,
                "batch[1]: event name",
            ),
            (
                json!({"batch":[{"name":"e","data":"x".repeat(10 * 1024 + 1),"channel":"a"}]}),
                413,
                "batch[0]: data",
            ),
        ];
        for (body, status, want) in cases {
            let err = batch(&body).unwrap_err();
            assert_eq!(err.status, status, "{body}: {err:?}");
            assert!(
                err.message.starts_with(want) || err.message.contains(want),
                "{} !~ {want}",
                err.message
            );
        }
        let max = app().max_event_batch_size as usize;
        let full: Vec<Value> = (0..max).map(|_| item.clone()).collect();
        assert_eq!(batch(&json!({"batch":full})).unwrap().len(), max);
        let over: Vec<Value> = (0..=max).map(|_| item.clone()).collect();
        assert_eq!(batch(&json!({"batch":over})).unwrap_err().status, 413);
    }

    #[test]
    fn garbage_bodies_never_panic() {
        let a = app();
        let seeds: [&[u8]; 12] = [
            b"",
            b"{}",
            b"null",
            br#"{"batch":[{"name":"e","channel":"a","data":"d"}]}"#,
            br#"{"name":"e","channels":["a"],"data":{"x":[1,2,{"y":null}]},"socket_id":"1.1"}"#,
            br#"{"name":"\ud83d\ude00","channel":"a","data":1e999}"#,
            br#"{"name":"e","channel":"a","data":-0.0}"#,
            b"\xff\xfe\xfd",
            b"[[[[[[[[[[[[",
            br#"{"name":"e","channel":"a","data":"\u0000"}"#,
            br#"{"batch":[null,1,"x",[],{}]}"#,
            br#"{"name":{"a":1},"channel":{},"channels":{},"data":[]}"#,
        ];
        for seed in seeds {
            let _ = parse_publish(seed, &a);
            let _ = parse_batch(seed, &a);
            // Every prefix and a few byte flips.
            for end in 0..seed.len() {
                let _ = parse_publish(&seed[..end], &a);
                let _ = parse_batch(&seed[..end], &a);
            }
            for i in 0..seed.len() {
                for flip in [0x01u8, 0x20, 0x80] {
                    let mut m = seed.to_vec();
                    m[i] ^= flip;
                    let _ = parse_publish(&m, &a);
                    let _ = parse_batch(&m, &a);
                }
            }
        }
    }

    #[test]
    fn socket_id_format() {
        for ok in ["1.2", "123.456", "0.0"] {
            assert!(is_socket_id(ok), "{ok}");
        }
        for bad in [
            "", ".", "1.", ".1", "1.2.3", "a.1", "1.a", "１.2", " 1.2", "1,2",
        ] {
            assert!(!is_socket_id(bad), "{bad}");
        }
    }
}
