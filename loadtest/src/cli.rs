//! Command-line flags. Owns the flag definitions only; [`crate::profile`] merges them with the
//! profile file into the resolved [`crate::profile::Plan`].

use std::path::PathBuf;

use clap::Parser;

/// Open-loop load generator for Pusher-protocol servers (one coordinator process that publishes
/// through the signed REST API, plus `--workers` subscriber processes).
#[derive(Parser, Debug, Clone)]
#[command(name = "ringcast-loadtest", version)]
pub struct Args {
    /// WebSocket base URL of the server (`ws://host:port`, or `wss://` with `--ca-file`);
    /// `/app/{key}?protocol=7` is appended.
    #[arg(long, default_value = "ws://127.0.0.1:6001")]
    pub url: String,
    /// REST base URL of the server (`http://host:port`, or `https://` with `--ca-file`).
    #[arg(long, default_value = "http://127.0.0.1:6001")]
    pub rest: String,
    /// PEM file of the CA that signed the server's certificate: needed by `wss://` and
    /// `https://` URLs (only that CA is trusted).
    #[arg(long)]
    pub ca_file: Option<String>,
    /// App id (REST path `/apps/{id}/events`).
    #[arg(long, default_value = "app-id")]
    pub app_id: String,
    /// App key (WebSocket path and REST `auth_key`).
    #[arg(long, default_value = "app-key")]
    pub key: String,
    /// App secret (REST signatures and private/presence channel auth).
    #[arg(long, default_value = "app-secret")]
    pub secret: String,
    /// Scenario profile (JSON file, e.g. `loadtest/profiles/broadcast.json`).
    #[arg(long)]
    pub profile: PathBuf,
    /// Subscriber connections in total (overrides the profile).
    #[arg(long)]
    pub connections: Option<u64>,
    /// Publishes per second (overrides the profile).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Size of each event's `data` string in bytes (overrides the profile).
    #[arg(long)]
    pub payload_bytes: Option<usize>,
    /// Length of the measured window in seconds (overrides the profile).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Warm-up seconds before the measured window (overrides the profile).
    #[arg(long)]
    pub warmup_s: Option<f64>,
    /// Seconds to wait after the last publish for deliveries still in flight (overrides the profile).
    #[arg(long)]
    pub drain_s: Option<f64>,
    /// Subscriber worker processes (at most 20,000 descriptors each; overrides the profile).
    #[arg(long)]
    pub workers: Option<u32>,
    /// Keep-alive HTTP connections the publisher uses (overrides the profile).
    #[arg(long)]
    pub publishers: Option<u32>,
    /// Connection attempts in flight at once, per worker (overrides the profile).
    #[arg(long)]
    pub connect_concurrency: Option<u32>,
    /// Connects/disconnects (churn) or leaves/joins (presence) per second (overrides the profile).
    #[arg(long)]
    pub churn_per_s: Option<f64>,
    /// Channel type: public, private or presence (overrides the profile).
    #[arg(long)]
    pub channel_type: Option<String>,
    /// Source addresses to bind subscriber sockets to, `A.B.C.D-E.F.G.H` (default on a loopback
    /// target: 127.0.0.2-127.0.0.254; `none` to let the kernel choose).
    #[arg(long)]
    pub source_ips: Option<String>,
    /// PID of the server under test, for CPU seconds and RSS readings.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Directory for `result.json` and `latency.hgrm`.
    #[arg(long, default_value = "loadtest-out")]
    pub out: PathBuf,
    /// Internal: run as worker number `i` of the coordinator that started this process.
    #[arg(long, hide = true)]
    pub worker_index: Option<u32>,
}
