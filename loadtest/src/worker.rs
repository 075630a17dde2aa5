//! A worker process (`--worker-index i`): opens its share of the subscriber connections (set up
//! on a tokio connect thread, then received on one `mio` event loop, [`crate::rx`]), prints one
//! JSON line per second and one when every connection has been attempted, and on `stop` (or
//! EOF) on stdin prints its final counters and histogram as one JSON line.
//! The lines ([`WorkerLine`]) are the whole protocol between a worker and the coordinator.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::profile::Plan;
use crate::rx::{self, Inbox, Reporter, RxLoop};
use crate::stats::{histogram_to_pairs, Counters, WorkerStats};
use crate::ws_client::{run_connection, Shared};

/// Time one connection gets to connect, upgrade and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// One line a worker writes to stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerLine {
    /// Every connection has subscribed or failed.
    Ready {
        /// Milliseconds from the worker's start until then.
        connect_ms: u64,
        /// Counters at that moment.
        counters: Counters,
    },
    /// Once a second.
    Tick {
        /// Running totals.
        counters: Counters,
        /// Measured deliveries since the previous tick.
        delivered: u64,
        /// Latencies since the previous tick, `[value_us, count]`.
        hist: Vec<[u64; 2]>,
    },
    /// After `stop`.
    Final {
        /// Final totals.
        counters: Counters,
        /// Latencies of the whole measured window, `[value_us, count]`.
        hist: Vec<[u64; 2]>,
        /// Connect error kinds with counts.
        error_kinds: Vec<(String, u64)>,
    },
}

fn emit(line: &WorkerLine) {
    if let Ok(text) = serde_json::to_string(line) {
        // Stdout is line-buffered; a closed pipe means the coordinator is gone, so the line
        // has nowhere to go anyway.
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

/// Turns the receive loop's reports into protocol lines.
struct LineReporter {
    started: Instant,
}

impl Reporter for LineReporter {
    fn ready(&mut self, stats: &WorkerStats) {
        emit(&WorkerLine::Ready {
            connect_ms: self.started.elapsed().as_millis() as u64,
            counters: stats.counters.clone(),
        });
    }

    fn tick(&mut self, st: &mut WorkerStats) {
        let delivered = st.counters.delivered - st.delivered_at_last_tick;
        st.delivered_at_last_tick = st.counters.delivered;
        let hist = histogram_to_pairs(&st.interval);
        st.interval.reset();
        emit(&WorkerLine::Tick {
            counters: st.counters.clone(),
            delivered,
            hist,
        });
    }
}

/// Runs worker `index` of `plan` until told to stop. This thread runs the receive loop; a
/// connect thread sets connections up on tokio and hands them over, and a stdin thread waits
/// for `stop`.
pub fn run(plan: Plan, index: u32) -> Result<(), String> {
    let started = Instant::now();
    let share = plan.worker_share(index);
    let poll = mio::Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let waker =
        Arc::new(mio::Waker::new(poll.registry(), rx::WAKER).map_err(|e| format!("eventfd: {e}"))?);
    let (inbox_tx, inbox_rx) = std::sync::mpsc::channel::<Inbox>();

    let rx_waker = waker.clone();
    let (stop_tx, stop_waker) = (inbox_tx.clone(), waker.clone());
    std::thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match std::io::stdin().read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line.trim() == "stop" => break,
                Ok(_) => {}
            }
        }
        let _ = stop_tx.send(Inbox::Stop);
        let _ = stop_waker.wake();
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let share_len = share.end - share.start;
    let connect_slots = tokio::sync::Semaphore::new(plan.connect_concurrency as usize);
    std::thread::Builder::new()
        .name("connect".into())
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            let shared = Rc::new(Shared {
                plan,
                connect_slots,
                connect_timeout: CONNECT_TIMEOUT,
                inbox: inbox_tx,
                waker,
            });
            for g in share {
                local.spawn_local(run_connection(shared.clone(), g));
            }
            // Returns once every connection has been handed over or has failed.
            rt.block_on(local);
        })
        .map_err(|e| format!("connect thread: {e}"))?;

    let st = RxLoop::new(poll, rx_waker, inbox_rx, share_len).run(&mut LineReporter { started })?;
    emit(&WorkerLine::Final {
        counters: st.counters.clone(),
        hist: histogram_to_pairs(&st.total),
        error_kinds: st.error_kinds.clone(),
    });
    Ok(())
}
