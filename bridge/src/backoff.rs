//! Reconnect pacing for the Redis connections: the delay doubles after every failed attempt up to
//! a ceiling and starts over after a success, so an outage costs a few connection attempts per
//! second at first and one every few seconds once it lasts.

use std::time::Duration;

/// First delay after a failure.
pub const RECONNECT_BACKOFF_MS_INITIAL: u64 = 100;
/// Ceiling of the delay: how stale a recovered Redis can go unnoticed.
pub const RECONNECT_BACKOFF_MS_MAX: u64 = 5_000;

/// Doubling delay between reconnect attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    delay_ms_next: u64,
    delay_ms_initial: u64,
    delay_ms_max: u64,
}

impl Backoff {
    /// A backoff starting at `delay_ms_initial` and doubling up to `delay_ms_max`.
    pub fn new(delay_ms_initial: u64, delay_ms_max: u64) -> Self {
        Self {
            delay_ms_next: delay_ms_initial,
            delay_ms_initial,
            delay_ms_max,
        }
    }

    /// The backoff used for every Redis reconnect (100 ms doubling to 5 s).
    pub fn for_redis() -> Self {
        Self::new(RECONNECT_BACKOFF_MS_INITIAL, RECONNECT_BACKOFF_MS_MAX)
    }

    /// The delay to wait before the next attempt; the one after it is twice as long.
    pub fn next_delay(&mut self) -> Duration {
        let delay_ms = self.delay_ms_next;
        self.delay_ms_next = delay_ms.saturating_mul(2).min(self.delay_ms_max);
        Duration::from_millis(delay_ms)
    }

    /// Called after a success: the next failure waits the initial delay again.
    pub fn reset(&mut self) {
        self.delay_ms_next = self.delay_ms_initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_ceiling_and_resets() {
        let mut backoff = Backoff::for_redis();
        let delays_ms: Vec<u128> = (0..9).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(
            delays_ms,
            [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }
}
