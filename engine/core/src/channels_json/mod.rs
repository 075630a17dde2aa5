//! The channels JSON dialect (the Lambda channel server's protocol): one channel per
//! connection, `join` / `publish` / `ping` in, `joinSuccess` / `message` / `pong` and their
//! failures out, on the engine's apps and channels (`docs/channels-json.md`). Stateless pieces
//! only; the connection's session lives in the shard (`shard/channels_json.rs`).
//!
//! # Layout
//! - `message`: the client's messages parsed, the server's encoded, the sender ids.

pub mod message;

/// Where the dialect is mounted: `GET /channels/{app_key}` + upgrade.
pub const MOUNT: &str = "/channels/";

/// The app key of a path on the mount (`/channels/{app_key}`), if it is one.
pub fn app_key_of(path: &str) -> Option<&str> {
    path.strip_prefix(MOUNT)
        .filter(|key| !key.is_empty() && !key.contains('/'))
}

/// The dialect's settings, fixed at start (`--channels-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelsJsonSettings {
    /// Seconds a connection may stay without sending anything before it is closed (the
    /// original's API Gateway closed after 10 minutes); 0: never.
    pub idle_timeout_s: u64,
    /// Seconds a connection may live at all (the original's API Gateway: 2 hours); 0: no limit.
    pub max_lifetime_s: u64,
}

impl Default for ChannelsJsonSettings {
    fn default() -> Self {
        ChannelsJsonSettings {
            idle_timeout_s: crate::limits::CHANNELS_JSON_IDLE_TIMEOUT_S_DEFAULT,
            max_lifetime_s: crate::limits::CHANNELS_JSON_MAX_LIFETIME_S_DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_names_one_app_key() {
        assert_eq!(app_key_of("/channels/k1"), Some("k1"));
        assert_eq!(app_key_of("/channels/"), None);
        assert_eq!(app_key_of("/channels/k1/x"), None);
        assert_eq!(app_key_of("/app/k1"), None);
    }
}
