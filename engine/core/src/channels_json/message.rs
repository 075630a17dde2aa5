//! The channels JSON protocol's messages: what a client sends (`{"type":"join","channelId":…}`,
//! `{"type":"publish","data":…}`, `{"type":"ping","data"?:…}`), what the server answers, and
//! the 21-character sender id a connection gets at each join. Data is JSON text kept byte for
//! byte (members in the order sent).

use simd_json::prelude::*;

use crate::pusher::client_message::{encode_value, parse_json};
use crate::pusher::json_escape::push_json_string;

/// What a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// `join`: `channelId` when it is a non-empty string.
    Join(Option<String>),
    /// `publish`: the data's JSON text (`null` when absent).
    Publish(String),
    /// `ping`: the data's JSON text, when there is one.
    Ping(Option<String>),
    /// Another `type`, or none.
    Unknown,
}

/// The text is not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJson;

/// Parses one text message.
pub fn parse(text: &[u8]) -> Result<ClientMessage, NotJson> {
    let mut buf = text.to_vec();
    let tape = parse_json(&mut buf).map_err(|_| NotJson)?;
    let value = tape.as_value();
    let object = value.as_object().ok_or(NotJson)?;
    let data = object.get("data");
    Ok(match object.get("type").and_then(|t| t.into_string()) {
        Some("join") => ClientMessage::Join(
            object
                .get("channelId")
                .and_then(|c| c.into_string())
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
        ),
        Some("publish") => {
            ClientMessage::Publish(data.map_or_else(|| "null".to_owned(), encode_value))
        }
        Some("ping") => ClientMessage::Ping(data.map(encode_value)),
        _ => ClientMessage::Unknown,
    })
}

/// `{"type":"joinSuccess"}`.
pub const JOIN_SUCCESS: &str = r#"{"type":"joinSuccess"}"#;
/// `{"type":"joinFailure"}`.
pub const JOIN_FAILURE: &str = r#"{"type":"joinFailure"}"#;
/// `{"type":"publishSuccess"}`.
pub const PUBLISH_SUCCESS: &str = r#"{"type":"publishSuccess"}"#;

/// `{"type":"publishFailure","data":reason}`.
pub fn publish_failure(reason: &str) -> String {
    typed_with_text("publishFailure", reason)
}

/// `{"type":"error","data":reason}`: a message the server does not take (ringcast's answer;
/// the original dropped the connection's message silently or crashed).
pub fn error(reason: &str) -> String {
    typed_with_text("error", reason)
}

/// `{"type":"pong"[,"data":data]}`: `data` echoed as sent, omitted when the ping had none.
pub fn pong(data_json: Option<&str>) -> String {
    match data_json {
        Some(data) => format!("{{\"type\":\"pong\",\"data\":{data}}}"),
        None => r#"{"type":"pong"}"#.to_owned(),
    }
}

/// `{"type":"message","senderId":s,"data":data[,"event":name]}`; `name_json` is a JSON string
/// literal (a Pusher event's name), absent for the dialect's own publishes.
pub fn message(sender_id: &str, data_json: &str, name_json: Option<&str>) -> String {
    let mut out = String::with_capacity(48 + sender_id.len() + data_json.len());
    out.push_str("{\"type\":\"message\",\"senderId\":");
    push_json_string(&mut out, sender_id);
    out.push_str(",\"data\":");
    out.push_str(data_json);
    if let Some(name) = name_json {
        out.push_str(",\"event\":");
        out.push_str(name);
    }
    out.push('}');
    out
}

fn typed_with_text(kind: &str, text: &str) -> String {
    let mut out = String::with_capacity(32 + text.len());
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push_str("\",\"data\":");
    push_json_string(&mut out, text);
    out.push('}');
    out
}

/// Characters of a sender id, as nanoid's alphabet (the original used nanoid's 21).
const SENDER_ID_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
/// Length of a sender id.
pub const SENDER_ID_LEN: usize = 21;

/// A sender id from 128 bits the caller drew (6 bits a character: 21 of them use 126).
pub fn sender_id(bits: u128) -> String {
    (0..SENDER_ID_LEN)
        .map(|i| char::from(SENDER_ID_ALPHABET[((bits >> (6 * i)) & 63) as usize]))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_seeds_messages_parse() {
        assert_eq!(
            parse(br#"{"type":"join","channelId":"room-1"}"#),
            Ok(ClientMessage::Join(Some("room-1".into())))
        );
        for bad in [
            &br#"{"type":"join"}"#[..],
            br#"{"type":"join","channelId":""}"#,
            br#"{"type":"join","channelId":7}"#,
        ] {
            assert_eq!(parse(bad), Ok(ClientMessage::Join(None)));
        }
        assert_eq!(
            parse(br#"{"type":"publish","data":{"z":1,"a":[true]}}"#),
            Ok(ClientMessage::Publish(r#"{"z":1,"a":[true]}"#.into()))
        );
        assert_eq!(
            parse(br#"{"type":"publish"}"#),
            Ok(ClientMessage::Publish("null".into()))
        );
        assert_eq!(
            parse(br#"{"type":"ping","data":"x"}"#),
            Ok(ClientMessage::Ping(Some("\"x\"".into())))
        );
        assert_eq!(parse(br#"{"type":"ping"}"#), Ok(ClientMessage::Ping(None)));
        assert_eq!(parse(br#"{"type":"dance"}"#), Ok(ClientMessage::Unknown));
        assert_eq!(parse(br#"{"data":1}"#), Ok(ClientMessage::Unknown));
        assert_eq!(parse(b"[1]"), Err(NotJson));
        assert_eq!(parse(b"{nope"), Err(NotJson));
    }

    #[test]
    fn server_messages_are_the_seeds() {
        assert_eq!(pong(None), r#"{"type":"pong"}"#);
        assert_eq!(pong(Some("{\"t\":1}")), r#"{"type":"pong","data":{"t":1}}"#);
        assert_eq!(
            publish_failure("Not \"joined\""),
            r#"{"type":"publishFailure","data":"Not \"joined\""}"#
        );
        assert_eq!(
            message("abc", "[1,2]", None),
            r#"{"type":"message","senderId":"abc","data":[1,2]}"#
        );
        assert_eq!(
            message("server", "\"hi\"", Some("\"greet\"")),
            r#"{"type":"message","senderId":"server","data":"hi","event":"greet"}"#
        );
    }

    #[test]
    fn sender_ids_are_21_url_safe_characters() {
        let a = sender_id(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(a.len(), SENDER_ID_LEN);
        assert!(a.bytes().all(|b| SENDER_ID_ALPHABET.contains(&b)));
        assert_ne!(a, sender_id(1));
    }
}
