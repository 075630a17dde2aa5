//! [`Backoff`]: reconnect pacing as data, with no clock. The delay doubles after every failed
//! attempt up to a ceiling and starts over after a success, so an outage costs a few attempts
//! per second at first and one every few seconds once it lasts. The caller sleeps the delays.

use crate::limits::{RECONNECT_DELAY_MS_MAX, RECONNECT_DELAY_MS_MIN};

/// Doubling delay between reconnect attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    delay_ms_next: u64,
    delay_ms_min: u64,
    delay_ms_max: u64,
}

impl Backoff {
    /// A backoff starting at `delay_ms_min` and doubling up to `delay_ms_max`.
    pub fn new(delay_ms_min: u64, delay_ms_max: u64) -> Self {
        Self {
            delay_ms_next: delay_ms_min,
            delay_ms_min,
            delay_ms_max,
        }
    }

    /// The backoff of every reconnect: the engine's bridge link, the engine's bridge restarts
    /// and the bridge's Redis connections ([`RECONNECT_DELAY_MS_MIN`] doubling to
    /// [`RECONNECT_DELAY_MS_MAX`]: 100 ms to 5 s).
    pub fn reconnect() -> Self {
        Self::new(RECONNECT_DELAY_MS_MIN, RECONNECT_DELAY_MS_MAX)
    }

    /// Milliseconds to wait before the next attempt; the one after it is twice as long.
    pub fn next_delay_ms(&mut self) -> u64 {
        let delay_ms = self.delay_ms_next;
        self.delay_ms_next = delay_ms.saturating_mul(2).min(self.delay_ms_max);
        delay_ms
    }

    /// Called after a success: the next failure waits the first delay again.
    pub fn reset(&mut self) {
        self.delay_ms_next = self.delay_ms_min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling_and_resets() {
        let mut backoff = Backoff::reconnect();
        let delays_ms: Vec<u64> = (0..9).map(|_| backoff.next_delay_ms()).collect();
        assert_eq!(
            delays_ms,
            [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]
        );
        backoff.reset();
        assert_eq!(backoff.next_delay_ms(), 100);
    }
}
