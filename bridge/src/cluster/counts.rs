//! The node's subscription count of every counted channel, without IO: the latest count each
//! engine shard reported (one report per shard and tick at most), their sum, and when that sum
//! becomes a `subscription_count` webhook event (`docs/protocol-notes.md`, Webhooks).
//!
//! Pusher sends the event whenever a channel's count changes, for every channel type but
//! presence (the engine never reports those). A busy channel would change many times a second,
//! so events are coalesced: at most one per channel per [`COUNT_INTERVAL_MS`], and a change
//! inside that interval is sent when it ends, with the count as it is *then*, so a burst
//! produces a few events whose last one carries the final count, never a stale one.
//!
//! A shard's counts belong to its link: when the link goes they are forgotten (its engine
//! reports every count again after its next `Hello`). A report from an older link of the same
//! shard, arriving after the new link's, is ignored. Time is passed in (monotonic ms).

use std::collections::{HashMap, VecDeque};

use crate::limits::{COUNTED_CHANNELS_MAX, COUNT_INTERVAL_MS};
use crate::links::LinkId;

/// (app id, channel).
type ChannelKey = (String, String);

/// A total for the webhook: the node's count of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCount {
    /// App id.
    pub app_id: String,
    /// Channel name.
    pub channel: String,
    /// Subscribed connections on this node, over every shard.
    pub total: u64,
}

/// One counted channel.
#[derive(Debug, Default)]
struct Counted {
    /// (shard, link it reported on, count); only shards with a count above 0. At most one
    /// entry per shard, so at most `SHARD_COUNT_MAX` of them.
    shards: Vec<(u16, LinkId, u64)>,
    /// The total of the last event sent (0 before any).
    sent: u64,
    /// Until then (the last event plus [`COUNT_INTERVAL_MS`]) changes wait; its entry in
    /// `cooldowns` settles them. 0: no event yet.
    cooling_until_ms: u64,
}

impl Counted {
    fn total(&self) -> u64 {
        self.shards.iter().map(|(_, _, count)| *count).sum()
    }
}

/// The counts of every channel of every app on this node.
#[derive(Debug)]
pub struct SubscriptionCounts {
    channels: HashMap<ChannelKey, Counted, ahash::RandomState>,
    /// `COUNTED_CHANNELS_MAX` (smaller in tests).
    channels_max: usize,
    /// When each channel's interval ends, in order (the interval is constant and time does not
    /// go back, so pushing at the back keeps the queue sorted). An entry whose channel has a
    /// later interval by now is skipped; a channel has at most two (the next event needs the
    /// previous interval over), so this is bounded like `channels`.
    cooldowns: VecDeque<(u64, ChannelKey)>,
    /// Reports refused because `COUNTED_CHANNELS_MAX` channels were counted.
    refused: u64,
}

impl SubscriptionCounts {
    /// Nothing counted.
    pub fn new() -> Self {
        Self::with_channels_max(COUNTED_CHANNELS_MAX)
    }

    fn with_channels_max(channels_max: usize) -> Self {
        Self {
            channels: HashMap::default(),
            channels_max,
            cooldowns: VecDeque::new(),
            refused: 0,
        }
    }

    /// Shard `shard` (on link `link_id`) holds `count` subscriptions of `channel`. Returns the
    /// event to send now, if the node's total changed and the channel is not cooling down.
    pub fn handle_shard_count(
        &mut self,
        shard: u16,
        link_id: LinkId,
        app_id: String,
        channel: String,
        count: u64,
        now_ms: u64,
    ) -> Option<NodeCount> {
        let key = (app_id, channel);
        let full = self.channels.len() >= self.channels_max;
        match self.channels.get_mut(&key) {
            Some(entry) => {
                match entry.shards.iter_mut().find(|(s, ..)| *s == shard) {
                    // From a link this shard had before the one it reports on now.
                    Some((_, link, _)) if *link > link_id => return None,
                    Some(slot) => *slot = (shard, link_id, count),
                    None => entry.shards.push((shard, link_id, count)),
                }
                entry.shards.retain(|(_, _, count)| *count > 0);
            }
            // Nothing known and nothing held: no change to tell.
            None if count == 0 => return None,
            None if full => {
                self.refused += 1;
                return None;
            }
            None => {
                let entry = Counted {
                    shards: vec![(shard, link_id, count)],
                    ..Counted::default()
                };
                self.channels.insert(key.clone(), entry);
            }
        }
        self.settle(key, now_ms)
    }

    /// Link `link_id` of `shard` ended: its counts go. Returns the events to send now.
    pub fn handle_link_gone(&mut self, shard: u16, link_id: LinkId, now_ms: u64) -> Vec<NodeCount> {
        let mut changed = Vec::new();
        for (key, entry) in self.channels.iter_mut() {
            let before = entry.shards.len();
            entry
                .shards
                .retain(|(s, link, _)| !(*s == shard && *link == link_id));
            if entry.shards.len() != before {
                changed.push(key.clone());
            }
        }
        changed
            .into_iter()
            .filter_map(|key| self.settle(key, now_ms))
            .collect()
    }

    /// Events due at `now_ms`: channels whose interval ended with a total other than the one
    /// last sent.
    pub fn poll_due(&mut self, now_ms: u64) -> Vec<NodeCount> {
        let mut ready = Vec::new();
        while self
            .cooldowns
            .front()
            .is_some_and(|(due_ms, _)| *due_ms <= now_ms)
        {
            let Some((due_ms, key)) = self.cooldowns.pop_front() else {
                break;
            };
            let current = self
                .channels
                .get(&key)
                .is_some_and(|entry| entry.cooling_until_ms == due_ms);
            if current {
                ready.extend(self.settle(key, now_ms));
            }
        }
        ready
    }

    /// When `poll_due` next has something to do.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.cooldowns.front().map(|(due_ms, _)| *due_ms)
    }

    /// Reports refused so far because too many channels were counted.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The event for `key` if one is due now; forgets the channel once nothing is held and the
    /// last event said so.
    fn settle(&mut self, key: ChannelKey, now_ms: u64) -> Option<NodeCount> {
        let entry = self.channels.get_mut(&key)?;
        if now_ms < entry.cooling_until_ms {
            return None; // sent when the interval ends, with the count as it is then
        }
        let total = entry.total();
        if total == entry.sent {
            if total == 0 {
                self.channels.remove(&key);
            }
            return None;
        }
        entry.sent = total;
        entry.cooling_until_ms = now_ms + COUNT_INTERVAL_MS;
        self.cooldowns
            .push_back((entry.cooling_until_ms, key.clone()));
        let (app_id, channel) = key;
        Some(NodeCount {
            app_id,
            channel,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(
        counts: &mut SubscriptionCounts,
        shard: u16,
        link: LinkId,
        channel: &str,
        count: u64,
        now_ms: u64,
    ) -> Option<u64> {
        counts
            .handle_shard_count(shard, link, "1".into(), channel.into(), count, now_ms)
            .map(|event| {
                assert_eq!(
                    (event.app_id.as_str(), event.channel.as_str()),
                    ("1", channel)
                );
                event.total
            })
    }

    fn totals(events: Vec<NodeCount>) -> Vec<(String, u64)> {
        events
            .into_iter()
            .map(|event| (event.channel, event.total))
            .collect()
    }

    #[test]
    fn shards_are_summed_and_changes_inside_the_interval_wait_for_its_end() {
        let mut counts = SubscriptionCounts::new();
        assert_eq!(
            report(&mut counts, 0, 1, "news", 2, 0),
            Some(2),
            "first: at once"
        );
        assert_eq!(report(&mut counts, 1, 2, "news", 3, 10), None, "cooling");
        assert_eq!(
            report(&mut counts, 1, 2, "news", 5, 20),
            None,
            "still cooling"
        );
        assert_eq!(counts.next_deadline_ms(), Some(COUNT_INTERVAL_MS));
        assert!(
            counts.poll_due(COUNT_INTERVAL_MS - 1).is_empty(),
            "never early"
        );
        assert_eq!(
            totals(counts.poll_due(COUNT_INTERVAL_MS)),
            [("news".to_owned(), 7)],
            "the latest count of every shard, summed"
        );
        // Back to the value last sent within the interval: nothing to say at its end.
        assert_eq!(report(&mut counts, 0, 1, "news", 3, 1_500), None);
        assert_eq!(report(&mut counts, 0, 1, "news", 2, 1_600), None);
        assert!(counts.poll_due(2 * COUNT_INTERVAL_MS).is_empty());
        assert_eq!(counts.next_deadline_ms(), None);
        // Quiet for a while: the next change goes at once.
        assert_eq!(report(&mut counts, 0, 1, "news", 1, 5_000), Some(6));
    }

    #[test]
    fn a_burst_makes_few_events_and_the_last_one_has_the_final_count() {
        let mut counts = SubscriptionCounts::new();
        let mut sent = Vec::new();
        // 1,000 subscribes over 2.5 s, reported by two shards every 100 ms each.
        let mut held = [0u64; 2];
        for step in 0..=25u64 {
            let now_ms = step * 100;
            for (shard, count) in held.iter_mut().enumerate() {
                *count = (step * 20).min(500);
                let shard = shard as u16;
                sent.extend(report(&mut counts, shard, 7, "live", *count, now_ms));
            }
            sent.extend(totals(counts.poll_due(now_ms)).into_iter().map(|(_, n)| n));
        }
        sent.extend(totals(counts.poll_due(10_000)).into_iter().map(|(_, n)| n));
        assert!(sent.len() <= 4, "one per second at most: {sent:?}");
        assert_eq!(sent.last(), Some(&1_000), "{sent:?}");
    }

    #[test]
    fn zero_is_sent_and_then_the_channel_is_forgotten() {
        let mut counts = SubscriptionCounts::new();
        assert_eq!(
            report(&mut counts, 0, 1, "news", 0, 0),
            None,
            "never counted"
        );
        assert!(counts.channels.is_empty());
        assert_eq!(report(&mut counts, 0, 1, "news", 1, 0), Some(1));
        assert_eq!(report(&mut counts, 0, 1, "news", 0, 100), None);
        assert_eq!(totals(counts.poll_due(1_000)), [("news".to_owned(), 0)]);
        assert_eq!(counts.channels.len(), 1, "kept through its interval");
        assert!(counts.poll_due(2_000).is_empty());
        assert!(counts.channels.is_empty() && counts.cooldowns.is_empty());
    }

    #[test]
    fn a_gone_link_takes_its_counts_and_an_older_link_cannot_overwrite_a_newer_one() {
        let mut counts = SubscriptionCounts::new();
        assert_eq!(report(&mut counts, 0, 1, "a", 4, 0), Some(4));
        assert_eq!(report(&mut counts, 1, 2, "b", 2, 0), Some(2));
        // Shard 0 links again (link 3) and reports; its old link's end comes later.
        assert_eq!(report(&mut counts, 0, 3, "a", 5, 2_000), Some(5));
        assert_eq!(
            report(&mut counts, 0, 1, "a", 9, 2_001),
            None,
            "older link ignored"
        );
        assert!(
            counts.handle_link_gone(0, 1, 3_500).is_empty(),
            "not its counts any more"
        );
        assert_eq!(
            totals(counts.handle_link_gone(1, 2, 3_500)),
            [("b".to_owned(), 0)]
        );
        assert_eq!(report(&mut counts, 0, 3, "a", 6, 3_600), Some(6));
        assert!(counts.poll_due(10_000).is_empty());
        assert_eq!(counts.channels.len(), 1, "b forgotten once 0 was sent");
    }

    #[test]
    fn channels_past_the_bound_are_refused_until_one_is_back_to_zero() {
        let mut counts = SubscriptionCounts::with_channels_max(3);
        for channel in ["a", "b", "c"] {
            assert_eq!(report(&mut counts, 0, 1, channel, 1, 0), Some(1));
        }
        assert_eq!(report(&mut counts, 0, 1, "one-more", 1, 0), None);
        assert_eq!(counts.refused(), 1);
        assert_eq!(report(&mut counts, 0, 1, "a", 0, 10), None);
        assert_eq!(
            totals(counts.poll_due(1_000)),
            [("a".to_owned(), 0)],
            "b and c unchanged"
        );
        assert!(counts.poll_due(2_000).is_empty(), "a forgotten");
        assert_eq!(report(&mut counts, 0, 1, "one-more", 1, 2_000), Some(1));
    }
}
