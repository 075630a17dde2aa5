//! A channel's active subscribers on one shard, one set per dialect present, so fan-out walks
//! each dialect's subscribers with that dialect's one frame. A channel with subscribers of one
//! dialect (the usual case) keeps its one set inline: a Pusher-only node pays nothing for the
//! dialects it does not serve.

use indexmap::IndexSet;
use smallvec::SmallVec;

use crate::dialect::Dialect;

/// Insertion-ordered slab keys: iteration for fan-out is a dense walk, removal is O(1).
pub type KeySet = IndexSet<u32, ahash::RandomState>;

/// The active subscribers of a channel on this shard, by dialect.
#[derive(Debug, Default)]
pub struct Subscribers {
    /// One non-empty set per dialect present, in the order dialects first subscribed.
    sets: SmallVec<[(Dialect, KeySet); 1]>,
}

impl Subscribers {
    /// Adds a connection; false when it was there already.
    pub fn insert(&mut self, dialect: Dialect, key: u32) -> bool {
        if let Some((_, set)) = self.sets.iter_mut().find(|(d, _)| *d == dialect) {
            return set.insert(key);
        }
        let mut set = KeySet::default();
        set.insert(key);
        self.sets.push((dialect, set));
        true
    }

    /// Removes a connection; false when it was not there. A dialect's last one drops its set.
    pub fn remove(&mut self, dialect: Dialect, key: u32) -> bool {
        let Some(index) = self.sets.iter().position(|(d, _)| *d == dialect) else {
            return false;
        };
        let removed = self.sets[index].1.swap_remove(&key);
        if self.sets[index].1.is_empty() {
            self.sets.swap_remove(index);
        }
        removed
    }

    /// Subscribers of every dialect.
    pub fn len(&self) -> usize {
        self.sets.iter().map(|(_, set)| set.len()).sum()
    }

    /// No subscriber of any dialect.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    /// Subscribers of one dialect.
    pub fn len_of(&self, dialect: Dialect) -> usize {
        self.of(dialect).map_or(0, KeySet::len)
    }

    /// The set of one dialect, if it has subscribers.
    pub fn of(&self, dialect: Dialect) -> Option<&KeySet> {
        self.sets
            .iter()
            .find(|(d, _)| *d == dialect)
            .map(|(_, set)| set)
    }

    /// Each dialect present with its subscribers.
    pub fn iter(&self) -> impl Iterator<Item = (Dialect, &KeySet)> {
        self.sets.iter().map(|(dialect, set)| (*dialect, set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_come_and_go_with_their_dialects() {
        let mut subscribers = Subscribers::default();
        assert!(subscribers.insert(Dialect::Pusher, 1));
        assert!(!subscribers.insert(Dialect::Pusher, 1));
        assert!(subscribers.insert(Dialect::SocketIo, 2));
        assert_eq!(subscribers.len(), 2);
        assert_eq!(subscribers.len_of(Dialect::SocketIo), 1);
        assert!(!subscribers.remove(Dialect::SocketIo, 1));
        assert!(subscribers.remove(Dialect::Pusher, 1));
        assert_eq!(subscribers.iter().count(), 1);
        assert!(subscribers.remove(Dialect::SocketIo, 2));
        assert!(subscribers.is_empty());
    }
}
