//! The relay (the PHP connection layer's protocol, `docs/relay.md`): rooms of one "server"
//! connection and many "client" connections exchanging JSON data, on `/relay/{app_key}` with
//! `?room=` naming the room. Rooms are their own space (not channels). Stateless pieces only;
//! the rooms live on their owner shard (`shard/relay_rooms.rs`), the connections on theirs
//! (`shard/relay.rs`).
//!
//! # Layout
//! - `message`: a connection's messages parsed, the room's messages encoded.

pub mod message;

use crate::http::request::RequestHead;
use crate::limits::RELAY_ROOM_NAME_BYTES_MAX;

/// Where the dialect is mounted: `GET /relay/{app_key}` + upgrade.
pub const MOUNT: &str = "/relay/";

/// The app key of a path on the mount (`/relay/{app_key}`), if it is one.
pub fn app_key_of(path: &str) -> Option<&str> {
    path.strip_prefix(MOUNT)
        .filter(|key| !key.is_empty() && !key.contains('/'))
}

/// The room an upgrade asks for: its `room` query parameter, percent-decoded (none or empty:
/// the app's default room, `""`); an error when it is longer than
/// [`RELAY_ROOM_NAME_BYTES_MAX`].
pub fn room_of(head: &RequestHead) -> Result<String, &'static str> {
    let room = head.query_param("room").unwrap_or_default();
    if room.len() > RELAY_ROOM_NAME_BYTES_MAX {
        return Err("the room name is too long");
    }
    Ok(room)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::http::request::{parse_head, ParseOutcome};

    fn head(target: &str) -> RequestHead {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        match parse_head(raw.as_bytes(), 8192).unwrap() {
            ParseOutcome::Complete { head, .. } => head,
            ParseOutcome::Partial => unreachable!(),
        }
    }

    #[test]
    fn the_mount_names_one_app_key_and_the_query_a_room() {
        assert_eq!(app_key_of("/relay/k1"), Some("k1"));
        assert_eq!(app_key_of("/relay/"), None);
        assert_eq!(app_key_of("/relay/k1/x"), None);
        assert_eq!(room_of(&head("/relay/k1")).unwrap(), "");
        assert_eq!(
            room_of(&head("/relay/k1?room=lobby%201")).unwrap(),
            "lobby 1"
        );
        let long = format!(
            "/relay/k1?room={}",
            "r".repeat(RELAY_ROOM_NAME_BYTES_MAX + 1)
        );
        assert!(room_of(&head(&long)).is_err());
    }
}
