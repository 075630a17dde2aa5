//! Number formatting for the bench mains' one-screen summaries.

use std::time::Duration;

/// `1234567.0` → `"1.23 M"`, `4567.0` → `"4.57 k"`, `12.0` → `"12.00"`: rates read at a
/// glance; the caller appends the unit (`"{} msg/s"`).
pub fn si(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1e9 {
        format!("{:.2} G", value / 1e9)
    } else if abs >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if abs >= 1e3 {
        format!("{:.2} k", value / 1e3)
    } else {
        format!("{value:.2}")
    }
}

/// A duration in the unit that keeps three significant digits readable (ns, µs, ms or s).
pub fn duration(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.3} s", ns / 1e9)
    }
}

/// Minimum, median and maximum of a non-empty sample (`None` when empty).
pub fn min_median_max(samples: &[Duration]) -> Option<(Duration, Duration, Duration)> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let first = *sorted.first()?;
    let last = *sorted.last()?;
    Some((first, sorted[sorted.len() / 2], last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_picks_the_unit() {
        assert_eq!(si(1_234_567.0), "1.23 M");
        assert_eq!(si(4_567.0), "4.57 k");
        assert_eq!(si(12.0), "12.00");
    }

    #[test]
    fn duration_picks_the_unit() {
        assert_eq!(duration(Duration::from_nanos(250)), "250.0 ns");
        assert_eq!(duration(Duration::from_micros(7_400)), "7.40 ms");
    }

    #[test]
    fn median_of_odd_sample() {
        let s = [3, 1, 2].map(Duration::from_millis);
        assert_eq!(
            min_median_max(&s),
            Some((
                Duration::from_millis(1),
                Duration::from_millis(2),
                Duration::from_millis(3)
            ))
        );
        assert_eq!(min_median_max(&[]), None);
    }
}
