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

/// The Redis channel carrying the events of one app's channel.
pub fn redis_channel_name(redis_prefix: &str, app_id: &str, channel: &str) -> String {
    let mut name = String::with_capacity(redis_prefix.len() + app_id.len() + channel.len() + 2);
    name.push_str(redis_prefix);
    name.push('#');
    name.push_str(app_id);
    name.push('#');
    name.push_str(channel);
    name
}

/// The Redis channel every bridge of a prefix listens on for user commands and associations
/// documents (no app id is empty, so no app's channel is named like it).
pub fn user_command_channel(redis_prefix: &str) -> String {
    format!("{redis_prefix}##users")
}

/// The Redis channel of the questions and answers of one prefix.
pub fn query_channel(redis_prefix: &str) -> String {
    format!("{redis_prefix}##queries")
}

/// `{prefix}#connections#{node}`: hash app id → open connections of that node.
pub fn connections_key(prefix: &str, node_id: u64) -> String {
    format!("{prefix}#connections#{node_id}")
}

/// `{prefix}#webhooks#queue#{app_id}`: the stream of one app's webhook events (at-least-once,
/// consumer group [`WEBHOOK_QUEUE_GROUP`]). One stream per app, so that only a node that has the
/// app's webhook settings ever reads (and settles) its events: nodes whose app tables differ
/// (a rolling change that adds an app) never take each other's.
pub fn webhook_queue_key(prefix: &str, app_id: &str) -> String {
    format!("{prefix}{WEBHOOK_QUEUE_INFIX}{app_id}")
}

/// What comes between the prefix and the app id in [`webhook_queue_key`] (the scripts build
/// the key from the app id of a member event).
pub const WEBHOOK_QUEUE_INFIX: &str = "#webhooks#queue#";

/// `{prefix}#webhooks#queue`: the one stream of every app's events that earlier versions used;
/// the consumers still drain it (an entry of an app the node does not know is left for another
/// node), so an upgrade loses nothing queued before it.
pub fn webhook_legacy_queue_key(prefix: &str) -> String {
    format!("{prefix}#webhooks#queue")
}

/// The consumer group of every bridge reading the webhook queue.
pub const WEBHOOK_QUEUE_GROUP: &str = "ringcast";

/// `{prefix}#webhooks#delayed#{app_id}`: sorted set of one app's member-event payloads of last
/// leaves, scored by the time (Redis clock, ms) their webhook is due. Per app for the same
/// reason as the queue: only a bridge that has the app's settings takes its due leaves.
pub fn webhook_due_key(prefix: &str, app_id: &str) -> String {
    format!("{prefix}{WEBHOOK_DUE_INFIX}{app_id}")
}

/// What comes between the prefix and the app id in [`webhook_due_key`].
pub const WEBHOOK_DUE_INFIX: &str = "#webhooks#delayed#";

/// `{prefix}#webhooks#apps`: hash app id → until when (Redis clock, ms) some bridge has webhook
/// settings for the app. Bridges refresh their apps' entries; the scripts keep leaves and queue
/// events only for apps listed and not expired, so an app no node sends webhooks for leaves no
/// state in Redis.
pub fn webhook_apps_key(prefix: &str) -> String {
    format!("{prefix}#webhooks#apps")
}

/// The base of a channel's occupancy, kept like a presence channel with one pseudo-member per
/// (node, shard) holding it: `{prefix}#{app}#{channel}#occupancy` (a channel name has no `#`
/// after its first character, so no channel's base can be this).
pub fn occupancy_base(prefix: &str, app_id: &str, channel: &str) -> String {
    format!("{}#occupancy", redis_channel_name(prefix, app_id, channel))
}

/// The pseudo-member of an occupancy base.
pub const OCCUPANCY_MEMBER: &str = "node";

/// Channel field of an occupancy event's head: `#occupancy#{channel}` (never a channel name,
/// so member events and occupancy events stay apart, also in the delayed set).
pub fn occupancy_head_channel(channel: &str) -> String {
    format!("{OCCUPANCY_HEAD_PREFIX}{channel}")
}

/// The channel of an occupancy event's head channel field, `None` for a member event's.
pub fn occupied_channel_of_head(head_channel: &str) -> Option<&str> {
    head_channel.strip_prefix(OCCUPANCY_HEAD_PREFIX)
}

/// What an occupancy event's head channel field starts with (no channel name can).
const OCCUPANCY_HEAD_PREFIX: &str = "#occupancy#";

/// Key names of one node.
#[derive(Debug, Clone)]
pub struct NodeKeys {
    /// The prefix of state keys (`{prefix}`, see `redis::layout::key_prefix`).
    pub prefix: String,
    /// The prefix of pub/sub channels (the configured prefix).
    pub channel_prefix: String,
    /// The node id.
    pub node_id: u64,
    /// Webhook events go to the Redis queue.
    pub redis_queue: bool,
}

impl NodeKeys {
    /// What the node's scripts are built for.
    pub fn script_keys(&self) -> ScriptKeys {
        ScriptKeys {
            prefix: self.prefix.clone(),
            channel_prefix: self.channel_prefix.clone(),
            redis_queue: self.redis_queue,
        }
    }

    /// `{prefix}#node#{node}`.
    pub fn heartbeat(&self) -> String {
        heartbeat_key(&self.prefix, self.node_id)
    }

    /// `{prefix}#node#{node}#keys`.
    pub fn keys_hash(&self) -> String {
        keys_hash_key(&self.prefix, self.node_id)
    }

    /// `{prefix}#nodes`.
    pub fn nodes(&self) -> String {
        nodes_key(&self.prefix)
    }

    /// `P` of a channel.
    pub fn channel_base(&self, app_id: &str, channel: &str) -> String {
        redis_channel_name(&self.prefix, app_id, channel)
    }

    /// `P#held#{node}#{shard}`.
    pub fn held(&self, channel_base: &str, shard: u16) -> String {
        format!("{channel_base}{}", held_suffix(self.node_id, shard))
    }
}

/// What every held key of (node, shard) ends with.
pub fn held_suffix(node_id: u64, shard: u16) -> String {
    format!("#held#{node_id}#{shard}")
}

/// `{prefix}#node#{node}`.
pub fn heartbeat_key(prefix: &str, node_id: u64) -> String {
    format!("{prefix}#node#{node_id}")
}

/// `{prefix}#node#{node}#keys`.
pub fn keys_hash_key(prefix: &str, node_id: u64) -> String {
    format!("{prefix}#node#{node_id}#keys")
}

/// `{prefix}#nodes`.
pub fn nodes_key(prefix: &str) -> String {
    format!("{prefix}#nodes")
}

/// `{prefix}#reap#{node}`: lock so that one bridge reaps a dead node.
pub fn reap_lock_key(prefix: &str, node_id: u64) -> String {
    format!("{prefix}#reap#{node_id}")
}

/// `P#subscriptions`: node id → the node's subscription count of the channel.
pub fn subscriptions_key(channel_base: &str) -> String {
    format!("{channel_base}#subscriptions")
}

/// `P#members`.
pub fn members_key(channel_base: &str) -> String {
    format!("{channel_base}#members")
}

/// The `P` at the front of a keys-hash value (`len:P` + head); `None` if malformed.
pub fn channel_base_of_meta(meta: &[u8]) -> Option<&[u8]> {
    let colon = meta.iter().take(12).position(|&byte| byte == b':')?;
    let length: usize = std::str::from_utf8(&meta[..colon]).ok()?.parse().ok()?;
    meta.get(colon + 1..colon + 1 + length)
}

/// What the scripts are built for: the key prefix, and whether webhook events go to the Redis
/// queue (`--webhook-queue redis`) or back to the bridge that ran the script.
#[derive(Debug, Clone)]
pub struct ScriptKeys {
    /// The prefix of state keys (`{prefix}`).
    pub prefix: String,
    /// The prefix of pub/sub channels (the configured prefix).
    pub channel_prefix: String,
    /// Webhook events go to the Redis queue.
    pub redis_queue: bool,
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

    #[test]
    fn meta_gives_the_channel_base() {
        assert_eq!(
            channel_base_of_meta(b"9:p#a#b#c#dHEAD"),
            Some(&b"p#a#b#c#d"[..])
        );
        assert_eq!(channel_base_of_meta(b"99:short"), None);
        assert_eq!(channel_base_of_meta(b"nocolon"), None);
    }
}
