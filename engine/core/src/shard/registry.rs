//! A shard's channels → local subscribers, which other shards are interested in each channel,
//! and the per-user index of signed-in local connections (server-to-user delivery, terminate).
//!
//! Keyed per app so lookups take `&str` without allocating. Subscribers live in one
//! insertion-ordered set per dialect (`subscribers.rs`).

use std::sync::Arc;

use ahash::AHashMap;
use smallvec::SmallVec;

use super::message::AppIndex;
use super::subscribers::Subscribers;

/// One channel as this shard sees it.
#[derive(Debug, Default)]
pub struct LocalChannel {
    /// Local connections (slab keys) receiving the channel's events, by dialect.
    pub subscribers: Subscribers,
    /// Local connections still in the subscribe protocol.
    pub pending: Vec<u32>,
    /// Bit i set: shard i has subscribers (learned from `Interest` messages).
    pub remote_interest: u64,
    /// This shard has told the others it is interested.
    pub announced: bool,
    /// Sequence of the latest announcement (acks of older ones are ignored).
    pub interest_seq: u32,
    /// Acks still missing for the latest `on` announcement.
    pub acks_outstanding: u16,
    /// The bridge has not yet confirmed the latest announcement (multi-node only).
    pub link_ack_pending: bool,
}

impl LocalChannel {
    /// Local subscribers or subscribers-to-be.
    pub fn has_local(&self) -> bool {
        !self.subscribers.is_empty() || !self.pending.is_empty()
    }

    /// Every shard and the bridge know of this shard's interest: subscribers may go on.
    pub fn is_confirmed(&self) -> bool {
        self.acks_outstanding == 0 && !self.link_ack_pending
    }

    /// Nothing refers to this entry any more.
    pub fn is_unused(&self) -> bool {
        !self.has_local() && self.remote_interest == 0 && !self.announced
    }
}

/// The shard's channel and user tables.
#[derive(Debug)]
pub struct Registry {
    /// Most channels in all apps (`crate::limits::CHANNELS_PER_SHARD_MAX`).
    channels_max: usize,
    channels: Vec<AHashMap<Arc<str>, LocalChannel>>,
    users: Vec<AHashMap<Arc<str>, SmallVec<[u32; 1]>>>,
}

impl Registry {
    /// Empty tables for `app_count` apps.
    pub fn new(app_count: usize) -> Self {
        Registry {
            channels_max: crate::limits::CHANNELS_PER_SHARD_MAX,
            channels: (0..app_count).map(|_| AHashMap::new()).collect(),
            users: (0..app_count).map(|_| AHashMap::new()).collect(),
        }
    }

    /// A channel, if this shard knows it.
    pub fn channel(&self, app: AppIndex, name: &str) -> Option<&LocalChannel> {
        self.channels.get(app as usize)?.get(name)
    }

    /// A channel with its interned name (shared by every cross-shard message about it).
    pub fn channel_with_name(
        &self,
        app: AppIndex,
        name: &str,
    ) -> Option<(&Arc<str>, &LocalChannel)> {
        self.channels.get(app as usize)?.get_key_value(name)
    }

    /// A channel for update, if this shard knows it.
    pub fn channel_mut(&mut self, app: AppIndex, name: &str) -> Option<&mut LocalChannel> {
        self.channels.get_mut(app as usize)?.get_mut(name)
    }

    /// True when a subscribe may not add one more channel (the shard holds its most).
    pub fn is_full(&self) -> bool {
        self.channels.iter().map(|map| map.len()).sum::<usize>() >= self.channels_max
    }

    /// Lowers the bound (the simulation tests reach it without a million channels).
    #[cfg(test)]
    pub fn set_channels_max(&mut self, channels_max: usize) {
        self.channels_max = channels_max;
    }

    /// A channel, created when missing.
    pub fn channel_entry(&mut self, app: AppIndex, name: &Arc<str>) -> &mut LocalChannel {
        self.channels[app as usize].entry(name.clone()).or_default()
    }

    /// Drops a channel entry nothing refers to.
    pub fn remove_if_unused(&mut self, app: AppIndex, name: &str) {
        if let Some(map) = self.channels.get_mut(app as usize) {
            if map.get(name).is_some_and(LocalChannel::is_unused) {
                map.remove(name);
            }
        }
    }

    /// Channels of an app known to this shard (for listings).
    pub fn channels_of(&self, app: AppIndex) -> impl Iterator<Item = (&Arc<str>, &LocalChannel)> {
        self.channels
            .get(app as usize)
            .into_iter()
            .flat_map(|m| m.iter())
    }

    /// Records a signed-in connection.
    pub fn add_user_conn(&mut self, app: AppIndex, user_id: &Arc<str>, key: u32) {
        let conns = self.users[app as usize].entry(user_id.clone()).or_default();
        if !conns.contains(&key) {
            conns.push(key);
        }
    }

    /// Forgets a signed-in connection; true when it was the user's last one on this shard.
    pub fn remove_user_conn(&mut self, app: AppIndex, user_id: &str, key: u32) -> bool {
        let Some(map) = self.users.get_mut(app as usize) else {
            return false;
        };
        let Some(conns) = map.get_mut(user_id) else {
            return false;
        };
        conns.retain(|k| *k != key);
        if conns.is_empty() {
            map.remove(user_id);
            return true;
        }
        false
    }

    /// Local connections signed in as a user.
    pub fn user_conns(&self, app: AppIndex, user_id: &str) -> &[u32] {
        self.users
            .get(app as usize)
            .and_then(|m| m.get(user_id))
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }
}
