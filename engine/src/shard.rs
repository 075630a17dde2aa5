//! One shard's runtime: a pinned glommio executor that owns a `ringcast_core::shard::Shard`, its
//! listener, its connection tasks, a once-a-second sweep and its ends of the inter-shard rings.
//! Everything here is glue: decisions live in the core.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_lite::StreamExt;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use ringcast_core::app::AppTable;
use ringcast_core::shard::message::ShardMessage;
use ringcast_core::shard::{Shard, ShardSettings};
use tracing::{debug, info, warn};

use crate::conn_task;

/// Set by the signal thread: every shard starts draining at its next sweep.
pub static DRAIN_REQUESTED: AtomicBool = AtomicBool::new(false);

/// Cross-shard messages waiting for a full ring, over all targets, before connection tasks stop
/// reading from their sockets (backpressure instead of an unbounded queue).
const RING_OVERFLOW_MAX: usize = 65_536;

/// Entries of each of the executor's io_uring rings. Not for concurrency: the kernel sizes a
/// ring's cancel hash table from it (at most 256 buckets, reached at 4096), and every cancel
/// glommio submits (two preemption timers per reactor turn, a dropped connection's poll) walks
/// one bucket holding 1/buckets of all in-flight polls, one per open connection. glommio's
/// default of 128 gives 8 buckets: with 10,000 connections each cancel walked ≈ 1,250 entries.
const IO_RING_DEPTH: usize = 4096;

/// Everything a shard's tasks share. Single-threaded: `RefCell`s are never held across awaits.
pub struct ShardCtx {
    /// The sans-IO state machine.
    pub core: RefCell<Shard>,
    /// Waker of each connection task, by slab key, for fan-out wakeups.
    pub wakers: RefCell<Vec<Option<Waker>>>,
    /// Scratch buffer for socket reads (one per shard, borrowed only inside a poll).
    pub read_buf: RefCell<Vec<u8>>,
    /// Scratch buffer for coalesced socket writes.
    pub write_buf: RefCell<BytesMut>,
    /// Process start, the zero of the monotonic clock given to the core.
    start: Instant,
    senders: Senders<ShardMessage>,
    overflow: RefCell<Vec<VecDeque<ShardMessage>>>,
    overflow_len: Cell<usize>,
    /// The target whose popped overflow message is being awaited; new messages for it must
    /// queue behind it to keep per-target order.
    overflow_in_flight: Cell<Option<usize>>,
    overflow_waker: RefCell<Option<Waker>>,
    backpressure_waiters: RefCell<Vec<Waker>>,
    scratch_wake: RefCell<Vec<u32>>,
    scratch_outbox: RefCell<Vec<(u16, ShardMessage)>>,
    /// Waker of the bridge link task, woken when the core queues link output.
    pub link_waker: RefCell<Option<Waker>>,
}

impl ShardCtx {
    /// Monotonic milliseconds since start, plus one so that 0 never names a real instant.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// After every call into the core: wake connections with new output and ship messages to
    /// other shards.
    pub fn after_core(&self) {
        let mut wake = self.scratch_wake.borrow_mut();
        let mut outbox = self.scratch_outbox.borrow_mut();
        let link_output = {
            let mut core = self.core.borrow_mut();
            core.take_wakeups(&mut wake);
            core.take_outbox(&mut outbox);
            core.has_link_output()
        };
        if link_output {
            if let Some(waker) = self.link_waker.borrow().as_ref() {
                waker.wake_by_ref();
            }
        }
        if !wake.is_empty() {
            let wakers = self.wakers.borrow();
            for key in wake.drain(..) {
                if let Some(Some(waker)) = wakers.get(key as usize) {
                    waker.wake_by_ref();
                }
            }
        }
        for (target, message) in outbox.drain(..) {
            self.send(target, message);
        }
    }

    /// Sends in order: straight into the ring when nothing is waiting for that target, else
    /// behind the waiting messages (the overflow task drains them with awaits).
    fn send(&self, target: u16, message: ShardMessage) {
        let target = usize::from(target);
        let mut overflow = self.overflow.borrow_mut();
        if overflow[target].is_empty() && self.overflow_in_flight.get() != Some(target) {
            match self.senders.try_send_to(target, message) {
                Ok(()) => return,
                Err(glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(message))) => {
                    overflow[target].push_back(message);
                }
                Err(err) => {
                    debug!(target, %err, "peer shard ring closed; message dropped");
                    return;
                }
            }
        } else {
            overflow[target].push_back(message);
        }
        self.overflow_len.set(self.overflow_len.get() + 1);
        if let Some(waker) = self.overflow_waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// True while too many cross-shard messages wait: connection tasks pause reading.
    pub fn is_backpressured(&self, waker: &Waker) -> bool {
        if self.overflow_len.get() < RING_OVERFLOW_MAX {
            return false;
        }
        self.backpressure_waiters.borrow_mut().push(waker.clone());
        true
    }

    /// Registers a connection task's waker.
    pub fn set_waker(&self, key: u32, waker: &Waker) {
        let mut wakers = self.wakers.borrow_mut();
        let index = key as usize;
        if wakers.len() <= index {
            wakers.resize(index + 1, None);
        }
        match &wakers[index] {
            Some(existing) if existing.will_wake(waker) => {}
            _ => wakers[index] = Some(waker.clone()),
        }
    }

    /// Forgets a finished connection task's waker.
    pub fn clear_waker(&self, key: u32) {
        if let Some(slot) = self.wakers.borrow_mut().get_mut(key as usize) {
            *slot = None;
        }
    }
}

/// What each shard needs to start.
pub struct ShardStart {
    /// The listener this shard accepts on.
    pub listener: socket2::Socket,
    /// CPU to pin to.
    pub cpu: usize,
    /// The `--metrics-port` listener (given to one shard only).
    pub metrics_listener: Option<socket2::Socket>,
}

/// Engine settings every shard shares.
#[derive(Clone)]
pub struct EngineSettings {
    /// Shards in the process.
    pub shard_count: usize,
    /// Registered I/O memory per executor.
    pub io_memory_bytes: usize,
    /// Random part of socket ids.
    pub socket_id_base: u64,
    /// Largest WebSocket message.
    pub max_message_size: usize,
    /// Per-connection outbound cap.
    pub outbound_bytes_max: usize,
    /// Seconds for an HTTP request / upgrade.
    pub handshake_timeout_s: u64,
    /// Seconds to wait for connections to leave on drain.
    pub drain_timeout_s: u64,
    /// Echo endpoint path.
    pub echo_path: Option<String>,
    /// `/metrics` lives on its own port.
    pub metrics_port_separate: bool,
    /// The bridge's Unix socket when the node is one of several.
    pub bridge_socket: Option<std::path::PathBuf>,
    /// One node of several (`--adapter-driver redis`), as opposed to a bridge for webhooks only.
    pub cluster: bool,
}

/// Starts every shard on its own pinned executor thread; returns their join handles.
pub fn spawn_all(
    starts: Vec<ShardStart>,
    apps: Arc<AppTable>,
    settings: EngineSettings,
) -> Result<Vec<glommio::ExecutorJoinHandle<()>>, String> {
    let mesh: MeshBuilder<ShardMessage, Full> = MeshBuilder::full(
        settings.shard_count,
        ringcast_core::limits::SHARD_RING_CAPACITY,
    );
    let mut handles = Vec::with_capacity(starts.len());
    for (ordinal, start) in starts.into_iter().enumerate() {
        let mesh = mesh.clone();
        let apps = apps.clone();
        let settings = settings.clone();
        let fd = start.listener.into_raw_fd();
        let metrics_fd = start.metrics_listener.map(IntoRawFd::into_raw_fd);
        let handle = LocalExecutorBuilder::new(Placement::Fixed(start.cpu))
            .name(&format!("shard-{ordinal}"))
            .io_memory(settings.io_memory_bytes)
            .ring_depth(IO_RING_DEPTH)
            .spawn(move || async move {
                // SAFETY: fd is a listening TCP socket we own; ownership moves to glommio here.
                #[allow(unsafe_code)]
                let listener = unsafe { TcpListener::from_raw_fd(fd) };
                // SAFETY: as above, for the metrics listener this shard alone owns.
                #[allow(unsafe_code)]
                let metrics = metrics_fd.map(|fd| unsafe { TcpListener::from_raw_fd(fd) });
                run_shard(listener, metrics, mesh, apps, settings).await;
            })
            .map_err(|e| {
                format!(
                    "cannot start shard {ordinal} on CPU {}: {e} (io_uring blocked by seccomp or \
                     kernel.io_uring_disabled? RLIMIT_MEMLOCK too low? see `ulimit -l`)",
                    start.cpu
                )
            })?;
        handles.push(handle);
    }
    Ok(handles)
}

async fn run_shard(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    mesh: MeshBuilder<ShardMessage, Full>,
    apps: Arc<AppTable>,
    settings: EngineSettings,
) {
    let (senders, receivers): (Senders<ShardMessage>, Receivers<ShardMessage>) =
        match mesh.join().await {
            Ok(pair) => pair,
            Err(_) => {
                warn!("shard could not join the inter-shard mesh");
                return;
            }
        };
    // The mesh peer id is the shard index: socket ids and owner hashing use it.
    let shard_index = senders.peer_id();
    let core = Shard::new(
        ShardSettings {
            shard_index: shard_index as u16,
            shard_count: settings.shard_count as u16,
            socket_id_base: settings.socket_id_base,
            max_message_size: settings.max_message_size,
            outbound_bytes_max: settings.outbound_bytes_max,
            handshake_timeout_s: settings.handshake_timeout_s,
            echo_path: settings.echo_path.clone(),
            metrics_port_separate: settings.metrics_port_separate,
            bridge_enabled: settings.bridge_socket.is_some(),
            cluster_enabled: settings.cluster,
        },
        apps,
    );
    let ctx = Rc::new(ShardCtx {
        core: RefCell::new(core),
        wakers: RefCell::new(Vec::new()),
        read_buf: RefCell::new(vec![0; 64 * 1024]),
        write_buf: RefCell::new(BytesMut::with_capacity(conn_task::WRITE_CHUNK_BYTES * 2)),
        start: Instant::now(),
        overflow: RefCell::new((0..settings.shard_count).map(|_| VecDeque::new()).collect()),
        senders,
        overflow_len: Cell::new(0),
        overflow_in_flight: Cell::new(None),
        overflow_waker: RefCell::new(None),
        backpressure_waiters: RefCell::new(Vec::new()),
        scratch_wake: RefCell::new(Vec::new()),
        scratch_outbox: RefCell::new(Vec::new()),
        link_waker: RefCell::new(None),
    });
    debug!(shard = shard_index, "shard started");

    let mut receivers = receivers;
    let mut receiver_tasks = Vec::new();
    for (_peer, mut stream) in receivers.streams() {
        let ctx = ctx.clone();
        receiver_tasks.push(glommio::spawn_local(async move {
            while let Some(message) = stream.next().await {
                let now_ms = ctx.now_ms();
                ctx.core.borrow_mut().handle_message(message, now_ms);
                ctx.after_core();
            }
        }));
    }
    let overflow_task = glommio::spawn_local(drain_overflow(ctx.clone()));
    let link_task = settings
        .bridge_socket
        .clone()
        .map(|path| glommio::spawn_local(crate::bridge_link::run(ctx.clone(), path)));
    ctx.core.borrow_mut().set_unix_time(unix_now_s());
    let accept_task = glommio::spawn_local(accept_loop(ctx.clone(), listener, false));
    let _metrics_task = metrics_listener
        .map(|listener| glommio::spawn_local(accept_loop(ctx.clone(), listener, true)));

    // The sweep: once a second for timeouts; the drain flag is checked four times a second.
    let mut quarter: u64 = 0;
    let mut accept_task = Some(accept_task);
    let mut drain_deadline: Option<Instant> = None;
    loop {
        glommio::timer::sleep(Duration::from_millis(250)).await;
        quarter += 1;
        let now_ms = ctx.now_ms();
        if drain_deadline.is_none() && DRAIN_REQUESTED.load(Ordering::Relaxed) {
            // Stop accepting first (drops the listener), then tell every connection.
            drop(accept_task.take());
            ctx.core.borrow_mut().handle_drain(now_ms);
            ctx.after_core();
            drain_deadline = Some(Instant::now() + Duration::from_secs(settings.drain_timeout_s));
            info!(shard = shard_index, "draining");
        }
        if quarter.is_multiple_of(4) {
            let mut core = ctx.core.borrow_mut();
            core.set_unix_time(unix_now_s());
            core.handle_tick(now_ms);
            drop(core);
            ctx.after_core();
        }
        if let Some(deadline) = drain_deadline {
            let left = ctx.core.borrow().draining_connection_count();
            if left == 0 || Instant::now() >= deadline {
                info!(shard = shard_index, connections_left = left, "drained");
                break;
            }
        }
    }
    drop(link_task);
    drop(overflow_task);
    drop(receiver_tasks);
}

/// Seconds since the Unix epoch (REST signatures carry wall-clock timestamps).
fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Accepts connections for the life of the shard; `metrics_only` marks the metrics port.
async fn accept_loop(ctx: Rc<ShardCtx>, listener: TcpListener, metrics_only: bool) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if let Err(err) = stream.set_nodelay(true) {
                    debug!(%err, "TCP_NODELAY failed");
                }
                let now_ms = ctx.now_ms();
                let key = if metrics_only {
                    ctx.core.borrow_mut().handle_accept_metrics(now_ms)
                } else {
                    ctx.core.borrow_mut().handle_accept(now_ms)
                };
                glommio::spawn_local(conn_task::serve(ctx.clone(), stream, key)).detach();
            }
            Err(err) => {
                // EMFILE/ENFILE and friends: back off instead of spinning.
                warn!(%err, "accept failed");
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Sends messages that found their ring full, in order, waiting for room.
async fn drain_overflow(ctx: Rc<ShardCtx>) {
    loop {
        let next = {
            let mut overflow = ctx.overflow.borrow_mut();
            overflow
                .iter_mut()
                .enumerate()
                .find_map(|(target, queue)| queue.pop_front().map(|m| (target, m)))
        };
        let Some((target, message)) = next else {
            futures_lite::future::poll_fn(|cx| {
                if ctx.overflow_len.get() > 0 {
                    std::task::Poll::Ready(())
                } else {
                    *ctx.overflow_waker.borrow_mut() = Some(cx.waker().clone());
                    std::task::Poll::Pending
                }
            })
            .await;
            continue;
        };
        ctx.overflow_in_flight.set(Some(target));
        if ctx.senders.send_to(target, message).await.is_err() {
            debug!(target, "peer shard ring closed; message dropped");
        }
        ctx.overflow_in_flight.set(None);
        ctx.overflow_len
            .set(ctx.overflow_len.get().saturating_sub(1));
        if ctx.overflow_len.get() < RING_OVERFLOW_MAX / 2 {
            for waker in ctx.backpressure_waiters.borrow_mut().drain(..) {
                waker.wake();
            }
        }
    }
}
