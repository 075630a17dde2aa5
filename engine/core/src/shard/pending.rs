//! [`Pending`]: a table of requests waiting for an answer (from the bridge or from other shards),
//! by request id, bounded by a cap and, for most kinds, by a longest wait.
//!
//! Every table of waiting requests in a shard is one of these; what differs is the entry (what
//! the answer is for), the cap, the longest wait, and what the shard does with an entry that is
//! refused (full), answered, or overdue.

use ahash::AHashMap;

/// The table is at its cap: the request was not taken (its value comes back).
#[derive(Debug, PartialEq, Eq)]
pub struct Full<T>(pub T);

/// One waiting request.
#[derive(Debug)]
struct Entry<T> {
    /// Monotonic millisecond from which the request is overdue (`u64::MAX`: never).
    deadline_ms: u64,
    value: T,
}

/// Requests waiting for an answer, by id: a fresh nonzero id per request (ids still in use are
/// skipped after wrap-around), at most `cap` at a time, each overdue `wait_ms` after it went in.
#[derive(Debug)]
pub struct Pending<T> {
    waiting: AHashMap<u32, Entry<T>>,
    /// The next id to try (never 0).
    next_id: u32,
    cap: usize,
    /// How long a request waits before it is overdue; `None`: until answered.
    wait_ms: Option<u64>,
}

impl<T> Pending<T> {
    /// An empty table of at most `cap` requests, each overdue `wait_ms` after it went in.
    pub fn new(cap: usize, wait_ms: u64) -> Self {
        Pending {
            waiting: AHashMap::new(),
            next_id: 1,
            cap,
            wait_ms: Some(wait_ms),
        }
    }

    /// An empty table of at most `cap` requests that wait until answered (the answer always
    /// comes, e.g. from another shard over the rings).
    pub fn without_deadline(cap: usize) -> Self {
        Pending {
            waiting: AHashMap::new(),
            next_id: 1,
            cap,
            wait_ms: None,
        }
    }

    /// At the cap: the next `insert` is refused.
    pub fn is_full(&self) -> bool {
        self.waiting.len() >= self.cap
    }

    /// Takes a request in at `now_ms` and returns its id, or gives it back when the table is full.
    pub fn insert(&mut self, now_ms: u64, value: T) -> Result<u32, Full<T>> {
        if self.is_full() {
            return Err(Full(value));
        }
        let id = self.fresh_id();
        let deadline_ms = self
            .wait_ms
            .map_or(u64::MAX, |wait_ms| now_ms.saturating_add(wait_ms));
        self.waiting.insert(id, Entry { deadline_ms, value });
        Ok(id)
    }

    /// A nonzero id not in use (the table is below its cap, so one is free).
    fn fresh_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = match id.wrapping_add(1) {
                0 => 1,
                next => next,
            };
            if !self.waiting.contains_key(&id) {
                return id;
            }
        }
    }

    /// A waiting request.
    pub fn get(&self, id: u32) -> Option<&T> {
        self.waiting.get(&id).map(|entry| &entry.value)
    }

    /// A waiting request, for update.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.waiting.get_mut(&id).map(|entry| &mut entry.value)
    }

    /// Takes the request out (answered or given up); `None` when it is not waiting (answered
    /// already, overdue, or never asked).
    pub fn take(&mut self, id: u32) -> Option<T> {
        self.waiting.remove(&id).map(|entry| entry.value)
    }

    /// Takes out every request overdue at `now_ms`, oldest first.
    pub fn drain_overdue(&mut self, now_ms: u64) -> Vec<(u32, T)> {
        self.drain_where(|deadline_ms| deadline_ms <= now_ms)
    }

    /// Takes out every request (nobody will answer them now), oldest first.
    pub fn drain_all(&mut self) -> Vec<(u32, T)> {
        self.drain_where(|_| true)
    }

    fn drain_where(&mut self, due: impl Fn(u64) -> bool) -> Vec<(u32, T)> {
        if self.waiting.is_empty() {
            return Vec::new();
        }
        let mut ids: Vec<(u64, u32)> = self
            .waiting
            .iter()
            .filter(|(_, entry)| due(entry.deadline_ms))
            .map(|(id, entry)| (entry.deadline_ms, *id))
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|(_, id)| self.take(id).map(|value| (id, value)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_fresh_and_nonzero() {
        let mut table = Pending::new(4, 100);
        let a = table.insert(1, "a").unwrap();
        let b = table.insert(1, "b").unwrap();
        assert_ne!(a, 0);
        assert_ne!(a, b);
        assert_eq!(table.get(a), Some(&"a"));
        assert_eq!(table.take(b), Some("b"));
        assert_eq!(table.take(b), None, "taken once");
        assert_eq!(table.waiting.len(), 1);
    }

    #[test]
    fn wrap_around_skips_zero_and_ids_in_use() {
        let mut table = Pending::new(4, 100);
        table.next_id = u32::MAX - 1;
        let old = table.insert(1, 'x').unwrap();
        assert_eq!(old, u32::MAX - 1);
        assert_eq!(table.insert(1, 'y'), Ok(u32::MAX));
        assert_eq!(table.insert(1, 'z'), Ok(1), "0 is never an id");
        table.next_id = old;
        assert_eq!(table.insert(1, 'w'), Ok(2), "ids in use are skipped");
        assert_eq!(table.get(old), Some(&'x'));
    }

    #[test]
    fn a_full_table_gives_the_request_back() {
        let mut table = Pending::new(2, 100);
        table.insert(1, 1).unwrap();
        let second = table.insert(1, 2).unwrap();
        assert!(table.is_full());
        assert_eq!(table.insert(1, 3), Err(Full(3)));
        table.take(second);
        assert!(!table.is_full());
        assert!(table.insert(1, 4).is_ok());
    }

    #[test]
    fn overdue_requests_drain_oldest_first() {
        let mut table = Pending::new(8, 100);
        let a = table.insert(10, 'a').unwrap();
        let b = table.insert(20, 'b').unwrap();
        let c = table.insert(50, 'c').unwrap();
        assert!(table.drain_overdue(109).is_empty());
        assert_eq!(table.drain_overdue(120), [(a, 'a'), (b, 'b')]);
        assert_eq!(table.waiting.len(), 1);
        assert_eq!(table.drain_all(), [(c, 'c')]);
        assert!(table.waiting.is_empty());
    }

    #[test]
    fn without_deadline_never_overdue() {
        let mut table = Pending::without_deadline(2);
        let a = table.insert(u64::MAX - 1, "a").unwrap();
        assert!(table.drain_overdue(u64::MAX - 1).is_empty());
        *table.get_mut(a).unwrap() = "b";
        assert_eq!(table.drain_all(), [(a, "b")]);
    }
}
