//! [`Publication`]: a message held by the channel's owner shard while its pipeline runs, in no
//! dialect's framing: what its publisher sent, the message the functions transform (a Pusher
//! event's `data`, a Socket.IO publish's `message`), and how it becomes a [`Published`] with
//! the pipeline's result (or unchanged, when the pipeline failed).

use crate::dialect::Published;
use crate::pusher::client_message::{encode_value, parse_json};
use crate::pusher::json_escape::push_json_string;

/// A message on its way through a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    /// A Pusher event (REST or a client event).
    Pusher {
        /// The event name.
        event: String,
        /// The data's JSON text (a REST `data` is a JSON string).
        data_json: String,
        /// The publisher's user id (client events on presence channels).
        user_id: Option<String>,
        /// The socket that must not receive it.
        except_socket_id: Option<String>,
    },
    /// A channels JSON `publish`.
    ChannelsJson {
        /// The publisher's sender id.
        sender_id: String,
        /// The data's JSON text.
        data_json: String,
    },
    /// A Socket.IO `publish`.
    SocketIo {
        /// The whole argument `{channel, message, …}`, members in the order sent.
        args_json: String,
        /// Its `message` as JSON text.
        message_json: String,
    },
    /// A WebSocket-over-HTTP `PUBLISH_TEXT`.
    Slip {
        /// The text as a JSON string literal.
        data_json: String,
    },
}

impl Publication {
    /// What the first function gets.
    pub fn message_json(&self) -> &str {
        match self {
            Publication::Pusher { data_json, .. } => data_json,
            Publication::SocketIo { message_json, .. } => message_json,
            Publication::ChannelsJson { data_json, .. } => data_json,
            Publication::Slip { data_json } => data_json,
        }
    }

    /// Bytes it holds, for the shard's bound on held messages.
    pub fn held_bytes(&self) -> usize {
        match self {
            Publication::Pusher {
                event,
                data_json,
                user_id,
                except_socket_id,
            } => {
                event.len()
                    + data_json.len()
                    + user_id.as_ref().map_or(0, String::len)
                    + except_socket_id.as_ref().map_or(0, String::len)
            }
            Publication::SocketIo {
                args_json,
                message_json,
            } => args_json.len() + message_json.len(),
            Publication::ChannelsJson {
                sender_id,
                data_json,
            } => sender_id.len() + data_json.len(),
            Publication::Slip { data_json } => data_json.len(),
        }
    }

    /// The socket that must not receive it.
    pub fn except_socket_id(&self) -> Option<&str> {
        match self {
            Publication::Pusher {
                except_socket_id, ..
            } => except_socket_id.as_deref(),
            Publication::SocketIo { .. }
            | Publication::ChannelsJson { .. }
            | Publication::Slip { .. } => None,
        }
    }

    /// The message to deliver on `channel`: with `result` (checked JSON text) as its message,
    /// or as it was published when `result` is None.
    pub fn into_published(self, channel: &str, result: Option<&str>) -> Published {
        match self {
            Publication::Pusher {
                event,
                data_json,
                user_id,
                ..
            } => Published::pusher_event(
                &event,
                channel,
                result.unwrap_or(&data_json),
                user_id.as_deref(),
            ),
            Publication::SocketIo {
                args_json,
                message_json,
            } => match result {
                None => Published::socketio_event("message", args_json, Some(message_json)),
                Some(result) => Published::socketio_event(
                    "message",
                    with_message(&args_json, result),
                    Some(result.to_owned()),
                ),
            },
            Publication::ChannelsJson {
                sender_id,
                data_json,
            } => {
                Published::channels_json_event(&sender_id, result.map_or(data_json, str::to_owned))
            }
            Publication::Slip { data_json } => {
                Published::slip_data(result.map_or(data_json, str::to_owned))
            }
        }
    }
}

/// A function's answer as the next message: `Ok(None)` keeps the message (empty or `null`, as
/// Ekko kept an empty result), `Ok(Some)` the JSON text, `Err` for anything that is not JSON.
pub fn checked_result(answer: &[u8]) -> Result<Option<String>, &'static str> {
    let text = std::str::from_utf8(answer)
        .map_err(|_| "the function answered with invalid UTF-8")?
        .trim();
    if text.is_empty() || text == "null" {
        return Ok(None);
    }
    let mut buf = text.as_bytes().to_vec();
    parse_json(&mut buf).map_err(|_| "the function answered with invalid JSON")?;
    Ok(Some(text.to_owned()))
}

/// `args` (a JSON object this server encoded) with its `message` member replaced by `message`
/// (appended when absent); the other members stay as and where they were.
fn with_message(args: &str, message: &str) -> String {
    let mut buf = args.as_bytes().to_vec();
    let Ok(tape) = parse_json(&mut buf) else {
        return args.to_owned(); // never: the shard encoded it
    };
    let value = tape.as_value();
    let Some(object) = value.as_object() else {
        return args.to_owned();
    };
    let mut out = String::with_capacity(args.len() + message.len());
    out.push('{');
    let mut replaced = false;
    for (name, member) in object.iter() {
        if out.len() > 1 {
            out.push(',');
        }
        push_json_string(&mut out, name);
        out.push(':');
        if name == "message" && !replaced {
            out.push_str(message);
            replaced = true;
        } else {
            out.push_str(&encode_value(member));
        }
    }
    if !replaced {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str("\"message\":");
        out.push_str(message);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::dialect::Dialect;

    fn text(frame: &bytes::Bytes) -> String {
        String::from_utf8(frame[2..].to_vec()).unwrap()
    }

    #[test]
    fn results_are_checked_json_and_empty_keeps_the_message() {
        assert_eq!(checked_result(b""), Ok(None));
        assert_eq!(checked_result(b" null\n"), Ok(None));
        assert_eq!(checked_result(b"\"HI\""), Ok(Some("\"HI\"".into())));
        assert_eq!(checked_result(b"{\"a\":1}"), Ok(Some("{\"a\":1}".into())));
        assert!(checked_result(b"{nope").is_err());
        assert!(checked_result(b"\xff").is_err());
    }

    #[test]
    fn a_socketio_result_replaces_the_message_in_place() {
        let p = Publication::SocketIo {
            args_json: r#"{"channel":"c","message":"hi","uuid":"u"}"#.into(),
            message_json: "\"hi\"".into(),
        };
        assert_eq!(p.message_json(), "\"hi\"");
        let published = p.into_published("c", Some("\"HI\""));
        let sio = published.frame(Dialect::SocketIo, "1", "c").unwrap();
        assert_eq!(
            text(sio),
            r#"42/1,["message",{"channel":"c","message":"HI","uuid":"u"}]"#
        );
        let pusher = published.frame(Dialect::Pusher, "1", "c").unwrap();
        assert_eq!(
            text(pusher),
            r#"{"event":"message","channel":"c","data":"HI"}"#
        );
    }

    #[test]
    fn a_pusher_event_keeps_its_name_and_exclusion() {
        let p = Publication::Pusher {
            event: "greet".into(),
            data_json: "\"hi\"".into(),
            user_id: None,
            except_socket_id: Some("1.2".into()),
        };
        assert_eq!(p.except_socket_id(), Some("1.2"));
        assert!(p.held_bytes() >= 4 + 5);
        let unchanged = p.clone().into_published("c", None);
        assert_eq!(
            text(&unchanged.pusher_frame("1", "c")),
            r#"{"event":"greet","channel":"c","data":"hi"}"#
        );
        let changed = p.into_published("c", Some("{\"n\":1}"));
        assert_eq!(
            text(&changed.pusher_frame("1", "c")),
            r#"{"event":"greet","channel":"c","data":{"n":1}}"#
        );
    }
}
