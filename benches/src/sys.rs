//! The few Linux calls the bench mains need and std does not offer: which CPUs this process may
//! run on, pinning the calling thread to one, raising the open-file limit, and the calling
//! thread's CPU time (to tell a preempted measurement from a slow one).
//!
//! Each `unsafe` block is a plain libc call on memory owned by the caller's stack frame.

use std::io;
use std::time::Duration;

/// CPUs the calling thread may run on (its affinity mask), in ascending order.
#[allow(unsafe_code)]
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain bits; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid 0 is this thread.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = usize::try_from(libc::CPU_SETSIZE).unwrap_or(1024);
    // SAFETY: CPU_ISSET only reads `set`, and every index is below CPU_SETSIZE.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pins the calling thread to `cpu` (a bench must not migrate between cores mid-measurement).
#[allow(unsafe_code)]
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let max = usize::try_from(libc::CPU_SETSIZE).unwrap_or(1024);
    if cpu >= max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond CPU_SETSIZE ({max})"),
        ));
    }
    // SAFETY: as in `allowed_cpus`; CPU_SET writes one bit below CPU_SETSIZE (checked above).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the new soft limit. The hard
/// limit itself cannot be raised without privileges (it is 20,000 on the development VMs).
#[allow(unsafe_code)]
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit with cur ≤ max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// CPU time (user + system) the calling thread has used so far.
#[allow(unsafe_code)]
pub fn thread_cpu_time() -> io::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// Picks `count` CPUs for a bench's pinned threads: the explicitly `requested` ones if given,
/// else the first `count` CPUs this process may use. When fewer are allowed, the last allowed
/// CPU is repeated (the bench still runs, but its threads then share a core; the caller prints
/// a warning from the returned flag).
pub fn choose_cpus(requested: &[usize], count: usize) -> io::Result<(Vec<usize>, bool)> {
    if requested.len() >= count {
        return Ok((requested[..count].to_vec(), false));
    }
    let allowed = allowed_cpus()?;
    let Some(&last) = allowed.last() else {
        return Err(io::Error::other("the affinity mask is empty"));
    };
    let mut chosen: Vec<usize> = requested.to_vec();
    for &cpu in &allowed {
        if chosen.len() == count {
            break;
        }
        if !chosen.contains(&cpu) {
            chosen.push(cpu);
        }
    }
    let shared = chosen.len() < count;
    chosen.resize(count, last);
    Ok((chosen, shared))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn this_thread_may_run_somewhere() {
        assert!(!allowed_cpus().unwrap().is_empty());
    }

    #[test]
    fn pinning_to_an_allowed_cpu_works_and_sticks() {
        let cpu = allowed_cpus().unwrap()[0];
        std::thread::spawn(move || {
            pin_current_thread(cpu).unwrap();
            assert_eq!(allowed_cpus().unwrap(), vec![cpu]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn choose_cpus_prefers_the_request_then_fills_from_the_mask() {
        assert_eq!(choose_cpus(&[5, 7], 2).unwrap(), (vec![5, 7], false));
        let (cpus, _) = choose_cpus(&[], 2).unwrap();
        assert_eq!(cpus.len(), 2);
    }

    #[test]
    fn thread_cpu_time_moves_forward() {
        let a = thread_cpu_time().unwrap();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time().unwrap() >= a);
    }
}
