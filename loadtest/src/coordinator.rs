//! The coordinator: starts `--workers` copies of this binary as subscriber workers, waits until
//! every connection is up, runs the scenario's publishing (or idle hold), shows progress once a
//! second on stderr, takes the `/proc` readings, stops the workers and merges their final
//! counters and histograms into a [`RunResult`].

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use crate::proc_reading::{read_process, read_sockstat};
use crate::profile::{Plan, Scenario};
use crate::publisher::{self, PublishState};
use crate::report::{Interval, KernelReadings, Latency, RunResult, ServerReadings};
use crate::stats::{add_pairs, new_histogram, Counters};
use crate::worker::WorkerLine;

/// A message from a worker's stdout reader thread: `None` when its stdout closed.
type FromWorker = (usize, Option<WorkerLine>);

/// The coordinator's view of its workers.
struct Workers {
    children: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    rx: mpsc::UnboundedReceiver<FromWorker>,
    latest: Vec<Counters>,
    ready: Vec<Option<u64>>,
    finals: Vec<Option<WorkerLine>>,
    exited: Vec<bool>,
    /// Deliveries and latencies since the last progress line.
    second_delivered: u64,
    second_hist: Histogram<u64>,
    delivered_total: u64,
}

impl Workers {
    fn spawn(count: u32) -> Result<Workers, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut children = Vec::new();
        let mut stdins = Vec::new();
        for i in 0..count {
            let mut child = Command::new(&exe)
                .args(&args)
                .arg("--worker-index")
                .arg(i.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("cannot start worker {i}: {e}"))?;
            stdins.push(child.stdin.take());
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| format!("worker {i}: no stdout"))?;
            let tx = tx.clone();
            let idx = i as usize;
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<WorkerLine>(&line) {
                        Ok(msg) => {
                            if tx.send((idx, Some(msg))).is_err() {
                                return;
                            }
                        }
                        Err(e) => eprintln!("worker {idx}: unreadable line ({e}): {line}"),
                    }
                }
                let _ = tx.send((idx, None));
            });
            children.push(child);
        }
        let n = count as usize;
        Ok(Workers {
            children,
            stdins,
            rx,
            latest: vec![Counters::default(); n],
            ready: vec![None; n],
            finals: (0..n).map(|_| None).collect(),
            exited: vec![false; n],
            second_delivered: 0,
            second_hist: new_histogram(),
            delivered_total: 0,
        })
    }

    fn handle(&mut self, (idx, msg): FromWorker) {
        match msg {
            None => self.exited[idx] = true,
            Some(WorkerLine::Ready {
                connect_ms,
                counters,
            }) => {
                self.ready[idx] = Some(connect_ms);
                self.latest[idx] = counters;
            }
            Some(WorkerLine::Tick {
                counters,
                delivered,
                hist,
            }) => {
                self.latest[idx] = counters;
                self.second_delivered += delivered;
                self.delivered_total += delivered;
                add_pairs(&mut self.second_hist, &hist);
            }
            Some(line @ WorkerLine::Final { .. }) => self.finals[idx] = Some(line),
        }
    }

    fn sum_latest(&self) -> Counters {
        let mut c = Counters::default();
        for w in &self.latest {
            c.add(w);
        }
        c
    }

    fn all_ready(&self) -> bool {
        self.ready.iter().all(Option::is_some)
    }

    fn any_died_early(&self) -> Option<usize> {
        (0..self.exited.len()).find(|&i| self.exited[i] && self.finals[i].is_none())
    }

    fn stop(&mut self) {
        for stdin in &mut self.stdins {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(b"stop\n");
                let _ = s.flush();
            }
        }
    }

    fn cpu_s(&self) -> f64 {
        self.children
            .iter()
            .filter_map(|c| read_process(c.id()))
            .map(|s| s.cpu_s)
            .sum()
    }
}

/// Progress output, one line a second.
struct Progress {
    started: Instant,
    intervals: Vec<Interval>,
}

impl Progress {
    fn line(&mut self, w: &mut Workers, phase: &str, published: u64, connections: u64) {
        let c = w.sum_latest();
        let h = &w.second_hist;
        let iv = Interval {
            t_s: self.started.elapsed().as_secs(),
            connected: c.subscribed.saturating_sub(c.disconnects),
            delivered: w.second_delivered,
            published,
            p50_us: if h.is_empty() {
                0
            } else {
                h.value_at_quantile(0.5)
            },
            p99_us: if h.is_empty() {
                0
            } else {
                h.value_at_quantile(0.99)
            },
            max_us: h.max(),
        };
        eprintln!(
            "[{:>4}s] {phase:<8} connected {}/{} errors {} | published {} | delivered/s {} | \
             p99(1s) {:.3} ms max {:.3} ms",
            iv.t_s,
            iv.connected,
            connections,
            c.connect_errors,
            iv.published,
            iv.delivered,
            iv.p99_us as f64 / 1000.0,
            iv.max_us as f64 / 1000.0,
        );
        self.intervals.push(iv);
        w.second_delivered = 0;
        w.second_hist.reset();
    }
}

/// Runs the whole scenario and returns its result and merged histogram.
pub fn run(plan: Plan, server_pid: Option<u32>) -> Result<(RunResult, Histogram<u64>), String> {
    match plan.scenario {
        Scenario::Idle | Scenario::Broadcast | Scenario::Channels => {}
        other => {
            return Err(format!(
                "scenario {other:?} runs outside the coordinator (see main.rs)"
            ))
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, coordinate(plan, server_pid))
}

async fn coordinate(
    plan: Plan,
    server_pid: Option<u32>,
) -> Result<(RunResult, Histogram<u64>), String> {
    let mut server = server_pid.map(|pid| ServerReadings {
        pid,
        before: read_process(pid),
        ..ServerReadings::default()
    });
    let mut kernel = KernelReadings {
        before: read_sockstat(),
        ..KernelReadings::default()
    };
    let started = Instant::now();
    let mut w = Workers::spawn(plan.workers)?;
    let mut progress = Progress {
        started,
        intervals: Vec::new(),
    };
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;

    // Phase 1: connect.
    while !w.all_ready() {
        tokio::select! {
            msg = w.rx.recv() => match msg {
                Some(m) => w.handle(m),
                None => return Err("all workers are gone".into()),
            },
            _ = ticker.tick() => progress.line(&mut w, "connect", 0, plan.connections),
        }
        if let Some(i) = w.any_died_early() {
            return Err(format!("worker {i} exited before it was ready"));
        }
    }
    let connect_ms = started.elapsed().as_millis() as u64;
    let at_connect = w.sum_latest();
    if let Some(s) = server.as_mut() {
        s.connected = read_process(s.pid);
    }
    kernel.connected = read_sockstat();
    eprintln!(
        "all workers ready: {} subscribed, {} connect errors in {:.2} s",
        at_connect.subscribed,
        at_connect.connect_errors,
        connect_ms as f64 / 1000.0
    );

    // Phase 2: warm-up and measured window.
    let state = Rc::new(RefCell::new(PublishState::default()));
    let publishing = plan.scenario != Scenario::Idle;
    let window_start = Instant::now() + Duration::from_secs_f64(plan.warmup_s);
    let mut window_cpu_start = None;
    let mut publish_task = publishing.then(|| {
        let (plan, state) = (plan.clone(), state.clone());
        tokio::task::spawn_local(async move { publisher::run(&plan, state).await })
    });
    let hold_until = window_start + Duration::from_secs_f64(plan.duration_s);
    let mut drain_deadline: Option<Instant> = None;
    let mut window_end = None;
    loop {
        let published = {
            let st = state.borrow();
            st.report.measured_ok + st.report.warmup_ok
        };
        if window_cpu_start.is_none() && Instant::now() >= window_start {
            window_cpu_start = Some(server.as_ref().and_then(|s| read_process(s.pid)));
        }
        if let Some(t) = publish_task.as_mut() {
            if t.is_finished() {
                publish_task = None;
                window_end = Some(Instant::now());
                drain_deadline = Some(Instant::now() + Duration::from_secs_f64(plan.drain_s));
            }
        } else if !publishing && Instant::now() >= hold_until {
            window_end = Some(Instant::now());
            break;
        }
        if let Some(deadline) = drain_deadline {
            let expected = expected(&plan, &state.borrow().report, at_connect.subscribed);
            if w.delivered_total >= expected || Instant::now() >= deadline {
                break;
            }
        }
        tokio::select! {
            msg = w.rx.recv() => match msg {
                Some(m) => w.handle(m),
                None => return Err("all workers are gone".into()),
            },
            _ = ticker.tick() => {
                let phase = if drain_deadline.is_some() {
                    "drain"
                } else if Instant::now() < window_start {
                    "warmup"
                } else {
                    "measure"
                };
                progress.line(&mut w, phase, published, plan.connections);
            }
        }
        if let Some(i) = w.any_died_early() {
            return Err(format!("worker {i} exited during the run"));
        }
    }

    // Phase 3: readings, stop, merge.
    if let Some(s) = server.as_mut() {
        s.window_start = window_cpu_start.flatten();
        s.end = read_process(s.pid);
        if let (Some(a), Some(b)) = (s.window_start, s.end) {
            s.window_cpu_s = Some(b.cpu_s - a.cpu_s);
        }
        if let (Some(a), Some(b)) = (s.before, s.connected) {
            if at_connect.subscribed > 0 {
                s.rss_per_connection_bytes =
                    Some((b.rss_bytes as f64 - a.rss_bytes as f64) / at_connect.subscribed as f64);
            }
        }
    }
    if let (Some(a), Some(b)) = (kernel.before, kernel.connected) {
        if at_connect.subscribed > 0 {
            kernel.tcp_mem_per_connection_bytes = Some(
                (b.tcp_mem_bytes as f64 - a.tcp_mem_bytes as f64) / at_connect.subscribed as f64,
            );
        }
    }
    let loadgen_worker_cpu_s = w.cpu_s();
    let loadgen_coordinator_cpu_s = read_process(std::process::id()).map_or(0.0, |s| s.cpu_s);
    w.stop();
    while w.finals.iter().any(Option::is_none) {
        let msg = tokio::time::timeout(Duration::from_secs(30), w.rx.recv())
            .await
            .map_err(|_| "workers did not report within 30 s of stop".to_string())?;
        match msg {
            Some(m) => w.handle(m),
            None => break,
        }
        if let Some(i) = w.any_died_early() {
            return Err(format!("worker {i} exited without a final report"));
        }
    }
    for c in &mut w.children {
        let _ = c.wait();
    }
    let mut counters = Counters::default();
    let mut hist = new_histogram();
    let mut connect_error_kinds: Vec<(String, u64)> = Vec::new();
    for f in w.finals.iter().flatten() {
        if let WorkerLine::Final {
            counters: c,
            hist: h,
            error_kinds,
        } = f
        {
            counters.add(c);
            add_pairs(&mut hist, h);
            for (k, n) in error_kinds {
                match connect_error_kinds.iter_mut().find(|(x, _)| x == k) {
                    Some(e) => e.1 += n,
                    None => connect_error_kinds.push((k.clone(), *n)),
                }
            }
        }
    }
    let publish = publishing.then(|| std::mem::take(&mut state.borrow_mut().report));
    let expected = publish
        .as_ref()
        .map_or(0, |p| expected(&plan, p, at_connect.subscribed));
    let window_s = match window_end {
        Some(end) if end > window_start => (end - window_start).as_secs_f64(),
        _ => plan.duration_s,
    };
    let result = RunResult {
        subscribed: at_connect.subscribed,
        connect_ms,
        connects_per_s: at_connect.subscribed as f64 / (connect_ms.max(1) as f64 / 1000.0),
        connect_error_kinds,
        expected,
        lost: expected.saturating_sub(counters.delivered),
        delivered_per_s: if window_s > 0.0 {
            counters.delivered as f64 / window_s
        } else {
            0.0
        },
        latency: Latency::of(&hist),
        counters,
        publish,
        server,
        kernel,
        loadgen_worker_cpu_s,
        loadgen_coordinator_cpu_s,
        intervals: progress.intervals,
        plan,
    };
    Ok((result, hist))
}

/// Deliveries expected from the measured events the server accepted: × subscribed connections
/// for a broadcast; Σ channel members for the channels scenario.
fn expected(plan: &Plan, report: &publisher::PublishReport, subscribed: u64) -> u64 {
    match plan.scenario {
        Scenario::Broadcast => report.measured_ok * subscribed,
        _ => report.measured_recipients,
    }
}
