//! Measurement state: latency histograms (µs, 3 significant digits), the per-(stream,
//! subscriber) sequence tracker that finds duplicates and reordering, the counters of one
//! worker, the bounded tally of error kinds, and the wire form in which workers hand
//! histograms to the coordinator.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram holds, µs (one hour); larger values saturate.
const LATENCY_MAX_US: u64 = 3_600_000_000;
/// Highest sequence number a tracker accepts (a larger one is a malformed payload).
pub const SEQ_MAX: u64 = 1 << 26;

/// A new, empty latency histogram in µs with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, LATENCY_MAX_US, 3) {
        Ok(h) => h,
        // The bounds are constants that hdrhistogram accepts; failing here is a bug.
        Err(e) => unreachable!("histogram bounds rejected: {e:?}"),
    }
}

/// A histogram as `[value, count]` pairs (the recorded buckets), for JSON transport.
pub fn histogram_to_pairs(h: &Histogram<u64>) -> Vec<[u64; 2]> {
    h.iter_recorded()
        .map(|v| [v.value_iterated_to(), v.count_at_value()])
        .collect()
}

/// Adds `[value, count]` pairs into `h` (values above the bounds saturate).
pub fn add_pairs(h: &mut Histogram<u64>, pairs: &[[u64; 2]]) {
    for &[value, count] in pairs {
        let value = value.clamp(1, LATENCY_MAX_US);
        // In-bounds after the clamp, so recording cannot fail.
        let _ = h.record_n(value, count);
    }
}

/// What one received copy of a sequence number turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// First copy, in order.
    New,
    /// First copy, but a higher sequence number arrived before it.
    Reordered,
    /// Seen before.
    Duplicate,
    /// Out of the trackable range: a malformed payload.
    Invalid,
}

/// Which sequence numbers one subscriber has seen from one stream.
#[derive(Debug, Default)]
pub struct SeqTracker {
    seen: Vec<u64>,
    max_seen: Option<u64>,
}

impl SeqTracker {
    /// Records `seq` and classifies it.
    pub fn observe(&mut self, seq: u64) -> SeqOutcome {
        if seq >= SEQ_MAX {
            return SeqOutcome::Invalid;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            return SeqOutcome::Duplicate;
        }
        self.seen[word] |= 1 << bit;
        match self.max_seen {
            Some(max) if seq < max => SeqOutcome::Reordered,
            _ => {
                self.max_seen = Some(seq);
                SeqOutcome::New
            }
        }
    }
}

/// Counters one worker keeps (all its connections share one instance on its thread).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Counters {
    /// Connections that finished the handshake and every subscription.
    pub subscribed: u64,
    /// Connections that failed to connect, upgrade or subscribe.
    pub connect_errors: u64,
    /// Connections the server closed or reset after they had subscribed.
    pub disconnects: u64,
    /// First copies of measured events (reordered ones included).
    pub delivered: u64,
    /// Second and later copies of a measured event.
    pub duplicates: u64,
    /// First copies that arrived after a higher sequence number of the same stream.
    pub reordered: u64,
    /// Warm-up events received (not measured).
    pub warmup_received: u64,
    /// Measured-looking events whose payload could not be read.
    pub bad_payloads: u64,
    /// Other frames received (pings, pusher events that are not load events).
    pub other_frames: u64,
}

impl Counters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counters) {
        self.subscribed += other.subscribed;
        self.connect_errors += other.connect_errors;
        self.disconnects += other.disconnects;
        self.delivered += other.delivered;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.warmup_received += other.warmup_received;
        self.bad_payloads += other.bad_payloads;
        self.other_frames += other.other_frames;
    }
}

/// All measurement state of one worker: counters, the whole-run histogram and the histogram
/// of the current one-second interval.
pub struct WorkerStats {
    /// Running totals.
    pub counters: Counters,
    /// Latencies of the whole measured window.
    pub total: Histogram<u64>,
    /// Latencies since the last progress tick.
    pub interval: Histogram<u64>,
    /// `delivered` at the last progress tick.
    pub delivered_at_last_tick: u64,
    /// Distinct connect error messages with counts (first few kinds only).
    pub error_kinds: Vec<(String, u64)>,
}

impl WorkerStats {
    /// Empty state.
    pub fn new() -> Self {
        WorkerStats {
            counters: Counters::default(),
            total: new_histogram(),
            interval: new_histogram(),
            delivered_at_last_tick: 0,
            error_kinds: Vec::new(),
        }
    }

    /// Records one measured delivery with `latency_us` and its sequence outcome.
    pub fn record(&mut self, outcome: SeqOutcome, latency_us: u64) {
        match outcome {
            SeqOutcome::New | SeqOutcome::Reordered => {
                self.counters.delivered += 1;
                if outcome == SeqOutcome::Reordered {
                    self.counters.reordered += 1;
                }
                self.total.saturating_record(latency_us.max(1));
                self.interval.saturating_record(latency_us.max(1));
            }
            SeqOutcome::Duplicate => self.counters.duplicates += 1,
            SeqOutcome::Invalid => self.counters.bad_payloads += 1,
        }
    }

    /// Counts a connect error of kind `kind`.
    pub fn connect_error(&mut self, kind: &str) {
        self.counters.connect_errors += 1;
        tally_error_kind(&mut self.error_kinds, kind);
    }
}

impl Default for WorkerStats {
    fn default() -> Self {
        Self::new()
    }
}

/// Distinct error kinds kept per tally; further kinds are counted only in the total.
pub const ERROR_KINDS_MAX: usize = 16;

/// Counts one error of `kind` in a bounded list of (kind, count).
pub fn tally_error_kind(kinds: &mut Vec<(String, u64)>, kind: &str) {
    if let Some(entry) = kinds.iter_mut().find(|(k, _)| k == kind) {
        entry.1 += 1;
    } else if kinds.len() < ERROR_KINDS_MAX {
        kinds.push((kind.to_string(), 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_classifies_duplicates_and_reordering() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe(0), SeqOutcome::New);
        assert_eq!(t.observe(2), SeqOutcome::New);
        assert_eq!(t.observe(1), SeqOutcome::Reordered);
        assert_eq!(t.observe(2), SeqOutcome::Duplicate);
        assert_eq!(t.observe(200), SeqOutcome::New);
        assert_eq!(t.observe(SEQ_MAX), SeqOutcome::Invalid);
    }

    #[test]
    fn histogram_round_trips_through_pairs() {
        let mut h = new_histogram();
        for v in [5, 5, 100, 12_345, 999_999] {
            h.saturating_record(v);
        }
        let mut back = new_histogram();
        add_pairs(&mut back, &histogram_to_pairs(&h));
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }
}
