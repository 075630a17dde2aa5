//! ringcast: the engine binary. Parses configuration, runs host checks, loads the TLS
//! certificate when the client port speaks TLS, binds one SO_REUSEPORT listener per shard,
//! starts one pinned glommio executor per shard and waits for them. SIGTERM and SIGINT start a
//! graceful drain (4200 to every connection), after which it exits 0; with TLS, SIGHUP reloads
//! the certificate and key.

mod bridge_link;
mod bridge_supervisor;
mod checks;
mod config;
mod conn_task;
mod listener;
mod shard;
mod shard_ctx;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mimalloc::MiMalloc;
use ringcast_core::app::AppTable;
use ringcast_core::webhook_config;
use socket2::Socket;
use tracing::{error, info, warn};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Exit code for a configuration error (as clap uses for usage errors).
const EXIT_CONFIG: i32 = 2;
/// Exit code for a failed start (host checks, bind, executors).
const EXIT_START: i32 = 1;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let config = match config::load(args, &|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ringcast: {err}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    init_logging(config.server.log_level.as_str());
    ringcast_core::fatal::exit_on_panic("ringcast");
    if let Err(message) = run(config) {
        error!("{message}");
        eprintln!("ringcast: {message}");
        std::process::exit(EXIT_START);
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGCAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Starts the node and serves until every shard has stopped: host checks, listeners, the
/// bridge when the node needs one, the signal thread, then one executor per shard.
fn run(config: config::Config) -> Result<(), String> {
    let server = &config.server;
    if config.dev_app {
        warn!(
            "no application configured: running the DEVELOPMENT app app-id / app-key / app-secret; \
             anyone can sign events for it; configure --app-id/--app-key/--app-secret or a config file"
        );
    }
    // Before anything is bound or started: a bad certificate is a start error, not a node that
    // refuses every handshake.
    let tls = load_tls(server)?.map(Arc::new);
    let shard_count = server.shards;
    let plan = checks::run(shard_count)?;
    let cpus = checks::allowed_cpus();
    if cpus.is_empty() {
        return Err("no CPU is available to this process (sched_getaffinity)".into());
    }
    let addr = SocketAddr::new(server.bind_address, server.port);
    let (listeners, bound) = listener::bind_all(addr, shard_count, server.listen_backlog)?;
    let metrics_listener = bind_metrics_listener(server)?;
    let starts = shard_starts(listeners, &cpus, metrics_listener);
    let functions = load_functions(server)?;
    let cluster = server.needs_bridge();
    let bridge_socket =
        if cluster || needs_bridge_for_webhooks(&config) || !functions.table.is_empty() {
            Some(start_bridge(server, cluster)?)
        } else {
            None
        };
    let apps = Arc::new(AppTable::new(config.apps.clone()));
    let mut settings = engine_settings(server, &plan, bridge_socket, cluster);
    settings.functions = functions;
    settings.tls = tls.as_ref().map(|tls| tls.config.clone());
    start_signal_thread(tls.clone())?;
    let handles = shard::spawn_all(starts, apps, settings)?;
    info!(
        address = %bound,
        tls = tls.is_some(),
        shards = shard_count,
        apps = config.apps.len(),
        echo_path = server.echo_path.as_deref().unwrap_or("-"),
        max_connections_by_nofile = plan.nofile,
        "listening on {bound}"
    );
    wait_for_shards(handles)?;
    info!("stopped");
    Ok(())
}

/// The TLS setup of the client port when `--tls-cert-file` and `--tls-key-file` are given;
/// one without the other, or files that do not make a certificate and its key, are an error
/// naming the option and the file.
fn load_tls(server: &config::ServerConfig) -> Result<Option<tls::TlsSetup>, String> {
    match (&server.tls_cert_file, &server.tls_key_file) {
        (None, None) => Ok(None),
        (Some(cert), None) => Err(format!(
            "--tls-cert-file {cert} needs --tls-key-file (TLS_KEY_FILE, server.tls_key_file): \
             the private key of that certificate"
        )),
        (None, Some(key)) => Err(format!(
            "--tls-key-file {key} needs --tls-cert-file (TLS_CERT_FILE, server.tls_cert_file): \
             the certificate chain of that key"
        )),
        (Some(cert), Some(key)) => {
            let setup = tls::TlsSetup::load(Path::new(cert), Path::new(key))?;
            info!(cert = %cert, key = %key, "TLS on the client port (the metrics port stays plain)");
            Ok(Some(setup))
        }
    }
}

/// Binds the `--metrics-port` listener when one is configured, and logs its URL. Its own piece
/// because it is optional and has its own error message naming the option.
fn bind_metrics_listener(server: &config::ServerConfig) -> Result<Option<Socket>, String> {
    let Some(port) = server.metrics_port else {
        return Ok(None);
    };
    let metrics_addr = SocketAddr::new(server.bind_address, port);
    let socket = listener::bind_one(metrics_addr, server.listen_backlog)
        .map_err(|e| format!("cannot listen on {metrics_addr} (--metrics-port): {e}"))?;
    if let Some(local) = socket.local_addr().ok().and_then(|a| a.as_socket()) {
        info!("metrics on http://{local}/metrics");
    }
    Ok(Some(socket))
}

/// Pairs each shard's listener with the CPU it is pinned to (round-robin over the usable
/// CPUs); the first shard also gets the metrics listener.
fn shard_starts(
    listeners: Vec<Socket>,
    cpus: &[usize],
    mut metrics_listener: Option<Socket>,
) -> Vec<shard::ShardStart> {
    listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| shard::ShardStart {
            listener,
            cpu: cpus[i % cpus.len()],
            metrics_listener: metrics_listener.take(),
        })
        .collect()
}

/// The channel functions and, from `--associations-file`, the associations at start: a file
/// that cannot be read or that names an unknown function is a start error naming the file.
fn load_functions(
    server: &config::ServerConfig,
) -> Result<ringcast_core::functions::FunctionSettings, String> {
    use ringcast_core::functions::{Associations, FunctionSettings};
    let table = server.channel_functions.clone();
    let Some(path) = &server.associations_file else {
        return Ok(FunctionSettings {
            table,
            associations: Default::default(),
        });
    };
    let limit = ringcast_core::limits::HTTP_BODY_BYTES_MAX;
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read --associations-file {path}: {e}"))?;
    if bytes.len() > limit {
        return Err(format!(
            "--associations-file {path}: {} bytes, at most {limit} (what PUT /associations takes)",
            bytes.len()
        ));
    }
    let associations = Associations::parse(&bytes, &table)
        .map_err(|e| format!("--associations-file {path}: {e}"))?;
    info!(
        file = %path,
        associations = associations.len(),
        functions = table.len(),
        "channel functions"
    );
    Ok(FunctionSettings {
        table,
        associations: Arc::new(associations),
    })
}

/// True when a node needs the bridge even when it is the only node: webhooks, offloaded
/// authorizations and WebSocket-over-HTTP events are sent by the bridge, and the Redis webhook
/// queue is the bridge's too.
fn needs_bridge_for_webhooks(config: &config::Config) -> bool {
    webhook_config::link_json(&config.apps).is_some()
        || config.server.queue_driver == config::Driver::Redis
        || config
            .apps
            .iter()
            .any(|app| app.channel_authorization_url.is_some() || app.slip_target_url.is_some())
}

/// Checks the options only the bridge uses, prepares the socket (see
/// `bridge_supervisor::prepare_socket`), then starts the bridge (unless the operator runs it:
/// `--bridge-external`); returns the socket the shards link to. Its own piece because these
/// checks apply only when a bridge is needed.
fn start_bridge(server: &config::ServerConfig, cluster: bool) -> Result<PathBuf, String> {
    let uses_redis = cluster || server.queue_driver == config::Driver::Redis;
    if uses_redis && server.redis_prefix.contains(['{', '}']) {
        // They would change the hash slots of the state keys (see docs/cluster.md).
        return Err(format!(
            "--redis-prefix {:?} may not contain '{{' or '}}'",
            server.redis_prefix
        ));
    }
    if server.redis_tls_ca_file.is_some() && !server.redis_tls {
        return Err("--redis-tls-ca-file needs --redis-tls".into());
    }
    if server.bridge_external && server.bridge_socket.is_none() {
        // The default socket is in a fresh private directory no separate bridge could know.
        return Err(
            "--bridge-external needs --bridge-socket: where the bridge run separately listens"
                .into(),
        );
    }
    let socket = bridge_supervisor::prepare_socket(server)?;
    if server.bridge_external {
        // Its pid is not ours to know: the link checks only that it runs as this user.
        bridge_link::trust_external_bridge();
        info!(socket = %socket.display(), "linking to a bridge run separately");
    } else {
        bridge_supervisor::start(server, &socket, cluster)?;
    }
    Ok(socket)
}

/// The settings every shard shares, from the configuration and the host plan.
fn engine_settings(
    server: &config::ServerConfig,
    plan: &checks::HostPlan,
    bridge_socket: Option<PathBuf>,
    cluster: bool,
) -> shard::EngineSettings {
    shard::EngineSettings {
        shard_count: server.shards,
        io_memory_bytes: plan.io_memory_bytes,
        socket_id_base: socket_id_base(),
        max_message_size: server.max_message_size,
        outbound_bytes_max: server.max_outbound_bytes,
        handshake_timeout_s: server.handshake_timeout_s,
        drain_timeout_s: server.drain_timeout_s,
        echo_path: server.echo_path.clone(),
        socketio: server.socketio.clone(),
        functions: Default::default(),
        channels_json: server.channels_json,
        metrics_port_separate: server.metrics_port.is_some(),
        bridge_socket,
        cluster,
        tls: None,
    }
}

/// Joins every shard thread; an error when any of them stopped with a panic. All are joined
/// first, so no shard is left running when `run` returns.
fn wait_for_shards(handles: Vec<glommio::ExecutorJoinHandle<()>>) -> Result<(), String> {
    let mut failed = false;
    for handle in handles {
        if handle.join().is_err() {
            failed = true;
        }
    }
    if failed {
        return Err("a shard stopped with an error".into());
    }
    Ok(())
}

/// A process-wide random number for socket ids (`{base}{shard:02}.{serial}`), so ids from one
/// run are unlikely to collide with the previous run's. Not a secret: auth binds to ids, it does
/// not rely on them being unguessable.
fn socket_id_base() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = ahash::RandomState::new().hash_one((nanos, std::process::id()));
    100_000 + mixed % 9_000_000
}

/// SIGTERM / SIGINT set the drain flag; the shards notice within a quarter second. A second
/// one exits at once. With TLS, SIGHUP reloads the certificate and key here, off the shard
/// cores (without TLS it keeps its default action, as before).
fn start_signal_thread(tls: Option<Arc<tls::TlsSetup>>) -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut wanted = vec![SIGTERM, SIGINT];
    if tls.is_some() {
        wanted.push(SIGHUP);
    }
    let mut signals = signal_hook::iterator::Signals::new(wanted)
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut draining = false;
            for signal in signals.forever() {
                if signal == SIGHUP {
                    if let Some(tls) = &tls {
                        reload_tls(tls);
                    }
                } else if draining {
                    // A second signal while draining stops at once.
                    std::process::exit(0);
                } else {
                    info!(signal, "shutdown requested: draining");
                    shard::DRAIN_REQUESTED.store(true, Ordering::Relaxed);
                    draining = true;
                }
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// SIGHUP: new handshakes get the files' certificate from now on; open connections keep
/// theirs. A file that does not load leaves the current certificate in place, with one line
/// saying why.
fn reload_tls(tls: &tls::TlsSetup) {
    match tls.reload() {
        Ok(()) => info!(cert = %tls.cert_path().display(), "SIGHUP: TLS certificate reloaded"),
        Err(err) => {
            warn!("SIGHUP: TLS certificate not reloaded, still serving the previous one: {err}")
        }
    }
}
