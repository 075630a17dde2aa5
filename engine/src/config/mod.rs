//! Configuration: turns argv, the process environment, an optional `.env` file and an optional
//! JSON file into one validated [`Config`], or one error line naming the option at fault.
//!
//! Owns precedence (flag > environment > JSON file; `--prefer-config-file` puts the file above
//! the environment), the development-app fallback and every check on option values. The option
//! table itself lives in `options`, the file readers in `env_file` and `json`, the value
//! parsers in `values`, the error type in `error` and the fixed-choice values in `choices`.
//!
//! Rules worth knowing:
//! - Environment variables come from the caller's lookup first, then from the env file
//!   (`--env-file`, else `server.env_file` in the JSON file, else `./.env`; relative paths are
//!   relative to the working directory). A missing env file is an error only when a path other
//!   than the default was named. Empty values count as unset, so `PORT=` in a compose file
//!   does not mean port "".
//! - The app given by `--app-*` flags and `APP_*` variables is one app. If its id matches an
//!   app of the JSON file (or it has no id and the file has exactly one app), the flags and
//!   variables override that app's keys instead, so the precedence above holds for app
//!   settings too. Apps are otherwise independent: duplicate ids or keys are errors.
//! - With no app anywhere, the development app `app-id` / `app-key` / `app-secret` is used and
//!   [`Config::dev_app`] is set so the caller can warn loudly.

mod choices;
mod env_file;
mod error;
mod json;
mod options;
#[cfg(test)]
mod tests;
mod values;

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::ArgMatches;
use ringcast_core::app::AppConfig;
use ringcast_core::limits;
use serde_json::Value;

pub use choices::{Driver, LogLevel};
use env_file::EnvFile;
pub use error::ConfigError;
use options::{default_shards, Key, Kind, Section, Spec};
use ringcast_core::limits::{
    OUTBOUND_BYTES_MIN, TIMEOUT_S_MAX, WS_MESSAGE_BYTES_MAX, WS_MESSAGE_BYTES_MIN,
};
use values::{
    not_empty, parse_allowed_origins, parse_app_manager, parse_bool, parse_driver, parse_echo_path,
    parse_header_names, parse_ident, parse_ip, parse_log_level, parse_num, parse_port, parse_url,
    parse_webhooks, Number,
};

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Server-wide and engine settings.
    pub server: ServerConfig,
    /// Every configured app, in order: the flag/env app (when it is not merged into a file
    /// app), then the file's `applications`. Never empty.
    pub apps: Vec<AppConfig>,
    /// True when no app was configured and `apps` holds only the public development app.
    pub dev_app: bool,
}

/// Server-wide settings: the seed's server options plus ringcast's engine options.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `--port`: TCP port of the WebSocket and HTTP API listener.
    pub port: u16,
    /// `--bind-address`.
    pub bind_address: IpAddr,
    /// `--cache-driver`.
    pub cache_driver: Driver,
    /// `--queue-driver`: where webhooks wait for delivery.
    pub queue_driver: Driver,
    /// `--adapter-driver`: `redis` links several nodes.
    pub adapter_driver: Driver,
    /// `--app-manager`: where apps come from; only `array` (the configuration) exists.
    pub app_manager: String,
    /// `--app-env`: free-form environment name, for logs.
    pub app_env: String,
    /// `--redis-prefix`: prefix of every Redis key and channel.
    pub redis_prefix: String,
    /// `--redis-url`, or `--redis-host`:`--redis-port` (Ekko's `REDIS_HOST` / `REDIS_PORT`).
    pub redis_url: String,
    /// `--redis-tls`.
    pub redis_tls: bool,
    /// `--redis-tls-ca-file`: the CA that signed Redis's certificate.
    pub redis_tls_ca_file: Option<String>,
    /// `--redis-cluster` (JSON also `redis_cluster_mode`).
    pub redis_cluster: bool,
    /// `--log-level`.
    pub log_level: LogLevel,
    /// `--ignore-logger-middleware`: no per-request log lines.
    pub ignore_logger_middleware: bool,
    /// `--shards`: executors, one pinned thread each; defaults to the usable CPUs.
    pub shards: usize,
    /// `--listen-backlog`.
    pub listen_backlog: u32,
    /// `--max-message-size`: largest inbound WebSocket message in bytes.
    pub max_message_size: usize,
    /// `--max-outbound-bytes`: queued outbound bytes per connection before it is closed.
    pub max_outbound_bytes: usize,
    /// `--handshake-timeout` in seconds.
    pub handshake_timeout_s: u64,
    /// `--drain-timeout` in seconds.
    pub drain_timeout_s: u64,
    /// `--echo-path`: path of the plain WebSocket echo endpoint, if enabled.
    pub echo_path: Option<String>,
    /// `--metrics-port`: port of the metrics listener, if enabled.
    pub metrics_port: Option<u16>,
    /// `--tls-cert-file`: PEM certificate chain of the client port, when it speaks TLS.
    pub tls_cert_file: Option<String>,
    /// `--tls-key-file`: PEM private key of that certificate.
    pub tls_key_file: Option<String>,
    /// `--socketio-*` and `--jwt-secret`: the Socket.IO dialect's settings.
    pub socketio: ringcast_core::socketio::SocketIoSettings,
    /// `--channel-functions`: the functions associations may name.
    pub channel_functions: std::sync::Arc<ringcast_core::functions::FunctionTable>,
    /// `--associations-file`: the associations at start.
    pub associations_file: Option<String>,
    /// `--channels-*`: the channels JSON dialect's idle and lifetime limits.
    pub channels_json: ringcast_core::channels_json::ChannelsJsonSettings,
    /// `--bridge-socket`: the bridge's Unix socket, when set explicitly.
    pub bridge_socket: Option<String>,
    /// `--bridge-binary`: the bridge program, when set explicitly.
    pub bridge_binary: Option<String>,
    /// `--bridge-external`: the operator runs the bridge; the engine only connects.
    pub bridge_external: bool,
    /// `--node-heartbeat-ttl-ms`: how long a silent node counts as alive (cluster presence).
    pub node_heartbeat_ttl_ms: u64,
}

impl ServerConfig {
    /// The node needs the bridge (today: the Redis adapter links nodes).
    pub fn needs_bridge(&self) -> bool {
        self.adapter_driver == Driver::Redis
    }
}

/// The env file read when `--env-file` is not given.
const DEFAULT_ENV_FILE: &str = "./.env";
/// The development app used when nothing configures one.
const DEV_APP: (&str, &str, &str) = ("app-id", "app-key", "app-secret");

/// Parses and validates the configuration.
///
/// `args` is the full argv (`args[0]` is the program name); `env` looks up the real process
/// environment. `--help` and `--version` print and exit the process with status 0.
pub fn load(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    load_with(args, env, Path::new(DEFAULT_ENV_FILE))
}

/// [`load`] with the default env-file path as a parameter, so tests do not depend on the
/// working directory.
fn load_with(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
    default_env_file: &Path,
) -> Result<Config, ConfigError> {
    let matches = match options::command().try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => return Err(clap_error(&e)),
    };

    // The file comes first: it may name the env file. Paths are flag-only (or the file's
    // `env_file`), since they decide where the other layers come from.
    let doc = match flag_value(&matches, Key::ConfigFile) {
        Some(path) => Some(json::read(Path::new(&path))?),
        None => None,
    };
    let from_file = match doc.as_ref() {
        Some(doc) => file_value(doc.server.as_ref(), &doc.path, Key::EnvFile)?,
        None => None,
    };
    let dotenv = match (flag_value(&matches, Key::EnvFile), from_file) {
        (Some(path), _) => env_file::load(Path::new(&path), true)?,
        (None, Some(raw)) => {
            env_file::load(Path::new(&raw.text), !names_default_env_file(&raw.text))?
        }
        (None, None) => env_file::load(default_env_file, false)?,
    };

    let mut layers = Layers {
        matches: &matches,
        env,
        dotenv: dotenv.as_ref(),
        doc: doc.as_ref(),
        prefer_file: false,
    };
    // Decided before anything else is looked up, since it changes the order of the layers.
    let prefer_file = server_lookup(&layers).bool(Key::PreferConfigFile)?;
    layers.prefer_file = prefer_file.unwrap_or(false);

    let server = server_config(&server_lookup(&layers))?;
    let (apps, dev_app) = apps(&layers)?;
    Ok(Config {
        server,
        apps,
        dev_app,
    })
}

/// True when the file's `env_file` names the default location. The seed's example config
/// does, and copying it must not demand a `.env`; any other path is a deliberate choice and
/// must exist.
fn names_default_env_file(path: &str) -> bool {
    path == DEFAULT_ENV_FILE || path == ".env"
}

fn server_lookup<'a>(layers: &'a Layers<'a>) -> Lookup<'a> {
    Lookup {
        layers,
        cli_env: true,
        section: layers.doc.and_then(|d| d.server.as_ref()),
    }
}

/// clap's multi-line error, folded into one line without the usage footer.
fn clap_error(e: &clap::Error) -> ConfigError {
    let text = e.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more"))
        .collect();
    let line = parts.join("; ");
    ConfigError(line.strip_prefix("error: ").unwrap_or(&line).to_owned())
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    Flag,
    Env(&'static str),
    EnvFile(&'static str, PathBuf),
    Json(String, PathBuf),
}

impl Origin {
    fn suffix(&self) -> String {
        match self {
            Origin::Flag => String::new(),
            Origin::Env(name) => format!(" (from environment variable {name})"),
            Origin::EnvFile(name, path) => format!(" (from {name} in {})", path.display()),
            Origin::Json(at, path) => format!(" (from {at} in {})", path.display()),
        }
    }
}

/// A value before interpretation.
#[derive(Debug, Clone)]
struct Raw {
    text: String,
    origin: Origin,
}

/// Everything a value can come from.
struct Layers<'a> {
    matches: &'a ArgMatches,
    env: &'a dyn Fn(&str) -> Option<String>,
    dotenv: Option<&'a EnvFile>,
    doc: Option<&'a json::Document>,
    prefer_file: bool,
}

/// Looks settings up for one scope: the server, or one app.
struct Lookup<'a> {
    layers: &'a Layers<'a>,
    /// Whether flags and environment apply (not for file apps the flag/env app is not merged
    /// into).
    cli_env: bool,
    /// The JSON object of this scope, if any.
    section: Option<&'a json::Section>,
}

fn flag_value(matches: &ArgMatches, key: Key) -> Option<String> {
    matches.get_one::<String>(options::spec(key).flag).cloned()
}

/// The value of `key` in a JSON object; aliases that disagree are an error.
fn file_value(
    section: Option<&json::Section>,
    path: &Path,
    key: Key,
) -> Result<Option<Raw>, ConfigError> {
    let spec = options::spec(key);
    let Some(section) = section else {
        return Ok(None);
    };
    let mut found: Vec<Raw> = Vec::new();
    for name in spec.json {
        let Some(value) = section.get(name) else {
            continue;
        };
        let at = format!("{}.{name}", section.label);
        let origin = Origin::Json(at, path.to_owned());
        let text = match value {
            Value::Null => continue,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            // JSON options take a real array or object in the file; the parser gets its text,
            // the same form a flag or variable gives.
            Value::Array(_) | Value::Object(_) if matches!(spec.kind, Kind::Json(_)) => {
                value.to_string()
            }
            Value::Array(_) | Value::Object(_) => {
                let why = "expected a single value, not an array or object";
                return Err(invalid(
                    spec,
                    &Raw {
                        text: String::new(),
                        origin,
                    },
                    why,
                ));
            }
        };
        found.push(Raw { text, origin });
    }
    agree(spec, found)
}

/// Picks the one value of several spellings (aliases), refusing a contradiction.
fn agree(spec: &Spec, found: Vec<Raw>) -> Result<Option<Raw>, ConfigError> {
    let mut found = found.into_iter();
    let Some(first) = found.next() else {
        return Ok(None);
    };
    for other in found {
        if normalize(spec, &other.text) != normalize(spec, &first.text) {
            return Err(ConfigError(format!(
                "conflicting values for --{}: {:?}{} and {:?}{}",
                spec.flag,
                first.text,
                first.origin.suffix(),
                other.text,
                other.origin.suffix()
            )));
        }
    }
    Ok(Some(first))
}

fn normalize(spec: &Spec, text: &str) -> String {
    match spec.kind {
        Kind::Bool => parse_bool(text).map_or_else(|_| text.trim().to_owned(), |b| b.to_string()),
        Kind::Value(_) => text.trim().to_owned(),
        // Spacing and layout do not make two JSON texts different.
        Kind::Json(_) => serde_json::from_str::<Value>(text)
            .map_or_else(|_| text.trim().to_owned(), |v| v.to_string()),
    }
}

impl Lookup<'_> {
    /// The winning raw value of `key` in this scope, by precedence.
    fn raw(&self, key: Key) -> Result<Option<Raw>, ConfigError> {
        let env = if self.cli_env {
            if let Some(text) = flag_value(self.layers.matches, key) {
                return Ok(Some(Raw {
                    text,
                    origin: Origin::Flag,
                }));
            }
            self.env_value(key)?
        } else {
            None
        };
        let file = match self.layers.doc {
            Some(doc) => file_value(self.section, &doc.path, key)?,
            None => None,
        };
        Ok(if self.layers.prefer_file {
            file.or(env)
        } else {
            env.or(file)
        })
    }

    /// The process environment first, then the env file; empty values are unset.
    fn env_value(&self, key: Key) -> Result<Option<Raw>, ConfigError> {
        let spec = options::spec(key);
        let from_process: Vec<Raw> = spec
            .env
            .iter()
            .filter_map(|name| {
                let text = (self.layers.env)(name).filter(|v| !v.is_empty())?;
                Some(Raw {
                    text,
                    origin: Origin::Env(name),
                })
            })
            .collect();
        if let Some(raw) = agree(spec, from_process)? {
            return Ok(Some(raw));
        }
        let Some(dotenv) = self.layers.dotenv else {
            return Ok(None);
        };
        let from_file: Vec<Raw> = spec
            .env
            .iter()
            .filter_map(|name| {
                let text = dotenv.vars.get(*name).filter(|v| !v.is_empty())?.clone();
                Some(Raw {
                    text,
                    origin: Origin::EnvFile(name, dotenv.path.clone()),
                })
            })
            .collect();
        agree(spec, from_file)
    }

    /// The value of `key` interpreted by `parse`, whose error text explains what is wrong.
    fn get<T>(
        &self,
        key: Key,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.raw(key)? {
            None => Ok(None),
            Some(raw) => parse(&raw.text)
                .map(Some)
                .map_err(|why| invalid(options::spec(key), &raw, &why)),
        }
    }

    fn bool(&self, key: Key) -> Result<Option<bool>, ConfigError> {
        self.get(key, parse_bool)
    }

    fn text(&self, key: Key) -> Result<Option<String>, ConfigError> {
        self.get(key, |s| Ok(s.to_owned()))
    }

    fn num<T: Number>(&self, key: Key, min: T, max: T) -> Result<Option<T>, ConfigError> {
        self.get(key, |s| parse_num(s, min, max))
    }
}

fn invalid(spec: &Spec, raw: &Raw, why: &str) -> ConfigError {
    ConfigError(format!(
        "invalid value for --{}: {why}{}",
        spec.flag,
        raw.origin.suffix()
    ))
}

/// Builds the server-wide settings, each option with its default.
fn server_config(l: &Lookup) -> Result<ServerConfig, ConfigError> {
    let (port, metrics_port) = listener_ports(l)?;
    Ok(ServerConfig {
        port,
        bind_address: l
            .get(Key::BindAddress, parse_ip)?
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        cache_driver: l
            .get(Key::CacheDriver, parse_driver)?
            .unwrap_or(Driver::Local),
        queue_driver: l
            .get(Key::QueueDriver, parse_driver)?
            .unwrap_or(Driver::Local),
        adapter_driver: l.get(Key::AdapterDriver, parse_driver)?.unwrap_or(
            // Ekko used Redis whenever it was given one.
            if l.text(Key::RedisHost)?.is_some() {
                Driver::Redis
            } else {
                Driver::Local
            },
        ),
        app_manager: l
            .get(Key::AppManager, parse_app_manager)?
            .unwrap_or_else(|| String::from("array")),
        app_env: l
            .text(Key::AppEnv)?
            .unwrap_or_else(|| String::from("production")),
        redis_prefix: l
            .text(Key::RedisPrefix)?
            .unwrap_or_else(|| String::from("pusher")),
        redis_url: redis_url(l)?,
        redis_tls: l.bool(Key::RedisTls)?.unwrap_or(false),
        redis_tls_ca_file: l.get(Key::RedisTlsCaFile, not_empty)?,
        redis_cluster: l.bool(Key::RedisCluster)?.unwrap_or(false),
        log_level: l
            .get(Key::LogLevel, parse_log_level)?
            .unwrap_or(LogLevel::Info),
        ignore_logger_middleware: l.bool(Key::IgnoreLoggerMiddleware)?.unwrap_or(false),
        shards: l
            .num(Key::Shards, 1, usize::from(limits::SHARD_COUNT_MAX))?
            .unwrap_or_else(default_shards),
        listen_backlog: l
            .num(Key::ListenBacklog, 1, i32::MAX.unsigned_abs())?
            .unwrap_or(4096),
        max_message_size: l
            .num(
                Key::MaxMessageSize,
                WS_MESSAGE_BYTES_MIN,
                WS_MESSAGE_BYTES_MAX,
            )?
            .unwrap_or(limits::WS_MESSAGE_BYTES_DEFAULT),
        max_outbound_bytes: l
            .num(Key::MaxOutboundBytes, OUTBOUND_BYTES_MIN, usize::MAX)?
            .unwrap_or(limits::OUTBOUND_BYTES_DEFAULT),
        handshake_timeout_s: l
            .num(Key::HandshakeTimeout, 1, TIMEOUT_S_MAX)?
            .unwrap_or(limits::HANDSHAKE_TIMEOUT_S_DEFAULT),
        drain_timeout_s: l
            .num(Key::DrainTimeout, 0, TIMEOUT_S_MAX)?
            .unwrap_or(limits::DRAIN_TIMEOUT_S_DEFAULT),
        echo_path: l.get(Key::EchoPath, parse_echo_path)?,
        metrics_port,
        tls_cert_file: l.get(Key::TlsCertFile, not_empty)?,
        tls_key_file: l.get(Key::TlsKeyFile, not_empty)?,
        socketio: socketio_settings(l)?,
        channel_functions: std::sync::Arc::new(
            l.get(Key::ChannelFunctions, |text| {
                ringcast_core::functions::FunctionTable::parse(text)
            })?
            .unwrap_or_default(),
        ),
        associations_file: l.get(Key::AssociationsFile, not_empty)?,
        channels_json: ringcast_core::channels_json::ChannelsJsonSettings {
            idle_timeout_s: l
                .num(Key::ChannelsIdleTimeout, 0, TIMEOUT_S_MAX * 24)?
                .unwrap_or(limits::CHANNELS_JSON_IDLE_TIMEOUT_S_DEFAULT),
            max_lifetime_s: l
                .num(Key::ChannelsMaxLifetime, 0, TIMEOUT_S_MAX * 24 * 30)?
                .unwrap_or(limits::CHANNELS_JSON_MAX_LIFETIME_S_DEFAULT),
        },
        bridge_socket: l.get(Key::BridgeSocket, not_empty)?,
        bridge_binary: l.get(Key::BridgeBinary, not_empty)?,
        bridge_external: l.bool(Key::BridgeExternal)?.unwrap_or(false),
        node_heartbeat_ttl_ms: l
            .num(Key::NodeHeartbeatTtlMs, 300, 3_600_000)?
            .unwrap_or(10_000),
    })
}

/// `--redis-url`, or Ekko's host and port: both is a contradiction, neither the default.
fn redis_url(l: &Lookup) -> Result<String, ConfigError> {
    let url = l.get(Key::RedisUrl, not_empty)?;
    let host = l.get(Key::RedisHost, not_empty)?;
    let port: Option<u16> = l.num(Key::RedisPort, 1, u16::MAX)?;
    match (url, host, port) {
        (Some(url), None, None) => Ok(url),
        (Some(_), _, _) => Err(ConfigError(
            "--redis-url and --redis-host / --redis-port (REDIS_HOST, REDIS_PORT) say the same \
             thing: give one of them"
                .to_owned(),
        )),
        (None, None, None) => Ok(String::from("localhost:6379")),
        (None, host, port) => Ok(format!(
            "{}:{}",
            host.as_deref().unwrap_or("localhost"),
            port.unwrap_or(6379)
        )),
    }
}

/// The Socket.IO dialect's rows. The heartbeat periods are whole seconds at least, because
/// the shard's sweep that checks them runs once a second.
fn socketio_settings(l: &Lookup) -> Result<ringcast_core::socketio::SocketIoSettings, ConfigError> {
    let defaults = ringcast_core::socketio::SocketIoSettings::default();
    Ok(ringcast_core::socketio::SocketIoSettings {
        ping_interval_ms: l
            .num(Key::SocketioPingInterval, 1_000, 3_600_000)?
            .unwrap_or(defaults.ping_interval_ms),
        ping_timeout_ms: l
            .num(Key::SocketioPingTimeout, 1_000, 3_600_000)?
            .unwrap_or(defaults.ping_timeout_ms),
        max_payload_bytes: l
            .num(
                Key::SocketioMaxPayload,
                WS_MESSAGE_BYTES_MIN,
                WS_MESSAGE_BYTES_MAX,
            )?
            .unwrap_or(defaults.max_payload_bytes),
        jwt_secret: l.get(Key::JwtSecret, not_empty)?,
    })
}

/// `--port` and `--metrics-port`. Their own piece because they are the one pair of server
/// options checked against each other: both listeners cannot have the same port.
fn listener_ports(l: &Lookup) -> Result<(u16, Option<u16>), ConfigError> {
    let port = l.get(Key::Port, parse_port)?.unwrap_or(6001);
    let metrics_port = l.get(Key::MetricsPort, parse_port)?;
    if metrics_port == Some(port) {
        return Err(ConfigError(format!(
            "invalid value for --metrics-port: {port} is already the server's --port"
        )));
    }
    Ok((port, metrics_port))
}

/// Every app, and whether it is the development fallback.
fn apps(layers: &Layers) -> Result<(Vec<AppConfig>, bool), ConfigError> {
    let (file_apps, path): (&[json::Section], Option<&Path>) = match layers.doc {
        Some(doc) => (&doc.applications, Some(&doc.path)),
        None => (&[], None),
    };
    let file_label = |i: usize| match path {
        Some(path) => format!("applications[{i}] in {}", path.display()),
        None => format!("applications[{i}]"),
    };
    let cli = Lookup {
        layers,
        cli_env: true,
        section: None,
    };

    let mut built: Vec<(AppConfig, String)> = Vec::new();
    let mut merged_into = None;
    if let Some(given) = first_app_setting_given(&cli)? {
        merged_into = merge_target(&cli, file_apps, given)?;
        if merged_into.is_none() {
            let label = String::from("the app given by flags/environment");
            built.push((build_app(&cli, &label)?, label));
        }
    }
    for (i, section) in file_apps.iter().enumerate() {
        let lookup = Lookup {
            layers,
            cli_env: merged_into == Some(i),
            section: Some(section),
        };
        let label = file_label(i);
        built.push((build_app(&lookup, &label)?, label));
    }

    check_unique(&built, Key::AppId, |app| &app.id)?;
    check_unique(&built, Key::AppKey, |app| &app.key)?;

    if built.is_empty() {
        let (id, key, secret) = DEV_APP;
        return Ok((vec![AppConfig::with_credentials(id, key, secret)], true));
    }
    Ok((built.into_iter().map(|(app, _)| app).collect(), false))
}

/// The first app setting given by a flag or variable, if any: it makes a flag/env app. Its
/// own piece so [`apps`] reads as "is there a flag/env app, and where does it go".
fn first_app_setting_given(cli: &Lookup) -> Result<Option<&'static Spec>, ConfigError> {
    for spec in options::SPECS.iter().filter(|s| s.section == Section::App) {
        if cli.raw(spec.key)?.is_some() {
            return Ok(Some(spec));
        }
    }
    Ok(None)
}

/// The index of the file app the flag/env app changes: the one with the same id, or the
/// file's only app when no id is given. `None` means the flag/env app stands alone. Its own
/// piece because it holds the merge rule the module documentation describes.
fn merge_target(
    cli: &Lookup,
    file_apps: &[json::Section],
    given: &Spec,
) -> Result<Option<usize>, ConfigError> {
    match cli.text(Key::AppId)? {
        Some(id) => file_app_with_id(cli.layers, file_apps, &id),
        None if file_apps.len() == 1 => Ok(Some(0)),
        None => Err(no_app_id(given, file_apps.len())),
    }
}

/// The index of the file app whose own `app_id` (flags and environment left out) is `id`.
fn file_app_with_id(
    layers: &Layers,
    file_apps: &[json::Section],
    id: &str,
) -> Result<Option<usize>, ConfigError> {
    for (i, section) in file_apps.iter().enumerate() {
        let file_only = Lookup {
            layers,
            cli_env: false,
            section: Some(section),
        };
        if file_only.text(Key::AppId)?.as_deref() == Some(id) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn no_app_id(given: &Spec, file_apps: usize) -> ConfigError {
    let what = if given.key == Key::AppId {
        String::new()
    } else {
        format!("--{} is set but ", given.flag)
    };
    if file_apps == 0 {
        ConfigError(format!(
            "missing --app-id: {what}no app is configured; set --app-id, --app-key and \
             --app-secret (or APP_ID, APP_KEY, APP_SECRET), or give --config-file with \
             \"applications\""
        ))
    } else {
        ConfigError(format!(
            "missing --app-id: {what}the config file has {file_apps} applications; set \
             --app-id (or APP_ID) to say which one the flags and variables change"
        ))
    }
}

fn check_unique(
    built: &[(AppConfig, String)],
    key: Key,
    field: impl Fn(&AppConfig) -> &String,
) -> Result<(), ConfigError> {
    for (i, (app, label)) in built.iter().enumerate() {
        if let Some((_, first)) = built[..i].iter().find(|(a, _)| field(a) == field(app)) {
            return Err(ConfigError(format!(
                "duplicate value for --{}: {:?} is used by both {first} and {label}",
                options::spec(key).flag,
                field(app)
            )));
        }
    }
    Ok(())
}

/// Builds one app from its scope: the required credentials, then the optional settings in
/// three groups (switches and timeouts, limits, outbound HTTP), each looked up in a fixed
/// order so that of several bad values the same one is always reported.
fn build_app(l: &Lookup, label: &str) -> Result<AppConfig, ConfigError> {
    let id = required(l, label, Key::AppId, parse_ident)?;
    let key = required(l, label, Key::AppKey, parse_ident)?;
    let secret = required(l, label, Key::AppSecret, not_empty)?;
    let mut app = AppConfig::with_credentials(&id, &key, &secret);
    apply_switches_and_timeouts(l, &mut app)?;
    apply_limits(l, &mut app)?;
    apply_outbound_http(l, &mut app, label)?;
    Ok(app)
}

/// The value of a setting every app must have (its id, key and secret). Its own piece so the
/// "missing" error, which names the app and every spelling of the option, is written once.
fn required(
    l: &Lookup,
    label: &str,
    key: Key,
    parse: fn(&str) -> Result<String, String>,
) -> Result<String, ConfigError> {
    l.get(key, parse)?.ok_or_else(|| {
        let spec = options::spec(key);
        ConfigError(format!(
            "missing --{} for {label} (env {}, JSON key \"{}\")",
            spec.flag, spec.env[0], spec.json[0]
        ))
    })
}

/// Overrides the app's on/off switches and timeouts where they are set (and the seed's
/// `app_max_presence_users`, listed among them). Split from [`build_app`] because these
/// settings stand alone: none is checked against another.
fn apply_switches_and_timeouts(l: &Lookup, app: &mut AppConfig) -> Result<(), ConfigError> {
    set(&mut app.enabled, l.bool(Key::AppEnabled)?);
    set(
        &mut app.activity_timeout_s,
        l.num(Key::AppActivityTimeout, 1, u32::MAX)?,
    );
    set(
        &mut app.max_presence_users,
        l.num(Key::AppMaxPresenceUsers, 0, u32::MAX)?,
    );
    set(
        &mut app.require_channel_authorization,
        l.bool(Key::AppRequireChannelAuthorization)?,
    );
    set(
        &mut app.authorization_timeout_s,
        l.num(Key::AppAuthorizationTimeoutSeconds, 1, u32::MAX)?,
    );
    set(
        &mut app.enable_client_messages,
        l.bool(Key::AppEnableClientMessages)?,
    );
    Ok(())
}

/// Overrides the app's rate and size limits where they are set. Its own piece because the
/// limits share one rule worth reading in one place: which of them take 0 for "unlimited".
fn apply_limits(l: &Lookup, app: &mut AppConfig) -> Result<(), ConfigError> {
    // 0 means unlimited for these four (the seed's meaning).
    set(
        &mut app.max_connections,
        l.num(Key::AppMaxConnections, 0, u64::MAX)?,
    );
    set(
        &mut app.max_backend_events_per_second,
        l.num(Key::AppMaxBackendEventsPerSecond, 0, u32::MAX)?,
    );
    set(
        &mut app.max_client_events_per_second,
        l.num(Key::AppMaxClientEventsPerSecond, 0, u32::MAX)?,
    );
    set(
        &mut app.max_read_requests_per_second,
        l.num(Key::AppMaxReadRequestsPerSecond, 0, u32::MAX)?,
    );
    // The rest have no "unlimited" spelling: 0 would make the feature unusable, so it is
    // refused as the likely mistake it is.
    set(
        &mut app.max_presence_members_per_channel,
        l.num(Key::AppMaxPresenceMembersPerChannel, 1, u32::MAX)?,
    );
    set(
        &mut app.max_presence_member_size_kb,
        l.num(Key::AppMaxPresenceMemberSizeInKb, 1, u32::MAX)?,
    );
    set(
        &mut app.max_channel_name_length,
        l.num(Key::AppMaxChannelNameLength, 1, u32::MAX)?,
    );
    set(
        &mut app.max_event_channels_at_once,
        l.num(Key::AppMaxEventChannelsAtOnce, 1, u32::MAX)?,
    );
    set(
        &mut app.max_event_name_length,
        l.num(Key::AppMaxEventNameLength, 1, u32::MAX)?,
    );
    set(
        &mut app.max_event_payload_kb,
        l.num(Key::AppMaxEventPayloadInKb, 1, u32::MAX)?,
    );
    set(
        &mut app.max_event_batch_size,
        l.num(Key::AppMaxEventBatchSize, 1, u32::MAX)?,
    );
    Ok(())
}

/// Overrides what the bridge sends over HTTP for the app: webhooks (URL, list, event
/// switches), the channel authorization endpoint and the WebSocket-over-HTTP backend. Its own piece because these settings
/// depend on each other: a webhook list turns webhooks on, and webhooks turned on need
/// somewhere to go, which is checked here once all of them are read.
fn apply_outbound_http(l: &Lookup, app: &mut AppConfig, label: &str) -> Result<(), ConfigError> {
    let hooks = &mut app.webhooks;
    let enabled = l.bool(Key::AppWebhooksEnabled)?;
    hooks.url = l.get(Key::AppWebhookUrl, parse_url)?;
    app.channel_authorization_url = l.get(Key::AppChannelAuthorizationUrl, parse_url)?;
    app.slip_target_url = l.get(Key::AppSlipTargetUrl, parse_url)?;
    app.slip_jwt_secret = l.get(Key::AppSlipJwtSecret, not_empty)?;
    if let Some(names) = l.get(Key::AppChannelAuthorizationHeaders, parse_header_names)? {
        app.channel_authorization_headers = names;
    }
    set(
        &mut app.channel_authorization_query,
        l.bool(Key::AppChannelAuthorizationQuery)?,
    );
    set(
        &mut app.allowed_origins,
        l.get(Key::AppAllowedOrigins, parse_allowed_origins)?,
    );
    let forwards_cookie = app.channel_authorization_url.is_some()
        && app
            .channel_authorization_headers
            .iter()
            .any(|h| h == "cookie");
    if forwards_cookie && app.allowed_origins.allows_any() {
        // Any web page could open a socket from a visitor's browser and have subscriptions
        // authorized with the visitor's cookies.
        return Err(ConfigError(format!(
            "{label}: auth offload forwards Cookie (--app-channel-authorization-headers), which \
             needs --app-allowed-origins (env APP_ALLOWED_ORIGINS, JSON key \
             \"app_allowed_origins\") listing the sites that may connect, not *"
        )));
    }
    hooks.targets = l.get(Key::AppWebhooks, parse_webhooks)?.unwrap_or_default();
    // Listing webhooks says "send them"; only an explicit `app_webhooks_enabled` (either
    // way) overrides that, so a list can be kept in the file and switched off.
    hooks.enabled = enabled.unwrap_or(hooks.enabled || !hooks.targets.is_empty());
    set(
        &mut hooks.client_event,
        l.bool(Key::AppHasClientEventWebhooks)?,
    );
    set(
        &mut hooks.channel_occupied,
        l.bool(Key::AppHasChannelOccupiedWebhooks)?,
    );
    set(
        &mut hooks.channel_vacated,
        l.bool(Key::AppHasChannelVacatedWebhooks)?,
    );
    set(
        &mut hooks.member_added,
        l.bool(Key::AppHasMemberAddedWebhooks)?,
    );
    set(
        &mut hooks.member_removed,
        l.bool(Key::AppHasMemberRemovedWebhooks)?,
    );
    set(&mut hooks.cache_miss, l.bool(Key::AppHasCacheMissWebhooks)?);
    set(
        &mut hooks.subscription_count,
        l.bool(Key::AppHasSubscriptionCountWebhooks)?,
    );
    set(
        &mut hooks.batching,
        l.bool(Key::AppHasWebhookBatchingEnabled)?,
    );
    if hooks.enabled && hooks.url.is_none() && hooks.targets.is_empty() {
        // Enabled webhooks with nowhere to send them would be dropped silently.
        return Err(ConfigError(format!(
            "missing --app-webhook-url for {label}: webhooks are enabled \
             (--app-webhooks-enabled) but have no URL (env APP_WEBHOOK_URL, JSON key \
             \"app_webhook_url\"; or a list in --app-webhooks, env APP_WEBHOOKS, JSON key \
             \"app_webhooks\")"
        )));
    }
    Ok(())
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}
