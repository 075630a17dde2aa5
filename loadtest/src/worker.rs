//! A worker process (`--worker-index i`): opens its share of the subscriber connections on one
//! thread, prints one JSON line per second and one when every connection has been attempted,
//! and on `stop` (or EOF) on stdin prints its final counters and histogram as one JSON line.
//! The lines ([`WorkerLine`]) are the whole protocol between a worker and the coordinator.

use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::profile::Plan;
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

/// Runs worker `index` of `plan` until told to stop.
pub fn run(plan: Plan, index: u32) -> Result<(), String> {
    let share = plan.worker_share(index);
    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
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
        let _ = stop_tx.send(());
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let shared = Rc::new(Shared {
            connect_slots: tokio::sync::Semaphore::new(plan.connect_concurrency as usize),
            connect_timeout: CONNECT_TIMEOUT,
            share_len: share.end - share.start,
            all_attempted: tokio::sync::Notify::new(),
            stats: std::cell::RefCell::new(WorkerStats::new()),
            plan,
        });
        let started = Instant::now();
        if shared.share_len == 0 {
            shared.all_attempted.notify_one();
        }
        for g in share {
            tokio::task::spawn_local(run_connection(shared.clone(), g));
        }
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        let mut ready_sent = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let mut st = shared.stats.borrow_mut();
                    let delivered = st.counters.delivered - st.delivered_at_last_tick;
                    st.delivered_at_last_tick = st.counters.delivered;
                    let hist = histogram_to_pairs(&st.interval);
                    st.interval.reset();
                    emit(&WorkerLine::Tick { counters: st.counters.clone(), delivered, hist });
                }
                _ = shared.all_attempted.notified(), if !ready_sent => {
                    ready_sent = true;
                    emit(&WorkerLine::Ready {
                        connect_ms: started.elapsed().as_millis() as u64,
                        counters: shared.stats.borrow().counters.clone(),
                    });
                }
                _ = stop_rx.recv() => break,
            }
        }
        let st = shared.stats.borrow();
        emit(&WorkerLine::Final {
            counters: st.counters.clone(),
            hist: histogram_to_pairs(&st.total),
            error_kinds: st.error_kinds.clone(),
        });
    });
    Ok(())
}
