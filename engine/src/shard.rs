//! One shard's runtime: a pinned glommio executor that owns a `ringcast_core::shard::Shard`, its
//! listener, its connection tasks, a once-a-second sweep and its ends of the inter-shard rings.
//! Everything here is glue: decisions live in the core.

use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement, Task};
use ringcast_core::app::AppTable;
use ringcast_core::shard::message::ShardMessage;
use ringcast_core::shard::{Shard, ShardSettings};
use tracing::{debug, info, warn};

use crate::conn_task::{self, Plain, Transport};
use crate::shard_ctx::{drain_overflow, ShardCtx};
use crate::tls::TlsTransport;
use ringcast_core::limits::{
    ACCEPT_RETRY_DELAY_MS, IO_RING_ENTRIES, SHARDS_START_WAIT_MS_MAX, SOCKET_WRITE_CHUNK_BYTES,
    SWEEP_INTERVAL_MS,
};

/// Set by the signal thread: every shard starts draining at its next sweep.
pub static DRAIN_REQUESTED: AtomicBool = AtomicBool::new(false);

/// Shards whose tasks run (joined the mesh, not yet stopped): `/ready` is 503 on every shard
/// until all of them do.
static SHARDS_RUNNING: AtomicUsize = AtomicUsize::new(0);

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
    /// The Socket.IO dialect's settings.
    pub socketio: ringcast_core::socketio::SocketIoSettings,
    /// Channel functions: the configured functions, the associations at start.
    pub functions: ringcast_core::functions::FunctionSettings,
    /// The channels JSON dialect's limits.
    pub channels_json: ringcast_core::channels_json::ChannelsJsonSettings,
    /// `/metrics` lives on its own port.
    pub metrics_port_separate: bool,
    /// The bridge's Unix socket when the node is one of several.
    pub bridge_socket: Option<std::path::PathBuf>,
    /// One node of several (`--adapter-driver redis`), as opposed to a bridge for webhooks only.
    pub cluster: bool,
    /// TLS on the client port (`--tls-cert-file`); the metrics port stays plain.
    pub tls: Option<Arc<rustls::ServerConfig>>,
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
            .ring_depth(IO_RING_ENTRIES)
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

/// One shard's life: joins the mesh, builds the core and its context, starts the shard's tasks
/// (mesh receivers, overflow drain, bridge link, accept loops), then runs the sweep until the
/// shard has drained, and stops the tasks.
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
    let core = Shard::new(core_settings(shard_index, &settings), apps);
    let ctx = Rc::new(ShardCtx::new(
        core,
        senders,
        settings.shard_count,
        SOCKET_WRITE_CHUNK_BYTES * 2,
    ));
    debug!(shard = shard_index, "shard started");

    let mut receivers = receivers;
    let receiver_tasks = spawn_receivers(&ctx, &mut receivers);
    let overflow_task = glommio::spawn_local(drain_overflow(ctx.clone()));
    let link_task = settings
        .bridge_socket
        .clone()
        .map(|path| glommio::spawn_local(crate::bridge_link::run(ctx.clone(), path)));
    ctx.core.borrow_mut().set_unix_time(unix_now_s());
    SHARDS_RUNNING.fetch_add(1, Ordering::SeqCst);
    wait_for_every_shard(&ctx, settings.shard_count).await;
    let accept_task = glommio::spawn_local(accept_loop(
        ctx.clone(),
        listener,
        Port::Client(settings.tls.clone()),
    ));
    let _metrics_task = metrics_listener
        .map(|listener| glommio::spawn_local(accept_loop(ctx.clone(), listener, Port::Metrics)));

    sweep_until_drained(&ctx, accept_task, shard_index, &settings).await;
    SHARDS_RUNNING.fetch_sub(1, Ordering::SeqCst);
    drop(link_task);
    drop(overflow_task);
    drop(receiver_tasks);
}

/// The core's settings for the shard at `shard_index`, from the engine settings every shard
/// shares.
fn core_settings(shard_index: usize, settings: &EngineSettings) -> ShardSettings {
    ShardSettings {
        shard_index: shard_index as u16,
        shard_count: settings.shard_count as u16,
        socket_id_base: settings.socket_id_base,
        max_message_size: settings.max_message_size,
        outbound_bytes_max: settings.outbound_bytes_max,
        handshake_timeout_s: settings.handshake_timeout_s,
        echo_path: settings.echo_path.clone(),
        socketio: settings.socketio.clone(),
        functions: settings.functions.clone(),
        channels_json: settings.channels_json,
        metrics_port_separate: settings.metrics_port_separate,
        bridge_enabled: settings.bridge_socket.is_some(),
        cluster_enabled: settings.cluster,
        // The trigger's code is compiled into debug builds only; the variable is read there too.
        fault_trigger: cfg!(debug_assertions)
            && std::env::var_os("RINGCAST_TEST_FAULT_TRIGGER").is_some_and(|v| v == "1"),
    }
}

/// Before the first accept: waits (a few milliseconds at start, at most
/// [`SHARDS_START_WAIT_MS_MAX`]) until every shard runs, so that no shard answers `/ready` with
/// 200 while another has not started, and no shard answers it with 503 from a stale view.
async fn wait_for_every_shard(ctx: &ShardCtx, shard_count: usize) {
    let started = Instant::now();
    while SHARDS_RUNNING.load(Ordering::SeqCst) < shard_count
        && started.elapsed() < Duration::from_millis(SHARDS_START_WAIT_MS_MAX)
    {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    tell_node_running(ctx, shard_count);
}

/// Tells the core whether every shard of the node runs.
fn tell_node_running(ctx: &ShardCtx, shard_count: usize) {
    let running = SHARDS_RUNNING.load(Ordering::SeqCst) == shard_count;
    ctx.core.borrow_mut().set_node_running(running);
}

/// One task per other shard, handing each message from that shard's ring to the core.
fn spawn_receivers(ctx: &Rc<ShardCtx>, receivers: &mut Receivers<ShardMessage>) -> Vec<Task<()>> {
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
    receiver_tasks
}

/// The sweep: once a second for timeouts; the drain flag is checked four times a second. When
/// the flag is up, stops accepting (drops `accept_task`) and drains; returns once no connection
/// is left or the drain timeout has passed. Its own piece because it is the shard's whole life
/// after start-up.
async fn sweep_until_drained(
    ctx: &ShardCtx,
    accept_task: Task<()>,
    shard_index: usize,
    settings: &EngineSettings,
) {
    let drain_timeout_s = settings.drain_timeout_s;
    let mut quarter: u64 = 0;
    let mut accept_task = Some(accept_task);
    let mut drain_deadline: Option<Instant> = None;
    loop {
        glommio::timer::sleep(Duration::from_millis(SWEEP_INTERVAL_MS)).await;
        quarter += 1;
        let now_ms = ctx.now_ms();
        if drain_deadline.is_none() && DRAIN_REQUESTED.load(Ordering::Relaxed) {
            // Stop accepting first (drops the listener), then tell every connection.
            drop(accept_task.take());
            ctx.core.borrow_mut().handle_drain(now_ms);
            ctx.after_core();
            drain_deadline = Some(Instant::now() + Duration::from_secs(drain_timeout_s));
            info!(shard = shard_index, "draining");
        }
        tell_node_running(ctx, settings.shard_count);
        if quarter.is_multiple_of(1_000 / SWEEP_INTERVAL_MS) {
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
}

/// Seconds since the Unix epoch (REST signatures carry wall-clock timestamps).
fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Which listener an accept loop serves.
enum Port {
    /// The client port (WebSocket and REST), with TLS when configured.
    Client(Option<Arc<rustls::ServerConfig>>),
    /// The `--metrics-port` listener: always plain.
    Metrics,
}

/// Accepts connections for the life of the shard.
async fn accept_loop(ctx: Rc<ShardCtx>, listener: TcpListener, port: Port) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if let Err(err) = stream.set_nodelay(true) {
                    debug!(%err, "TCP_NODELAY failed");
                }
                let now_ms = ctx.now_ms();
                match &port {
                    Port::Metrics => {
                        let key = ctx.core.borrow_mut().handle_accept_metrics(now_ms);
                        spawn_connection(&ctx, stream, key, Plain::default());
                    }
                    Port::Client(None) => {
                        let key = accept_client(&ctx, &stream, now_ms);
                        spawn_connection(&ctx, stream, key, Plain::default());
                    }
                    Port::Client(Some(config)) => match TlsTransport::new(config) {
                        Ok(tls) => {
                            let key = accept_client(&ctx, &stream, now_ms);
                            spawn_connection(&ctx, stream, key, tls);
                        }
                        // Only a configuration rustls refuses gets here, and it was built
                        // and checked at start; the socket is dropped.
                        Err(err) => warn!(%err, "cannot start a TLS connection"),
                    },
                }
            }
            Err(err) => {
                // EMFILE/ENFILE and friends: back off instead of spinning.
                warn!(%err, "accept failed");
                glommio::timer::sleep(Duration::from_millis(ACCEPT_RETRY_DELAY_MS)).await;
            }
        }
    }
}

/// A client socket accepted: the core gets its key and, when the socket can say, the peer's
/// address (an app's WebSocket-over-HTTP backend is told it).
fn accept_client(ctx: &ShardCtx, stream: &glommio::net::TcpStream, now_ms: u64) -> u32 {
    let mut core = ctx.core.borrow_mut();
    let key = core.handle_accept(now_ms);
    if let Ok(peer) = stream.peer_addr() {
        core.set_peer_ip(key, peer.ip().to_canonical());
    }
    key
}

/// Starts the task that serves one accepted connection through `transport`.
fn spawn_connection<T: Transport + 'static>(
    ctx: &Rc<ShardCtx>,
    stream: glommio::net::TcpStream,
    key: u32,
    transport: T,
) {
    glommio::spawn_local(conn_task::serve(ctx.clone(), stream, key, transport)).detach();
}
