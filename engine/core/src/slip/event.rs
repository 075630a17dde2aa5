//! What goes to the backend and what comes back, as SLIP Sockets defines them: the body of an
//! event request (`{"connectionId","metadata","events":[…]}` with one `OPEN`, `TEXT` or
//! `CLOSE` event), and the [`Command`]s of the backend's answer (`{"events":[…]}`) or of a
//! control request. A list with one unusable command is unusable as a whole, as the
//! original's schema check made it; nothing in it runs.

use serde::Deserialize;

use crate::http::request::RequestHead;
use crate::limits::SLIP_COMMANDS_PER_REQUEST_MAX;
use crate::pusher::json_escape::push_json_string;

/// One socket event for the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketEvent<'a> {
    /// The client asks to connect; the upgrade waits for the answer.
    Open,
    /// A text message from the client.
    Text(&'a str),
    /// The connection is gone (either side closed it).
    Close,
}

impl SocketEvent<'_> {
    /// The event's `type`, also the `event` label of its metrics.
    pub const fn kind(&self) -> &'static str {
        match self {
            SocketEvent::Open => "OPEN",
            SocketEvent::Text(_) => "TEXT",
            SocketEvent::Close => "CLOSE",
        }
    }
}

/// The body of one event request: `metadata` is the connection's metadata JSON (`null` when
/// there is none).
pub fn request_body(
    connection_id: &str,
    metadata_json: Option<&str>,
    event: SocketEvent,
) -> String {
    let data_len = match event {
        SocketEvent::Text(data) => data.len() + 16,
        _ => 0,
    };
    let mut body = String::with_capacity(
        80 + 2 * connection_id.len() + metadata_json.map_or(4, str::len) + data_len,
    );
    body.push_str("{\"connectionId\":");
    push_json_string(&mut body, connection_id);
    body.push_str(",\"metadata\":");
    body.push_str(metadata_json.unwrap_or("null"));
    body.push_str(",\"events\":[{\"type\":\"");
    body.push_str(event.kind());
    body.push_str("\",\"connectionId\":");
    push_json_string(&mut body, connection_id);
    if let SocketEvent::Text(data) = event {
        body.push_str(",\"data\":");
        push_json_string(&mut body, data);
    }
    body.push_str("}]}");
    body
}

/// The metadata of an open event: `{"headers":{name:value,…},"ip":ip|null}`, the upgrade
/// request's headers (names lower-cased, as HTTP/2 and API gateways give them; a repeated
/// header's values joined with `, `).
pub fn open_metadata(head: &RequestHead, ip: Option<&str>) -> String {
    let mut headers = serde_json::Map::new();
    for (name, value) in &head.headers {
        match headers.get_mut(name) {
            Some(serde_json::Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                headers.insert(name.clone(), serde_json::Value::from(value.as_str()));
            }
        }
    }
    let metadata = serde_json::json!({ "headers": headers, "ip": ip });
    metadata.to_string()
}

/// One thing the backend asks for. Which kinds a list may hold depends on where it came from
/// ([`parse_answer`], [`parse_control`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Complete the upgrade of the connection (only in the answer to its open event).
    Accept {
        /// The connection.
        connection_id: String,
    },
    /// Close the connection.
    Close {
        /// The connection.
        connection_id: String,
    },
    /// Send `data` to the connection as one text message, as is.
    Text {
        /// The connection.
        connection_id: String,
        /// The message.
        data: String,
    },
    /// Replace the connection's metadata (sent along with its later events).
    SetMetadata {
        /// The connection.
        connection_id: String,
        /// The metadata's JSON text (`null` clears it).
        metadata_json: String,
    },
    /// Put the connection in a channel.
    Subscribe {
        /// The connection.
        connection_id: String,
        /// The channel.
        channel: String,
    },
    /// Take the connection out of a channel.
    Unsubscribe {
        /// The connection.
        connection_id: String,
        /// The channel.
        channel: String,
    },
    /// Send `data` to every subscriber of the channel, in every dialect.
    PublishText {
        /// The channel.
        channel: String,
        /// The message.
        data: String,
    },
    /// Close every WebSocket-over-HTTP connection in the channel.
    CloseChannel {
        /// The channel.
        channel: String,
    },
    /// The original's wait for a just-accepted connection to become usable (control API only).
    /// Here a connection is usable as soon as it is accepted, so there is nothing to wait for.
    PollForConnection {
        /// The connection.
        connection_id: String,
    },
}

impl Command {
    /// The connection the command is about, if it is about one.
    pub fn connection_id(&self) -> Option<&str> {
        match self {
            Command::Accept { connection_id }
            | Command::Close { connection_id }
            | Command::Text { connection_id, .. }
            | Command::SetMetadata { connection_id, .. }
            | Command::Subscribe { connection_id, .. }
            | Command::Unsubscribe { connection_id, .. }
            | Command::PollForConnection { connection_id } => Some(connection_id),
            Command::PublishText { .. } | Command::CloseChannel { .. } => None,
        }
    }
}

impl Command {
    /// The command in the original's wire form.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Command::Accept { connection_id } => {
                json!({"type":"ACCEPT","connectionId":connection_id})
            }
            Command::Close { connection_id } => {
                json!({"type":"CLOSE","connectionId":connection_id})
            }
            Command::Text {
                connection_id,
                data,
            } => json!({"type":"TEXT","connectionId":connection_id,"data":data}),
            Command::SetMetadata {
                connection_id,
                metadata_json,
            } => {
                let metadata: serde_json::Value =
                    serde_json::from_str(metadata_json).unwrap_or(serde_json::Value::Null);
                json!({"type":"SET_METADATA","connectionId":connection_id,"metadata":metadata})
            }
            Command::Subscribe {
                connection_id,
                channel,
            } => json!({"type":"SUBSCRIBE","connectionId":connection_id,"channel":channel}),
            Command::Unsubscribe {
                connection_id,
                channel,
            } => json!({"type":"UNSUBSCRIBE","connectionId":connection_id,"channel":channel}),
            Command::PublishText { channel, data } => {
                json!({"type":"PUBLISH_TEXT","channelId":channel,"data":data})
            }
            Command::CloseChannel { channel } => {
                json!({"type":"CLOSE_CHANNEL","channelId":channel})
            }
            Command::PollForConnection { connection_id } => {
                json!({"type":"POLL_FOR_CONNECTION","connectionId":connection_id,"timeout":0})
            }
        }
    }
}

/// `{"events":[…]}` of `commands`, as [`parse_control`] reads it back (what a node hands the
/// other nodes: the commands for connections it does not hold).
pub fn encode_commands(commands: &[Command]) -> String {
    let events: Vec<serde_json::Value> = commands.iter().map(Command::to_json).collect();
    serde_json::json!({ "events": events }).to_string()
}

/// Why a list of commands is unusable (the whole list is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCommands(pub String);

/// The wire form of a command, as the original's schema has it (note `channel` for a
/// subscription and `channelId` for a channel command).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
enum Wire {
    Accept {
        #[serde(rename = "connectionId")]
        connection_id: String,
    },
    Close {
        #[serde(rename = "connectionId")]
        connection_id: String,
    },
    Text {
        #[serde(rename = "connectionId")]
        connection_id: String,
        data: String,
    },
    SetMetadata {
        #[serde(rename = "connectionId")]
        connection_id: String,
        metadata: Option<serde_json::Value>,
    },
    Subscribe {
        #[serde(rename = "connectionId")]
        connection_id: String,
        channel: String,
    },
    Unsubscribe {
        #[serde(rename = "connectionId")]
        connection_id: String,
        channel: String,
    },
    PublishText {
        #[serde(rename = "channelId")]
        channel_id: String,
        data: String,
    },
    CloseChannel {
        #[serde(rename = "channelId")]
        channel_id: String,
    },
    PollForConnection {
        #[serde(rename = "connectionId")]
        connection_id: String,
        #[allow(dead_code)] // the original's poll timeout: read, but there is no poll
        timeout: Option<f64>,
    },
}

#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow)]
    events: Vec<&'a serde_json::value::RawValue>,
}

impl Wire {
    fn into_command(self) -> Command {
        match self {
            Wire::Accept { connection_id } => Command::Accept { connection_id },
            Wire::Close { connection_id } => Command::Close { connection_id },
            Wire::Text {
                connection_id,
                data,
            } => Command::Text {
                connection_id,
                data,
            },
            Wire::SetMetadata {
                connection_id,
                metadata,
            } => Command::SetMetadata {
                connection_id,
                metadata_json: metadata.map_or_else(|| "null".to_owned(), |m| m.to_string()),
            },
            Wire::Subscribe {
                connection_id,
                channel,
            } => Command::Subscribe {
                connection_id,
                channel,
            },
            Wire::Unsubscribe {
                connection_id,
                channel,
            } => Command::Unsubscribe {
                connection_id,
                channel,
            },
            Wire::PublishText { channel_id, data } => Command::PublishText {
                channel: channel_id,
                data,
            },
            Wire::CloseChannel { channel_id } => Command::CloseChannel {
                channel: channel_id,
            },
            Wire::PollForConnection { connection_id, .. } => {
                Command::PollForConnection { connection_id }
            }
        }
    }
}

/// Parses `{"events":[…]}` into commands, refusing the kinds `allowed` says no to.
fn parse_list(
    body: &[u8],
    allowed: impl Fn(&Command) -> bool,
) -> Result<Vec<Command>, InvalidCommands> {
    let list: List = serde_json::from_slice(body)
        .map_err(|e| InvalidCommands(format!("not {{\"events\":[…]}}: {e}")))?;
    if list.events.len() > SLIP_COMMANDS_PER_REQUEST_MAX {
        return Err(InvalidCommands(format!(
            "{} events, more than {SLIP_COMMANDS_PER_REQUEST_MAX}",
            list.events.len()
        )));
    }
    let mut commands = Vec::with_capacity(list.events.len());
    for (index, raw) in list.events.iter().enumerate() {
        let wire: Wire = serde_json::from_str(raw.get())
            .map_err(|e| InvalidCommands(format!("event {index}: {e}")))?;
        let command = wire.into_command();
        if !allowed(&command) {
            return Err(InvalidCommands(format!(
                "event {index}: this kind is not allowed here"
            )));
        }
        commands.push(command);
    }
    Ok(commands)
}

/// The backend's answer to an event request. An empty body is an empty list (a backend with
/// nothing to say may answer `204`); `POLL_FOR_CONNECTION` is a control command only.
pub fn parse_answer(body: &[u8]) -> Result<Vec<Command>, InvalidCommands> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    parse_list(body, |c| !matches!(c, Command::PollForConnection { .. }))
}

/// A control request's body: every command but `ACCEPT` (a connection is accepted only in the
/// answer to its open event).
pub fn parse_control(body: &[u8]) -> Result<Vec<Command>, InvalidCommands> {
    parse_list(body, |c| !matches!(c, Command::Accept { .. }))
}

/// What the answer to an open event decides: accepted when the first command about this
/// connection that accepts or closes it is `ACCEPT`. The accepting command is taken out; the
/// others run after the upgrade, in order.
pub fn take_acceptance(commands: &mut Vec<Command>, connection_id: &str) -> bool {
    let decisive = commands.iter().position(|c| match c {
        Command::Accept { connection_id: id } | Command::Close { connection_id: id } => {
            id == connection_id
        }
        _ => false,
    });
    match decisive {
        Some(index) if matches!(commands[index], Command::Accept { .. }) => {
            commands.remove(index);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    fn value(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn event_requests_carry_the_connection_its_metadata_and_one_event() {
        let open = request_body("12.3", Some(r#"{"ip":null}"#), SocketEvent::Open);
        assert_eq!(
            value(&open),
            json!({"connectionId":"12.3","metadata":{"ip":null},
                   "events":[{"type":"OPEN","connectionId":"12.3"}]})
        );
        let text = request_body("12.3", None, SocketEvent::Text("hi \"you\"\n"));
        assert_eq!(
            value(&text),
            json!({"connectionId":"12.3","metadata":null,
                   "events":[{"type":"TEXT","connectionId":"12.3","data":"hi \"you\"\n"}]})
        );
        let close = request_body("12.3", None, SocketEvent::Close);
        assert_eq!(value(&close)["events"][0]["type"], "CLOSE");
    }

    #[test]
    fn open_metadata_holds_the_upgrade_headers_and_the_address() {
        let raw = b"GET /slip/k HTTP/1.1\r\nHost: a\r\nX-Tag: 1\r\nX-Tag: 2\r\n\r\n";
        let head = match crate::http::request::parse_head(raw, 8192).unwrap() {
            crate::http::request::ParseOutcome::Complete { head, .. } => head,
            _ => unreachable!(),
        };
        let metadata = value(&open_metadata(&head, Some("10.0.0.1")));
        assert_eq!(metadata["ip"], "10.0.0.1");
        assert_eq!(metadata["headers"]["host"], "a");
        assert_eq!(metadata["headers"]["x-tag"], "1, 2");
        assert_eq!(value(&open_metadata(&head, None))["ip"], Value::Null);
    }

    #[test]
    fn every_command_kind_of_the_original_is_read() {
        let body = json!({"events":[
            {"type":"ACCEPT","connectionId":"c"},
            {"type":"TEXT","connectionId":"c","data":"hello"},
            {"type":"SET_METADATA","connectionId":"c","metadata":{"user":7}},
            {"type":"SET_METADATA","connectionId":"c","metadata":null},
            {"type":"SUBSCRIBE","connectionId":"c","channel":"room"},
            {"type":"UNSUBSCRIBE","connectionId":"c","channel":"room"},
            {"type":"PUBLISH_TEXT","channelId":"room","data":"all"},
            {"type":"CLOSE_CHANNEL","channelId":"room"},
            {"type":"CLOSE","connectionId":"c"}
        ]})
        .to_string();
        let commands = parse_answer(body.as_bytes()).unwrap();
        assert_eq!(commands.len(), 9);
        assert_eq!(
            commands[2],
            Command::SetMetadata {
                connection_id: "c".into(),
                metadata_json: r#"{"user":7}"#.into()
            }
        );
        assert_eq!(
            commands[3],
            Command::SetMetadata {
                connection_id: "c".into(),
                metadata_json: "null".into()
            }
        );
        assert_eq!(
            commands[6],
            Command::PublishText {
                channel: "room".into(),
                data: "all".into()
            }
        );
        assert_eq!(commands[8].connection_id(), Some("c"));
        assert_eq!(commands[7].connection_id(), None);
    }

    #[test]
    fn one_bad_command_makes_the_whole_list_unusable() {
        for body in [
            &b"not json"[..],
            br#"{"events":{}}"#,
            br#"{"nope":[]}"#,
            br#"{"events":[{"type":"TEXT","connectionId":"c"}]}"#,
            br#"{"events":[{"type":"TEXT","connectionId":"c","data":5}]}"#,
            br#"{"events":[{"type":"SUBSCRIBE","connectionId":"c","channelId":"x"}]}"#,
            br#"{"events":[{"type":"ACCEPT","connectionId":"c"},{"type":"JUMP"}]}"#,
            br#"{"events":[{"type":"POLL_FOR_CONNECTION","connectionId":"c","timeout":1}]}"#,
        ] {
            assert!(
                parse_answer(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let many = json!({"events": vec![json!({"type":"CLOSE_CHANNEL","channelId":"x"}); 1001]});
        assert!(parse_answer(many.to_string().as_bytes()).is_err());
        assert_eq!(parse_answer(b"").unwrap(), Vec::new());
        assert_eq!(parse_answer(b" \n").unwrap(), Vec::new());
    }

    #[test]
    fn commands_read_back_what_they_encode() {
        let commands = vec![
            Command::Close {
                connection_id: "c".into(),
            },
            Command::Text {
                connection_id: "c".into(),
                data: "\"q\"".into(),
            },
            Command::SetMetadata {
                connection_id: "c".into(),
                metadata_json: r#"{"a":[1]}"#.into(),
            },
            Command::Subscribe {
                connection_id: "c".into(),
                channel: "x".into(),
            },
            Command::Unsubscribe {
                connection_id: "c".into(),
                channel: "x".into(),
            },
            Command::PublishText {
                channel: "x".into(),
                data: "d".into(),
            },
            Command::CloseChannel {
                channel: "x".into(),
            },
            Command::PollForConnection {
                connection_id: "c".into(),
            },
        ];
        let text = encode_commands(&commands);
        assert_eq!(parse_control(text.as_bytes()).unwrap(), commands);
    }

    #[test]
    fn control_requests_take_everything_but_accept() {
        let poll =
            br#"{"events":[{"type":"POLL_FOR_CONNECTION","connectionId":"c","timeout":1000}]}"#;
        assert_eq!(
            parse_control(poll).unwrap(),
            vec![Command::PollForConnection {
                connection_id: "c".into()
            }]
        );
        assert!(parse_control(br#"{"events":[{"type":"ACCEPT","connectionId":"c"}]}"#).is_err());
        assert!(parse_control(b"").is_err());
    }

    #[test]
    fn the_first_decision_about_the_connection_counts() {
        let accept = |id: &str| Command::Accept {
            connection_id: id.into(),
        };
        let close = |id: &str| Command::Close {
            connection_id: id.into(),
        };
        let text = Command::Text {
            connection_id: "c".into(),
            data: "x".into(),
        };
        let mut commands = vec![text.clone(), accept("c"), close("c")];
        assert!(take_acceptance(&mut commands, "c"));
        assert_eq!(commands, vec![text.clone(), close("c")]);
        let mut refused = vec![close("c"), accept("c")];
        assert!(!take_acceptance(&mut refused, "c"));
        let mut other = vec![accept("d")];
        assert!(!take_acceptance(&mut other, "c"));
        assert!(!take_acceptance(&mut Vec::new(), "c"));
    }
}
