//! Results and their text forms: the [`RunResult`] a run produces (serialized as
//! `result.json`), the readable summary on stdout, and `latency.hgrm` (HdrHistogram's
//! percentile distribution text format, values in milliseconds). Writing the files is
//! [`crate::output`]'s.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::proc_reading::{ProcSample, SockStat};
use crate::profile::Plan;
use crate::publisher::PublishReport;
use crate::stats::Counters;

/// Latency percentiles, µs.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// 50th percentile.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// 99.99th percentile.
    pub p9999_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl Latency {
    /// Percentiles of `h`.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            p9999_us: h.value_at_quantile(0.9999),
            max_us: h.max(),
        }
    }
}

/// One second of the run as the coordinator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    /// Seconds since the workers were started.
    pub t_s: u64,
    /// Subscribed connections still open.
    pub connected: u64,
    /// Measured deliveries in this second.
    pub delivered: u64,
    /// Events the server accepted so far (warm-up included).
    pub published: u64,
    /// p50 of this second's deliveries, µs.
    pub p50_us: u64,
    /// p99 of this second's deliveries, µs.
    pub p99_us: u64,
    /// Max of this second's deliveries, µs.
    pub max_us: u64,
}

/// Server readings around the run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ServerReadings {
    /// Server PID.
    pub pid: u32,
    /// Before any worker started.
    pub before: Option<ProcSample>,
    /// When every connection was up.
    pub connected: Option<ProcSample>,
    /// At the start of the measured window.
    pub window_start: Option<ProcSample>,
    /// At the end of the run (before the workers stop).
    pub end: Option<ProcSample>,
    /// Server CPU seconds during the measured window (idle: the idle hold).
    pub window_cpu_s: Option<f64>,
    /// (RSS when connected − RSS before) / subscribed connections, bytes.
    pub rss_per_connection_bytes: Option<f64>,
}

/// Kernel TCP readings around the run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct KernelReadings {
    /// Before any worker started.
    pub before: Option<SockStat>,
    /// When every connection was up.
    pub connected: Option<SockStat>,
    /// (TCP memory when connected − before) / subscribed connections, bytes; covers both
    /// ends of each loopback connection.
    pub tcp_mem_per_connection_bytes: Option<f64>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The resolved plan.
    pub plan: Plan,
    /// Subscribed connections.
    pub subscribed: u64,
    /// Time from starting the workers until every connection subscribed or failed, ms.
    pub connect_ms: u64,
    /// Subscribed connections per second of `connect_ms`.
    pub connects_per_s: f64,
    /// Connect error kinds with counts.
    pub connect_error_kinds: Vec<(String, u64)>,
    /// Summed worker counters.
    pub counters: Counters,
    /// Deliveries expected (measured events accepted × their recipients).
    pub expected: u64,
    /// expected − delivered (never negative).
    pub lost: u64,
    /// Deliveries per second over the measured window.
    pub delivered_per_s: f64,
    /// Latency of the measured deliveries.
    pub latency: Latency,
    /// Publisher figures (absent for idle).
    pub publish: Option<PublishReport>,
    /// Server figures (given `--server-pid`).
    pub server: Option<ServerReadings>,
    /// Kernel socket figures.
    pub kernel: KernelReadings,
    /// CPU seconds the worker processes used in total.
    pub loadgen_worker_cpu_s: f64,
    /// CPU seconds the coordinator (publisher, merging) used.
    pub loadgen_coordinator_cpu_s: f64,
    /// Per-second time series.
    pub intervals: Vec<Interval>,
}

/// Microseconds as milliseconds with three decimals, as every summary prints them.
pub(crate) fn ms(us: u64) -> String {
    format!("{:.3} ms", us as f64 / 1000.0)
}

/// `{label}: n … p50 … p90 … p99 … p99.9 … max …`, the one-line latency summary of the churn and
/// presence scenarios.
pub(crate) fn latency_line(label: &str, l: &Latency) -> String {
    format!(
        "{label}: n {} p50 {} p90 {} p99 {} p99.9 {} max {}",
        l.count,
        ms(l.p50_us),
        ms(l.p90_us),
        ms(l.p99_us),
        ms(l.p999_us),
        ms(l.max_us)
    )
}

/// The readable summary.
pub fn summary(r: &RunResult) -> String {
    let mut s = String::new();
    let p = &r.plan;
    let _ = writeln!(
        s,
        "scenario {:?}: {} connections, {} workers, channel type {:?}",
        p.scenario, p.connections, p.workers, p.channel_type
    );
    let _ = writeln!(
        s,
        "connect:   {} subscribed in {:.2} s ({:.0}/s), {} connect errors{}",
        r.subscribed,
        r.connect_ms as f64 / 1000.0,
        r.connects_per_s,
        r.counters.connect_errors,
        if r.connect_error_kinds.is_empty() {
            String::new()
        } else {
            format!(" {:?}", r.connect_error_kinds)
        }
    );
    if let Some(pb) = &r.publish {
        let _ = writeln!(
            s,
            "publish:   rate {}/s, {} B, {} s (+{} s warm-up): {} measured accepted, {} errors{}, \
             backlog max {}, REST rtt p50 {} p99 {}",
            p.rate,
            p.payload_bytes,
            p.duration_s,
            p.warmup_s,
            pb.measured_ok,
            pb.errors,
            if pb.error_kinds.is_empty() {
                String::new()
            } else {
                format!(" {:?}", pb.error_kinds)
            },
            pb.backlog_max,
            ms(pb.rtt_p50_us),
            ms(pb.rtt_p99_us),
        );
        let c = &r.counters;
        let _ = writeln!(
            s,
            "delivery:  expected {}, delivered {} ({:.0}/s), lost {}, duplicates {}, \
             reordered {}, disconnects {}",
            r.expected,
            c.delivered,
            r.delivered_per_s,
            r.lost,
            c.duplicates,
            c.reordered,
            c.disconnects
        );
        let l = &r.latency;
        let _ = writeln!(
            s,
            "latency:   count {}  p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}",
            l.count,
            ms(l.p50_us),
            ms(l.p90_us),
            ms(l.p99_us),
            ms(l.p999_us),
            ms(l.p9999_us),
            ms(l.max_us)
        );
    } else {
        let _ = writeln!(
            s,
            "idle hold: {} s, disconnects {}",
            p.duration_s, r.counters.disconnects
        );
    }
    if let Some(sv) = &r.server {
        let mb = |x: Option<ProcSample>| {
            x.map_or("?".to_string(), |x| {
                format!("{:.1} MB", x.rss_bytes as f64 / 1e6)
            })
        };
        let _ = writeln!(
            s,
            "server:    pid {} RSS before {} connected {} end {}; per connection {}; \
             CPU in window {}; CPU total {}",
            sv.pid,
            mb(sv.before),
            mb(sv.connected),
            mb(sv.end),
            sv.rss_per_connection_bytes
                .map_or("?".into(), |b| format!("{b:.0} B")),
            sv.window_cpu_s.map_or("?".into(), |c| format!("{c:.2} s")),
            sv.end.map_or("?".into(), |e| format!("{:.2} s", e.cpu_s)),
        );
    }
    if let (Some(b), Some(c)) = (r.kernel.before, r.kernel.connected) {
        let _ = writeln!(
            s,
            "kernel:    TCP sockets {} -> {}, TCP memory {:.1} MB -> {:.1} MB ({} per connection, \
             both loopback ends)",
            b.tcp_inuse,
            c.tcp_inuse,
            b.tcp_mem_bytes as f64 / 1e6,
            c.tcp_mem_bytes as f64 / 1e6,
            r.kernel
                .tcp_mem_per_connection_bytes
                .map_or("?".into(), |x| format!("{x:.0} B")),
        );
    }
    let _ = writeln!(
        s,
        "loadgen:   worker CPU {:.2} s, coordinator CPU {:.2} s",
        r.loadgen_worker_cpu_s, r.loadgen_coordinator_cpu_s
    );
    s
}

/// HdrHistogram's percentile distribution text (`Value Percentile TotalCount
/// 1/(1-Percentile)`), values in ms (recorded µs / 1000).
pub fn hgrm(h: &Histogram<u64>) -> String {
    let scale = 1000.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if h.is_empty() {
        return s;
    }
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / scale;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let _ = writeln!(
                s,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(s, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        s,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / scale,
        h.len()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn hgrm_has_header_rows_and_footer() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.saturating_record(v * 10);
        }
        let text = hgrm(&h);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        assert!(text.contains("#[Max     =       10.0"), "{text}");
        let last_row = text.lines().rfind(|l| !l.starts_with('#')).unwrap_or("");
        assert!(last_row.contains("1.000000000000       1000"), "{last_row}");
    }
}
