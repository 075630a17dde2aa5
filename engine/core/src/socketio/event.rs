//! The events an Ekko client emits, parsed from a Socket.IO EVENT's JSON array
//! (`["name", payload]`): `subscribe`, `unsubscribe` and `publish` (`docs/socketio.md`).
//! Everything else is named, so the shard can tell the client which event it does not serve.

use simd_json::prelude::*;
use simd_json::tape::Value;

use crate::limits::SUBSCRIPTIONS_PER_CONNECTION_MAX;
use crate::pusher::client_message::{encode_value, parse_json};

/// One client event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `subscribe {channels:[…], withPresence?, uuid?}`.
    Subscribe {
        /// Channels to join, in the order given.
        channels: Vec<String>,
        /// Also join each channel's `<channel>_presence` room and announce the client there.
        with_presence: bool,
        /// The client's id for presence events (else the one it connected with).
        uuid: Option<String>,
    },
    /// `unsubscribe {channels:[…]}`; a missing list is an empty one (Ekko's server crashed).
    Unsubscribe {
        /// Channels to leave.
        channels: Vec<String>,
    },
    /// `publish {channel, message, …}`: relayed whole to the channel.
    Publish {
        /// The channel.
        channel: String,
        /// The whole payload as JSON text, members in the order sent.
        args_json: String,
        /// Its `message` as JSON text (`null` when absent): a Pusher subscriber's `data`.
        message_json: String,
    },
    /// Any other event name.
    Unknown {
        /// The name.
        name: String,
    },
}

/// Why an event was refused; the text goes back to the client in an `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventError(pub &'static str);

/// Parses an EVENT's JSON array.
pub fn parse(payload: &str) -> Result<ClientEvent, EventError> {
    let mut buf = payload.as_bytes().to_vec();
    let tape = parse_json(&mut buf).map_err(|_| EventError("An event must be a JSON array"))?;
    let value = tape.as_value();
    let items = value
        .as_array()
        .ok_or(EventError("An event must be a JSON array"))?;
    let mut items = items.iter();
    let name = items
        .next()
        .and_then(|v| v.into_string())
        .ok_or(EventError("An event is an array starting with its name"))?;
    let argument = items.next();
    match name {
        "subscribe" => {
            let argument = argument
                .filter(|a| a.as_object().is_some())
                .ok_or(EventError("subscribe takes an object"))?;
            Ok(ClientEvent::Subscribe {
                channels: channels(argument)?,
                with_presence: member(argument, "withPresence")
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                uuid: member(argument, "uuid")
                    .and_then(|v| v.into_string())
                    .map(str::to_owned),
            })
        }
        "unsubscribe" => Ok(ClientEvent::Unsubscribe {
            channels: match argument {
                Some(argument) if member(argument, "channels").is_some() => channels(argument)?,
                _ => Vec::new(),
            },
        }),
        "publish" => {
            let argument = argument
                .filter(|a| a.as_object().is_some())
                .ok_or(EventError("publish takes an object"))?;
            let channel = member(argument, "channel")
                .and_then(|v| v.into_string())
                .ok_or(EventError("publish needs a channel"))?
                .to_owned();
            let message_json =
                member(argument, "message").map_or_else(|| "null".to_owned(), encode_value);
            Ok(ClientEvent::Publish {
                channel,
                args_json: encode_value(argument),
                message_json,
            })
        }
        other => Ok(ClientEvent::Unknown {
            name: other.to_owned(),
        }),
    }
}

fn member<'t, 'i>(object: Value<'t, 'i>, name: &str) -> Option<Value<'t, 'i>> {
    object.as_object()?.get(name)
}

/// `channels`: an array of strings, at most one connection's worth of subscriptions.
fn channels(argument: Value<'_, '_>) -> Result<Vec<String>, EventError> {
    let list = member(argument, "channels")
        .and_then(|v| v.as_array())
        .ok_or(EventError("channels must be an array of channel names"))?;
    if list.len() > SUBSCRIPTIONS_PER_CONNECTION_MAX {
        return Err(EventError("Too many channels in one event"));
    }
    list.iter()
        .map(|v| {
            v.into_string()
                .map(str::to_owned)
                .ok_or(EventError("channels must be an array of channel names"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn subscribe_as_the_ekko_client_sends_it() {
        let event = parse(r#"["subscribe",{"channels":["a","b"],"withPresence":true,"uuid":"u"}]"#)
            .unwrap();
        assert_eq!(
            event,
            ClientEvent::Subscribe {
                channels: vec!["a".into(), "b".into()],
                with_presence: true,
                uuid: Some("u".into()),
            }
        );
    }

    #[test]
    fn unsubscribe_without_channels_is_an_empty_one() {
        assert_eq!(
            parse(r#"["unsubscribe",{"uuid":"u"}]"#).unwrap(),
            ClientEvent::Unsubscribe { channels: vec![] }
        );
        assert_eq!(
            parse(r#"["unsubscribe"]"#).unwrap(),
            ClientEvent::Unsubscribe { channels: vec![] }
        );
    }

    #[test]
    fn publish_keeps_the_payload_and_its_order() {
        let event =
            parse(r#"["publish",{"channel":"c","message":{"z":1,"a":[2]},"uuid":"u","x":null}]"#)
                .unwrap();
        assert_eq!(
            event,
            ClientEvent::Publish {
                channel: "c".into(),
                args_json: r#"{"channel":"c","message":{"z":1,"a":[2]},"uuid":"u","x":null}"#
                    .into(),
                message_json: r#"{"z":1,"a":[2]}"#.into(),
            }
        );
    }

    #[test]
    fn bad_shapes_are_refused_with_a_reason() {
        for bad in [
            r#"{"subscribe":1}"#,
            r#"[1,2]"#,
            r#"["subscribe"]"#,
            r#"["subscribe",{"channels":"a"}]"#,
            r#"["subscribe",{"channels":[1]}]"#,
            r#"["publish",{"message":1}]"#,
            r#"["publish",[]]"#,
            "[",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let many = format!(
            r#"["subscribe",{{"channels":[{}]}}]"#,
            vec!["\"a\""; SUBSCRIPTIONS_PER_CONNECTION_MAX + 1].join(",")
        );
        assert_eq!(
            parse(&many),
            Err(EventError("Too many channels in one event"))
        );
    }

    #[test]
    fn other_names_are_named() {
        assert_eq!(
            parse(r#"["hello",1]"#).unwrap(),
            ClientEvent::Unknown {
                name: "hello".into()
            }
        );
    }
}
