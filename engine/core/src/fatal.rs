//! What a panic does to a ringcast process: it ends it. A panic means some state broke an
//! invariant; a shard thread that stopped while the others run is a half-alive node (its
//! connections hang, the other shards wait for its acks, `/ready` still says 200), and a bridge
//! task that stopped silently loses what it carried. So every thread's panic prints one line and
//! exits with [`EXIT_PANIC`]: the engine's supervisor (systemd, Kubernetes) restarts it and the
//! load balancer moves its clients; the engine restarts its bridge the same way.

/// Exit status after a panic (`EX_SOFTWARE` of sysexits.h: an internal software error).
pub const EXIT_PANIC: i32 = 70;

/// Installs the panic hook of the process named `process`: one line on stderr naming the
/// thread, the place and the message, then exit with [`EXIT_PANIC`].
pub fn exit_on_panic(process: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "{process}: fatal: thread '{thread}' panicked at {place}: {message}; exiting with \
             status {EXIT_PANIC} so that the supervisor restarts the process"
        );
        std::process::exit(EXIT_PANIC);
    }));
}
