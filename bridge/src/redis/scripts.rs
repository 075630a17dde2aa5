//! Cluster-wide presence state in Redis: the key names and the Lua scripts that change them.
//! Every change is one script, so Redis applies it atomically and the member events it
//! publishes are in the order of the state changes.
//!
//! Keys, with `P` = `{prefix}#{app_id}#{channel}` (the braces are part of the name: every state
//! key shares one Redis Cluster hash slot, see `redis::layout`; the channel's pub/sub channel is
//! the same name without them):
//! - `P#members`: user id → user info, cluster-wide;
//! - `P#count`: user id → number of (node, shard) pairs holding the user;
//! - `P#held#{node}#{shard}`: user id → user info held by that node and shard;
//! - `P#subscriptions`: node id → the node's subscription count (`subscription_count` webhooks);
//! - `{prefix}#node#{node}`: the node's heartbeat (expires unless refreshed);
//! - `{prefix}#nodes`: set of node ids that may hold members;
//! - `{prefix}#node#{node}#keys`: hash, `P#held#…` key → `field(P)` followed by the channel's
//!   member event head (see `redis::envelope`). A hash rather than a set so that the reaper of a dead
//!   node gets the channel's names without parsing key names (names may contain `#`).

use crate::limits::WEBHOOK_QUEUE_ENTRIES_MAX;
use crate::redis::connect::RedisConnection;
use crate::redis::envelope::MEMBER_EVENT_MAGIC;
use crate::redis::layout::{webhook_apps_key, webhook_due_key, webhook_queue_key, ScriptKeys};
use redis::{Cmd, FromRedisValue, RedisResult, ToRedisArgs};
use ringcast_core::limits::LEAVE_DELAY_MS;

/// Lua shared by the scripts. `added` / `removed` do the counting after the held hash
/// changed, and publish an event only on the cluster-wide first join / last leave. They also
/// keep the webhooks' side (see [`webhook_due_key`]): a last leave waits in its app's delayed
/// set for [`LEAVE_DELAY_MS`]; a first join that finds its leave still waiting takes it out and
/// is no webhook either (the user or channel was back in time); any other first join is one,
/// put into its app's queue or returned by the script in `hooks` (the payload of its member
/// event) for the bridge that ran it to send. Leaves and queued events are kept only for apps
/// some bridge sends webhooks for (`wanted`, see [`webhook_apps_key`]). `DELAYED_BASE`,
/// `QUEUE_BASE`, `APPS`, `MAGIC_LEN` and `DELAY_MS` are defined in front of this by
/// [`Script::new`].
const LUA_COMMON: &str = r#"
local hooks = {}
local function field(s)
  return string.len(s) .. ':' .. s
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The app id of a member event (or its head): the first field after the magic.
local function app_of(payload)
  local start = MAGIC_LEN + 1
  local colon = string.find(payload, ':', start, true)
  local n = tonumber(string.sub(payload, start, colon - 1))
  return string.sub(payload, colon + 1, colon + n)
end
-- Some bridge has webhook settings for the app (its entry is there and not expired).
local function wanted(app)
  local until_ms = redis.call('HGET', APPS, app)
  return until_ms and tonumber(until_ms) > now_ms()
end
-- A webhook event now: into its app's Redis queue (at-least-once) or back to the bridge.
local function hook(payload)
  if QUEUE_BASE then
    local app = app_of(payload)
    if wanted(app) then
      redis.call('XADD', QUEUE_BASE .. app, 'MAXLEN', '~', QUEUE_MAX, '*', 'm', payload)
    end
  else
    table.insert(hooks, payload)
  end
end
-- The pub/sub channel of a key base: the same name without the braces of the key prefix.
local function channel_of(p)
  return CHANNEL_PREFIX .. string.sub(p, KEY_PREFIX_LEN + 1)
end
local function added(p, head, user, info)
  if redis.call('HINCRBY', p .. '#count', user, 1) == 1 then
    redis.call('HSET', p .. '#members', user, info)
    local payload = head .. 'A' .. field(user) .. field(info)
    redis.call('PUBLISH', channel_of(p), payload)
    if redis.call('ZREM', DELAYED_BASE .. app_of(head), head .. 'R' .. field(user)) == 0 then
      hook(payload)
    end
  end
end
local function removed(p, head, user)
  if redis.call('HINCRBY', p .. '#count', user, -1) <= 0 then
    redis.call('HDEL', p .. '#count', user)
    redis.call('HDEL', p .. '#members', user)
    local payload = head .. 'R' .. field(user)
    redis.call('PUBLISH', channel_of(p), payload)
    local app = app_of(head)
    if wanted(app) then
      redis.call('ZADD', DELAYED_BASE .. app, now_ms() + DELAY_MS, payload)
    end
  end
end
local function parse_meta(meta)
  local colon = string.find(meta, ':', 1, true)
  local n = tonumber(string.sub(meta, 1, colon - 1))
  return string.sub(meta, colon + 1, colon + n), string.sub(meta, colon + n + 1)
end
local function drop_held(keys_hash, held)
  local meta = redis.call('HGET', keys_hash, held)
  if meta then
    local p, head = parse_meta(meta)
    for _, user in ipairs(redis.call('HKEYS', held)) do
      removed(p, head, user)
    end
  end
  redis.call('DEL', held)
  redis.call('HDEL', keys_hash, held)
end
"#;

/// Makes the node known to the reapers before it holds anything. The heartbeat is created if
/// missing, so that a reaper cannot take a node that joined before its first heartbeat for a
/// dead one. KEYS: …, nodes set (3), heartbeat (4). ARGV: …, node id (3), TTL in ms (4).
const LUA_REGISTER: &str = r#"
redis.call('SET', KEYS[4], '1', 'PX', ARGV[4], 'NX')
redis.call('SADD', KEYS[3], ARGV[3])
"#;

/// KEYS: held, node keys hash, nodes set, heartbeat. ARGV: P, head, node id, TTL, user, info.
const LUA_JOIN: &str = r#"
redis.call('HSET', KEYS[2], KEYS[1], field(ARGV[1]) .. ARGV[2])
if redis.call('HSETNX', KEYS[1], ARGV[5], ARGV[6]) == 1 then
  added(ARGV[1], ARGV[2], ARGV[5], ARGV[6])
end
return hooks
"#;

/// KEYS: held. ARGV: P, head, user.
const LUA_LEAVE: &str = r#"
if redis.call('HDEL', KEYS[1], ARGV[3]) == 1 then
  removed(ARGV[1], ARGV[2], ARGV[3])
end
return hooks
"#;

/// KEYS: held, node keys hash, nodes set, heartbeat. ARGV: P, head, node id, TTL, then user,
/// info pairs: the held hash becomes exactly these users.
const LUA_RESYNC: &str = r#"
redis.call('HSET', KEYS[2], KEYS[1], field(ARGV[1]) .. ARGV[2])
local wanted = {}
for i = 5, #ARGV - 1, 2 do
  wanted[ARGV[i]] = true
end
for _, user in ipairs(redis.call('HKEYS', KEYS[1])) do
  if not wanted[user] then
    redis.call('HDEL', KEYS[1], user)
    removed(ARGV[1], ARGV[2], user)
  end
end
for i = 5, #ARGV - 1, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then
    added(ARGV[1], ARGV[2], ARGV[i], ARGV[i + 1])
  end
end
return hooks
"#;

/// KEYS: node keys hash. ARGV: held key. Everything that held hash had leaves.
const LUA_DROP_HELD: &str = r#"
drop_held(KEYS[1], ARGV[1])
return hooks
"#;

/// KEYS: node keys hash, nodes set, heartbeat. ARGV: node id, "1" to reap even a live node
/// (its own graceful shutdown). Returns 1 if it reaped. Idempotent: a second run finds nothing.
/// (Only leaves happen here: their webhooks wait in the delayed set, so no hooks to return.)
const LUA_REAP: &str = r#"
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[3])
elseif redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
for _, held in ipairs(redis.call('HKEYS', KEYS[1])) do
  drop_held(KEYS[1], held)
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"#;

/// KEYS: the delayed sets of the apps this bridge has webhook settings for (they share one
/// slot; the first routes the call in a Redis Cluster). ARGV: most entries to take. Takes the
/// delayed leave events whose time came (each by one bridge only: the script is atomic) and
/// returns how many and their payloads.
const LUA_TAKE_DUE: &str = r#"
local left = tonumber(ARGV[1])
local now = now_ms()
local taken = 0
for _, delayed in ipairs(KEYS) do
  if left <= 0 then
    break
  end
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, left)
  for _, payload in ipairs(due) do
    redis.call('ZREM', delayed, payload)
    hook(payload)
  end
  taken = taken + #due
  left = left - #due
end
return {taken, hooks}
"#;

/// An event of the engine the bridge hands to the Redis queue itself (a node alone, or a
/// client event or cache miss). The engine sends only events its app's webhooks want, so this
/// node has the app's settings: no `wanted` check. KEYS: the app's delayed set, the app's
/// queue. ARGV: `leave` | `join` | `now`, the field name (`m`: member-event payload, `h`:
/// link-encoded hook event), the payload, and for `join` the payload of the leave it cancels.
/// A leave waits in the delayed set; a join whose leave still waits cancels both.
const LUA_ENQUEUE: &str = r#"
if ARGV[1] == 'leave' then
  redis.call('ZADD', KEYS[1], now_ms() + DELAY_MS, ARGV[3])
  return 0
end
if ARGV[1] == 'join' and redis.call('ZREM', KEYS[1], ARGV[4]) == 1 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', QUEUE_MAX, '*', ARGV[2], ARGV[3])
return 1
"#;

/// Keeps this bridge's apps in the apps hash (see [`webhook_apps_key`]) for `ARGV[1]` ms more by
/// the Redis clock. KEYS: the apps hash. ARGV: the TTL, then the app ids.
const LUA_REGISTER_APPS: &str = r#"
local until_ms = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('HSET', APPS, ARGV[i], until_ms)
end
return #ARGV - 1
"#;

/// A node's count of one channel's subscriptions, summed with the other live nodes' into the
/// cluster's (for `subscription_count` webhooks). A count of 0 removes the node's entry; entries
/// of nodes no longer in the node set (reaped) are dropped on the way. KEYS: the channel's
/// counts hash (`P#subscriptions`), nodes set, heartbeat. ARGV: node id, the node's count, TTL.
/// Returns the cluster's count.
const LUA_SUBSCRIPTION_COUNT: &str = r#"
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3], 'NX')
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local total = 0
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  if redis.call('SISMEMBER', KEYS[2], entries[i]) == 1 then
    total = total + tonumber(entries[i + 1])
  else
    redis.call('HDEL', KEYS[1], entries[i])
  end
end
return total
"#;

/// One Lua script, run with EVALSHA. The SHA comes from SCRIPT LOAD (the redis crate's own
/// `Script` needs a SHA-1 crate the workspace does not have); after a Redis restart forgot the
/// script, NOSCRIPT makes it load again.
pub struct Script {
    text: String,
    sha: Option<String>,
}

impl Script {
    fn new(keys: &ScriptKeys, body: &str) -> Self {
        let delayed = lua_string(webhook_due_key(&keys.prefix, "").as_bytes());
        let apps = lua_string(webhook_apps_key(&keys.prefix).as_bytes());
        let channel_prefix = lua_string(keys.channel_prefix.as_bytes());
        let key_prefix_length = keys.prefix.len();
        let magic_length = MEMBER_EVENT_MAGIC.len();
        let queue = if keys.redis_queue {
            lua_string(webhook_queue_key(&keys.prefix, "").as_bytes())
        } else {
            "false".to_owned()
        };
        Self {
            text: format!(
                "local DELAYED_BASE = {delayed}\nlocal DELAY_MS = {LEAVE_DELAY_MS}\n\
                 local APPS = {apps}\nlocal MAGIC_LEN = {magic_length}\n\
                 local CHANNEL_PREFIX = {channel_prefix}\nlocal KEY_PREFIX_LEN = {key_prefix_length}\n\
                 local QUEUE_BASE = {queue}\nlocal QUEUE_MAX = {WEBHOOK_QUEUE_ENTRIES_MAX}\n\
                 {LUA_COMMON}{body}"
            ),
            sha: None,
        }
    }

    /// The SHA once the script is loaded (for a pipeline of EVALSHA calls).
    pub fn loaded_sha(&self) -> Option<&str> {
        self.sha.as_deref()
    }

    /// Forgets the SHA (Redis answered NOSCRIPT): the next `run` loads the script again.
    pub fn forget(&mut self) {
        self.sha = None;
    }

    /// Runs the script with `keys` and `args`.
    pub async fn run<T: FromRedisValue>(
        &mut self,
        connection: &mut RedisConnection,
        keys: &[&str],
        args: &[&[u8]],
    ) -> RedisResult<T> {
        if let Some(sha) = &self.sha {
            match evalsha(sha, keys, args).query_async(connection).await {
                Err(err)
                    if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                }
                result => return result,
            }
        }
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(&self.text)
            .query_async(connection)
            .await?;
        let result = evalsha(&sha, keys, args).query_async(connection).await;
        self.sha = Some(sha);
        result
    }
}

fn evalsha(sha: &str, keys: &[&str], args: &[&[u8]]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(sha).arg(keys.len());
    for key in keys {
        key.write_redis_args(&mut cmd);
    }
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}

/// The scripts.
pub struct Scripts {
    /// A user's first connection on a (node, shard) joined.
    pub join: Script,
    /// A user's last connection on a (node, shard) left.
    pub leave: Script,
    /// Replace a (node, shard)'s members of one channel.
    pub resync: Script,
    /// Drop all members of one held hash.
    pub drop_held: Script,
    /// Remove a node's members and the node.
    pub reap: Script,
    /// Take the delayed leave events that are due.
    pub take_due: Script,
    /// Hand one event to the Redis queue (or the delayed set).
    pub enqueue: Script,
    /// Keep this bridge's apps listed as wanting webhooks.
    pub register_apps: Script,
    /// Set the node's subscription count of a channel; get the cluster's.
    pub subscription_count: Script,
}

impl Scripts {
    /// The scripts, not loaded yet (the first run loads each).
    pub fn new(keys: &ScriptKeys) -> Self {
        Self {
            join: Script::new(keys, &format!("{LUA_REGISTER}{LUA_JOIN}")),
            leave: Script::new(keys, LUA_LEAVE),
            resync: Script::new(keys, &format!("{LUA_REGISTER}{LUA_RESYNC}")),
            drop_held: Script::new(keys, LUA_DROP_HELD),
            reap: Script::new(keys, LUA_REAP),
            take_due: Script::new(keys, LUA_TAKE_DUE),
            enqueue: Script::new(keys, LUA_ENQUEUE),
            register_apps: Script::new(keys, LUA_REGISTER_APPS),
            subscription_count: Script::new(keys, LUA_SUBSCRIPTION_COUNT),
        }
    }
}

/// Payloads returned by a script: the member events that are webhooks now.
pub type Hooks = Vec<Vec<u8>>;

/// `bytes` as a Lua string literal (every byte as a decimal escape: safe for any prefix).
fn lua_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4 + 2);
    out.push('"');
    for byte in bytes {
        out.push_str(&format!("\\{byte}"));
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_strings_escape_every_byte() {
        assert_eq!(lua_string(b"a\"\n"), "\"\\97\\34\\10\"");
    }
}
