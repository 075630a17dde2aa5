//! The bridge's command line, and what it means before anything starts: the node id, the Redis
//! client (one server or a cluster's seeds), each checked here so that a bad value is a start
//! error with a clear message rather than a retry loop.
//!
//! The Redis URL may carry a password, and a command line is public (`ps`, `/proc/*/cmdline`
//! are readable by every user), so the URL also comes from the environment
//! ([`REDIS_URL_ENV`], how the engine passes it) or from a file (`--redis-url-file`), and
//! `--redis-url` itself refuses a password ([`RedisUrl`]).

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, FromArgMatches, Parser, ValueEnum};

use crate::limits::{PRESENCE_TTL_MS_DEFAULT, PRESENCE_TTL_MS_MAX, PRESENCE_TTL_MS_MIN};
use crate::redis::connect::{redis_client, RedisClient};
use crate::redis::envelope::is_reserved_node_id;
use crate::redis::layout::check_prefix;
use crate::redis::url::{has_password, without_password};

/// The environment variable that carries the Redis URL, password included: the engine sets it
/// for the bridge it starts (`engine/src/bridge_supervisor.rs` spells the same name). A
/// process's environment is readable only by its own user and root, unlike its arguments.
pub const REDIS_URL_ENV: &str = "RINGCAST_BRIDGE_REDIS_URL";

/// The Redis URL when none is given.
const REDIS_URL_DEFAULT: &str = "redis://127.0.0.1:6379";

/// Relays ringcast events between nodes over Redis pub/sub for the engine shards linked to it.
#[derive(Debug, Parser)]
#[command(name = "ringcast-bridge", version, about)]
pub struct Args {
    /// Unix socket the engine shards link to.
    #[arg(long, value_name = "PATH", default_value = "/tmp/ringcast-bridge.sock")]
    pub link_socket: PathBuf,
    // `--redis-url`, `$RINGCAST_BRIDGE_REDIS_URL`, `--redis-url-file`: see `RedisUrl`.
    #[command(flatten)]
    pub redis_url: RedisUrl,
    /// Redis is a Redis Cluster: message channels use sharded pub/sub (Redis 7+), state keys
    /// share one hash slot.
    #[arg(long)]
    pub redis_cluster: bool,
    /// PEM file of the certificate authority that signed the Redis server's certificate
    /// (`rediss://` URLs); without it the public web roots are trusted.
    #[arg(long, value_name = "PATH")]
    pub redis_tls_ca: Option<PathBuf>,
    /// Prefix of the Redis channel names (`{prefix}#{app_id}#{channel}`).
    #[arg(long, value_name = "P", default_value = "pusher")]
    pub redis_prefix: String,
    /// This node's id on the cluster; random when not given. Must differ between nodes.
    #[arg(long, value_name = "N")]
    pub node_id: Option<u64>,
    /// Lifetime of this node's presence heartbeat: a node silent this long is presumed dead
    /// and its presence members are removed.
    #[arg(long, value_name = "MS", default_value_t = PRESENCE_TTL_MS_DEFAULT, value_parser = clap::value_parser!(u64).range(PRESENCE_TTL_MS_MIN..=PRESENCE_TTL_MS_MAX))]
    pub presence_ttl_ms: u64,
    /// A node alone: no Redis, no other nodes; the bridge only sends webhooks.
    #[arg(long, conflicts_with_all = ["redis_url", "redis_url_file", "redis_prefix", "presence_ttl_ms", "webhook_queue", "redis_cluster"])]
    pub without_redis: bool,
    /// Where webhook events wait for delivery: in this process (lost if it dies), or in Redis
    /// (at-least-once: a receiver outage or a killed bridge loses nothing).
    #[arg(long, value_enum, default_value_t = QueueDriver::Local)]
    pub webhook_queue: QueueDriver,
    /// Least severe log level printed.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

/// Values of `--webhook-queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueDriver {
    /// In this process.
    Local,
    /// In Redis.
    Redis,
}

/// Values of `--log-level`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Start, stop and state changes.
    Info,
    /// Everything, per message.
    Debug,
}

impl From<LogLevel> for tracing::Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
        }
    }
}

impl Args {
    /// This node's id: the one given, or a random one; a reserved id is refused.
    pub fn node_id(&self) -> Result<u64, String> {
        let node_id = self
            .node_id
            .unwrap_or_else(|| ahash::RandomState::new().hash_one(std::process::id()));
        if is_reserved_node_id(node_id) {
            // Its publish envelopes would read as member events; a random id hits it practically
            // never, a given one is refused.
            return Err(format!("node id {node_id} is reserved; choose another"));
        }
        Ok(node_id)
    }

    /// The Redis client, `None` for a node alone (`--without-redis`).
    pub fn redis_client(&self) -> Result<Option<RedisClient>, String> {
        check_prefix(&self.redis_prefix)?;
        if self.without_redis {
            return Ok(None);
        }
        redis_client(
            &self.redis_url,
            self.redis_tls_ca.as_deref(),
            self.redis_cluster,
        )
        .map(Some)
    }
}

/// The Redis URL (with `--redis-cluster`, comma-separated seed URLs), read as a `&str`. From
/// `--redis-url` (refused when it carries a password: every user of the machine can read a
/// command line), else [`REDIS_URL_ENV`], else the default; or from the first line of
/// `--redis-url-file`, which may not be combined with either of the first two.
#[derive(Clone)]
pub struct RedisUrl {
    url: String,
}

impl Deref for RedisUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.url
    }
}

impl fmt::Debug for RedisUrl {
    /// Masked: `Args` is printed by `{:?}` in places where a password must not go.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisUrl")
            .field(&without_password(&self.url))
            .finish()
    }
}

// Written by hand rather than derived: which source a value came from (command line or
// environment) decides whether a password is allowed, and only the matches know that.
impl clap::Args for RedisUrl {
    fn augment_args(command: Command) -> Command {
        command
            .arg(
                Arg::new("redis_url")
                    .long("redis-url")
                    .value_name("URL")
                    .env(REDIS_URL_ENV)
                    // The variable's value is the secret: `--help` names it, never shows it.
                    .hide_env_values(true)
                    .default_value(REDIS_URL_DEFAULT)
                    .help(
                        "Redis server for pub/sub between nodes; with `--redis-cluster`, one or \
                         more nodes of the cluster, comma-separated (the others are discovered). \
                         On the command line it may not carry a password (`ps` shows arguments \
                         to every user): put a URL with a password in the environment variable \
                         or in --redis-url-file",
                    ),
            )
            .arg(
                Arg::new("redis_url_file")
                    .long("redis-url-file")
                    .value_name("PATH")
                    .value_parser(clap::value_parser!(PathBuf))
                    .help(
                        "File whose first line is the Redis URL (password allowed; keep the file \
                         readable by this user only), instead of --redis-url",
                    ),
            )
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for RedisUrl {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let given = matches
            .get_one::<String>("redis_url")
            .map_or(REDIS_URL_DEFAULT, String::as_str);
        let file = matches.get_one::<PathBuf>("redis_url_file");
        resolve_redis_url(
            given,
            matches.value_source("redis_url"),
            file.map(PathBuf::as_path),
        )
        .map(|url| RedisUrl { url })
        .map_err(|message| clap::Error::raw(clap::error::ErrorKind::ValueValidation, message))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

/// The URL to use, from `given` (the value of `--redis-url` or the environment variable, as
/// `source` says) and the `--redis-url-file`; the error is the start error's text. No message
/// repeats the URL: it may hold the password.
fn resolve_redis_url(
    given: &str,
    source: Option<ValueSource>,
    file: Option<&Path>,
) -> Result<String, String> {
    let from_command_line = source == Some(ValueSource::CommandLine);
    let from_environment = source == Some(ValueSource::EnvVariable);
    match file {
        Some(_) if from_command_line || from_environment => Err(format!(
            "give the Redis URL one way: --redis-url, ${REDIS_URL_ENV} or --redis-url-file"
        )),
        Some(path) => read_url_file(path),
        None if from_command_line && has_password(given) => Err(format!(
            "--redis-url carries a password, which `ps` would show to every user of this \
             machine: put the URL in the environment variable {REDIS_URL_ENV} or its first line \
             in a file given with --redis-url-file PATH"
        )),
        None => Ok(given.to_owned()),
    }
}

/// The first line of the file at `path`, trimmed.
fn read_url_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read --redis-url-file {shown}: {err}"))?;
    let url = text.lines().next().map(str::trim).unwrap_or_default();
    if url.is_empty() {
        return Err(format!(
            "--redis-url-file {shown}: the first line (the Redis URL) is empty"
        ));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        // clap reads the variable too; these tests are about the command line.
        assert!(
            std::env::var_os(REDIS_URL_ENV).is_none(),
            "unset {REDIS_URL_ENV} to run these tests"
        );
        let mut argv = vec!["ringcast-bridge"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv).map_err(|err| err.to_string())
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "ringcast-bridge-args-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("writes a temp file");
        path
    }

    #[test]
    fn a_password_on_the_command_line_is_refused_without_repeating_it() {
        for url in [
            "redis://:s3cret@127.0.0.1:6379",
            "redis://user:s3cret@127.0.0.1:6379/1",
            "redis://h1:7001,redis://:s3cret@h2:7002",
            "redis+unix:///run/redis.sock?pass=s3cret",
        ] {
            let error = parse(&["--redis-url", url]).expect_err(url);
            assert!(
                error.contains(REDIS_URL_ENV) && error.contains("--redis-url-file"),
                "{error}"
            );
            assert!(
                !error.contains("s3cret"),
                "the error repeats the password: {error}"
            );
            let equals = format!("--redis-url={url}");
            assert!(parse(&[&equals]).is_err(), "{equals}");
        }
        let args = parse(&["--redis-url", "redis://127.0.0.1:7000"]).expect("no password");
        assert_eq!(&*args.redis_url, "redis://127.0.0.1:7000");
        let args = parse(&[]).expect("the default");
        assert_eq!(&*args.redis_url, REDIS_URL_DEFAULT);
    }

    #[test]
    fn the_url_file_gives_the_first_line_and_excludes_the_flag() {
        let file = temp_file("url", "redis://:s3cret@127.0.0.1:6390\nignored\n");
        let path = file.display().to_string();
        let args = parse(&["--redis-url-file", &path]).expect("a file URL");
        assert_eq!(&*args.redis_url, "redis://:s3cret@127.0.0.1:6390");
        assert!(
            !format!("{args:?}").contains("s3cret"),
            "Debug masks the password"
        );
        let both = parse(&["--redis-url-file", &path, "--redis-url", "redis://h:1"]);
        assert!(both.expect_err("two sources").contains("one way"));
        let alone = parse(&["--redis-url-file", &path, "--without-redis"]);
        assert!(alone.is_err(), "a node alone has no Redis URL");
        std::fs::write(&file, "\n").expect("rewrites the temp file");
        let empty = parse(&["--redis-url-file", &path]).expect_err("an empty first line");
        assert!(empty.contains("empty"), "{empty}");
        let _ = std::fs::remove_file(&file);
        let missing = parse(&["--redis-url-file", "/nonexistent/redis-url"]).expect_err("missing");
        assert!(missing.contains("/nonexistent/redis-url"), "{missing}");
    }

    #[test]
    fn the_environment_may_carry_a_password() {
        let url = "redis://:s3cret@127.0.0.1:6379";
        assert_eq!(
            resolve_redis_url(url, Some(ValueSource::EnvVariable), None),
            Ok(url.to_owned())
        );
        let file = Path::new("/nonexistent/redis-url");
        let both = resolve_redis_url(url, Some(ValueSource::EnvVariable), Some(file));
        assert!(both.expect_err("two sources").contains("one way"));
        // The default never conflicts with the file.
        let default = resolve_redis_url(
            REDIS_URL_DEFAULT,
            Some(ValueSource::DefaultValue),
            Some(file),
        );
        assert!(default.expect_err("missing file").contains("cannot read"));
    }
}
