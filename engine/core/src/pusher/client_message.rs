//! Client → server text frames (`docs/protocol-notes.md`: Envelope, Events): parsing untrusted
//! JSON into [`ClientMessage`].
//!
//! The payload comes straight off the network, so this module owns the guards every Pusher JSON
//! parse goes through (`parse_json`): a nesting-depth limit checked *before* simd-json runs
//! (its DOM builder and the value's drop both recurse, so a frame of 10 000 `[` would otherwise
//! overflow the shard's stack), UTF-8 validation (simd-json's), and no panics on any input.
//! It also owns `encode_value`, which turns a parsed value back into JSON text for relaying.
//!
//! Values are read from simd-json's tape, which keeps every member of an object in the order it
//! was sent (its `BorrowedValue` keeps objects of more than 32 members in a hash map, so they
//! would be relayed in hash order, repeated names moved about).

use core::fmt::Write as _;

use simd_json::prelude::*;
use simd_json::tape::Value;
use simd_json::Tape;

use super::json_escape::push_json_string;

/// Deepest array/object nesting accepted in any client JSON (envelope included).
pub use crate::limits::CLIENT_JSON_DEPTH_MAX as MAX_JSON_DEPTH;

/// One parsed client → server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// `pusher:ping`: answer with `pusher:pong`.
    Ping,
    /// `pusher:pong`: the answer to a server ping.
    Pong,
    /// `pusher:subscribe`. `data` may be an object or a JSON string holding the object.
    Subscribe {
        /// The channel name (not yet validated; see [`super::channel::classify`]).
        channel: String,
        /// The auth token; an empty string (pusher-js sends `""` for public channels) or a
        /// non-string is `None`.
        auth: Option<String>,
        /// Presence `channel_data`: the exact string the client sent, because the auth
        /// signature covers it byte for byte. A non-string value (not what pusher-js sends) is
        /// re-encoded as JSON text; `null` or absent is `None`.
        channel_data: Option<String>,
    },
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel name.
        channel: String,
    },
    /// `pusher:signin`.
    Signin {
        /// The sign-in token `"<key>:<hex>"`.
        auth: String,
        /// The exact `user_data` string (the signature covers it byte for byte).
        user_data: String,
    },
    /// A `client-*` event to relay on a channel.
    ClientEvent {
        /// The event name, starting with `client-`.
        event: String,
        /// The channel the client wants to publish on (not yet validated).
        channel: String,
        /// The `data` value as JSON text (`{"a":1}`, `"text"`, …); `null` if absent.
        data: String,
    },
    /// Any other `pusher:` / `pusher_internal:` event: reserved for the server, rejected.
    Reserved {
        /// The event name.
        event: String,
    },
    /// Anything else (neither `client-` nor `pusher:`): not part of the protocol.
    Unknown {
        /// The event name.
        event: String,
    },
}

/// Why a client message (or a `channel_data` / `user_data` document) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    /// Human-readable reason, e.g. "Invalid JSON", "Missing event name", "Missing channel".
    pub message: String,
}

impl MessageError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl core::fmt::Display for MessageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MessageError {}

/// An object on the tape: its members in document order; `get` finds a name's first member.
type Object<'t, 'i> = simd_json::tape::Object<'t, 'i>;

/// True when no array/object in `bytes` nests deeper than `max`. Exact for valid JSON (brackets
/// inside strings are skipped); for invalid JSON it is only a bound, and simd-json rejects the
/// rest.
fn nesting_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Parses untrusted JSON in place (simd-json rewrites `buf` while unescaping strings) after the
/// depth guard, into a tape (`.as_value()` reads it). Errors: "JSON nested too deeply",
/// "Invalid JSON" (which covers bad UTF-8).
pub(crate) fn parse_json(buf: &mut [u8]) -> Result<Tape<'_>, MessageError> {
    if !nesting_within(buf, MAX_JSON_DEPTH) {
        return Err(MessageError::new("JSON nested too deeply"));
    }
    simd_json::to_tape(buf).map_err(|_| MessageError::new("Invalid JSON"))
}

/// JSON text of a parsed value, for relaying it: members in the order they were sent (repeated
/// names included, so a receiver that keeps the last one sees what the sender's text said).
/// Non-finite numbers (which a parser may produce for out-of-range literals) become `null`, as
/// `JSON.stringify` does, so the output is always valid JSON. Recursion is bounded by
/// [`MAX_JSON_DEPTH`] because every value came through [`parse_json`].
pub(crate) fn encode_value(value: Value<'_, '_>) -> String {
    let mut out = String::new();
    push_value(&mut out, value);
    out
}

fn push_value(out: &mut String, value: Value<'_, '_>) {
    if let Some(s) = value.as_str() {
        push_json_string(out, s);
    } else if let Some(items) = value.as_array() {
        out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_value(out, item);
        }
        out.push(']');
    } else if let Some(map) = value.as_object() {
        out.push('{');
        for (i, (k, v)) in map.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(out, k);
            out.push(':');
            push_value(out, v);
        }
        out.push('}');
    } else {
        push_static(out, value);
    }
}

fn push_static(out: &mut String, value: Value<'_, '_>) {
    // Writing into a String cannot fail; the results are ignored for that reason.
    if let Some(f) = value.as_f64() {
        if f.is_finite() {
            // `{:?}` is the shortest round-trip form and uses an exponent for huge/tiny values
            // (`1e300`), always a valid JSON number for finite floats.
            let _ = write!(out, "{f:?}");
        } else {
            out.push_str("null");
        }
    } else if let Some(b) = value.as_bool() {
        out.push_str(if b { "true" } else { "false" });
    } else if let Some(i) = value.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = value.as_u64() {
        let _ = write!(out, "{u}");
    } else {
        out.push_str("null");
    }
}

fn str_field(obj: &Object<'_, '_>, key: &str) -> Option<String> {
    obj.get(key)
        .and_then(|v| v.into_string())
        .map(str::to_owned)
}

/// Runs `f` on the `data` object of a message; `data` may be the object itself or a JSON string
/// holding it (pusher-js sends objects, some other clients send strings).
fn with_data<R>(
    msg: &Object<'_, '_>,
    f: impl FnOnce(&Object<'_, '_>) -> Result<R, MessageError>,
) -> Result<R, MessageError> {
    let data = msg.get("data");
    if let Some(obj) = data.and_then(|d| d.as_object()) {
        return f(&obj);
    }
    let Some(text) = data.and_then(|d| d.into_string()) else {
        return Err(MessageError::new("Missing data"));
    };
    let mut buf = text.as_bytes().to_vec();
    let inner = parse_json(&mut buf)?;
    match inner.as_value().as_object() {
        Some(obj) => f(&obj),
        None => Err(MessageError::new("Data must be a JSON object")),
    }
}

fn parse_subscribe(data: &Object<'_, '_>) -> Result<ClientMessage, MessageError> {
    let channel = str_field(data, "channel").ok_or_else(|| MessageError::new("Missing channel"))?;
    let auth = str_field(data, "auth").filter(|a| !a.is_empty());
    let channel_data = match data.get("channel_data") {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_owned(),
            None => encode_value(v),
        }),
    };
    Ok(ClientMessage::Subscribe {
        channel,
        auth,
        channel_data,
    })
}

fn parse_unsubscribe(data: &Object<'_, '_>) -> Result<ClientMessage, MessageError> {
    let channel = str_field(data, "channel").ok_or_else(|| MessageError::new("Missing channel"))?;
    Ok(ClientMessage::Unsubscribe { channel })
}

fn parse_signin(data: &Object<'_, '_>) -> Result<ClientMessage, MessageError> {
    let auth = str_field(data, "auth").ok_or_else(|| MessageError::new("Missing auth"))?;
    let user_data =
        str_field(data, "user_data").ok_or_else(|| MessageError::new("Missing user_data"))?;
    Ok(ClientMessage::Signin { auth, user_data })
}

/// Parses one client text payload.
///
/// Errors (each a [`MessageError`] with a human-readable message): not valid UTF-8 / JSON, too
/// deeply nested, not an object, `event` missing or not a string, a subscribe / unsubscribe /
/// sign-in without its fields, a client event without a string `channel`. The payload is
/// untrusted: this never panics.
pub fn parse_client_message(payload: &[u8]) -> Result<ClientMessage, MessageError> {
    // simd-json parses in place, so it needs its own mutable copy.
    let mut buf = payload.to_vec();
    let tape = parse_json(&mut buf)?;
    let msg = tape
        .as_value()
        .as_object()
        .ok_or_else(|| MessageError::new("Message must be a JSON object"))?;
    let event = msg
        .get("event")
        .and_then(|v| v.into_string())
        .ok_or_else(|| MessageError::new("Missing event name"))?;

    match event {
        "pusher:ping" => Ok(ClientMessage::Ping),
        "pusher:pong" => Ok(ClientMessage::Pong),
        "pusher:subscribe" => with_data(&msg, parse_subscribe),
        "pusher:unsubscribe" => with_data(&msg, parse_unsubscribe),
        "pusher:signin" => with_data(&msg, parse_signin),
        e if e.starts_with("client-") => {
            let channel =
                str_field(&msg, "channel").ok_or_else(|| MessageError::new("Missing channel"))?;
            let data = msg
                .get("data")
                .map_or_else(|| "null".to_owned(), encode_value);
            Ok(ClientMessage::ClientEvent {
                event: e.to_owned(),
                channel,
                data,
            })
        }
        e if e.starts_with("pusher:") || e.starts_with("pusher_internal:") => {
            Ok(ClientMessage::Reserved {
                event: e.to_owned(),
            })
        }
        e => Ok(ClientMessage::Unknown {
            event: e.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(s: &str) -> Result<ClientMessage, MessageError> {
        parse_client_message(s.as_bytes())
    }

    fn err(s: &[u8]) -> String {
        parse_client_message(s).unwrap_err().message
    }

    #[test]
    fn ping_and_pong() {
        assert_eq!(
            parse(r#"{"event":"pusher:ping","data":{}}"#),
            Ok(ClientMessage::Ping)
        );
        assert_eq!(parse(r#"{"event":"pusher:ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            parse(r#"{"event":"pusher:pong","data":"{}"}"#),
            Ok(ClientMessage::Pong)
        );
    }

    #[test]
    fn pusher_js_public_subscribe_with_empty_auth() {
        let frame = r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}"#;
        assert_eq!(
            parse(frame),
            Ok(ClientMessage::Subscribe {
                channel: "my-channel".into(),
                auth: None,
                channel_data: None
            })
        );
    }

    #[test]
    fn pusher_js_presence_subscribe_keeps_channel_data_verbatim() {
        // pusher-js sends channel_data as the string the auth endpoint returned.
        let frame = r#"{"event":"pusher:subscribe","data":{"auth":"app-key:abc","channel_data":"{\"user_id\":\"u1\",\"user_info\":{\"name\":\"A\"}}","channel":"presence-foo"}}"#;
        assert_eq!(
            parse(frame),
            Ok(ClientMessage::Subscribe {
                channel: "presence-foo".into(),
                auth: Some("app-key:abc".into()),
                channel_data: Some(r#"{"user_id":"u1","user_info":{"name":"A"}}"#.into()),
            })
        );
    }

    #[test]
    fn subscribe_data_as_a_json_string() {
        let frame = r#"{"event":"pusher:subscribe","data":"{\"channel\":\"private-a\",\"auth\":\"k:s\",\"channel_data\":null}"}"#;
        assert_eq!(
            parse(frame),
            Ok(ClientMessage::Subscribe {
                channel: "private-a".into(),
                auth: Some("k:s".into()),
                channel_data: None
            })
        );
        // Escaped characters inside the embedded JSON survive both levels of unescaping.
        let frame = r#"{"event":"pusher:subscribe","data":"{\"channel\":\"a\",\"channel_data\":\"{\\\"user_id\\\":\\\"\\u00e9\\\"}\"}"}"#;
        match parse(frame).unwrap() {
            ClientMessage::Subscribe { channel_data, .. } => {
                assert_eq!(channel_data.as_deref(), Some(r#"{"user_id":"é"}"#));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subscribe_with_object_channel_data_is_reencoded() {
        let frame = r#"{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":7,"channel_data":{"user_id":1}}}"#;
        assert_eq!(
            parse(frame),
            Ok(ClientMessage::Subscribe {
                channel: "presence-a".into(),
                auth: None,
                channel_data: Some(r#"{"user_id":1}"#.into())
            })
        );
    }

    #[test]
    fn subscribe_errors() {
        assert_eq!(err(br#"{"event":"pusher:subscribe"}"#), "Missing data");
        assert_eq!(
            err(br#"{"event":"pusher:subscribe","data":{}}"#),
            "Missing channel"
        );
        assert_eq!(
            err(br#"{"event":"pusher:subscribe","data":{"channel":5}}"#),
            "Missing channel"
        );
        assert_eq!(
            err(br#"{"event":"pusher:subscribe","data":"nope"}"#),
            "Invalid JSON"
        );
        assert_eq!(
            err(br#"{"event":"pusher:subscribe","data":"[1]"}"#),
            "Data must be a JSON object"
        );
        assert_eq!(
            err(br#"{"event":"pusher:subscribe","data":[1]}"#),
            "Missing data"
        );
    }

    #[test]
    fn unsubscribe() {
        assert_eq!(
            parse(r#"{"event":"pusher:unsubscribe","data":{"channel":"my-channel"}}"#),
            Ok(ClientMessage::Unsubscribe {
                channel: "my-channel".into()
            })
        );
        assert_eq!(
            parse(r#"{"event":"pusher:unsubscribe","data":"{\"channel\":\"c\"}"}"#),
            Ok(ClientMessage::Unsubscribe {
                channel: "c".into()
            })
        );
        assert_eq!(
            err(br#"{"event":"pusher:unsubscribe","data":{}}"#),
            "Missing channel"
        );
    }

    #[test]
    fn signin() {
        let frame = r#"{"event":"pusher:signin","data":{"auth":"app-key:00","user_data":"{\"id\":\"u1\"}"}}"#;
        assert_eq!(
            parse(frame),
            Ok(ClientMessage::Signin {
                auth: "app-key:00".into(),
                user_data: r#"{"id":"u1"}"#.into()
            })
        );
        assert_eq!(
            err(br#"{"event":"pusher:signin","data":{"user_data":"{}"}}"#),
            "Missing auth"
        );
        assert_eq!(
            err(br#"{"event":"pusher:signin","data":{"auth":"a"}}"#),
            "Missing user_data"
        );
    }

    #[test]
    fn client_events() {
        let frame = r#"{"event":"client-typing","data":{"a":1,"b":[true,null,"x\"y"]},"channel":"private-chat"}"#;
        assert_eq!(
            parse(frame),
            Ok(ClientMessage::ClientEvent {
                event: "client-typing".into(),
                channel: "private-chat".into(),
                data: r#"{"a":1,"b":[true,null,"x\"y"]}"#.into(),
            })
        );
        let frame = r#"{"event":"client-x","data":"text\n","channel":"presence-a"}"#;
        match parse(frame).unwrap() {
            ClientMessage::ClientEvent { data, .. } => assert_eq!(data, r#""text\n""#),
            other => panic!("{other:?}"),
        }
        let frame = r#"{"event":"client-x","channel":"presence-a"}"#;
        match parse(frame).unwrap() {
            ClientMessage::ClientEvent { data, .. } => assert_eq!(data, "null"),
            other => panic!("{other:?}"),
        }
        let frame = r#"{"event":"client-x","data":[1.5,-2,1e300,18446744073709551615]}"#;
        assert_eq!(err(frame.as_bytes()), "Missing channel");
        let frame = r#"{"event":"client-x","channel":"private-a","data":[1.5,-2,1e300,18446744073709551615,0.1]}"#;
        match parse(frame).unwrap() {
            ClientMessage::ClientEvent { data, .. } => {
                let v: serde_json::Value = serde_json::from_str(&data).unwrap();
                assert_eq!(
                    v,
                    serde_json::json!([1.5, -2, 1e300, 18446744073709551615u64, 0.1])
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// Found by the `pusher_client` fuzz target (its seed
    /// `fuzz/corpus/pusher_client/client_event_33_members_repeated_names`): an object of more
    /// than 32 members was relayed in hash order, repeated names moved about, so relaying the
    /// relayed text gave yet another text. Members keep the order they were sent in.
    #[test]
    fn relayed_objects_keep_their_member_order() {
        let data = concat!(
            r#"{"rrnbt":"u24e9\n","n":-1.5e-7,"bigUUnrueid":42.0,"user_infor_inid":42.0,"#,
            r#""uei":42.0,"sd":42.0,"eer":420,"er_id":42.0,"useid":42,"er_id":42.0,"used":420,"#,
            r#""er_id":42.0,"useid":42.0,"er_id":42.0,"us$id":42.0,"ud":42.0,"#,
            r#""usinfoshresueid":42.0,"user_id":42.0,"uei":42.0,"useid":42.0,"#,
            r#""eer_infoused":420,"er_id":42.0,"useid":42.0,"er_id":42.0,"us$id":42.0,"#,
            r#""ud":42.0,"user":42.0,"user_infor_inid":42.0,"uei":42.0,"useid":42.0,"#,
            r#""r_info_iueid":42.0,"r_iueid":42.0,"userUU":18446744073709551615}"#
        );
        let relay = |data: &str| {
            let frame =
                format!(r#"{{"event":"client-typing","channel":"private-a","data":{data}}}"#);
            match parse(&frame).unwrap() {
                ClientMessage::ClientEvent { data, .. } => data,
                other => panic!("{other:?}"),
            }
        };
        let once = relay(data);
        assert_eq!(once, data);
        assert_eq!(relay(&once), once);
        // Many distinct members, nested too: the order as sent.
        let members: Vec<String> = (0..40)
            .map(|i| format!(r#""k{i}":[{i},{{"z":1,"a":2}}]"#))
            .collect();
        let data = format!("{{{}}}", members.join(","));
        assert_eq!(relay(&data), data);
        // A subscription's channel_data sent as an object is re-encoded the same way.
        let frame = format!(
            r#"{{"event":"pusher:subscribe","data":{{"channel":"presence-a","channel_data":{data}}}}}"#
        );
        match parse(&frame).unwrap() {
            ClientMessage::Subscribe { channel_data, .. } => {
                assert_eq!(channel_data.as_deref(), Some(data.as_str()))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reserved_and_unknown_events() {
        assert_eq!(
            parse(r#"{"event":"pusher:connection_established","data":"{}"}"#),
            Ok(ClientMessage::Reserved {
                event: "pusher:connection_established".into()
            })
        );
        assert_eq!(
            parse(r#"{"event":"pusher_internal:member_added","channel":"presence-a"}"#),
            Ok(ClientMessage::Reserved {
                event: "pusher_internal:member_added".into()
            })
        );
        assert_eq!(
            parse(r#"{"event":"my-event","channel":"a","data":{}}"#),
            Ok(ClientMessage::Unknown {
                event: "my-event".into()
            })
        );
        // "client" without the dash is not a client event.
        assert_eq!(
            parse(r#"{"event":"clientx","channel":"a"}"#),
            Ok(ClientMessage::Unknown {
                event: "clientx".into()
            })
        );
    }

    #[test]
    fn envelope_errors() {
        assert_eq!(err(b""), "Invalid JSON");
        assert_eq!(err(b"   "), "Invalid JSON");
        assert_eq!(err(b"{"), "Invalid JSON");
        assert_eq!(err(b"{\"event\":\"pusher:ping\"} trailing"), "Invalid JSON");
        assert_eq!(err(b"[1,2]"), "Message must be a JSON object");
        assert_eq!(err(b"\"pusher:ping\""), "Message must be a JSON object");
        assert_eq!(err(b"null"), "Message must be a JSON object");
        assert_eq!(err(b"{}"), "Missing event name");
        assert_eq!(err(br#"{"event":null}"#), "Missing event name");
        assert_eq!(err(br#"{"event":1}"#), "Missing event name");
        assert_eq!(err(br#"{"event":["pusher:ping"]}"#), "Missing event name");
        assert_eq!(err(b"{\"event\":\"pusher:ping\xff\"}"), "Invalid JSON");
        assert_eq!(err(b"\xff\xfe{}"), "Invalid JSON");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let n = 200_000;
        let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(err(deep.as_bytes()), "JSON nested too deeply");
        let deep_obj = format!(
            r#"{{"event":"client-a","channel":"private-a","data":{}1{}}}"#,
            r#"{"a":"#.repeat(n),
            "}".repeat(n)
        );
        assert_eq!(err(deep_obj.as_bytes()), "JSON nested too deeply");
        // Unbalanced opening brackets only.
        assert_eq!(err("{".repeat(n).as_bytes()), "JSON nested too deeply");
        // Inside an embedded data string too.
        let inner = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let frame = format!(r#"{{"event":"pusher:subscribe","data":"{inner}"}}"#);
        assert_eq!(err(frame.as_bytes()), "JSON nested too deeply");
        // Brackets inside strings do not count.
        let frame = format!(
            r#"{{"event":"client-a","channel":"private-a","data":"{}\"{}"}}"#,
            "[".repeat(1000),
            "{".repeat(1000)
        );
        assert!(parse(&frame).is_ok());
        // The limit itself is accepted.
        let ok = format!(
            r#"{{"event":"client-a","channel":"private-a","data":{}{}}}"#,
            "[".repeat(MAX_JSON_DEPTH - 1),
            "]".repeat(MAX_JSON_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn huge_numbers_never_panic_and_stay_valid_json() {
        for num in [
            "1e400",
            "-1e400",
            "123456789012345678901234567890",
            "-123456789012345678901234567890",
            "1e-400",
            "0.000000000000000000000000000000000000001",
            &"9".repeat(5000),
        ] {
            let frame = format!(r#"{{"event":"client-a","channel":"private-a","data":{num}}}"#);
            if let Ok(ClientMessage::ClientEvent { data, .. }) = parse(&frame) {
                assert!(
                    serde_json::from_str::<serde_json::Value>(&data).is_ok(),
                    "{num}: {data}"
                );
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let samples: &[&[u8]] = &[
            b"\0",
            b"\xc3\x28",
            b"{\"event\":\"client-a\",\"channel\":\"\xed\xa0\x80\"}",
            br#"{"event":"\ud800"}"#,
            br#"{"event":"client-a","channel":"c","data":"\u0000"}"#,
            br#"{"event":"pusher:subscribe","data":"\""}"#,
            br#"{"event":"pusher:subscribe","data":"{\"channel\":"}"#,
            br#"{"event":"pusher:subscribe","data":{"channel":"a","channel_data":[[[]]]}}"#,
            br#"{"event":"a","event":"b"}"#,
            b"{\"event\":\"pusher:ping\",",
            b"[[[[[[",
            b"]]]]]]",
            b"\"\\",
            b"-",
            b"1e",
            b"tru",
        ];
        for s in samples {
            let _ = parse_client_message(s);
        }
        // Every prefix of a real frame.
        let frame = br#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\"user_id\":1}","channel":"presence-a"}}"#;
        for i in 0..=frame.len() {
            let _ = parse_client_message(&frame[..i]);
        }
        // A cheap deterministic byte soup.
        const ALPHABET: &[u8] = b"{}[]\":,\\ae0-.1xpusher:client-\xff";
        let mut x: u32 = 0x1234_5678;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as usize
        };
        for _ in 0..5000 {
            let len = next() % 64;
            let bytes: Vec<u8> = (0..len)
                .map(|_| ALPHABET[next() % ALPHABET.len()])
                .collect();
            let _ = parse_client_message(&bytes);
        }
    }
}
