//! Tests of `load`: precedence, the env file, JSON apps, every seed option through every
//! layer, and one error per check. No test touches the process environment or the working
//! directory: the environment is a map and files live under the temp directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

use super::*;
use ringcast_core::app::{WebhookEventType, WebhookTarget};

/// A file under the temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(ext: &str, contents: &str) -> TempFile {
        let file = TempFile::unused(ext);
        std::fs::write(&file.0, contents).unwrap();
        file
    }

    /// A unique path that does not exist.
    fn unused(ext: &str) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("ringcast-config-test-{}-{n}.{ext}", std::process::id());
        TempFile(std::env::temp_dir().join(name))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `load` with `args`, a fake environment and, when given, a JSON file. The default env
/// file is a path that does not exist, so a stray `./.env` cannot change the outcome.
fn run(args: &[&str], env: &[(&str, &str)], file: Option<&Value>) -> Result<Config, ConfigError> {
    let file = file.map(|v| TempFile::new("json", &v.to_string()));
    let mut argv: Vec<OsString> = vec![OsString::from("ringcast")];
    if let Some(file) = &file {
        argv.push("--config-file".into());
        argv.push(file.path().into());
    }
    argv.extend(args.iter().map(OsString::from));
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let no_default = TempFile::unused("env");
    load_with(argv, &|name| env.get(name).cloned(), &no_default.0)
}

fn ok(args: &[&str], env: &[(&str, &str)], file: Option<&Value>) -> Config {
    run(args, env, file).unwrap_or_else(|e| panic!("{args:?} {env:?}: {e}"))
}

fn err(args: &[&str], env: &[(&str, &str)], file: Option<&Value>) -> String {
    match run(args, env, file) {
        Ok(config) => panic!("{args:?} {env:?} {file:?} was accepted: {config:?}"),
        Err(e) => {
            assert!(!e.0.contains('\n'), "error is not one line: {e}");
            e.0
        }
    }
}

const CREDS: [&str; 6] = ["--app-id", "a1", "--app-key", "k1", "--app-secret", "s1"];

#[test]
fn nothing_configured_gives_defaults_and_the_dev_app() {
    let c = ok(&[], &[], None);
    assert!(c.dev_app);
    assert_eq!(
        c.apps,
        vec![AppConfig::with_credentials(
            "app-id",
            "app-key",
            "app-secret"
        )]
    );
    let s = &c.server;
    assert_eq!(s.port, 6001);
    assert_eq!(s.bind_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(
        (s.cache_driver, s.queue_driver, s.adapter_driver),
        (Driver::Local, Driver::Local, Driver::Local)
    );
    assert_eq!(s.app_manager, "array");
    assert_eq!(s.app_env, "production");
    assert_eq!(s.redis_prefix, "pusher");
    assert_eq!(s.redis_url, "localhost:6379");
    assert!(!s.redis_tls && !s.redis_cluster && !s.ignore_logger_middleware);
    assert_eq!(s.log_level, LogLevel::Info);
    assert_eq!(s.shards, default_shards());
    assert_eq!(s.listen_backlog, 4096);
    assert_eq!(s.max_message_size, 65536);
    assert_eq!(s.max_outbound_bytes, 1048576);
    assert_eq!((s.handshake_timeout_s, s.drain_timeout_s), (10, 10));
    assert_eq!((s.echo_path.as_deref(), s.metrics_port), (None, None));
    assert_eq!(
        (s.tls_cert_file.as_deref(), s.tls_key_file.as_deref()),
        (None, None)
    );

    // An empty JSON file configures nothing either.
    assert!(ok(&[], &[], Some(&json!({}))).dev_app);
}

#[test]
fn configured_app_is_not_the_dev_app() {
    let c = ok(&CREDS, &[], None);
    assert!(!c.dev_app);
    assert_eq!(c.apps, vec![AppConfig::with_credentials("a1", "k1", "s1")]);
}

#[test]
fn precedence_is_flag_then_env_then_file() {
    let file = json!({"server": {"port": 1000, "log_level": "error"}});
    let env = [("PORT", "2000")];
    let port = |args: &[&str], env: &[(&str, &str)]| ok(args, env, Some(&file)).server.port;
    assert_eq!(port(&["--port", "3000"], &env), 3000);
    assert_eq!(port(&[], &env), 2000);
    assert_eq!(port(&[], &[]), 1000);
    // Keys set in one layer only come from that layer.
    assert_eq!(ok(&[], &env, Some(&file)).server.log_level, LogLevel::Error);
}

#[test]
fn prefer_config_file_puts_the_file_above_env_but_not_above_flags() {
    let file = json!({"server": {"port": 1000}});
    let env = [("PORT", "2000")];
    let port =
        |args: &[&str], env: &[(&str, &str)], file: &Value| ok(args, env, Some(file)).server.port;
    assert_eq!(port(&["--prefer-config-file"], &env, &file), 1000);
    assert_eq!(
        port(&["--prefer-config-file", "--port", "3000"], &env, &file),
        3000
    );
    // The env still fills what the file leaves out.
    assert_eq!(port(&["--prefer-config-file"], &env, &json!({})), 2000);
    // `--prefer-config-file=false` and the env/JSON spellings.
    assert_eq!(port(&["--prefer-config-file=false"], &env, &file), 2000);
    let env_pref = [("PORT", "2000"), ("PREFER_CONFIG_FILE", "true")];
    assert_eq!(port(&[], &env_pref, &file), 1000);
    let file_pref = json!({"server": {"port": 1000, "prefer_config_file": true}});
    assert_eq!(port(&[], &env, &file_pref), 1000);

    // The swap applies to app settings too.
    let file = json!({"applications": [
        {"app_id": "a1", "app_key": "k1", "app_secret": "s1", "app_max_connections": 5}
    ]});
    let env = [("APP_ID", "a1"), ("APP_MAX_CONNECTIONS", "6")];
    let conns = |args: &[&str]| ok(args, &env, Some(&file)).apps[0].max_connections;
    assert_eq!(conns(&[]), 6);
    assert_eq!(conns(&["--prefer-config-file"]), 5);
    assert_eq!(
        conns(&["--prefer-config-file", "--app-max-connections", "7"]),
        7
    );
}

#[test]
fn env_file_sits_below_the_process_env_and_above_the_json_file() {
    let dotenv = TempFile::new(
        "env",
        "# ringcast\nexport PORT=7000\nLOG_LEVEL='debug'\nAPP_ENV=\"staging\" # comment\n",
    );
    let file = json!({"server": {"log_level": "error", "app_env": "prod", "redis_prefix": "x"}});
    let args = ["--env-file", dotenv.path()];
    let c = ok(&args, &[("PORT", "8000")], Some(&file));
    assert_eq!(c.server.port, 8000);
    assert_eq!(c.server.log_level, LogLevel::Debug);
    assert_eq!(c.server.app_env, "staging");
    assert_eq!(c.server.redis_prefix, "x");
    assert_eq!(ok(&args, &[], None).server.port, 7000);

    // Named by the JSON file instead of a flag.
    let file = json!({"server": {"env_file": dotenv.path()}});
    assert_eq!(ok(&[], &[], Some(&file)).server.port, 7000);

    // An empty process variable does not hide the file's value.
    assert_eq!(ok(&args, &[("PORT", "")], None).server.port, 7000);
}

#[test]
fn env_file_errors_name_the_option() {
    let missing = TempFile::unused("env");
    let e = err(&["--env-file", missing.path()], &[], None);
    assert!(e.starts_with("cannot read --env-file "), "{e}");
    let file = json!({"server": {"env_file": missing.path()}});
    let e = err(&[], &[], Some(&file));
    assert!(e.starts_with("cannot read --env-file "), "{e}");
    let bad = TempFile::new("env", "PORT=1\nthis is not a variable\n");
    let e = err(&["--env-file", bad.path()], &[], None);
    assert!(e.contains("--env-file") && e.contains("line 2"), "{e}");
    let dotenv = TempFile::new("env", "PORT=nope\n");
    let e = err(&["--env-file", dotenv.path()], &[], None);
    assert!(
        e.starts_with("invalid value for --port: \"nope\"") && e.contains("(from PORT in "),
        "{e}"
    );
}

/// The seed's JSON example, verbatim.
fn seed_example() -> Value {
    serde_json::from_str(
        r#"{
  "server": {
    "adapter_driver": "redis",
    "queue_driver": "redis",
    "cache_driver": "redis",
    "app_manager": "array",
    "port": 6001,
    "bind_address": "0.0.0.0",
    "log_level": "info",
    "app_env": "production",
    "env_file": "./.env",
    "redis_url": "localhost:6379",
    "redis_prefix": "pusher",
    "redis_tls": false,
    "redis_cluster_mode": false
  },
  "applications": [
    {
      "app_id": "123",
      "app_key": "app1key",
      "app_secret": "app1secret",
      "app_activity_timeout": 60,
      "app_max_presence_members_per_channel": 100,
      "app_max_presence_member_size_in_kb": 10,
      "app_require_channel_authorization": false,
      "app_enable_client_messages": true,
      "app_webhooks_enabled": false
    },
    {
      "app_id": "456",
      "app_key": "app2key",
      "app_secret": "app2secret"
    }
  ]
}"#,
    )
    .unwrap()
}

#[test]
fn seed_example_gives_two_apps_with_their_own_settings() {
    let mut file = seed_example();
    // The example names ./.env, which a test must not depend on.
    let dotenv = TempFile::new("env", "");
    file["server"]["env_file"] = Value::from(dotenv.path());
    let c = ok(&[], &[], Some(&file));
    assert!(!c.dev_app);
    assert_eq!(c.server.adapter_driver, Driver::Redis);
    assert_eq!(c.server.queue_driver, Driver::Redis);
    assert_eq!(c.server.cache_driver, Driver::Redis);
    let mut first = AppConfig::with_credentials("123", "app1key", "app1secret");
    first.activity_timeout_s = 60;
    first.enable_client_messages = true;
    let second = AppConfig::with_credentials("456", "app2key", "app2secret");
    assert_eq!(c.apps, vec![first, second]);
}

#[test]
fn flag_app_is_added_to_file_apps_or_merged_by_id() {
    let file = json!({"applications": [
        {"app_id": "1", "app_key": "k-1", "app_secret": "s-1", "app_max_connections": 10},
        {"app_id": 2, "app_key": "k-2", "app_secret": "s-2", "app_enabled": false}
    ]});
    // A new id: one more app, first.
    let c = ok(&CREDS, &[], Some(&file));
    let ids: Vec<&str> = c.apps.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["a1", "1", "2"]);
    assert!(!c.apps[2].enabled);
    assert_eq!(c.apps[0].max_connections, 0);

    // The id of a file app: flags and env override that app, the rest comes from the file.
    let c = ok(
        &["--app-id", "2", "--app-enabled"],
        &[("APP_KEY", "k-env")],
        Some(&file),
    );
    assert_eq!(c.apps.len(), 2);
    assert_eq!(c.apps[1].key, "k-env");
    assert_eq!(c.apps[1].secret, "s-2");
    assert!(c.apps[1].enabled);
    assert_eq!(c.apps[0].max_connections, 10);

    // No id and a single file app: that app.
    let single = json!({"applications": [file["applications"][0].clone()]});
    let c = ok(&["--app-max-connections", "3"], &[], Some(&single));
    assert_eq!(c.apps.len(), 1);
    assert_eq!(c.apps[0].max_connections, 3);

    // No id and several file apps: which one is meant is unclear.
    let e = err(&["--app-max-connections", "3"], &[], Some(&file));
    assert!(
        e.starts_with("missing --app-id: --app-max-connections is set"),
        "{e}"
    );
}

/// One row of the seed's option table, as a test sees it.
struct Row {
    flag: &'static str,
    env: &'static str,
    json: &'static str,
    app: bool,
    sample: &'static str,
    /// What the getter shows after `sample` is set.
    want: &'static str,
    /// What the getter shows when nothing sets it; empty: not checked.
    default: &'static str,
    get: fn(&Config) -> String,
}

#[rustfmt::skip]
fn seed_rows() -> Vec<Row> {
    fn s(c: &Config) -> &ServerConfig { &c.server }
    fn a(c: &Config) -> &AppConfig { &c.apps[0] }
    let row = |flag, env, json, app, sample, want, default, get| Row {
        flag, env, json, app, sample, want, default, get,
    };
    vec![
        row("port", "PORT", "port", false, "7001", "7001", "6001", |c| s(c).port.to_string()),
        row("bind-address", "BIND_ADDRESS", "bind_address", false, "127.0.0.1", "127.0.0.1", "0.0.0.0", |c| s(c).bind_address.to_string()),
        row("cache-driver", "CACHE_DRIVER", "cache_driver", false, "redis", "redis", "local", |c| s(c).cache_driver.as_str().into()),
        row("queue-driver", "QUEUE_DRIVER", "queue_driver", false, "Redis", "redis", "local", |c| s(c).queue_driver.as_str().into()),
        row("adapter-driver", "ADAPTER_DRIVER", "adapter_driver", false, "redis", "redis", "local", |c| s(c).adapter_driver.as_str().into()),
        row("app-manager", "APP_MANAGER", "app_manager", false, "ARRAY", "array", "array", |c| s(c).app_manager.clone()),
        row("app-env", "APP_ENV", "app_env", false, "staging", "staging", "production", |c| s(c).app_env.clone()),
        row("redis-prefix", "REDIS_PREFIX", "redis_prefix", false, "rc", "rc", "pusher", |c| s(c).redis_prefix.clone()),
        row("redis-url", "REDIS_URL", "redis_url", false, "redis://r:6380", "redis://r:6380", "localhost:6379", |c| s(c).redis_url.clone()),
        row("redis-host", "REDIS_HOST", "redis_host", false, "r.example", "r.example", "localhost", |c| s(c).redis_url.rsplit_once(':').unwrap().0.to_owned()),
        row("redis-port", "REDIS_PORT", "redis_port", false, "6380", "6380", "6379", |c| s(c).redis_url.rsplit_once(':').unwrap().1.to_owned()),
        row("redis-tls", "REDIS_TLS", "redis_tls", false, "yes", "true", "false", |c| s(c).redis_tls.to_string()),
        row("redis-tls-ca-file", "REDIS_TLS_CA_FILE", "redis_tls_ca_file", false, "/etc/ringcast/redis-ca.pem", "/etc/ringcast/redis-ca.pem", "", |c| s(c).redis_tls_ca_file.clone().unwrap_or_default()),
        row("redis-cluster", "REDIS_CLUSTER", "redis_cluster", false, "1", "true", "false", |c| s(c).redis_cluster.to_string()),
        row("redis-cluster", "REDIS_CLUSTER", "redis_cluster_mode", false, "TRUE", "true", "false", |c| s(c).redis_cluster.to_string()),
        row("log-level", "LOG_LEVEL", "log_level", false, "DEBUG", "debug", "info", |c| s(c).log_level.as_str().into()),
        row("ignore-logger-middleware", "IGNORE_LOGGER_MIDDLEWARE", "ignore_logger_middleware", false, "true", "true", "false", |c| s(c).ignore_logger_middleware.to_string()),
        row("app-id", "APP_ID", "app_id", true, "my-id", "my-id", "", |c| a(c).id.clone()),
        row("app-key", "APP_KEY", "app_key", true, "my-key", "my-key", "", |c| a(c).key.clone()),
        row("app-secret", "APP_SECRET", "app_secret", true, "my-secret", "my-secret", "", |c| a(c).secret.clone()),
        row("app-activity-timeout", "APP_ACTIVITY_TIMEOUT", "app_activity_timeout", true, "60", "60", "120", |c| a(c).activity_timeout_s.to_string()),
        row("app-max-presence-users", "APP_MAX_PRESENCE_USERS", "app_max_presence_users", true, "7", "7", "100", |c| a(c).max_presence_users.to_string()),
        row("app-require-authorization", "APP_REQUIRE_AUTHORIZATION", "app_require_channel_authorization", true, "true", "true", "false", |c| a(c).require_channel_authorization.to_string()),
        row("app-webhook-enabled", "APP_WEBHOOK_ENABLED", "app_webhooks_enabled", true, "true", "true", "false", |c| a(c).webhooks.enabled.to_string()),
        row("app-enable-client-messages", "APP_ENABLE_CLIENT_MESSAGES", "app_enable_client_messages", true, "true", "true", "false", |c| a(c).enable_client_messages.to_string()),
        row("app-authorization-timeout-seconds", "APP_AUTHORIZATION_TIMEOUT_SECONDS", "app_authorization_timeout_seconds", true, "9", "9", "5", |c| a(c).authorization_timeout_s.to_string()),
        row("app-max-connections", "APP_MAX_CONNECTIONS", "app_max_connections", true, "5000000000", "5000000000", "0", |c| a(c).max_connections.to_string()),
        row("app-max-backend-events-per-second", "APP_MAX_BACKEND_EVENTS_PER_SECOND", "app_max_backend_events_per_second", true, "11", "11", "0", |c| a(c).max_backend_events_per_second.to_string()),
        row("app-max-client-events-per-second", "APP_MAX_CLIENT_EVENTS_PER_SECOND", "app_max_client_events_per_second", true, "12", "12", "0", |c| a(c).max_client_events_per_second.to_string()),
        row("app-max-read-requests-per-second", "APP_MAX_READ_REQUESTS_PER_SECOND", "app_max_read_requests_per_second", true, "13", "13", "0", |c| a(c).max_read_requests_per_second.to_string()),
        row("app-max-presence-members-per-channel", "APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL", "app_max_presence_members_per_channel", true, "14", "14", "100", |c| a(c).max_presence_members_per_channel.to_string()),
        row("app-max-presence-member-size-in-kb", "APP_MAX_PRESENCE_MEMBER_SIZE_IN_KB", "app_max_presence_member_size_in_kb", true, "15", "15", "10", |c| a(c).max_presence_member_size_kb.to_string()),
        row("app-max-channel-name-length", "APP_MAX_CHANNEL_NAME_LENGTH", "app_max_channel_name_length", true, "16", "16", "200", |c| a(c).max_channel_name_length.to_string()),
        row("app-max-event-channels-at-once", "APP_MAX_EVENT_CHANNELS_AT_ONCE", "app_max_event_channels_at_once", true, "17", "17", "10", |c| a(c).max_event_channels_at_once.to_string()),
        row("app-max-event-name-length", "APP_MAX_EVENT_NAME_LENGTH", "app_max_event_name_length", true, "18", "18", "200", |c| a(c).max_event_name_length.to_string()),
        row("app-max-event-payload-in-kb", "APP_MAX_EVENT_PAYLOAD_IN_KB", "app_max_event_payload_in_kb", true, "19", "19", "10", |c| a(c).max_event_payload_kb.to_string()),
        row("app-max-event-batch-size", "APP_MAX_EVENT_BATCH_SIZE", "app_max_event_batch_size", true, "20", "20", "10", |c| a(c).max_event_batch_size.to_string()),
        row("app-require-channel-authorization", "APP_REQUIRE_CHANNEL_AUTHORIZATION", "app_require_channel_authorization", true, "yes", "true", "false", |c| a(c).require_channel_authorization.to_string()),
        row("app-has-client-event-webhooks", "APP_HAS_CLIENT_EVENT_WEBHOOKS", "app_has_client_event_webhooks", true, "true", "true", "false", |c| a(c).webhooks.client_event.to_string()),
        row("app-has-channel-occupied-webhooks", "APP_HAS_CHANNEL_OCCUPIED_WEBHOOKS", "app_has_channel_occupied_webhooks", true, "true", "true", "false", |c| a(c).webhooks.channel_occupied.to_string()),
        row("app-has-channel-vacated-webhooks", "APP_HAS_CHANNEL_VACATED_WEBHOOKS", "app_has_channel_vacated_webhooks", true, "true", "true", "false", |c| a(c).webhooks.channel_vacated.to_string()),
        row("app-has-member-added-webhooks", "APP_HAS_MEMBER_ADDED_WEBHOOKS", "app_has_member_added_webhooks", true, "true", "true", "false", |c| a(c).webhooks.member_added.to_string()),
        row("app-has-member-removed-webhooks", "APP_HAS_MEMBER_REMOVED_WEBHOOKS", "app_has_member_removed_webhooks", true, "true", "true", "false", |c| a(c).webhooks.member_removed.to_string()),
        row("app-has-cache-miss-webhooks", "APP_HAS_CACHE_MISS_WEBHOOKS", "app_has_cache_miss_webhooks", true, "true", "true", "false", |c| a(c).webhooks.cache_miss.to_string()),
        row("app-has-webhook-batching-enabled", "APP_HAS_WEBHOOK_BATCHING_ENABLED", "app_has_webhook_batching_enabled", true, "true", "true", "false", |c| a(c).webhooks.batching.to_string()),
        row("app-webhooks", "APP_WEBHOOKS", "app_webhooks", true, r#"[{"url": "http://h/x", "event_types": ["member_added"]}]"#, r#"[{"url":"http://h/x","event_types":["member_added"]}]"#, "[]", |c| webhooks_json(a(c))),
        row("app-webhooks-enabled", "APP_WEBHOOKS_ENABLED", "app_webhooks_enabled", true, "true", "true", "false", |c| a(c).webhooks.enabled.to_string()),
        row("app-channel-authorization-url", "APP_CHANNEL_AUTHORIZATION_URL", "app_channel_authorization_url", true, "http://auth.example/pusher", "http://auth.example/pusher", "", |c| a(c).channel_authorization_url.clone().unwrap_or_default()),
        row("app-channel-authorization-headers", "APP_CHANNEL_AUTHORIZATION_HEADERS", "app_channel_authorization_headers", true, "Cookie, X-Device", "cookie,x-device", "", |c| a(c).channel_authorization_headers.join(",")),
        row("app-channel-authorization-query", "APP_CHANNEL_AUTHORIZATION_QUERY", "app_channel_authorization_query", true, "true", "true", "false", |c| a(c).channel_authorization_query.to_string()),
        row("app-allowed-origins", "APP_ALLOWED_ORIGINS", "app_allowed_origins", true, "https://App.example.com, *.example.com", "https://app.example.com,*.example.com", "", |c| a(c).allowed_origins.to_string()),
        // ringcast additions.
        row("app-slip-target-url", "APP_SLIP_TARGET_URL", "app_slip_target_url", true, "http://backend.example/ws", "http://backend.example/ws", "", |c| a(c).slip_target_url.clone().unwrap_or_default()),
        row("app-slip-jwt-secret", "APP_SLIP_JWT_SECRET", "app_slip_jwt_secret", true, "shh", "shh", "", |c| a(c).slip_jwt_secret.clone().unwrap_or_default()),
        row("app-has-subscription-count-webhooks", "APP_HAS_SUBSCRIPTION_COUNT_WEBHOOKS", "app_has_subscription_count_webhooks", true, "true", "true", "false", |c| a(c).webhooks.subscription_count.to_string()),
        row("app-webhook-url", "APP_WEBHOOK_URL", "app_webhook_url", true, "https://hooks.example/x", "https://hooks.example/x", "", |c| a(c).webhooks.url.clone().unwrap_or_default()),
        row("app-enabled", "APP_ENABLED", "app_enabled", true, "no", "false", "true", |c| a(c).enabled.to_string()),
        row("shards", "SHARDS", "shards", false, "3", "3", "", |c| s(c).shards.to_string()),
        row("listen-backlog", "LISTEN_BACKLOG", "listen_backlog", false, "128", "128", "4096", |c| s(c).listen_backlog.to_string()),
        row("max-message-size", "MAX_MESSAGE_SIZE", "max_message_size", false, "125", "125", "65536", |c| s(c).max_message_size.to_string()),
        row("max-outbound-bytes", "MAX_OUTBOUND_BYTES", "max_outbound_bytes", false, "4096", "4096", "1048576", |c| s(c).max_outbound_bytes.to_string()),
        row("handshake-timeout", "HANDSHAKE_TIMEOUT", "handshake_timeout", false, "3", "3", "10", |c| s(c).handshake_timeout_s.to_string()),
        row("drain-timeout", "DRAIN_TIMEOUT", "drain_timeout", false, "0", "0", "10", |c| s(c).drain_timeout_s.to_string()),
        row("echo-path", "ECHO_PATH", "echo_path", false, "/echo", "/echo", "", |c| s(c).echo_path.clone().unwrap_or_default()),
        row("metrics-port", "METRICS_PORT", "metrics_port", false, "9100", "9100", "", |c| s(c).metrics_port.map(|p| p.to_string()).unwrap_or_default()),
        row("tls-cert-file", "TLS_CERT_FILE", "tls_cert_file", false, "/etc/ringcast/cert.pem", "/etc/ringcast/cert.pem", "", |c| s(c).tls_cert_file.clone().unwrap_or_default()),
        row("tls-key-file", "TLS_KEY_FILE", "tls_key_file", false, "/etc/ringcast/key.pem", "/etc/ringcast/key.pem", "", |c| s(c).tls_key_file.clone().unwrap_or_default()),
        row("socketio-ping-interval", "SOCKETIO_PING_INTERVAL", "socketio_ping_interval", false, "5000", "5000", "25000", |c| s(c).socketio.ping_interval_ms.to_string()),
        row("socketio-ping-timeout", "SOCKETIO_PING_TIMEOUT", "socketio_ping_timeout", false, "3000", "3000", "20000", |c| s(c).socketio.ping_timeout_ms.to_string()),
        row("socketio-max-payload", "SOCKETIO_MAX_PAYLOAD", "socketio_max_payload", false, "4096", "4096", "1000000", |c| s(c).socketio.max_payload_bytes.to_string()),
        row("jwt-secret", "JWT_SECRET", "jwt_secret", false, "s3cret", "s3cret", "", |c| s(c).socketio.jwt_secret.clone().unwrap_or_default()),
        row("channel-functions", "CHANNEL_FUNCTIONS", "channel_functions", false, "upper=http://127.0.0.1:9/u", "upper=http://127.0.0.1:9/u", "", |c| s(c).channel_functions.url("upper").map(|u| format!("upper={u}")).unwrap_or_default()),
        row("channels-idle-timeout", "CHANNELS_IDLE_TIMEOUT", "channels_idle_timeout", false, "30", "30", "600", |c| s(c).channels_json.idle_timeout_s.to_string()),
        row("channels-max-lifetime", "CHANNELS_MAX_LIFETIME", "channels_max_lifetime", false, "0", "0", "7200", |c| s(c).channels_json.max_lifetime_s.to_string()),
        row("associations-file", "ASSOCIATIONS_FILE", "associations_file", false, "/etc/ringcast/associations.json", "/etc/ringcast/associations.json", "", |c| s(c).associations_file.clone().unwrap_or_default()),
        row("bridge-socket", "BRIDGE_SOCKET", "bridge_socket", false, "/run/rc.sock", "/run/rc.sock", "", |c| s(c).bridge_socket.clone().unwrap_or_default()),
        row("bridge-binary", "BRIDGE_BINARY", "bridge_binary", false, "/opt/rc-bridge", "/opt/rc-bridge", "", |c| s(c).bridge_binary.clone().unwrap_or_default()),
        row("bridge-external", "BRIDGE_EXTERNAL", "bridge_external", false, "true", "true", "false", |c| s(c).bridge_external.to_string()),
        row("node-heartbeat-ttl-ms", "NODE_HEARTBEAT_TTL_MS", "node_heartbeat_ttl_ms", false, "2000", "2000", "10000", |c| s(c).node_heartbeat_ttl_ms.to_string()),
    ]
}

/// The URLs and event types of an app's `app_webhooks`, as the JSON text that lists them.
fn webhooks_json(app: &AppConfig) -> String {
    let targets: Vec<Value> = app
        .webhooks
        .targets
        .iter()
        .map(|t| {
            let kinds: Vec<&str> = t.event_types.iter().map(|k| k.name()).collect();
            json!({"url": t.url, "event_types": kinds})
        })
        .collect();
    let items: Vec<String> = targets
        .iter()
        .map(|t| {
            format!(
                r#"{{"url":{},"event_types":{}}}"#,
                t["url"], t["event_types"]
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

#[test]
fn every_option_works_as_flag_env_var_and_json_key() {
    // Everything an app row needs besides the tested value (a URL so webhooks can be on).
    let base = [
        ("app-id", "APP_ID", "app_id", "a1"),
        ("app-key", "APP_KEY", "app_key", "k1"),
        ("app-secret", "APP_SECRET", "app_secret", "s1"),
        (
            "app-webhook-url",
            "APP_WEBHOOK_URL",
            "app_webhook_url",
            "http://127.0.0.1:9/h",
        ),
    ];
    for row in seed_rows() {
        let context = format!("--{} / {} / {}", row.flag, row.env, row.json);
        let others: Vec<_> = base
            .iter()
            .filter(|(flag, ..)| row.app && *flag != row.flag)
            .collect();

        // As a flag.
        let mut args: Vec<String> = vec![format!("--{}", row.flag), row.sample.into()];
        for (flag, _, _, value) in &others {
            args.extend([format!("--{flag}"), value.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!((row.get)(&ok(&args, &[], None)), row.want, "flag {context}");

        // As an environment variable.
        let mut env = vec![(row.env, row.sample)];
        env.extend(others.iter().map(|(_, env, _, value)| (*env, *value)));
        assert_eq!((row.get)(&ok(&[], &env, None)), row.want, "env {context}");

        // As a JSON key, typed as JSON would type it.
        let value = serde_json::from_str(row.want).unwrap_or(Value::from(row.want));
        let mut object = serde_json::Map::new();
        object.insert(row.json.into(), value);
        for (_, _, key, value) in &others {
            object.insert(key.to_string(), Value::from(*value));
        }
        let file = if row.app {
            json!({"applications": [object]})
        } else {
            json!({"server": object})
        };
        assert_eq!(
            (row.get)(&ok(&[], &[], Some(&file))),
            row.want,
            "json {context}"
        );

        // Unset: the documented default, which the help text shows too.
        if !row.default.is_empty() {
            let creds = if row.app { &CREDS[..] } else { &[] };
            assert_eq!(
                (row.get)(&ok(creds, &[], None)),
                row.default,
                "default {context}"
            );
            let spec = options::SPECS
                .iter()
                .find(|s| s.flag == row.flag || s.aliases.contains(&row.flag))
                .unwrap();
            assert_eq!(spec.default, row.default, "help default {context}");
        }
    }
}

#[test]
fn every_option_in_the_table_is_covered_by_the_seed_rows() {
    let rows = seed_rows();
    for spec in options::SPECS
        .iter()
        .filter(|s| s.section != Section::Files)
    {
        for name in std::iter::once(&spec.flag).chain(spec.aliases) {
            assert!(rows.iter().any(|r| r.flag == *name), "--{name} untested");
        }
        for env in spec.env {
            let tested = rows.iter().any(|r| r.env == *env);
            // Alias variables are tested through their own rows or `aliases_are_accepted`.
            assert!(tested || spec.env.len() > 1, "{env} untested");
        }
        for key in spec.json {
            assert!(
                rows.iter().any(|r| r.json == *key) || spec.json.len() > 1,
                "{key}"
            );
        }
    }
}

#[test]
fn aliases_are_accepted_and_must_agree() {
    let c = ok(&CREDS, &[("APP_REQUIRE_AUTHORIZATION", "true")], None);
    assert!(c.apps[0].require_channel_authorization);
    let file = json!({"applications": [{"app_id": "a", "app_key": "k", "app_secret": "s",
        "app_require_authorization": true, "app_webhook_enabled": true,
        "app_webhook_url": "http://h/"}]});
    let c = ok(&[], &[], Some(&file));
    assert!(c.apps[0].require_channel_authorization && c.apps[0].webhooks.enabled);
    // The seed README's spellings.
    let c = ok(
        &[
            "--config",
            TempFile::new("json", "{}").path(),
            "--default-app-id",
            "i",
            "--default-app-key",
            "k",
            "--default-app-secret",
            "s",
            "--adapter-manager",
            "redis",
        ],
        &[],
        None,
    );
    assert_eq!(c.apps[0].id, "i");
    assert_eq!(c.server.adapter_driver, Driver::Redis);
    // Agreeing spellings are fine, contradicting ones are not.
    let env = [
        ("APP_REQUIRE_AUTHORIZATION", "1"),
        ("APP_REQUIRE_CHANNEL_AUTHORIZATION", "true"),
    ];
    assert!(ok(&CREDS, &env, None).apps[0].require_channel_authorization);
    let env = [
        ("APP_REQUIRE_AUTHORIZATION", "true"),
        ("APP_REQUIRE_CHANNEL_AUTHORIZATION", "false"),
    ];
    let e = err(&CREDS, &env, None);
    assert!(
        e.starts_with("conflicting values for --app-require-channel-authorization"),
        "{e}"
    );
    let file = json!({"server": {"redis_cluster": true, "redis_cluster_mode": false}});
    let e = err(&[], &[], Some(&file));
    assert!(
        e.starts_with("conflicting values for --redis-cluster"),
        "{e}"
    );
}

#[test]
fn bool_flags_work_alone_and_with_a_value() {
    assert!(ok(&["--redis-tls"], &[], None).server.redis_tls);
    assert!(
        ok(&["--redis-tls", "--port", "7000"], &[], None)
            .server
            .redis_tls
    );
    let off = ok(&["--redis-tls=false"], &[("REDIS_TLS", "true")], None);
    assert!(!off.server.redis_tls);
    assert!(!ok(&["--redis-tls", "No"], &[], None).server.redis_tls);
    // The last of a repeated flag wins.
    assert_eq!(
        ok(&["--port", "1", "--port", "2"], &[], None).server.port,
        2
    );
}

#[test]
fn values_are_trimmed_and_ipv6_brackets_accepted() {
    let c = ok(&[], &[("PORT", " 7000 "), ("BIND_ADDRESS", "[::]")], None);
    assert_eq!(c.server.port, 7000);
    assert_eq!(c.server.bind_address.to_string(), "::");
}

#[test]
fn each_check_names_its_option() {
    let app = |extra: Value| {
        let mut object = json!({"app_id": "a", "app_key": "k", "app_secret": "s"});
        for (k, v) in extra.as_object().unwrap() {
            object[k] = v.clone();
        }
        json!({"applications": [object]})
    };
    let with_creds = |extra: &[&'static str]| -> Vec<&'static str> {
        CREDS.iter().copied().chain(extra.iter().copied()).collect()
    };
    // (flags, environment, JSON file, text the error must contain)
    type Case = (
        Vec<&'static str>,
        Vec<(&'static str, &'static str)>,
        Option<Value>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (vec!["--port", "abc"], vec![], None,
         "invalid value for --port: \"abc\" is not a port number (0-65535, 0 = any free port)"),
        (vec![], vec![("PORT", "-1")], None,
         "invalid value for --port: \"-1\" is not a port number (0-65535, 0 = any free port) (from environment variable PORT)"),
        (vec![], vec![], Some(json!({"server": {"port": 70000}})), "invalid value for --port: \"70000\""),
        (vec![], vec![], Some(json!({"server": {"port": [1]}})), "invalid value for --port: expected a single value"),
        (vec!["--bind-address", "nope"], vec![], None, "invalid value for --bind-address"),
        (vec!["--cache-driver", "memcached"], vec![], None,
         "invalid value for --cache-driver: \"memcached\" is not a driver (expected local or redis)"),
        (vec![], vec![("QUEUE_DRIVER", "sqs")], None, "invalid value for --queue-driver"),
        (vec![], vec![], Some(json!({"server": {"adapter_driver": "nats"}})), "invalid value for --adapter-driver"),
        (vec!["--app-manager", "mysql"], vec![], None, "invalid value for --app-manager"),
        (vec!["--log-level", "verbose"], vec![], None, "invalid value for --log-level"),
        (vec!["--redis-tls", "maybe"], vec![], None,
         "invalid value for --redis-tls: \"maybe\" is not a boolean"),
        (vec![], vec![("REDIS_CLUSTER", "2")], None, "invalid value for --redis-cluster"),
        (vec!["--ignore-logger-middleware=x"], vec![], None, "invalid value for --ignore-logger-middleware"),
        (vec!["--redis-url", ""], vec![], None, "invalid value for --redis-url: must not be empty"),
        (vec!["--prefer-config-file=perhaps"], vec![], None, "invalid value for --prefer-config-file"),
        (vec!["--shards", "0"], vec![], None, "invalid value for --shards: 0 is out of range (1-64)"),
        (vec!["--shards", "65"], vec![], None, "invalid value for --shards: 65 is out of range (1-64)"),
        (vec!["--shards", "two"], vec![], None, "invalid value for --shards: \"two\" is not a whole number"),
        (vec!["--listen-backlog", "0"], vec![], None, "invalid value for --listen-backlog"),
        (vec!["--max-message-size", "124"], vec![], None, "invalid value for --max-message-size"),
        (vec!["--max-message-size", "16777217"], vec![], None, "invalid value for --max-message-size"),
        (vec!["--max-outbound-bytes", "4095"], vec![], None, "invalid value for --max-outbound-bytes"),
        (vec!["--handshake-timeout", "0"], vec![], None, "invalid value for --handshake-timeout"),
        (vec!["--drain-timeout", "-1"], vec![], None, "invalid value for --drain-timeout"),
        (vec!["--echo-path", "echo"], vec![], None, "invalid value for --echo-path: \"echo\" must start with '/'"),
        (vec!["--metrics-port", "6001"], vec![], None, "invalid value for --metrics-port"),
        (vec!["--metrics-port", "x"], vec![], None, "invalid value for --metrics-port"),
        (vec!["--app-id", "a", "--app-key", "k"], vec![], None, "missing --app-secret for the app given by flags/environment"),
        (vec![], vec![("APP_SECRET", "s"), ("APP_ID", "a")], None, "missing --app-key"),
        (vec!["--app-enable-client-messages"], vec![], None, "missing --app-id: --app-enable-client-messages is set but no app is configured"),
        (vec![], vec![], Some(json!({"applications": [{"app_id": "a", "app_secret": "s"}]})),
         "missing --app-key for applications[0] in "),
        (with_creds(&["--app-id", "a/b"]), vec![], None, "invalid value for --app-id: \"a/b\" contains '/'"),
        (with_creds(&["--app-key", "k:1"]), vec![], None, "invalid value for --app-key"),
        (with_creds(&["--app-secret", ""]), vec![], None, "invalid value for --app-secret: must not be empty"),
        (vec![], vec![], Some(json!({"applications": [
            {"app_id": "a", "app_key": "k1", "app_secret": "s"},
            {"app_id": "a", "app_key": "k2", "app_secret": "s"}]})),
         "duplicate value for --app-id: \"a\" is used by both applications[0] in "),
        (vec!["--app-id", "b", "--app-key", "k", "--app-secret", "s"], vec![], Some(app(json!({}))),
         "duplicate value for --app-key: \"k\" is used by both the app given by flags/environment and applications[0]"),
        (with_creds(&["--app-activity-timeout", "0"]), vec![], None, "invalid value for --app-activity-timeout: 0 is out of range"),
        (vec![], vec![], Some(app(json!({"app_max_connections": -1}))),
         "invalid value for --app-max-connections: \"-1\" is not a whole number (from applications[0].app_max_connections in "),
        (vec![], vec![], Some(app(json!({"app_max_presence_members_per_channel": 1.5}))),
         "invalid value for --app-max-presence-members-per-channel"),
        (vec![], vec![], Some(app(json!({"app_max_event_batch_size": 0}))), "invalid value for --app-max-event-batch-size"),
        (vec![], vec![], Some(app(json!({"app_enable_client_messages": "sure"}))), "invalid value for --app-enable-client-messages"),
        (vec![], vec![], Some(app(json!({"app_webhook_url": "ftp://x"}))), "invalid value for --app-webhook-url"),
        (vec![], vec![], Some(app(json!({"app_webhooks_enabled": true}))),
         "missing --app-webhook-url for applications[0] in "),
        (vec![], vec![], Some(app(json!({"app_max_conections": 1}))),
         "(did you mean \"app_max_connections\"?)"),
        (vec!["--prot", "1"], vec![], None, "unexpected argument '--prot' found"),
        (vec!["--port"], vec![], None, "--port"),
        (vec!["--config-file", "/nonexistent/ringcast.json"], vec![], None,
         "cannot read --config-file /nonexistent/ringcast.json: "),
    ];
    for (args, env, file, want) in cases {
        let e = err(&args, &env, file.as_ref());
        assert!(
            e.contains(want),
            "{args:?} {env:?} {file:?}\n got: {e}\nwant: {want}"
        );
    }
}

#[test]
fn json_syntax_errors_are_one_line_with_a_position() {
    let file = TempFile::new("json", "{\n  \"server\": {\n    \"port\": 6001,\n  }\n}\n");
    let e = err(&["--config-file", file.path()], &[], None);
    assert!(e.starts_with("invalid --config-file "), "{e}");
    assert!(e.contains("line 4 column"), "{e}");
}

#[test]
fn clap_errors_become_one_line() {
    let e = err(&["--prot", "1"], &[], None);
    assert!(e.contains("--port"), "the suggestion is kept: {e}");
    assert!(!e.contains("Usage"), "{e}");
}

#[test]
fn only_the_default_env_file_may_be_missing() {
    assert!(names_default_env_file("./.env") && names_default_env_file(".env"));
    assert!(!names_default_env_file("./.env.prod"));
}

#[test]
fn missing_default_env_file_is_fine_and_an_existing_one_is_read() {
    let dotenv = TempFile::new("env", "PORT=7100\n");
    let argv = vec![OsString::from("ringcast")];
    let c = load_with(argv, &|_| None, Path::new(dotenv.path())).unwrap();
    assert_eq!(c.server.port, 7100);
}

/// An app of the JSON file with `extra` keys.
fn file_app(extra: Value) -> Value {
    let mut object = json!({"app_id": "a", "app_key": "k", "app_secret": "s"});
    for (k, v) in extra.as_object().unwrap() {
        object[k] = v.clone();
    }
    json!({"applications": [object]})
}

#[test]
fn app_webhooks_in_the_file_is_a_json_array_with_filters_and_headers() {
    let file = file_app(json!({"app_webhooks": [
        {"url": "https://hooks.example/presence",
         "event_types": ["member_added", "member_removed"],
         "filter": {"channel_name_starts_with": "presence-", "channel_name_ends_with": "-eu"},
         "headers": {"Authorization": "Bearer t0k3n", "X-Team": "rt"}},
        {"url": "http://127.0.0.1:9/all", "event_types": ["channel_occupied", "cache_miss"]}
    ]}));
    let c = ok(&[], &[], Some(&file));
    let hooks = &c.apps[0].webhooks;
    assert_eq!(
        hooks.targets,
        vec![
            WebhookTarget {
                url: "https://hooks.example/presence".into(),
                event_types: vec![
                    WebhookEventType::MemberAdded,
                    WebhookEventType::MemberRemoved
                ],
                channel_name_starts_with: Some("presence-".into()),
                channel_name_ends_with: Some("-eu".into()),
                headers: vec![
                    ("Authorization".into(), "Bearer t0k3n".into()),
                    ("X-Team".into(), "rt".into()),
                ],
            },
            WebhookTarget {
                url: "http://127.0.0.1:9/all".into(),
                event_types: vec![
                    WebhookEventType::ChannelOccupied,
                    WebhookEventType::CacheMiss
                ],
                channel_name_starts_with: None,
                channel_name_ends_with: None,
                headers: vec![],
            },
        ]
    );
    // The list alone turns webhooks on: no `app_webhook_url` is needed.
    assert!(hooks.enabled && hooks.url.is_none());

    // JSON text in a string works in the file too, and an empty list is no list.
    let text = r#"[{"url": "http://h/", "event_types": ["client_event"]}]"#;
    let c = ok(&[], &[], Some(&file_app(json!({"app_webhooks": text}))));
    assert_eq!(c.apps[0].webhooks.targets.len(), 1);
    let c = ok(&[], &[], Some(&file_app(json!({"app_webhooks": []}))));
    assert!(c.apps[0].webhooks.targets.is_empty() && !c.apps[0].webhooks.enabled);
    assert!(ok(&CREDS, &[], None).apps[0].webhooks.targets.is_empty());
}

#[test]
fn app_webhooks_from_env_and_flags_is_json_text() {
    let text = r#"[ {"url": "http://h:8080/x", "event_types": ["channel_vacated"],
                    "filter": {"channel_name_ends_with": "-jobs"},
                    "headers": {"X-Env": "1"}} ]"#;
    let env = [
        ("APP_ID", "a1"),
        ("APP_KEY", "k1"),
        ("APP_SECRET", "s1"),
        ("APP_WEBHOOKS", text),
    ];
    let c = ok(&[], &env, None);
    let target = &c.apps[0].webhooks.targets[0];
    assert_eq!(target.url, "http://h:8080/x");
    assert_eq!(target.event_types, vec![WebhookEventType::ChannelVacated]);
    assert_eq!(
        (
            target.channel_name_starts_with.as_deref(),
            target.channel_name_ends_with.as_deref()
        ),
        (None, Some("-jobs"))
    );
    assert_eq!(target.headers, vec![("X-Env".to_owned(), "1".to_owned())]);
    assert!(c.apps[0].webhooks.enabled);

    // A flag beats the file's list as a whole (lists are not merged).
    let file = file_app(json!({"app_webhooks": [
        {"url": "http://file/", "event_types": ["cache_miss"]}]}));
    let flag = r#"[{"url": "http://flag/", "event_types": ["cache_miss"]}]"#;
    let c = ok(&["--app-webhooks", flag], &[], Some(&file));
    assert_eq!(c.apps.len(), 1);
    assert_eq!(c.apps[0].webhooks.targets[0].url, "http://flag/");
}

#[test]
fn app_webhooks_turn_webhooks_on_unless_explicitly_off() {
    let list = json!([{"url": "http://h/", "event_types": ["member_added"]}]);
    // Implied.
    let c = ok(&[], &[], Some(&file_app(json!({"app_webhooks": list}))));
    assert!(c.apps[0].webhooks.enabled);
    // An explicit false wins, from the file, the environment or a flag; the list is kept.
    let off = file_app(json!({"app_webhooks": list, "app_webhooks_enabled": false}));
    let c = ok(&[], &[], Some(&off));
    assert!(!c.apps[0].webhooks.enabled);
    assert_eq!(c.apps[0].webhooks.targets.len(), 1);
    assert!(c.apps[0].webhooks.effective_targets().is_empty());
    let on = file_app(json!({"app_webhooks": list}));
    let c = ok(&[], &[("APP_WEBHOOKS_ENABLED", "false")], Some(&on));
    assert!(!c.apps[0].webhooks.enabled);
    let c = ok(&["--app-webhooks-enabled=false"], &[], Some(&on));
    assert!(!c.apps[0].webhooks.enabled);
    // Explicitly on with only the list: no URL is missing.
    let both = file_app(json!({"app_webhooks": list, "app_webhooks_enabled": true}));
    assert!(ok(&[], &[], Some(&both)).apps[0].webhooks.enabled);
    // Explicitly on with neither: the existing error, which now names both ways.
    let e = err(
        &[],
        &[],
        Some(&file_app(
            json!({"app_webhooks_enabled": true, "app_webhooks": []}),
        )),
    );
    assert!(
        e.starts_with("missing --app-webhook-url for applications[0] in ")
            && e.contains("--app-webhooks"),
        "{e}"
    );
}

#[test]
fn effective_targets_are_the_flat_url_then_app_webhooks() {
    let file = file_app(json!({
        "app_webhook_url": "http://flat/",
        "app_has_channel_occupied_webhooks": true,
        "app_has_client_event_webhooks": true,
        "app_webhooks": [{"url": "https://extra/", "event_types": ["member_removed"],
                          "filter": {"channel_name_starts_with": "presence-"},
                          "headers": {"X-A": "b"}}]
    }));
    let c = ok(&[], &[], Some(&file));
    let hooks = &c.apps[0].webhooks;
    assert!(hooks.enabled);
    let targets = hooks.effective_targets();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0].url, "http://flat/");
    assert_eq!(
        targets[0].event_types,
        vec![
            WebhookEventType::ChannelOccupied,
            WebhookEventType::ClientEvent
        ]
    );
    assert!(targets[0].channel_name_starts_with.is_none() && targets[0].headers.is_empty());
    assert_eq!(targets[1], hooks.targets[0]);
    assert_eq!(
        targets[1].channel_name_starts_with.as_deref(),
        Some("presence-")
    );
}

#[test]
fn app_webhooks_errors_name_the_option_and_the_place() {
    let hook = |extra: Value| {
        let mut object = json!({"url": "http://h/", "event_types": ["member_added"]});
        for (k, v) in extra.as_object().unwrap() {
            object[k] = v.clone();
        }
        object
    };
    let in_file = |list: Value| file_app(json!({"app_webhooks": list}));
    let many: Vec<Value> = (0..17).map(|_| hook(json!({}))).collect();
    let headers: serde_json::Map<String, Value> = (0..33)
        .map(|i| (format!("X-H{i}"), Value::from("v")))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (in_file(json!([hook(json!({"event_types": ["member_added", "channel_created"]}))])),
         "invalid value for --app-webhooks: app_webhooks[0].event_types[1]: \"channel_created\" \
          is not a webhook event type (expected one of: channel_occupied, channel_vacated, \
          member_added, member_removed, client_event, cache_miss, subscription_count) \
          (from applications[0].app_webhooks in "),
        (in_file(json!([hook(json!({})), hook(json!({"url": "ftp://h/"}))])),
         "invalid value for --app-webhooks: app_webhooks[1].url: \"ftp://h/\" is not an http:// or https:// URL"),
        (in_file(json!([hook(json!({"headers": {"x-pusher-signature": "f00"}}))])),
         "app_webhooks[0].headers: \"x-pusher-signature\" may not be set: the server sends X-Pusher-Signature itself"),
        (in_file(json!([hook(json!({"headers": {"Content-Type": "text/plain"}}))])),
         "\"Content-Type\" may not be set"),
        (in_file(json!([hook(json!({"headers": {"X-Pusher-Key": "k"}}))])),
         "\"X-Pusher-Key\" may not be set"),
        (in_file(json!([hook(json!({"urls": "http://h/"}))])),
         "app_webhooks[0]: unknown key \"urls\" (did you mean \"url\"?)"),
        (in_file(json!([hook(json!({"secret": "x"}))])),
         "app_webhooks[0]: unknown key \"secret\" (expected url, event_types, filter, headers)"),
        (in_file(json!([hook(json!({"filter": {"channel_name_prefix": "p-"}}))])),
         "app_webhooks[0].filter: unknown key \"channel_name_prefix\""),
        (in_file(Value::Array(many)),
         "invalid value for --app-webhooks: 17 webhooks listed, at most 16 are allowed per app"),
        (in_file(json!([hook(json!({"headers": headers}))])),
         "app_webhooks[0].headers: 33 headers given, at most 32 are allowed per webhook"),
        (in_file(json!([{"event_types": ["member_added"]}])), "app_webhooks[0]: missing \"url\""),
        (in_file(json!([{"url": "http://h/"}])), "app_webhooks[0]: missing \"event_types\" (an array of: channel_occupied,"),
        (in_file(json!([hook(json!({"event_types": []}))])), "app_webhooks[0].event_types: must not be empty"),
        (in_file(json!([hook(json!({"event_types": "member_added"}))])),
         "app_webhooks[0].event_types: expected an array of event type names, got a string"),
        (in_file(json!([hook(json!({"event_types": ["member_added", "member_added"]}))])),
         "\"member_added\" is listed twice"),
        (in_file(json!([hook(json!({"headers": {"Bad Name": "v"}}))])),
         "app_webhooks[0].headers: \"Bad Name\" is not an HTTP header name"),
        (in_file(json!([hook(json!({"headers": {"X-A": "v\r\nX-B: w"}}))])),
         "app_webhooks[0].headers.X-A: the value contains '\\r', which cannot be in a header"),
        (in_file(json!([hook(json!({"headers": {"X-A": "1", "x-a": "2"}}))])),
         "\"X-A\" and \"x-a\" are the same header"),
        (in_file(json!([hook(json!({"headers": {"X-A": 1}}))])), "app_webhooks[0].headers.X-A: expected a string, got a number"),
        (in_file(json!([hook(json!({"filter": {"channel_name_starts_with": ""}}))])),
         "app_webhooks[0].filter.channel_name_starts_with: must not be empty"),
        (in_file(json!([hook(json!({"filter": "presence-"}))])), "app_webhooks[0].filter: expected an object, got a string"),
        (in_file(json!(["http://h/"])), "app_webhooks[0]: expected a webhook object, got a string"),
        (in_file(json!({"url": "http://h/"})), "expected a JSON array of webhook objects, got an object"),
        (in_file(json!(5)), "expected a JSON array of webhook objects, got a number"),
    ];
    for (file, want) in cases {
        let e = err(&[], &[], Some(&file));
        assert!(e.contains(want), "{file}\n got: {e}\nwant: {want}");
        assert!(e.starts_with("invalid value for --app-webhooks: "), "{e}");
    }

    // From the environment and a flag: the text is checked the same way, and the origin named.
    let env = [("APP_WEBHOOKS", "[{\"url\": \"http://h/\",}]")];
    let e = err(&CREDS, &env, None);
    assert!(
        e.starts_with("invalid value for --app-webhooks: not valid JSON: ")
            && e.ends_with("(from environment variable APP_WEBHOOKS)"),
        "{e}"
    );
    let twice = r#"[{"url": "http://h/", "url": "http://i/", "event_types": ["cache_miss"]}]"#;
    let e = err(&CREDS, &[("APP_WEBHOOKS", twice)], None);
    assert!(
        e.starts_with(
            "invalid value for --app-webhooks: not valid JSON: key \"url\" appears twice"
        ),
        "{e}"
    );
    let flag = r#"[{"url": "http://h/", "event_types": ["presence"]}]"#;
    let mut args = CREDS.to_vec();
    args.extend(["--app-webhooks", flag]);
    let e = err(&args, &[], None);
    assert!(
        e.starts_with(
            "invalid value for --app-webhooks: app_webhooks[0].event_types[0]: \"presence\""
        ),
        "{e}"
    );
}

#[test]
fn allowed_origins_take_a_json_array_in_the_file_and_refuse_what_is_not_an_origin() {
    let file = json!({"applications": [{
        "app_id": "a1", "app_key": "k1", "app_secret": "s1",
        "app_allowed_origins": ["https://a.example.com", "*.b.example"],
    }]});
    let c = ok(&[], &[], Some(&file));
    assert_eq!(
        c.apps[0].allowed_origins.to_string(),
        "https://a.example.com,*.b.example"
    );
    assert!(!c.apps[0]
        .allowed_origins
        .allows(Some("https://evil.example")));
    let mut args = CREDS.to_vec();
    args.extend(["--app-allowed-origins", "https://a.example.com/path"]);
    let e = err(&args, &[], None);
    assert!(
        e.starts_with("invalid value for --app-allowed-origins"),
        "{e}"
    );
}

#[test]
fn auth_offload_that_forwards_cookie_needs_an_origin_allow_list() {
    let mut args = CREDS.to_vec();
    args.extend([
        "--app-channel-authorization-url",
        "http://auth.example/pusher",
        "--app-channel-authorization-headers",
        "Cookie",
    ]);
    let e = err(&args, &[], None);
    assert!(e.contains("needs --app-allowed-origins"), "{e}");
    let mut star = args.clone();
    star.extend(["--app-allowed-origins", "*"]);
    assert!(err(&star, &[], None).contains("not *"));
    let mut listed = args.clone();
    listed.extend(["--app-allowed-origins", "https://app.example.com"]);
    let c = ok(&listed, &[], None);
    assert_eq!(c.apps[0].channel_authorization_headers, ["cookie"]);
    // Other headers need no list.
    let mut other = CREDS.to_vec();
    other.extend([
        "--app-channel-authorization-url",
        "http://auth.example/pusher",
        "--app-channel-authorization-headers",
        "Authorization",
    ]);
    ok(&other, &[], None);
}

#[test]
fn ekko_redis_host_and_port_make_the_url_and_conflict_with_it() {
    let c = ok(
        &CREDS,
        &[("REDIS_HOST", "r1"), ("REDIS_PORT", "7000")],
        None,
    );
    assert_eq!(c.server.redis_url, "r1:7000");
    assert_eq!(c.server.adapter_driver, Driver::Redis);
    let c = ok(&CREDS, &[("REDIS_ENDPOINT", "r2")], None);
    assert_eq!(
        (c.server.redis_url.as_str(), c.server.adapter_driver),
        ("r2:6379", Driver::Redis)
    );
    // An explicit adapter choice still wins.
    let c = ok(
        &[&CREDS[..], &["--adapter-driver", "local"]].concat(),
        &[("REDIS_HOST", "r1")],
        None,
    );
    assert_eq!(c.server.adapter_driver, Driver::Local);
    let e = err(
        &CREDS,
        &[("REDIS_URL", "redis://a:1"), ("REDIS_HOST", "b")],
        None,
    );
    assert!(e.contains("--redis-url and --redis-host"), "{e}");
    let e = err(&CREDS, &[("CHANNEL_FUNCTIONS", "upper=ftp://x/")], None);
    assert!(
        e.contains("channel-functions") && e.contains("not an absolute"),
        "{e}"
    );
}
