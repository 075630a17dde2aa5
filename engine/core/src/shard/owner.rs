//! State a shard keeps for the channels and users it *owns* (owner = a fixed hash of the name
//! modulo the shard count): presence member lists with per-user connection counts (first join /
//! last leave across all shards), the last event of cache channels, and who is online and who
//! watches whom for sign-in watchlists. One owner per key makes these decisions exact without
//! locks: every change for a key is a message to one shard, processed in order.

use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;
use indexmap::IndexMap;

use super::message::AppIndex;
use crate::limits::CACHE_TTL_S;

/// One presence member, counted over all its connections in the channel.
#[derive(Debug)]
pub struct Member {
    /// `user_info` JSON text from the first connection that joined.
    pub user_info: Arc<str>,
    /// Connections (any shard) in the channel as this user.
    pub connections: u32,
}

/// Outcome of a presence join at the owner.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The user was not a member yet: announce `member_added`.
    FirstJoin,
    /// Another connection of the same user joined.
    AlreadyMember,
    /// The channel is at its member limit and this user is not in it.
    Full,
}

/// Members of one presence channel in join order.
pub type MemberList = IndexMap<Arc<str>, Member, ahash::RandomState>;

/// Presence, cache and watchlist state owned by this shard.
#[derive(Debug)]
pub struct OwnerState {
    presence: Vec<AHashMap<Arc<str>, MemberList>>,
    cache: Vec<AHashMap<Arc<str>, (Bytes, u64)>>,
    /// Presence members of every channel owned here, at most `members_max`.
    members: usize,
    members_max: usize,
    /// Bytes of the cached events (frames and names), at most `cache_bytes_max`.
    cache_bytes: usize,
    cache_bytes_max: usize,
    users: Vec<AHashMap<Arc<str>, UserWatch>>,
}

/// Online state of one user and who watches them.
#[derive(Debug, Default)]
pub struct UserWatch {
    /// Signed-in connections (any shard).
    pub online_connections: u32,
    /// Watching users and how many of their connections watch.
    pub watchers: AHashMap<Arc<str>, u32>,
}

impl OwnerState {
    /// Empty state for `app_count` apps.
    pub fn new(app_count: usize) -> Self {
        OwnerState::with_cache_bytes_max(app_count, crate::limits::CACHE_BYTES_PER_SHARD_MAX)
    }

    /// Empty state whose cached events take at most `cache_bytes_max` bytes.
    pub fn with_cache_bytes_max(app_count: usize, cache_bytes_max: usize) -> Self {
        OwnerState {
            presence: (0..app_count).map(|_| AHashMap::new()).collect(),
            cache: (0..app_count).map(|_| AHashMap::new()).collect(),
            members: 0,
            members_max: crate::limits::PRESENCE_MEMBERS_PER_SHARD_MAX,
            cache_bytes: 0,
            cache_bytes_max,
            users: (0..app_count).map(|_| AHashMap::new()).collect(),
        }
    }

    /// Adds one connection of `user_id` to a presence channel.
    pub fn presence_join(
        &mut self,
        app: AppIndex,
        channel: &Arc<str>,
        user_id: &Arc<str>,
        user_info: &Arc<str>,
        members_max: usize,
    ) -> JoinOutcome {
        let members = self.presence[app as usize]
            .entry(channel.clone())
            .or_default();
        if let Some(member) = members.get_mut(&**user_id) {
            member.connections += 1;
            return JoinOutcome::AlreadyMember;
        }
        if members.len() >= members_max || self.members >= self.members_max {
            if members.is_empty() {
                self.presence[app as usize].remove(&**channel);
            }
            return JoinOutcome::Full;
        }
        members.insert(
            user_id.clone(),
            Member {
                user_info: user_info.clone(),
                connections: 1,
            },
        );
        self.members += 1;
        JoinOutcome::FirstJoin
    }

    /// Removes one connection of `user_id`; true when it was the user's last (member_removed).
    pub fn presence_leave(&mut self, app: AppIndex, channel: &str, user_id: &str) -> bool {
        let Some(members) = self.presence[app as usize].get_mut(channel) else {
            return false;
        };
        let Some(member) = members.get_mut(user_id) else {
            return false;
        };
        member.connections = member.connections.saturating_sub(1);
        if member.connections > 0 {
            return false;
        }
        members.shift_remove(user_id);
        self.members -= 1;
        if members.is_empty() {
            self.presence[app as usize].remove(channel);
        }
        true
    }

    /// Lowers the bound on members (the simulation tests reach it without a million).
    #[cfg(test)]
    pub fn set_members_max(&mut self, members_max: usize) {
        self.members_max = members_max;
    }

    /// Members of a presence channel in join order.
    pub fn members(&self, app: AppIndex, channel: &str) -> Option<&MemberList> {
        self.presence.get(app as usize)?.get(channel)
    }

    /// Presence channels of an app owned here, with their member counts.
    pub fn presence_channels(&self, app: AppIndex) -> impl Iterator<Item = (&Arc<str>, usize)> {
        self.presence
            .get(app as usize)
            .into_iter()
            .flat_map(|m| m.iter().map(|(name, members)| (name, members.len())))
    }

    /// The cached event of a channel with its remaining seconds, if still fresh.
    pub fn cache_entry(&self, app: AppIndex, channel: &str, now_s: u64) -> Option<(Bytes, u64)> {
        let (frame, expires_s) = self.cache.get(app as usize)?.get(channel)?;
        (*expires_s > now_s).then(|| (frame.clone(), expires_s - now_s))
    }

    /// Remembers the last event of a cache channel until `now_ms + CACHE_TTL_S`.
    /// False (nothing kept; a later subscriber gets `cache_miss`) when the shard's cached
    /// events would pass their bound in bytes: many cache channels must not take the node's
    /// memory.
    pub fn cache_store(
        &mut self,
        app: AppIndex,
        channel: Arc<str>,
        frame: Bytes,
        now_ms: u64,
    ) -> bool {
        let Some(map) = self.cache.get_mut(app as usize) else {
            return false;
        };
        let size = channel.len() + frame.len();
        let old = map
            .get(&channel)
            .map_or(0, |(f, _)| channel.len() + f.len());
        if self.cache_bytes - old + size > self.cache_bytes_max {
            return false;
        }
        self.cache_bytes = self.cache_bytes - old + size;
        map.insert(channel, (frame, now_ms + CACHE_TTL_S));
        true
    }

    /// The cached event of a channel, if still fresh.
    pub fn cache_lookup(&self, app: AppIndex, channel: &str, now_ms: u64) -> Option<&Bytes> {
        let (frame, expires_s) = self.cache.get(app as usize)?.get(channel)?;
        (*expires_s > now_ms).then_some(frame)
    }

    /// Drops expired cache entries (called from the shard's once-a-second sweep).
    pub fn cache_expire(&mut self, now_ms: u64) {
        let mut freed = 0;
        for map in &mut self.cache {
            map.retain(|name, (frame, expires_s)| {
                let keep = *expires_s > now_ms;
                if !keep {
                    freed += name.len() + frame.len();
                }
                keep
            });
        }
        self.cache_bytes -= freed;
    }

    /// One more signed-in connection of a user; returns the watchers to tell when the user
    /// just came online.
    pub fn user_online(&mut self, app: AppIndex, user_id: &Arc<str>) -> Vec<Arc<str>> {
        let entry = self.users[app as usize].entry(user_id.clone()).or_default();
        entry.online_connections += 1;
        if entry.online_connections == 1 {
            entry.watchers.keys().cloned().collect()
        } else {
            Vec::new()
        }
    }

    /// One fewer signed-in connection; returns the watchers to tell when the user went offline.
    pub fn user_offline(&mut self, app: AppIndex, user_id: &str) -> Vec<Arc<str>> {
        let map = &mut self.users[app as usize];
        let Some(entry) = map.get_mut(user_id) else {
            return Vec::new();
        };
        entry.online_connections = entry.online_connections.saturating_sub(1);
        if entry.online_connections > 0 {
            return Vec::new();
        }
        let watchers = entry.watchers.keys().cloned().collect();
        if entry.watchers.is_empty() {
            map.remove(user_id);
        }
        watchers
    }

    /// Registers a watcher; true when the watched user is online now.
    pub fn watch(&mut self, app: AppIndex, watcher: &Arc<str>, watched: &Arc<str>) -> bool {
        let entry = self.users[app as usize].entry(watched.clone()).or_default();
        *entry.watchers.entry(watcher.clone()).or_default() += 1;
        entry.online_connections > 0
    }

    /// Removes one watching connection.
    pub fn unwatch(&mut self, app: AppIndex, watcher: &str, watched: &str) {
        let map = &mut self.users[app as usize];
        let Some(entry) = map.get_mut(watched) else {
            return;
        };
        if let Some(count) = entry.watchers.get_mut(watcher) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                entry.watchers.remove(watcher);
            }
        }
        if entry.online_connections == 0 && entry.watchers.is_empty() {
            map.remove(watched);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arc(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn presence_counts_connections_per_user() {
        let mut owner = OwnerState::new(1);
        let (c, u, info) = (arc("presence-a"), arc("u1"), arc("{}"));
        assert_eq!(
            owner.presence_join(0, &c, &u, &info, 10),
            JoinOutcome::FirstJoin
        );
        assert_eq!(
            owner.presence_join(0, &c, &u, &info, 10),
            JoinOutcome::AlreadyMember
        );
        assert!(!owner.presence_leave(0, &c, &u));
        assert!(owner.presence_leave(0, &c, &u));
        assert!(owner.members(0, &c).is_none());
        assert!(
            !owner.presence_leave(0, &c, &u),
            "leave of a non-member is a no-op"
        );
    }

    #[test]
    fn presence_limit_counts_users_not_connections() {
        let mut owner = OwnerState::new(1);
        let (c, info) = (arc("presence-a"), arc("{}"));
        assert_eq!(
            owner.presence_join(0, &c, &arc("a"), &info, 1),
            JoinOutcome::FirstJoin
        );
        assert_eq!(
            owner.presence_join(0, &c, &arc("a"), &info, 1),
            JoinOutcome::AlreadyMember
        );
        assert_eq!(
            owner.presence_join(0, &c, &arc("b"), &info, 1),
            JoinOutcome::Full
        );
    }

    #[test]
    fn cache_expires() {
        let mut owner = OwnerState::new(1);
        owner.cache_store(0, arc("cache-a"), Bytes::from_static(b"x"), 100);
        assert!(owner
            .cache_lookup(0, "cache-a", 100 + CACHE_TTL_S - 1)
            .is_some());
        assert!(owner
            .cache_lookup(0, "cache-a", 100 + CACHE_TTL_S)
            .is_none());
        owner.cache_expire(100 + CACHE_TTL_S);
        assert!(owner.cache_lookup(0, "cache-a", 0).is_none());
    }

    #[test]
    fn watchers_hear_first_online_and_last_offline() {
        let mut owner = OwnerState::new(1);
        let (w, u) = (arc("w"), arc("u"));
        assert!(!owner.watch(0, &w, &u));
        assert_eq!(owner.user_online(0, &u), vec![w.clone()]);
        assert!(
            owner.user_online(0, &u).is_empty(),
            "second tab is not news"
        );
        assert!(owner.user_offline(0, &u).is_empty());
        assert_eq!(owner.user_offline(0, &u), vec![w.clone()]);
        owner.unwatch(0, &w, &u);
        assert!(owner.users[0].is_empty());
    }
}
