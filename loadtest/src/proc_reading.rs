//! Readings from `/proc`: a process's CPU seconds (`/proc/PID/stat` utime + stime over
//! CLK_TCK) and resident memory (`/proc/PID/status` VmRSS), and the kernel's TCP socket
//! counts and memory (`/proc/net/sockstat`).

use serde::Serialize;

/// CPU time and memory of one process at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// The kernel's TCP socket figures (both ends of loopback connections count).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SockStat {
    /// TCP sockets in use.
    pub tcp_inuse: u64,
    /// TCP sockets allocated.
    pub tcp_alloc: u64,
    /// Memory of TCP socket buffers, bytes (the `mem` pages × page size).
    pub tcp_mem_bytes: u64,
}

/// Reads CPU seconds and RSS of `pid`; `None` when the process is gone or unreadable.
pub fn read_process(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; `after` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(ProcSample {
        cpu_s: (utime + stime) as f64 / clock_ticks_per_second(),
        rss_bytes: rss_kb * 1024,
    })
}

/// Reads `/proc/net/sockstat` (as seen from this process's network namespace).
pub fn read_sockstat() -> Option<SockStat> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("TCP:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |name: &str| -> Option<u64> {
        let i = words.iter().position(|w| *w == name)?;
        words.get(i + 1)?.parse().ok()
    };
    Some(SockStat {
        tcp_inuse: field("inuse")?,
        tcp_alloc: field("alloc")?,
        tcp_mem_bytes: field("mem")? * page_size(),
    })
}

#[allow(unsafe_code)]
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[allow(unsafe_code)]
fn page_size() -> u64 {
    // SAFETY: as above, a read-only configuration query.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = read_process(std::process::id());
        assert!(s.is_some_and(|s| s.rss_bytes > 0 && s.cpu_s >= 0.0));
        assert!(read_sockstat().is_some());
    }
}
