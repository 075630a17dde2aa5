//! Where the bridge's data lives in Redis, so that one layout serves a single server and a
//! Redis Cluster alike: the hash slot of a key or channel, the hash tag every state key carries
//! (so that each Lua script touches one slot), and which pub/sub channels are sharded.
//!
//! - Message channels `{prefix}#{app}#{channel}` are untagged: a cluster spreads them over its
//!   masters, and with sharded pub/sub each message travels to one master's subscribers only.
//! - Presence channels and the node-wide control channels use classic pub/sub: the presence
//!   scripts publish member events from Lua (where a sharded publish must stay in the script's
//!   slot), and a channel's messages and member events then share one path.
//! - State keys (presence, occupancy, heartbeats, webhook queue and delayed set, connection
//!   counts) start with the prefix in braces, `{prefix}#…`: one slot for all of it, so that every
//!   script stays atomic on one master. A single server ignores the braces.

/// Slots of a Redis Cluster.
const SLOTS: u16 = 16_384;

/// The hash slot of `key` (or of a sharded channel): CRC16/XMODEM of its hash tag — what
/// between the first `{` and the next `}`, when that is not empty — else of the whole key.
pub fn slot_of(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&byte| byte == b'{')
        .and_then(|open| {
            let after = &key[open + 1..];
            let close = after.iter().position(|&byte| byte == b'}')?;
            (close > 0).then(|| &after[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(hashed) % SLOTS
}

/// The prefix of every state key: `{prefix}`.
pub fn key_prefix(prefix: &str) -> String {
    format!("{{{prefix}}}")
}

/// Why a prefix cannot be used, if it cannot: braces would change the keys' hash tags.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains(['{', '}']) {
        return Err(format!(
            "the Redis prefix {prefix:?} may not contain '{{' or '}}' (they select Redis Cluster hash slots)"
        ));
    }
    Ok(())
}

/// A cache channel's last event: `{P}#cache`, in the slot of the channel `P` itself, so that
/// the SET and the publish of one event go in one pipeline to one master.
pub fn cache_key(redis_channel: &str) -> String {
    format!("{{{redis_channel}}}#cache")
}

/// Whether `redis_channel` (a name under `prefix`) uses sharded pub/sub on a Redis Cluster:
/// every message channel except presence channels; never the control channels `prefix##…`.
pub fn is_sharded_channel(prefix: &str, redis_channel: &str) -> bool {
    let Some(rest) = redis_channel.strip_prefix(prefix) else {
        return false;
    };
    if rest.starts_with("##") {
        return false;
    }
    // `#{app}#{channel}`: a channel name has no `#`, so it is what follows the last one.
    let channel = rest.rsplit('#').next().unwrap_or(rest);
    !channel.starts_with("presence-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` of a Redis 7 server.
        assert_eq!(slot_of(b"foo"), 12_182);
        assert_eq!(slot_of(b"123456789"), 12_739);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"{user1000}.followers"), slot_of(b"user1000"));
        // An empty tag does not count: the whole key is hashed.
        assert_eq!(slot_of(b"foo{}{bar}"), 8_363);
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
    }

    #[test]
    fn state_keys_share_one_slot_and_cache_keys_follow_their_channel() {
        let tagged = key_prefix("rc");
        let heartbeat = format!("{tagged}#node#7");
        let members = format!("{tagged}#app#presence-room#members");
        assert_eq!(slot_of(heartbeat.as_bytes()), slot_of(members.as_bytes()));
        assert_eq!(
            slot_of(cache_key("rc#app#cache-x").as_bytes()),
            slot_of(b"rc#app#cache-x")
        );
    }

    #[test]
    fn presence_and_control_channels_are_classic() {
        assert!(is_sharded_channel("rc", "rc#app-1#news"));
        assert!(is_sharded_channel("rc", "rc#app-1#private-x"));
        assert!(is_sharded_channel("rc", "rc#app-1#cache-x"));
        assert!(!is_sharded_channel("rc", "rc#app-1#presence-room"));
        assert!(!is_sharded_channel("rc", "rc#app-1#presence-cache-room"));
        assert!(!is_sharded_channel("rc", "rc##users"));
        assert!(!is_sharded_channel("rc", "rc##queries"));
        assert!(!is_sharded_channel("rc", "other#app#news"));
    }

    #[test]
    fn braces_in_a_prefix_are_refused() {
        assert!(check_prefix("pusher").is_ok());
        assert!(check_prefix("a{b").is_err());
        assert!(check_prefix("a}b").is_err());
    }
}
