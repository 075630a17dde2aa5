//! Startup checks of the host: io_uring available, RLIMIT_MEMLOCK large enough for every shard's
//! rings, RLIMIT_NOFILE raised to its hard limit. Each failure names its cause and the fix.

use ringcast_core::limits::{IO_MEMORY_BYTES_MAX, IO_MEMORY_BYTES_MIN, MEMLOCK_BYTES_MIN};
use tracing::{info, warn};

/// What the checks decided.
pub struct HostPlan {
    /// Bytes of registered I/O memory per shard (glommio `io_memory`).
    pub io_memory_bytes: usize,
    /// File descriptors this process may open (after raising the soft limit).
    pub nofile: u64,
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::getrlimit(resource, &mut limit) };
    (rc == 0).then_some((limit.rlim_cur, limit.rlim_max))
}

fn raise_nofile() -> u64 {
    let Some((soft, hard)) = rlimit(libc::RLIMIT_NOFILE) else {
        return 0;
    };
    if soft >= hard {
        return soft;
    }
    let limit = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct we own.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    if rc == 0 {
        hard
    } else {
        soft
    }
}

/// Runs the checks; `Err` is a one-line reason with the fix.
pub fn run(shards: usize) -> Result<HostPlan, String> {
    match std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        Ok(value) if value.trim() == "2" => {
            return Err(
                "io_uring is disabled on this host (kernel.io_uring_disabled=2); \
                 fix: sysctl -w kernel.io_uring_disabled=0"
                    .into(),
            )
        }
        Ok(value) if value.trim() == "1" => warn!(
            "kernel.io_uring_disabled=1: only members of kernel.io_uring_group may use io_uring; \
             if startup fails, run as such a user or set kernel.io_uring_disabled=0"
        ),
        _ => {}
    }
    let (memlock, _) = rlimit(libc::RLIMIT_MEMLOCK).unwrap_or((u64::MAX, u64::MAX));
    if memlock < MEMLOCK_BYTES_MIN {
        return Err(format!(
            "RLIMIT_MEMLOCK is {} KiB; io_uring needs at least {} KiB; \
             fix: ulimit -l 8192 (shell), LimitMEMLOCK=8M (systemd) or memlock in /etc/security/limits.conf",
            memlock / 1024,
            MEMLOCK_BYTES_MIN / 1024
        ));
    }
    // glommio registers its buffer in three rings per shard; keep a quarter of the limit spare.
    let budget = memlock.saturating_mul(3) / 4 / (3 * shards.max(1) as u64);
    let io_memory_bytes =
        (budget.min(IO_MEMORY_BYTES_MAX as u64) as usize).max(IO_MEMORY_BYTES_MIN);
    if (io_memory_bytes as u64) * 3 * (shards as u64) > memlock {
        warn!(
            memlock_kib = memlock / 1024,
            shards,
            "RLIMIT_MEMLOCK is too small to register I/O buffers for every shard; \
             network I/O still works, but raise it (ulimit -l / LimitMEMLOCK) for best results"
        );
    }
    let nofile = raise_nofile();
    if nofile < 4096 {
        warn!(
            nofile,
            "RLIMIT_NOFILE is low: the node can hold fewer than {nofile} connections; \
             fix: ulimit -n 1048576 (shell) or LimitNOFILE=1048576 (systemd)"
        );
    }
    info!(
        memlock_kib = memlock / 1024,
        io_memory_kib = io_memory_bytes / 1024,
        nofile,
        "host checks passed"
    );
    Ok(HostPlan {
        io_memory_bytes,
        nofile,
    })
}

/// CPUs this process may run on (sched_getaffinity), in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set.
    #[allow(unsafe_code)]
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: we pass the size of the set we own; the kernel fills it.
    #[allow(unsafe_code)]
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads the set we own, index below CPU_SETSIZE.
        .filter(|cpu| {
            #[allow(unsafe_code)]
            unsafe {
                libc::CPU_ISSET(*cpu, &set)
            }
        })
        .collect()
}
