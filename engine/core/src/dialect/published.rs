//! A published message in no dialect's framing, and its framing for each dialect, encoded the
//! first time a subscriber of that dialect is met and then shared (`Bytes`) by every subscriber
//! on every shard: one encode per message per dialect, never one per subscriber.
//!
//! The data is JSON text kept byte for byte: a Pusher REST `data` string stays a string, a
//! Socket.IO `message` object stays an object (pusher-js takes object `data` in an event).

use std::sync::OnceLock;

use bytes::Bytes;
use simd_json::prelude::*;

use super::kind::Dialect;
use crate::channels_json::message as channels_json;
use crate::pusher::client_message::{encode_value, parse_json};
use crate::pusher::json_escape::push_json_string;
use crate::pusher::server_message;
use crate::socketio::packet;
use crate::ws::frame;

/// What was published, in no dialect's framing.
#[derive(Debug, Clone)]
pub enum Content {
    /// A Pusher protocol frame no other dialect has a framing for (`member_added`,
    /// `subscription_count`): only Pusher subscribers receive it.
    PusherOnly,
    /// A Pusher channel event from another node, known by its frame alone: the other framings
    /// are derived from the frame's `event` and `data` when a subscriber first needs them
    /// (never for `pusher:` / `pusher_internal:` events).
    PusherFrame,
    /// An event as Pusher publishes one (REST, client events): the event name as a JSON string
    /// literal and the data's JSON text, slices of the Pusher frame (no copy).
    Event {
        /// `"name"`, quotes included.
        name_json: Bytes,
        /// The data, any JSON value.
        data_json: Bytes,
    },
    /// A Socket.IO event as Ekko emits it to a room: `[event, args]`. Pusher subscribers get
    /// `{"event":event,"channel":c,"data":<pusher_data_json>}`.
    SocketIo {
        /// `message`, `presence` or `status`.
        event: &'static str,
        /// The event's argument, a JSON object.
        args_json: Bytes,
        /// What a Pusher subscriber gets as `data` (a publish's `message`, else `args_json`).
        pusher_data_json: Bytes,
    },
    /// A channels JSON `publish`: `{"type":"message","senderId":s,"data":data}` to the
    /// dialect's subscribers; Pusher subscribers get `{"event":"message","channel":c,"data":d}`,
    /// Socket.IO ones `["message",{"channel":c,"message":d,"uuid":s}]`.
    ChannelsJson {
        /// The publisher's sender id (of its current join).
        sender_id: Box<str>,
        /// The data, any JSON value.
        data_json: Bytes,
    },
    /// A WebSocket-over-HTTP `PUBLISH_TEXT`: the raw text to the dialect's subscribers (data
    /// a channel function turned into something else than a string: its JSON text); Pusher
    /// subscribers get `{"event":"message","channel":c,"data":"<text>"}`, Socket.IO ones
    /// `["message",{"channel":c,"message":"<text>"}]`, channels JSON ones
    /// `{"type":"message","senderId":"server","data":"<text>"}`.
    Slip {
        /// The text as a JSON string literal (what every other dialect carries as data), or
        /// any JSON value a channel function answered.
        data_json: Bytes,
    },
}

/// One message to one channel of one app, with its framings as they are needed.
#[derive(Debug)]
pub struct Published {
    content: Content,
    /// The WebSocket frame of each dialect, by [`Dialect::index`].
    frames: [OnceLock<Bytes>; Dialect::COUNT],
}

impl Published {
    /// A ready Pusher frame that only Pusher subscribers receive.
    pub fn pusher_only(frame: Bytes) -> Self {
        Self::with_pusher_frame(Content::PusherOnly, frame)
    }

    /// A Pusher channel event `{"event","channel","data"[,"user_id"]}`: its Pusher frame
    /// encoded now (the publisher needs it for the cache and the other nodes), the other
    /// framings built from its parts when first needed.
    pub fn pusher_event(
        event: &str,
        channel: &str,
        data_json: &str,
        user_id: Option<&str>,
    ) -> Self {
        let parts = server_message::channel_event_parts(event, channel, data_json, user_id);
        let frame = frame::encode_text(parts.text.as_bytes());
        let header = frame.len() - parts.text.len();
        let content = Content::Event {
            name_json: frame.slice(header + parts.name.start..header + parts.name.end),
            data_json: frame.slice(header + parts.data.start..header + parts.data.end),
        };
        Self::with_pusher_frame(content, frame)
    }

    /// An event from another node: its Pusher frame and, when it was published in the
    /// Socket.IO dialect, its Socket.IO event (`event` must be one the dialect emits).
    pub fn from_remote(frame: Bytes, socketio: Option<(&'static str, Bytes)>) -> Self {
        let content = match socketio {
            Some((event, args_json)) => Content::SocketIo {
                event,
                args_json,
                // Unused: the Pusher frame came with the event.
                pusher_data_json: Bytes::new(),
            },
            None => Content::PusherFrame,
        };
        Self::with_pusher_frame(content, frame)
    }

    /// A channels JSON publish from another node: its Pusher frame and its sender id; its
    /// data is the frame's (an unreadable frame is delivered as a Pusher frame alone).
    pub fn from_remote_channels_json(frame: Bytes, sender_id: &str) -> Self {
        let content = match event_parts_of_frame(&frame) {
            Some((_, data_json)) => Content::ChannelsJson {
                sender_id: Box::from(sender_id),
                data_json: Bytes::from(data_json),
            },
            None => Content::PusherFrame,
        };
        Self::with_pusher_frame(content, frame)
    }

    /// A WebSocket-over-HTTP `PUBLISH_TEXT` from another node: its Pusher frame; its data is
    /// the frame's (an unreadable frame is delivered as a Pusher frame alone).
    pub fn from_remote_slip(frame: Bytes) -> Self {
        let content = match event_parts_of_frame(&frame) {
            Some((_, data_json)) => Content::Slip {
                data_json: Bytes::from(data_json),
            },
            None => Content::PusherFrame,
        };
        Self::with_pusher_frame(content, frame)
    }

    /// A Socket.IO event to a room; each framing is encoded when first needed.
    pub fn socketio_event(
        event: &'static str,
        args_json: String,
        pusher_data_json: Option<String>,
    ) -> Self {
        let args_json = Bytes::from(args_json);
        let pusher_data_json = pusher_data_json.map_or_else(|| args_json.clone(), Bytes::from);
        Published {
            content: Content::SocketIo {
                event,
                args_json,
                pusher_data_json,
            },
            frames: Default::default(),
        }
    }

    /// A channels JSON `publish` by `sender_id`; each framing is encoded when first needed.
    pub fn channels_json_event(sender_id: &str, data_json: String) -> Self {
        Published {
            content: Content::ChannelsJson {
                sender_id: Box::from(sender_id),
                data_json: Bytes::from(data_json),
            },
            frames: Default::default(),
        }
    }

    /// A WebSocket-over-HTTP `PUBLISH_TEXT` of `text`; each framing is encoded when first
    /// needed.
    pub fn slip_text(text: &str) -> Self {
        Self::slip_data(slip_data_json(text))
    }

    /// A WebSocket-over-HTTP publish whose data is `data_json` (the text as a JSON string, or
    /// what the channel's functions made of it).
    pub fn slip_data(data_json: String) -> Self {
        Published {
            content: Content::Slip {
                data_json: Bytes::from(data_json),
            },
            frames: Default::default(),
        }
    }

    fn with_pusher_frame(content: Content, frame: Bytes) -> Self {
        let published = Published {
            content,
            frames: Default::default(),
        };
        // A fresh cell: the set cannot fail.
        let _ = published.frames[Dialect::Pusher.index()].set(frame);
        published
    }

    /// What was published.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// The frame for `dialect`'s subscribers of `channel` of the app `app_id`, encoded on the
    /// first call for that dialect; None when the message has no framing in that dialect.
    pub fn frame(&self, dialect: Dialect, app_id: &str, channel: &str) -> Option<&Bytes> {
        let cell = &self.frames[dialect.index()];
        if let Some(frame) = cell.get() {
            return Some(frame);
        }
        let text = self.encode(dialect, app_id, channel)?;
        Some(cell.get_or_init(|| frame::encode_text(text.as_bytes())))
    }

    /// The Pusher frame (every message has one: Pusher is every channel's first dialect).
    pub fn pusher_frame(&self, app_id: &str, channel: &str) -> Bytes {
        self.frame(Dialect::Pusher, app_id, channel)
            .cloned()
            .unwrap_or_default()
    }

    /// The JSON text of the message in `dialect`'s framing.
    fn encode(&self, dialect: Dialect, app_id: &str, channel: &str) -> Option<String> {
        match (dialect, &self.content) {
            // Relay rooms are not channels.
            (Dialect::Relay, _) => None,
            (Dialect::Pusher, Content::PusherOnly)
            | (Dialect::Pusher, Content::PusherFrame)
            | (Dialect::Pusher, Content::Event { .. }) => {
                None // set at creation
            }
            (
                Dialect::Pusher,
                Content::SocketIo {
                    event,
                    pusher_data_json,
                    ..
                },
            ) => Some(server_message::channel_event(
                event,
                channel,
                as_text(pusher_data_json),
                None,
            )),
            (Dialect::Pusher, Content::ChannelsJson { data_json, .. })
            | (Dialect::Pusher, Content::Slip { data_json }) => Some(
                server_message::channel_event("message", channel, as_text(data_json), None),
            ),
            (Dialect::SocketIo, Content::PusherOnly) => None,
            (Dialect::SocketIo, Content::PusherFrame) => {
                let frame = self.frames[Dialect::Pusher.index()].get()?;
                let (name_json, data_json) = event_parts_of_frame(frame)?;
                Some(socketio_message(app_id, channel, &name_json, &data_json))
            }
            (
                Dialect::SocketIo,
                Content::Event {
                    name_json,
                    data_json,
                },
            ) => Some(socketio_message(
                app_id,
                channel,
                as_text(name_json),
                as_text(data_json),
            )),
            (
                Dialect::SocketIo,
                Content::SocketIo {
                    event, args_json, ..
                },
            ) => Some(packet::event(&namespace(app_id), event, as_text(args_json))),
            (
                Dialect::SocketIo,
                Content::ChannelsJson {
                    sender_id,
                    data_json,
                },
            ) => {
                let args = socketio_publish_args(channel, as_text(data_json), sender_id);
                Some(packet::event(&namespace(app_id), "message", &args))
            }
            (Dialect::SocketIo, Content::Slip { data_json }) => {
                let args = socketio_text_args(channel, as_text(data_json));
                Some(packet::event(&namespace(app_id), "message", &args))
            }
            (Dialect::ChannelsJson, Content::PusherOnly) => None,
            (Dialect::ChannelsJson, Content::PusherFrame) => {
                let frame = self.frames[Dialect::Pusher.index()].get()?;
                let (name_json, data_json) = event_parts_of_frame(frame)?;
                Some(channels_json::message(
                    SERVER_SENDER,
                    &data_json,
                    Some(&name_json),
                ))
            }
            (
                Dialect::ChannelsJson,
                Content::Event {
                    name_json,
                    data_json,
                },
            ) => Some(channels_json::message(
                SERVER_SENDER,
                as_text(data_json),
                Some(as_text(name_json)),
            )),
            (
                Dialect::ChannelsJson,
                Content::SocketIo {
                    event, args_json, ..
                },
            ) => {
                // Only a room's messages (a publish); presence and status stay Socket.IO's.
                if *event != "message" {
                    return None;
                }
                let (sender, message_json) = publish_parts(as_text(args_json))?;
                Some(channels_json::message(&sender, &message_json, None))
            }
            (
                Dialect::ChannelsJson,
                Content::ChannelsJson {
                    sender_id,
                    data_json,
                },
            ) => Some(channels_json::message(sender_id, as_text(data_json), None)),
            (Dialect::ChannelsJson, Content::Slip { data_json }) => Some(channels_json::message(
                SERVER_SENDER,
                as_text(data_json),
                None,
            )),
            (Dialect::Slip, Content::PusherOnly) => None,
            (Dialect::Slip, Content::PusherFrame) => {
                let frame = self.frames[Dialect::Pusher.index()].get()?;
                let (_, data_json) = event_parts_of_frame(frame)?;
                Some(raw_text(&data_json))
            }
            (Dialect::Slip, Content::Event { data_json, .. })
            | (Dialect::Slip, Content::ChannelsJson { data_json, .. })
            | (Dialect::Slip, Content::Slip { data_json }) => Some(raw_text(as_text(data_json))),
            (
                Dialect::Slip,
                Content::SocketIo {
                    event, args_json, ..
                },
            ) => {
                // Only a room's messages (a publish); presence and status stay Socket.IO's.
                if *event != "message" {
                    return None;
                }
                let (_, message_json) = publish_parts(as_text(args_json))?;
                Some(raw_text(&message_json))
            }
        }
    }
}

/// A WebSocket-over-HTTP text as the data of a published message: a JSON string.
pub fn slip_data_json(text: &str) -> String {
    let mut data_json = String::with_capacity(text.len() + 2);
    push_json_string(&mut data_json, text);
    data_json
}

/// What a WebSocket-over-HTTP subscriber gets for data `data_json`: the string itself when the
/// data is a string, else the data's JSON text.
fn raw_text(data_json: &str) -> String {
    if data_json.starts_with('"') {
        if let Ok(text) = serde_json::from_str::<String>(data_json) {
            return text;
        }
    }
    data_json.to_owned()
}

/// `{"channel":c,"message":text}`: a WebSocket-over-HTTP publish as Socket.IO subscribers get
/// it (no sender: the backend published it).
fn socketio_text_args(channel: &str, data_json: &str) -> String {
    let mut args = String::with_capacity(30 + channel.len() + data_json.len());
    args.push_str("{\"channel\":");
    push_json_string(&mut args, channel);
    args.push_str(",\"message\":");
    args.push_str(data_json);
    args.push('}');
    args
}

/// The sender id of a message the server published (REST, another dialect without one).
const SERVER_SENDER: &str = "server";

/// `{"channel":c,"message":data,"uuid":sender}`: a channels JSON publish as Socket.IO
/// subscribers get it.
fn socketio_publish_args(channel: &str, data_json: &str, sender_id: &str) -> String {
    let mut args = String::with_capacity(40 + channel.len() + data_json.len() + sender_id.len());
    args.push_str("{\"channel\":");
    push_json_string(&mut args, channel);
    args.push_str(",\"message\":");
    args.push_str(data_json);
    args.push_str(",\"uuid\":");
    push_json_string(&mut args, sender_id);
    args.push('}');
    args
}

/// The publisher's `uuid` (or the server's sender id) and the `message` JSON of a Socket.IO
/// publish's arguments.
fn publish_parts(args_json: &str) -> Option<(String, String)> {
    let mut buf = args_json.as_bytes().to_vec();
    let tape = parse_json(&mut buf).ok()?;
    let value = tape.as_value();
    let object = value.as_object()?;
    let sender = object
        .get("uuid")
        .and_then(|u| u.into_string())
        .unwrap_or(SERVER_SENDER)
        .to_owned();
    let message = object
        .get("message")
        .map_or_else(|| "null".to_owned(), encode_value);
    Some((sender, message))
}

/// A Pusher event as Socket.IO subscribers get it:
/// `["message",{"channel":c,"message":data,"event":name}]`.
fn socketio_message(app_id: &str, channel: &str, name_json: &str, data_json: &str) -> String {
    let mut args = String::with_capacity(40 + channel.len() + data_json.len() + name_json.len());
    args.push_str("{\"channel\":");
    push_json_string(&mut args, channel);
    args.push_str(",\"message\":");
    args.push_str(data_json);
    args.push_str(",\"event\":");
    args.push_str(name_json);
    args.push('}');
    packet::event(&namespace(app_id), "message", &args)
}

/// The event name (as a JSON string literal) and the data's JSON text of a Pusher channel event
/// frame this server encoded; None for protocol events and anything that is not one.
fn event_parts_of_frame(frame: &[u8]) -> Option<(String, String)> {
    let header = match frame.get(1)? & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let mut payload = frame.get(header..)?.to_vec();
    let tape = parse_json(&mut payload).ok()?;
    let value = tape.as_value();
    let object = value.as_object()?;
    let name = object.get("event")?.into_string()?;
    if name.starts_with("pusher:") || name.starts_with("pusher_internal:") {
        return None;
    }
    let mut name_json = String::with_capacity(name.len() + 2);
    push_json_string(&mut name_json, name);
    let data_json = object
        .get("data")
        .map_or_else(|| "null".to_owned(), encode_value);
    Some((name_json, data_json))
}

/// The Socket.IO namespace of an app.
fn namespace(app_id: &str) -> String {
    let mut out = String::with_capacity(1 + app_id.len());
    out.push('/');
    out.push_str(app_id);
    out
}

/// JSON text held as bytes. Every part was cut from a `String` at character boundaries, so
/// this never fails; an empty text would be invalid JSON and is never produced.
fn as_text(bytes: &Bytes) -> &str {
    std::str::from_utf8(bytes).unwrap_or("null")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    fn text(frame: &Bytes) -> String {
        // Unmasked server frames: a 2-byte head below 126 bytes of payload.
        String::from_utf8(frame[2..].to_vec()).unwrap()
    }

    fn socketio_args(frame: &Bytes, namespace: &str) -> Value {
        let text = text(frame);
        let body = text.strip_prefix(&format!("42{namespace},")).unwrap();
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn a_pusher_event_reaches_socketio_with_its_data_unchanged() {
        let published = Published::pusher_event("greet", "news", "\"hi \\\"you\\\"\"", None);
        let pusher = published.frame(Dialect::Pusher, "1", "news").unwrap();
        let v: Value = serde_json::from_str(&text(pusher)).unwrap();
        assert_eq!(
            v,
            json!({"event":"greet","channel":"news","data":"hi \"you\""})
        );
        let sio = published.frame(Dialect::SocketIo, "1", "news").unwrap();
        assert_eq!(
            socketio_args(sio, "/1"),
            json!(["message", {"channel":"news","message":"hi \"you\"","event":"greet"}])
        );
    }

    #[test]
    fn each_framing_is_encoded_once_and_shared() {
        let published = Published::pusher_event("e", "c", "{\"a\":1}", None);
        let first = published
            .frame(Dialect::SocketIo, "1", "c")
            .unwrap()
            .clone();
        let second = published
            .frame(Dialect::SocketIo, "1", "c")
            .unwrap()
            .clone();
        assert_eq!(first.as_ptr(), second.as_ptr());
    }

    #[test]
    fn a_socketio_publish_reaches_pusher_with_its_message_as_data() {
        let args = r#"{"channel":"news","message":{"b":2,"a":1},"uuid":"u1"}"#;
        let published =
            Published::socketio_event("message", args.to_string(), Some(r#"{"b":2,"a":1}"#.into()));
        let pusher = published.frame(Dialect::Pusher, "1", "news").unwrap();
        assert_eq!(
            text(pusher),
            r#"{"event":"message","channel":"news","data":{"b":2,"a":1}}"#
        );
        let sio = published.frame(Dialect::SocketIo, "1", "news").unwrap();
        assert_eq!(text(sio), format!("42/1,[\"message\",{args}]"));
    }

    #[test]
    fn an_event_from_another_node_gets_its_socketio_framing_from_its_frame() {
        let local = Published::pusher_event("greet", "news", "{\"z\":1,\"a\":\"x\"}", Some("u"));
        let frame = local.pusher_frame("1", "news");
        let remote = Published::from_remote(frame.clone(), None);
        assert_eq!(remote.pusher_frame("1", "news"), frame);
        assert_eq!(
            remote.frame(Dialect::SocketIo, "1", "news"),
            local.frame(Dialect::SocketIo, "1", "news")
        );
        let internal =
            text_frame_of(r#"{"event":"pusher_internal:member_added","channel":"c","data":"{}"}"#);
        assert!(Published::from_remote(internal, None)
            .frame(Dialect::SocketIo, "1", "c")
            .is_none());
        let args = Bytes::from_static(br#"{"channel":"c","message":2}"#);
        let sio = Published::from_remote(text_frame_of("{}"), Some(("message", args)));
        assert_eq!(
            text(sio.frame(Dialect::SocketIo, "1", "c").unwrap()),
            r#"42/1,["message",{"channel":"c","message":2}]"#
        );
    }

    #[test]
    fn channels_json_publishes_and_the_other_dialects_map_as_the_table_says() {
        let cj = Published::channels_json_event("S1", r#"{"b":1,"a":2}"#.into());
        assert_eq!(
            text(cj.frame(Dialect::ChannelsJson, "1", "c").unwrap()),
            r#"{"type":"message","senderId":"S1","data":{"b":1,"a":2}}"#
        );
        assert_eq!(
            text(cj.frame(Dialect::Pusher, "1", "c").unwrap()),
            r#"{"event":"message","channel":"c","data":{"b":1,"a":2}}"#
        );
        assert_eq!(
            socketio_args(cj.frame(Dialect::SocketIo, "1", "c").unwrap(), "/1"),
            json!(["message", {"channel":"c","message":{"b":1,"a":2},"uuid":"S1"}])
        );
        let rest = Published::pusher_event("greet", "c", "\"hi\"", None);
        assert_eq!(
            text(rest.frame(Dialect::ChannelsJson, "1", "c").unwrap()),
            r#"{"type":"message","senderId":"server","data":"hi","event":"greet"}"#
        );
        let args = r#"{"channel":"c","message":[1],"uuid":"u7"}"#;
        let sio = Published::socketio_event("message", args.into(), Some("[1]".into()));
        assert_eq!(
            text(sio.frame(Dialect::ChannelsJson, "1", "c").unwrap()),
            r#"{"type":"message","senderId":"u7","data":[1]}"#
        );
        let status = Published::socketio_event("status", "{}".into(), None);
        assert!(status.frame(Dialect::ChannelsJson, "1", "c").is_none());
        let remote = Published::from_remote(rest.pusher_frame("1", "c"), None);
        assert_eq!(
            remote.frame(Dialect::ChannelsJson, "1", "c"),
            rest.frame(Dialect::ChannelsJson, "1", "c")
        );
    }

    fn text_frame_of(text: &str) -> Bytes {
        frame::encode_text(text.as_bytes())
    }

    #[test]
    fn protocol_frames_have_no_socketio_framing() {
        let published = Published::pusher_only(Bytes::from_static(b"\x81\x02{}"));
        assert!(published.frame(Dialect::SocketIo, "1", "c").is_none());
        assert_eq!(&published.pusher_frame("1", "c")[..], b"\x81\x02{}");
    }

    #[test]
    fn a_slip_publish_and_the_other_dialects_map_as_the_table_says() {
        let published = Published::slip_text("hi \"you\"");
        let pusher = published.frame(Dialect::Pusher, "1", "news").unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text(pusher)).unwrap(),
            json!({"event":"message","channel":"news","data":"hi \"you\""})
        );
        let sio = published.frame(Dialect::SocketIo, "1", "news").unwrap();
        assert_eq!(
            socketio_args(sio, "/1"),
            json!(["message", {"channel":"news","message":"hi \"you\""}])
        );
        let cj = published.frame(Dialect::ChannelsJson, "1", "news").unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text(cj)).unwrap(),
            json!({"type":"message","senderId":"server","data":"hi \"you\""})
        );
        let slip = published.frame(Dialect::Slip, "1", "news").unwrap();
        assert_eq!(text(slip), "hi \"you\"");
    }

    #[test]
    fn slip_subscribers_get_string_data_raw_and_other_data_as_json() {
        let string = Published::pusher_event("e", "c", "\"plain \\u00e9\"", None);
        assert_eq!(
            text(string.frame(Dialect::Slip, "1", "c").unwrap()),
            "plain é"
        );
        let object = Published::pusher_event("e", "c", "{\"a\":1}", None);
        assert_eq!(
            text(object.frame(Dialect::Slip, "1", "c").unwrap()),
            "{\"a\":1}"
        );
        let cj = Published::channels_json_event("s1", "[1,2]".into());
        assert_eq!(text(cj.frame(Dialect::Slip, "1", "c").unwrap()), "[1,2]");
        let args = r#"{"channel":"c","message":"yo","uuid":"u1"}"#;
        let sio = Published::socketio_event("message", args.into(), Some("\"yo\"".into()));
        assert_eq!(text(sio.frame(Dialect::Slip, "1", "c").unwrap()), "yo");
        let status = Published::socketio_event("status", "{}".into(), None);
        assert!(status.frame(Dialect::Slip, "1", "c").is_none());
        let remote_frame = text_frame_of(r#"{"event":"e","channel":"c","data":"far"}"#);
        let remote = Published::from_remote(remote_frame, None);
        assert_eq!(text(remote.frame(Dialect::Slip, "1", "c").unwrap()), "far");
        let member = text_frame_of(r#"{"event":"pusher_internal:member_added","channel":"c"}"#);
        assert!(Published::pusher_only(member)
            .frame(Dialect::Slip, "1", "c")
            .is_none());
    }

    #[test]
    fn a_slip_publish_from_another_node_frames_as_it_did_on_its_own() {
        let local = Published::slip_text("far \"away\"");
        let frame = local.pusher_frame("1", "news");
        let remote = Published::from_remote_slip(frame);
        for dialect in Dialect::ALL {
            assert_eq!(
                remote.frame(dialect, "1", "news"),
                local.frame(dialect, "1", "news"),
                "{dialect:?}"
            );
        }
    }
}
