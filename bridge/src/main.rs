//! `ringcast-bridge`: the process the engine delegates everything that waits on the network to,
//! so that engine shards never block. It relays publishes between nodes over Redis pub/sub,
//! keeps the cluster-wide state (presence members, node heartbeats, counts) in Redis, sends the
//! apps' webhooks and makes the auth offload and channel function calls. A node alone runs it
//! `--without-redis`.
//! This file parses, wires and waits: the command line
//! ([`args`](ringcast_bridge::args)), the tasks ([`wiring`]), the
//! socket file and the signals. The parts live in the crate's library ([`ringcast_bridge`],
//! with the layout).

use std::io::IsTerminal;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use ringcast_bridge::args::{Args, QueueDriver};
use ringcast_bridge::outbound::http::{OutboundHttp, OutboundLimits};
use ringcast_bridge::wiring::{self, NodeSetup};

/// Exit status for unusable arguments or environment (clap uses it too).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::from(args.log_level))
        .with_writer(std::io::stderr)
        // Colours only for a person watching; log files and journals get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // A panicking task would leave the bridge half alive: exit, and the engine restarts it.
    ringcast_core::fatal::exit_on_panic("ringcast-bridge");
    let node_id = match args.node_id() {
        Ok(node_id) => node_id,
        Err(message) => return usage_error(&message),
    };
    // rustls on `ring`, the one provider in the tree: installed explicitly, so that no other
    // crate enabling a second provider could make TLS set-up panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match args.redis_client() {
        Ok(client) => client,
        Err(message) => return usage_error(&message),
    };
    let webhook_http = match OutboundHttp::new(OutboundLimits::default()) {
        Ok(http) => http,
        Err(err) => {
            eprintln!("ringcast-bridge: cannot set up outbound HTTP: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(message) = clear_stale_socket(&args.link_socket) {
        return usage_error(&message);
    }
    let setup = NodeSetup {
        node_id,
        redis_prefix: args.redis_prefix.clone(),
        client,
        redis_webhook_queue: args.webhook_queue == QueueDriver::Redis,
        presence_ttl: std::time::Duration::from_millis(args.presence_ttl_ms),
        webhook_http,
    };
    // One thread is plenty: the bridge moves bytes and waits; the cores belong to the engine.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ringcast-bridge: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(&args, setup))
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("ringcast-bridge: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Listens, starts the tasks, and waits for SIGTERM or SIGINT to stop them.
async fn run(args: &Args, setup: NodeSetup) -> ExitCode {
    let listener = match UnixListener::bind(&args.link_socket) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "ringcast-bridge: cannot listen on {}: {err}",
                args.link_socket.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("ringcast-bridge: cannot handle signals: {err}");
            remove_socket(&args.link_socket);
            return ExitCode::FAILURE;
        }
    };
    let redis_shown = match &setup.client {
        Some(client) => client.shown(&args.redis_url),
        None => "none (a node alone: webhooks only)".to_owned(),
    };
    tracing::info!(
        node_id = setup.node_id,
        link_socket = %args.link_socket.display(),
        redis_url = %redis_shown,
        "ringcast-bridge started"
    );
    let node = match wiring::start(setup, listener) {
        Ok(node) => node,
        Err(message) => {
            eprintln!("ringcast-bridge: {message}");
            remove_socket(&args.link_socket);
            return ExitCode::FAILURE;
        }
    };
    let signal_name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    remove_socket(&args.link_socket);
    node.stop(signal_name).await;
    ExitCode::SUCCESS
}

/// Removes a socket file left by a bridge that was killed; refuses to touch anything else.
fn clear_stale_socket(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => std::fs::remove_file(path)
            .map_err(|err| format!("cannot remove stale socket {}: {err}", path.display())),
        Ok(_) => Err(format!(
            "{} exists and is not a socket; not replacing it",
            path.display()
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(format!("cannot inspect {}: {err}", path.display())),
    }
}

fn remove_socket(path: &Path) {
    if let Err(err) = std::fs::remove_file(path) {
        tracing::warn!("cannot remove {}: {err}", path.display());
    }
}
