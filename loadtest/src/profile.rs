//! Scenario profiles: the checked-in JSON files under `loadtest/profiles/`, and the resolved
//! [`Plan`] (profile values overridden by flags, URLs parsed, source addresses expanded) that
//! the coordinator and every worker derive identically from the same command line.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cli::Args;
use crate::tls::TlsTarget;

/// Connections a worker opens at most: one process may hold at most 20,000 file descriptors
/// on the development machines, and a worker needs a few besides its sockets.
pub const CONNECTIONS_PER_WORKER_MAX: u64 = 19_000;
/// Source addresses used against a loopback server when `--source-ips` is not given.
const DEFAULT_LOOPBACK_SOURCES: &str = "127.0.0.2-127.0.0.254";
/// Publish rate used when neither profile nor flags give one.
const DEFAULT_RATE: f64 = 10.0;

/// The scenario a profile describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// N connections, each subscribed to one of `channels` channels; nothing published.
    Idle,
    /// One channel × N subscribers, published to at `rate` per second.
    Broadcast,
    /// Each connection on a personal channel plus a group of `group_size`.
    Channels,
    /// Connections opened and closed at `churn_per_s`.
    Churn,
    /// Presence join/leave storm.
    Presence,
}

/// One profile file, as written. Every field but `scenario` is optional; flags override it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Which scenario this is.
    pub scenario: Option<Scenario>,
    /// Subscriber connections in total.
    pub connections: Option<u64>,
    /// Distinct channels (idle: connections spread over them; broadcast: 1).
    pub channels: Option<u64>,
    /// Group size of the `channels` scenario.
    pub group_size: Option<u64>,
    /// Channel name prefix.
    pub channel_prefix: Option<String>,
    /// public, private or presence.
    pub channel_type: Option<String>,
    /// Publishes per second.
    pub rate: Option<f64>,
    /// Size of each event's `data` string in bytes.
    pub payload_bytes: Option<usize>,
    /// Measured window in seconds.
    pub duration_s: Option<f64>,
    /// Warm-up seconds before the measured window.
    pub warmup_s: Option<f64>,
    /// Seconds allowed after the last publish for in-flight deliveries.
    pub drain_s: Option<f64>,
    /// Keep-alive HTTP connections of the publisher.
    pub publishers: Option<u32>,
    /// Worker processes.
    pub workers: Option<u32>,
    /// Connection attempts in flight at once, per worker.
    pub connect_concurrency: Option<u32>,
    /// Connects + disconnects per second (churn, presence).
    pub churn_per_s: Option<f64>,
    /// Presence: connections per user id (tabs); default 1.
    pub tabs_per_user: Option<u64>,
    /// Presence: observer connections per channel; default 1.
    pub observers_per_channel: Option<u64>,
}

/// Channel kind, which decides whether a subscription carries an auth token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    /// No auth.
    Public,
    /// `private-` prefix, auth token.
    Private,
    /// `presence-` prefix, auth token with channel data.
    Presence,
}

/// Everything a run needs, resolved from the profile and the flags.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Scenario to run.
    pub scenario: Scenario,
    /// Subscriber connections in total (all workers).
    pub connections: u64,
    /// Distinct channels (idle).
    pub channels: u64,
    /// Group size (channels scenario).
    pub group_size: u64,
    /// Channel name prefix without the type prefix.
    pub channel_prefix: String,
    /// Channel kind.
    pub channel_type: ChannelType,
    /// Publishes per second.
    pub rate: f64,
    /// Bytes in each event's `data` string.
    pub payload_bytes: usize,
    /// Measured seconds.
    pub duration_s: f64,
    /// Warm-up seconds.
    pub warmup_s: f64,
    /// Drain seconds.
    pub drain_s: f64,
    /// Publisher HTTP connections.
    pub publishers: u32,
    /// Worker processes.
    pub workers: u32,
    /// Connect attempts in flight per worker.
    pub connect_concurrency: u32,
    /// WebSocket server address.
    pub ws_addr: SocketAddr,
    /// `Host` header value for the WebSocket upgrade.
    pub ws_host: String,
    /// REST server address.
    pub rest_addr: SocketAddr,
    /// `Host` header value for REST requests.
    pub rest_host: String,
    /// TLS to the WebSocket address (`wss://`).
    #[serde(skip)]
    pub ws_tls: Option<TlsTarget>,
    /// TLS to the REST address (`https://`).
    #[serde(skip)]
    pub rest_tls: Option<TlsTarget>,
    /// Whether either speaks TLS, for the record.
    pub tls: bool,
    /// App id.
    pub app_id: String,
    /// App key.
    pub key: String,
    /// App secret (never printed).
    #[serde(skip)]
    pub secret: String,
    /// Connects + disconnects (churn) or leaves + joins (presence) per second.
    pub churn_per_s: f64,
    /// Presence: connections per user id.
    pub tabs_per_user: u64,
    /// Presence: observer connections per channel.
    pub observers_per_channel: u64,
    /// Source addresses (empty: let the kernel choose).
    #[serde(skip)]
    pub source_ips: Vec<Ipv4Addr>,
    /// The source address range as given (or defaulted), for the record.
    pub source_ip_range: Option<String>,
}

impl Plan {
    /// Reads the profile named by `args` and applies the flag overrides.
    pub fn resolve(args: &Args) -> Result<Plan, String> {
        let profile = read_profile(&args.profile)?;
        let scenario = profile
            .scenario
            .ok_or_else(|| format!("{}: missing \"scenario\"", args.profile.display()))?;
        let connections = args.connections.or(profile.connections).unwrap_or(1000);
        if connections == 0 {
            return Err("connections must be at least 1".into());
        }
        let channel_type = match args
            .channel_type
            .as_deref()
            .or(profile.channel_type.as_deref())
            .unwrap_or("public")
        {
            "public" => ChannelType::Public,
            "private" => ChannelType::Private,
            "presence" => ChannelType::Presence,
            other => return Err(format!("unknown channel type {other:?}")),
        };
        let workers_needed = connections.div_ceil(CONNECTIONS_PER_WORKER_MAX);
        let workers = args.workers.or(profile.workers).unwrap_or(1).max(1);
        if u64::from(workers) < workers_needed {
            return Err(format!(
                "{connections} connections need at least {workers_needed} workers \
                 ({CONNECTIONS_PER_WORKER_MAX} per process; pass --workers)"
            ));
        }
        let rate = args.rate.or(profile.rate).unwrap_or(DEFAULT_RATE);
        if !(rate.is_finite() && rate >= 0.0) {
            return Err("rate must be a non-negative number".into());
        }
        let (ws_host, ws_addr, ws_secure) = parse_url(&args.url, "ws")?;
        let (rest_host, rest_addr, rest_secure) = parse_url(&args.rest, "http")?;
        let tls_target = |secure: bool, url: &str, host: &str| match (secure, &args.ca_file) {
            (false, _) => Ok(None),
            (true, Some(ca)) => TlsTarget::new(ca, host).map(Some),
            (true, None) => Err(format!(
                "{url:?} needs --ca-file: the CA that signed the server's certificate"
            )),
        };
        let ws_tls = tls_target(ws_secure, &args.url, &ws_host)?;
        let rest_tls = tls_target(rest_secure, &args.rest, &rest_host)?;
        let source_ip_range = match args.source_ips.as_deref() {
            Some("none") => None,
            Some(range) => Some(range.to_string()),
            None if ws_addr.ip().is_loopback() => Some(DEFAULT_LOOPBACK_SOURCES.to_string()),
            None => None,
        };
        let source_ips = match &source_ip_range {
            Some(range) => parse_ip_range(range)?,
            None => Vec::new(),
        };
        Ok(Plan {
            scenario,
            connections,
            channels: profile.channels.unwrap_or(1).max(1),
            group_size: profile.group_size.unwrap_or(10).max(1),
            channel_prefix: profile.channel_prefix.unwrap_or_else(|| "bench".into()),
            channel_type,
            rate,
            payload_bytes: args.payload_bytes.or(profile.payload_bytes).unwrap_or(100),
            duration_s: non_negative(args.duration_s.or(profile.duration_s).unwrap_or(10.0)),
            warmup_s: non_negative(args.warmup_s.or(profile.warmup_s).unwrap_or(2.0)),
            drain_s: non_negative(args.drain_s.or(profile.drain_s).unwrap_or(5.0)),
            publishers: args.publishers.or(profile.publishers).unwrap_or(4).max(1),
            workers,
            connect_concurrency: args
                .connect_concurrency
                .or(profile.connect_concurrency)
                .unwrap_or(256)
                .max(1),
            churn_per_s: non_negative(args.churn_per_s.or(profile.churn_per_s).unwrap_or(100.0)),
            tabs_per_user: profile.tabs_per_user.unwrap_or(1).max(1),
            observers_per_channel: profile.observers_per_channel.unwrap_or(1).max(1),
            ws_addr,
            ws_host,
            rest_addr,
            rest_host,
            tls: ws_tls.is_some() || rest_tls.is_some(),
            ws_tls,
            rest_tls,
            app_id: args.app_id.clone(),
            key: args.key.clone(),
            secret: args.secret.clone(),
            source_ips,
            source_ip_range,
        })
    }

    /// The global connection indices worker `index` owns: an even split, the first workers
    /// taking one more when it does not divide.
    pub fn worker_share(&self, index: u32) -> std::ops::Range<u64> {
        let n = u64::from(self.workers);
        let i = u64::from(index);
        let base = self.connections / n;
        let extra = self.connections % n;
        let start = i * base + i.min(extra);
        let len = base + u64::from(i < extra);
        start..start + len
    }

    /// Full channel name for `base` with the type prefix (`private-`, `presence-`) applied.
    pub fn channel_name(&self, base: &str) -> String {
        match self.channel_type {
            ChannelType::Public => base.to_string(),
            ChannelType::Private => format!("private-{base}"),
            ChannelType::Presence => format!("presence-{base}"),
        }
    }

    /// The channels connection `index` subscribes to.
    pub fn channels_of(&self, index: u64) -> Vec<String> {
        let p = &self.channel_prefix;
        match self.scenario {
            Scenario::Broadcast => vec![self.channel_name(p)],
            Scenario::Channels => vec![
                self.channel_name(&format!("{p}-personal-{index}")),
                self.channel_name(&format!("{p}-group-{}", index / self.group_size)),
            ],
            _ => vec![self.channel_name(&format!("{p}-{}", index % self.channels))],
        }
    }

    /// Source address for connection `index` (round robin over the range), if any.
    pub fn source_ip(&self, index: u64) -> Option<Ipv4Addr> {
        let len = self.source_ips.len() as u64;
        (len > 0).then(|| self.source_ips[(index % len) as usize])
    }
}

fn non_negative(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

fn read_profile(path: &Path) -> Result<Profile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read profile {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("bad profile {}: {e}", path.display()))
}

/// Splits `scheme://host:port[/]` (`scheme` plain, or with `s`: TLS) into the `Host` header
/// value, a resolved address and whether it is the TLS scheme.
fn parse_url(url: &str, scheme: &str) -> Result<(String, SocketAddr, bool), String> {
    let (rest, secure) = if let Some(rest) = url.strip_prefix(&format!("{scheme}://")) {
        (rest, false)
    } else if let Some(rest) = url.strip_prefix(&format!("{scheme}s://")) {
        (rest, true)
    } else {
        return Err(format!(
            "{url:?}: expected a {scheme}:// or {scheme}s:// URL"
        ));
    };
    let host = rest.trim_end_matches('/');
    if host.contains('/') {
        return Err(format!(
            "{url:?}: give only {scheme}://host:port, without a path"
        ));
    }
    let with_port = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else if secure {
        format!("{host}:443")
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url:?}: no address"))?;
    Ok((host.to_string(), addr, secure))
}

/// Expands `A.B.C.D-E.F.G.H` (or a single address) into every address of the range.
pub fn parse_ip_range(range: &str) -> Result<Vec<Ipv4Addr>, String> {
    let (a, b) = range.split_once('-').unwrap_or((range, range));
    let parse = |s: &str| {
        s.trim()
            .parse::<Ipv4Addr>()
            .map_err(|e| format!("bad address {s:?} in --source-ips: {e}"))
    };
    let (a, b) = (u32::from(parse(a)?), u32::from(parse(b)?));
    if b < a || b - a > 1 << 20 {
        return Err(format!("bad --source-ips range {range:?}"));
    }
    Ok((a..=b).map(Ipv4Addr::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn ip_range_expands_inclusively() {
        let ips = parse_ip_range("127.0.0.2-127.0.1.1").unwrap_or_default();
        assert_eq!(ips.len(), 256);
        assert_eq!(ips[0], Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(ips[255], Ipv4Addr::new(127, 0, 1, 1));
        assert!(parse_ip_range("127.0.0.9-127.0.0.1").is_err());
    }

    #[test]
    fn worker_shares_cover_every_connection_once() {
        let args = Args::parse_from([
            "ringcast-loadtest",
            "--profile",
            concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/broadcast.json"),
            "--connections",
            "10",
            "--workers",
            "3",
        ]);
        let plan = match Plan::resolve(&args) {
            Ok(plan) => plan,
            Err(e) => panic!("{e}"),
        };
        let shares: Vec<_> = (0..3).map(|i| plan.worker_share(i)).collect();
        assert_eq!(shares, vec![0..4, 4..7, 7..10]);
        assert_eq!(plan.source_ip(253), Some(Ipv4Addr::new(127, 0, 0, 2)));
    }

    #[test]
    fn checked_in_profiles_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        for name in ["idle", "broadcast", "channels", "churn", "presence"] {
            let p = read_profile(&dir.join(format!("{name}.json")));
            assert!(p.is_ok(), "{name}: {p:?}");
        }
    }
}
