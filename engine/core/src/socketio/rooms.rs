//! Ekko's rooms in ringcast's one channel space: which channel names a Socket.IO client may
//! join or publish to, the `<channel>_presence` rooms, the `admin` room, and the JSON of the
//! `presence` and `status` events the server emits to them.

use crate::pusher::channel::{self, ChannelKind};
use crate::pusher::json_escape::push_json_string;

/// What `withPresence` appends to a channel's name for its presence room.
pub const PRESENCE_SUFFIX: &str = "_presence";

/// The admin room as the client names it in a `subscribe`.
pub const ADMIN_ROOM: &str = "admin";

/// The admin room's channel. `#` is refused in every dialect's channel names, so no client
/// of any dialect can subscribe to it or publish to it: only the server emits there.
pub const ADMIN_CHANNEL: &str = "#socketio-admin";

/// The events the server emits to rooms, by name (an event from another node names its own):
/// None for any other name.
pub fn server_event_name(name: &str) -> Option<&'static str> {
    ["message", "presence", "status"]
        .into_iter()
        .find(|known| *known == name)
}

/// Whether a Socket.IO client may join or publish to `name`: a valid public channel name.
/// `private-`, `presence-` and `cache-` channels keep Pusher's rules (a signature per channel,
/// members, a replayed last event), which a Socket.IO client has no way to follow.
pub fn check_channel(name: &str, max_len: usize) -> Result<(), &'static str> {
    let class = channel::classify(name, max_len).map_err(|err| err.message())?;
    if class.kind != ChannelKind::Public || class.cache {
        return Err(
            "Socket.IO clients may use public channels only (not private-, presence- or cache-)",
        );
    }
    Ok(())
}

/// The presence room of a channel.
pub fn presence_room(channel: &str) -> String {
    let mut name = String::with_capacity(channel.len() + PRESENCE_SUFFIX.len());
    name.push_str(channel);
    name.push_str(PRESENCE_SUFFIX);
    name
}

/// `{"eventName":"joined"|"left","channel":c,"presenceChannel":c_presence,"uuid":u}`.
pub fn presence_args(joined: bool, channel: &str, uuid: Option<&str>) -> String {
    let mut out = String::with_capacity(80 + 2 * channel.len());
    out.push_str(if joined {
        "{\"eventName\":\"joined\",\"channel\":"
    } else {
        "{\"eventName\":\"left\",\"channel\":"
    });
    push_json_string(&mut out, channel);
    out.push_str(",\"presenceChannel\":");
    push_json_string(&mut out, &presence_room(channel));
    out.push_str(",\"uuid\":");
    push_optional(&mut out, uuid);
    out.push('}');
    out
}

/// What happened, for the admin room's `status` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusEvent {
    /// A client joined the app's namespace.
    Connection,
    /// A client left the namespace (or its connection went away).
    Disconnect,
    /// A client joined a channel.
    Joined,
    /// A client left a channel.
    Left,
}

impl StatusEvent {
    fn name(self) -> &'static str {
        match self {
            StatusEvent::Connection => "connection",
            StatusEvent::Disconnect => "disconnect",
            StatusEvent::Joined => "joined",
            StatusEvent::Left => "left",
        }
    }
}

/// `{"uuid":u,"admin":bool,"app":id,"event":…[,"channel":c]}`.
pub fn status_args(
    event: StatusEvent,
    uuid: Option<&str>,
    admin: bool,
    app_id: &str,
    channel: Option<&str>,
) -> String {
    let mut out = String::with_capacity(80 + app_id.len());
    out.push_str("{\"uuid\":");
    push_optional(&mut out, uuid);
    out.push_str(if admin {
        ",\"admin\":true,\"app\":"
    } else {
        ",\"admin\":false,\"app\":"
    });
    push_json_string(&mut out, app_id);
    out.push_str(",\"event\":\"");
    out.push_str(event.name());
    out.push('"');
    if let Some(channel) = channel {
        out.push_str(",\"channel\":");
        push_json_string(&mut out, channel);
    }
    out.push('}');
    out
}

/// `{"uuid":null,"app":id,"event":"function_error","channel":c,"error":reason}`: a message of
/// the channel went out unchanged because its functions failed.
pub fn function_error_args(app_id: &str, channel: &str, reason: &str) -> String {
    let mut out = String::with_capacity(80 + app_id.len() + channel.len() + reason.len());
    out.push_str("{\"uuid\":null,\"app\":");
    push_json_string(&mut out, app_id);
    out.push_str(",\"event\":\"function_error\",\"channel\":");
    push_json_string(&mut out, channel);
    out.push_str(",\"error\":");
    push_json_string(&mut out, reason);
    out.push('}');
    out
}

fn push_optional(out: &mut String, text: Option<&str>) {
    match text {
        Some(text) => push_json_string(out, text),
        None => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn only_public_names_are_rooms() {
        assert!(check_channel("chat", 200).is_ok());
        assert!(check_channel("chat_presence", 200).is_ok());
        for refused in [
            "private-a",
            "presence-a",
            "cache-a",
            "private-encrypted-a",
            "a b",
            "",
            ADMIN_CHANNEL,
        ] {
            assert!(check_channel(refused, 200).is_err(), "{refused}");
        }
    }

    #[test]
    fn presence_and_status_are_json_objects() {
        let v: Value = serde_json::from_str(&presence_args(true, "c\"1", Some("u"))).unwrap();
        assert_eq!(
            v,
            json!({"eventName":"joined","channel":"c\"1","presenceChannel":"c\"1_presence","uuid":"u"})
        );
        let v: Value =
            serde_json::from_str(&status_args(StatusEvent::Left, None, true, "7", Some("c")))
                .unwrap();
        assert_eq!(
            v,
            json!({"uuid":null,"admin":true,"app":"7","event":"left","channel":"c"})
        );
    }
}
