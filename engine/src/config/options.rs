//! The option table: every setting's flag, environment variables, JSON keys, default and help
//! text, and the clap command built from it. One row per setting, so the help output, the
//! environment lookup and the JSON key check cannot drift apart.

use clap::builder::ValueParser;
use clap::{Arg, ArgAction, Command};

/// Where an option lives. Everything but `App` is read from the JSON file's `server` object;
/// `App` options are read from each entry of `applications`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    /// Files that feed the configuration itself (`--config-file`, `--env-file`, ...).
    Files,
    /// The seed's server options.
    Server,
    /// ringcast's engine tuning (shards, buffers, timeouts).
    Engine,
    /// Per-application settings (the default app from flags/env, or `applications[]`).
    App,
}

impl Section {
    fn heading(self) -> &'static str {
        match self {
            Section::Files => "Configuration sources",
            Section::Server => "Server (JSON: \"server\" object)",
            Section::Engine => "Engine (JSON: \"server\" object)",
            Section::App => "Application (JSON: each entry of \"applications\")",
        }
    }

    /// The JSON location shown in help and error messages.
    pub(crate) fn json_prefix(self) -> &'static str {
        match self {
            Section::App => "applications[].",
            _ => "server.",
        }
    }
}

/// How the flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--flag VALUE`; the string is the value name shown in help.
    Value(&'static str),
    /// `--flag` alone means true; `--flag=false` / `--flag no` also work, so a flag can switch
    /// off a setting that the environment or the file switched on.
    Bool,
    /// `--flag JSON`: JSON text from a flag or variable; in the JSON file the value may also be
    /// written as a real array or object (passed on as its JSON text). The string is the value
    /// name shown in help.
    Json(&'static str),
}

/// Identifies one setting. The discriminant indexes [`SPECS`] (checked by a test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // `AppKey` is the seed's `--app-key`, not a naming accident
pub(crate) enum Key {
    ConfigFile,
    EnvFile,
    PreferConfigFile,
    Port,
    BindAddress,
    CacheDriver,
    QueueDriver,
    AdapterDriver,
    AppManager,
    AppEnv,
    RedisPrefix,
    RedisUrl,
    RedisHost,
    RedisPort,
    RedisTls,
    RedisTlsCaFile,
    RedisCluster,
    LogLevel,
    IgnoreLoggerMiddleware,
    Shards,
    ListenBacklog,
    MaxMessageSize,
    MaxOutboundBytes,
    HandshakeTimeout,
    DrainTimeout,
    EchoPath,
    MetricsPort,
    TlsCertFile,
    TlsKeyFile,
    SocketioPingInterval,
    SocketioPingTimeout,
    SocketioMaxPayload,
    JwtSecret,
    ChannelFunctions,
    AssociationsFile,
    ChannelsIdleTimeout,
    ChannelsMaxLifetime,
    BridgeSocket,
    BridgeBinary,
    BridgeExternal,
    NodeHeartbeatTtlMs,
    AppId,
    AppKey,
    AppSecret,
    AppEnabled,
    AppActivityTimeout,
    AppMaxPresenceUsers,
    AppRequireChannelAuthorization,
    AppAuthorizationTimeoutSeconds,
    AppEnableClientMessages,
    AppMaxConnections,
    AppMaxBackendEventsPerSecond,
    AppMaxClientEventsPerSecond,
    AppMaxReadRequestsPerSecond,
    AppMaxPresenceMembersPerChannel,
    AppMaxPresenceMemberSizeInKb,
    AppMaxChannelNameLength,
    AppMaxEventChannelsAtOnce,
    AppMaxEventNameLength,
    AppMaxEventPayloadInKb,
    AppMaxEventBatchSize,
    AppWebhooksEnabled,
    AppWebhookUrl,
    AppHasClientEventWebhooks,
    AppHasChannelOccupiedWebhooks,
    AppHasChannelVacatedWebhooks,
    AppHasMemberAddedWebhooks,
    AppHasMemberRemovedWebhooks,
    AppHasCacheMissWebhooks,
    AppHasSubscriptionCountWebhooks,
    AppHasWebhookBatchingEnabled,
    AppWebhooks,
    AppChannelAuthorizationUrl,
    AppChannelAuthorizationHeaders,
    AppChannelAuthorizationQuery,
    AppAllowedOrigins,
    AppSlipTargetUrl,
    AppSlipJwtSecret,
}

/// One row of the option table.
#[derive(Debug)]
pub(crate) struct Spec {
    pub key: Key,
    pub section: Section,
    /// The long flag without `--`; also the clap id and the name used in error messages.
    pub flag: &'static str,
    /// Other spellings shown in help (the seed has two names for some settings).
    pub aliases: &'static [&'static str],
    /// Spellings accepted but not shown (the seed's README examples use them).
    pub hidden_aliases: &'static [&'static str],
    /// Environment variables, canonical first.
    pub env: &'static [&'static str],
    /// JSON keys inside the section's object, canonical first.
    pub json: &'static [&'static str],
    pub kind: Kind,
    /// The default as shown in help; empty when the setting is unset by default.
    pub default: &'static str,
    pub help: &'static str,
}

/// The spec of one setting.
pub(crate) fn spec(key: Key) -> &'static Spec {
    // SPECS is ordered like `Key`; `specs_are_indexed_by_key` keeps it that way.
    &SPECS[key as usize]
}

/// Shorthand for the table below.
#[allow(clippy::too_many_arguments)]
const fn row(
    key: Key,
    section: Section,
    flag: &'static str,
    env: &'static [&'static str],
    json: &'static [&'static str],
    kind: Kind,
    default: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        key,
        section,
        flag,
        aliases: &[],
        hidden_aliases: &[],
        env,
        json,
        kind,
        default,
        help,
    }
}

const fn with_aliases(mut spec: Spec, aliases: &'static [&'static str]) -> Spec {
    spec.aliases = aliases;
    spec
}

const fn with_hidden(mut spec: Spec, hidden: &'static [&'static str]) -> Spec {
    spec.hidden_aliases = hidden;
    spec
}

use Kind::{Bool, Json, Value};
use Section::{App, Engine, Files, Server};

/// Every option: the Socket Rush table (seed 003) plus ringcast's engine options.
// Kept as a table (one call per row) rather than rustfmt's one-argument-per-line layout.
#[rustfmt::skip]
pub(crate) const SPECS: &[Spec] = &[
    with_aliases(
        row(Key::ConfigFile, Files, "config-file", &[], &[], Value("PATH"), "",
            "Path to a JSON config file (\"server\" object and \"applications\" array)"),
        &["config"],
    ),
    row(Key::EnvFile, Files, "env-file", &[], &["env_file"], Value("PATH"), "./.env",
        "Path to a .env file of KEY=VALUE lines, read as environment variables that the real \
         environment overrides; a missing ./.env is ignored"),
    row(Key::PreferConfigFile, Files, "prefer-config-file", &["PREFER_CONFIG_FILE"],
        &["prefer_config_file"], Bool, "false",
        "Let the JSON file override environment variables (flags still override both)"),
    row(Key::Port, Server, "port", &["PORT"], &["port"], Value("PORT"), "6001",
        "Port on which to run the server"),
    row(Key::BindAddress, Server, "bind-address", &["BIND_ADDRESS"], &["bind_address"],
        Value("IP"), "0.0.0.0", "Address on which to bind the server"),
    row(Key::CacheDriver, Server, "cache-driver", &["CACHE_DRIVER"], &["cache_driver"],
        Value("local|redis"), "local", "Cache driver to use"),
    row(Key::QueueDriver, Server, "queue-driver", &["QUEUE_DRIVER"], &["queue_driver"],
        Value("local|redis"), "local", "Queue driver to use (webhook delivery)"),
    with_hidden(
        row(Key::AdapterDriver, Server, "adapter-driver", &["ADAPTER_DRIVER"],
            &["adapter_driver"], Value("local|redis"), "local",
            "Adapter driver to use (redis for several nodes)"),
        &["adapter-manager"],
    ),
    row(Key::AppManager, Server, "app-manager", &["APP_MANAGER"], &["app_manager"],
        Value("array"), "array", "App manager to use"),
    row(Key::AppEnv, Server, "app-env", &["APP_ENV"], &["app_env"], Value("NAME"),
        "production", "Environment to run the server in"),
    row(Key::RedisPrefix, Server, "redis-prefix", &["REDIS_PREFIX"], &["redis_prefix"],
        Value("PREFIX"), "pusher", "Prefix to use for Redis keys"),
    row(Key::RedisUrl, Server, "redis-url", &["REDIS_URL"], &["redis_url"], Value("URL"),
        "localhost:6379", "URL of the Redis server"),
    row(Key::RedisHost, Server, "redis-host", &["REDIS_HOST", "REDIS_ENDPOINT"], &["redis_host"],
        Value("HOST"), "localhost",
        "Redis host, as Ekko took it (with --redis-port instead of --redis-url); also makes \
         --adapter-driver default to redis"),
    row(Key::RedisPort, Server, "redis-port", &["REDIS_PORT"], &["redis_port"], Value("PORT"),
        "6379", "Redis port, with --redis-host"),
    row(Key::RedisTls, Server, "redis-tls", &["REDIS_TLS"], &["redis_tls"], Bool, "false",
        "Use TLS for the Redis connection"),
    row(Key::RedisTlsCaFile, Server, "redis-tls-ca-file", &["REDIS_TLS_CA_FILE"],
        &["redis_tls_ca_file"], Value("PATH"), "",
        "PEM file of the CA that signed Redis's certificate (with --redis-tls; default: the \
         public web roots)"),
    row(Key::RedisCluster, Server, "redis-cluster", &["REDIS_CLUSTER"],
        &["redis_cluster", "redis_cluster_mode"], Bool, "false", "Use Redis cluster mode"),
    row(Key::LogLevel, Server, "log-level", &["LOG_LEVEL"], &["log_level"],
        Value("trace|debug|info|warn|error"), "info", "Log level"),
    row(Key::IgnoreLoggerMiddleware, Server, "ignore-logger-middleware",
        &["IGNORE_LOGGER_MIDDLEWARE"], &["ignore_logger_middleware"], Bool, "false",
        "Skip per-request logging for performance"),
    row(Key::Shards, Engine, "shards", &["SHARDS"], &["shards"], Value("N"),
        "CPUs this process may run on", "Number of shards (one pinned thread each)"),
    row(Key::ListenBacklog, Engine, "listen-backlog", &["LISTEN_BACKLOG"], &["listen_backlog"],
        Value("N"), "4096", "Listen backlog of the accept socket (capped by net.core.somaxconn)"),
    row(Key::MaxMessageSize, Engine, "max-message-size", &["MAX_MESSAGE_SIZE"],
        &["max_message_size"], Value("BYTES"), "65536",
        "Largest WebSocket message accepted, in bytes (125..=16777216); over it: close 1009"),
    row(Key::MaxOutboundBytes, Engine, "max-outbound-bytes", &["MAX_OUTBOUND_BYTES"],
        &["max_outbound_bytes"], Value("BYTES"), "1048576",
        "Bytes queued for one slow connection before it is closed (at least 4096)"),
    row(Key::HandshakeTimeout, Engine, "handshake-timeout", &["HANDSHAKE_TIMEOUT"],
        &["handshake_timeout"], Value("SECONDS"), "10",
        "Seconds a client has to finish the HTTP upgrade"),
    row(Key::DrainTimeout, Engine, "drain-timeout", &["DRAIN_TIMEOUT"], &["drain_timeout"],
        Value("SECONDS"), "10", "Seconds to wait for connections to leave on shutdown"),
    row(Key::EchoPath, Engine, "echo-path", &["ECHO_PATH"], &["echo_path"], Value("PATH"), "",
        "Serve a plain WebSocket echo endpoint at this path (starts with '/'); off when unset"),
    row(Key::MetricsPort, Engine, "metrics-port", &["METRICS_PORT"], &["metrics_port"],
        Value("PORT"), "", "Serve Prometheus metrics on this port; off when unset"),
    row(Key::TlsCertFile, Engine, "tls-cert-file", &["TLS_CERT_FILE"], &["tls_cert_file"],
        Value("PATH"), "",
        "PEM certificate chain (server certificate first): TLS on the client port, WebSocket \
         and REST alike (needs --tls-key-file; the metrics port stays plain); SIGHUP reloads it"),
    row(Key::TlsKeyFile, Engine, "tls-key-file", &["TLS_KEY_FILE"], &["tls_key_file"],
        Value("PATH"), "",
        "PEM private key of that certificate (PKCS#8, RSA or SEC1; needs --tls-cert-file); \
         SIGHUP reloads it"),
    row(Key::SocketioPingInterval, Engine, "socketio-ping-interval", &["SOCKETIO_PING_INTERVAL"],
        &["socketio_ping_interval"], Value("MS"), "25000",
        "Socket.IO: milliseconds between two server pings (Engine.IO pingInterval)"),
    row(Key::SocketioPingTimeout, Engine, "socketio-ping-timeout", &["SOCKETIO_PING_TIMEOUT"],
        &["socketio_ping_timeout"], Value("MS"), "20000",
        "Socket.IO: milliseconds a ping may go unanswered before the connection is closed \
         (Engine.IO pingTimeout)"),
    row(Key::SocketioMaxPayload, Engine, "socketio-max-payload", &["SOCKETIO_MAX_PAYLOAD"],
        &["socketio_max_payload"], Value("BYTES"), "1000000",
        "Socket.IO: largest message a client may send (Engine.IO maxPayload); larger: closed \
         with 1009"),
    row(Key::JwtSecret, Engine, "jwt-secret", &["JWT_SECRET", "SECRET_KEY"], &["jwt_secret"],
        Value("SECRET"), "",
        "Socket.IO: server-wide HS256 secret of the join tokens (Ekko's SECRET_KEY), tried after \
         the app's own secret; also signs PUT /associations"),
    row(Key::ChannelFunctions, Engine, "channel-functions", &["CHANNEL_FUNCTIONS"],
        &["channel_functions"], Value("NAME=URL,…"), "",
        "Channel functions that associations may name: each an HTTP endpoint that gets a \
         message's JSON (POST) and answers the next (the bridge calls them)"),
    row(Key::AssociationsFile, Engine, "associations-file", &["ASSOCIATIONS_FILE"],
        &["associations_file"], Value("PATH"), "",
        "Channel functions: the associations at start ({\"applications\":{…}}, as PUT \
         /associations carries them)"),
    row(Key::ChannelsIdleTimeout, Engine, "channels-idle-timeout", &["CHANNELS_IDLE_TIMEOUT"],
        &["channels_idle_timeout"], Value("SECONDS"), "600",
        "Channels JSON: seconds a connection may send nothing before it is closed (0: never)"),
    row(Key::ChannelsMaxLifetime, Engine, "channels-max-lifetime", &["CHANNELS_MAX_LIFETIME"],
        &["channels_max_lifetime"], Value("SECONDS"), "7200",
        "Channels JSON: seconds a connection may live before it is closed (0: no limit)"),
    row(Key::BridgeSocket, Engine, "bridge-socket", &["BRIDGE_SOCKET"], &["bridge_socket"],
        Value("PATH"), "",
        "Unix socket of the bridge; its directory must be this user's, not writable by group or \
         others; default: in a new mode-0700 directory under $XDG_RUNTIME_DIR or $TMPDIR"),
    row(Key::BridgeBinary, Engine, "bridge-binary", &["BRIDGE_BINARY"], &["bridge_binary"],
        Value("PATH"), "", "The ringcast-bridge program to start; default: next to ringcast"),
    row(Key::BridgeExternal, Engine, "bridge-external", &["BRIDGE_EXTERNAL"],
        &["bridge_external"], Bool, "false",
        "Do not start the bridge: connect to one run separately, as this user, at --bridge-socket \
         (required then)"),
    row(Key::NodeHeartbeatTtlMs, Engine, "node-heartbeat-ttl-ms", &["NODE_HEARTBEAT_TTL_MS"],
        &["node_heartbeat_ttl_ms"], Value("MS"), "10000",
        "Several nodes: a node silent this long is dead and its presence members are removed"),
    with_hidden(
        row(Key::AppId, App, "app-id", &["APP_ID"], &["app_id"], Value("ID"), "",
            "App ID of the app given by flags/env (with no app anywhere: development app `app-id`)"),
        &["default-app-id"],
    ),
    with_hidden(
        row(Key::AppKey, App, "app-key", &["APP_KEY"], &["app_key"], Value("KEY"), "",
            "App key of that app (development app: `app-key`)"),
        &["default-app-key"],
    ),
    with_hidden(
        row(Key::AppSecret, App, "app-secret", &["APP_SECRET"], &["app_secret"],
            Value("SECRET"), "", "App secret of that app (development app: `app-secret`)"),
        &["default-app-secret"],
    ),
    row(Key::AppEnabled, App, "app-enabled", &["APP_ENABLED"], &["app_enabled"], Bool, "true",
        "App accepts connections (false: new connections get 4003)"),
    row(Key::AppActivityTimeout, App, "app-activity-timeout", &["APP_ACTIVITY_TIMEOUT"],
        &["app_activity_timeout"], Value("SECONDS"), "120",
        "Seconds of silence before the server pings a client"),
    row(Key::AppMaxPresenceUsers, App, "app-max-presence-users", &["APP_MAX_PRESENCE_USERS"],
        &["app_max_presence_users"], Value("N"), "100", "App max presence users"),
    with_aliases(
        row(Key::AppRequireChannelAuthorization, App, "app-require-channel-authorization",
            &["APP_REQUIRE_CHANNEL_AUTHORIZATION", "APP_REQUIRE_AUTHORIZATION"],
            &["app_require_channel_authorization", "app_require_authorization"], Bool, "false",
            "Connections must sign in or join a private/presence channel in time, else 4009"),
        &["app-require-authorization"],
    ),
    row(Key::AppAuthorizationTimeoutSeconds, App, "app-authorization-timeout-seconds",
        &["APP_AUTHORIZATION_TIMEOUT_SECONDS"], &["app_authorization_timeout_seconds"],
        Value("SECONDS"), "5", "Seconds allowed for that authorization"),
    row(Key::AppEnableClientMessages, App, "app-enable-client-messages",
        &["APP_ENABLE_CLIENT_MESSAGES"], &["app_enable_client_messages"], Bool, "false",
        "Allow client-* events"),
    row(Key::AppMaxConnections, App, "app-max-connections", &["APP_MAX_CONNECTIONS"],
        &["app_max_connections"], Value("N"), "0", "App max connections (0 = unlimited)"),
    row(Key::AppMaxBackendEventsPerSecond, App, "app-max-backend-events-per-second",
        &["APP_MAX_BACKEND_EVENTS_PER_SECOND"], &["app_max_backend_events_per_second"],
        Value("N"), "0", "App max backend events per second (0 = unlimited)"),
    row(Key::AppMaxClientEventsPerSecond, App, "app-max-client-events-per-second",
        &["APP_MAX_CLIENT_EVENTS_PER_SECOND"], &["app_max_client_events_per_second"],
        Value("N"), "0", "App max client events per second (0 = unlimited)"),
    row(Key::AppMaxReadRequestsPerSecond, App, "app-max-read-requests-per-second",
        &["APP_MAX_READ_REQUESTS_PER_SECOND"], &["app_max_read_requests_per_second"],
        Value("N"), "0", "App max read requests per second (0 = unlimited)"),
    row(Key::AppMaxPresenceMembersPerChannel, App, "app-max-presence-members-per-channel",
        &["APP_MAX_PRESENCE_MEMBERS_PER_CHANNEL"], &["app_max_presence_members_per_channel"],
        Value("N"), "100", "App max presence members per channel"),
    row(Key::AppMaxPresenceMemberSizeInKb, App, "app-max-presence-member-size-in-kb",
        &["APP_MAX_PRESENCE_MEMBER_SIZE_IN_KB"], &["app_max_presence_member_size_in_kb"],
        Value("KB"), "10", "App max presence member size in KB"),
    row(Key::AppMaxChannelNameLength, App, "app-max-channel-name-length",
        &["APP_MAX_CHANNEL_NAME_LENGTH"], &["app_max_channel_name_length"], Value("N"), "200",
        "App max channel name length"),
    row(Key::AppMaxEventChannelsAtOnce, App, "app-max-event-channels-at-once",
        &["APP_MAX_EVENT_CHANNELS_AT_ONCE"], &["app_max_event_channels_at_once"], Value("N"),
        "10", "App max channels one event may be published to"),
    row(Key::AppMaxEventNameLength, App, "app-max-event-name-length",
        &["APP_MAX_EVENT_NAME_LENGTH"], &["app_max_event_name_length"], Value("N"), "200",
        "App max event name length"),
    row(Key::AppMaxEventPayloadInKb, App, "app-max-event-payload-in-kb",
        &["APP_MAX_EVENT_PAYLOAD_IN_KB"], &["app_max_event_payload_in_kb"], Value("KB"), "10",
        "App max event payload in KB"),
    row(Key::AppMaxEventBatchSize, App, "app-max-event-batch-size",
        &["APP_MAX_EVENT_BATCH_SIZE"], &["app_max_event_batch_size"], Value("N"), "10",
        "App max events in one batch request"),
    with_aliases(
        row(Key::AppWebhooksEnabled, App, "app-webhooks-enabled",
            &["APP_WEBHOOKS_ENABLED", "APP_WEBHOOK_ENABLED"],
            &["app_webhooks_enabled", "app_webhook_enabled"], Bool, "false",
            "Send webhooks (needs --app-webhook-url or --app-webhooks)"),
        &["app-webhook-enabled"],
    ),
    row(Key::AppWebhookUrl, App, "app-webhook-url", &["APP_WEBHOOK_URL"], &["app_webhook_url"],
        Value("URL"), "", "Where webhooks are POSTed (http:// or https://)"),
    row(Key::AppHasClientEventWebhooks, App, "app-has-client-event-webhooks",
        &["APP_HAS_CLIENT_EVENT_WEBHOOKS"], &["app_has_client_event_webhooks"], Bool, "false",
        "Send client_event webhooks"),
    row(Key::AppHasChannelOccupiedWebhooks, App, "app-has-channel-occupied-webhooks",
        &["APP_HAS_CHANNEL_OCCUPIED_WEBHOOKS"], &["app_has_channel_occupied_webhooks"], Bool,
        "false", "Send channel_occupied webhooks"),
    row(Key::AppHasChannelVacatedWebhooks, App, "app-has-channel-vacated-webhooks",
        &["APP_HAS_CHANNEL_VACATED_WEBHOOKS"], &["app_has_channel_vacated_webhooks"], Bool,
        "false", "Send channel_vacated webhooks"),
    row(Key::AppHasMemberAddedWebhooks, App, "app-has-member-added-webhooks",
        &["APP_HAS_MEMBER_ADDED_WEBHOOKS"], &["app_has_member_added_webhooks"], Bool, "false",
        "Send member_added webhooks"),
    row(Key::AppHasMemberRemovedWebhooks, App, "app-has-member-removed-webhooks",
        &["APP_HAS_MEMBER_REMOVED_WEBHOOKS"], &["app_has_member_removed_webhooks"], Bool,
        "false", "Send member_removed webhooks"),
    row(Key::AppHasCacheMissWebhooks, App, "app-has-cache-miss-webhooks",
        &["APP_HAS_CACHE_MISS_WEBHOOKS"], &["app_has_cache_miss_webhooks"], Bool, "false",
        "Send cache_miss webhooks"),
    row(Key::AppHasSubscriptionCountWebhooks, App, "app-has-subscription-count-webhooks",
        &["APP_HAS_SUBSCRIPTION_COUNT_WEBHOOKS"], &["app_has_subscription_count_webhooks"], Bool,
        "false", "Send subscription_count webhooks (not for presence channels; at most one per \
         channel per second, with the latest count)"),
    row(Key::AppHasWebhookBatchingEnabled, App, "app-has-webhook-batching-enabled",
        &["APP_HAS_WEBHOOK_BATCHING_ENABLED"], &["app_has_webhook_batching_enabled"], Bool,
        "false", "Batch several events into one webhook request"),
    row(Key::AppWebhooks, App, "app-webhooks", &["APP_WEBHOOKS"], &["app_webhooks"],
        Json("JSON"), "[]",
        "More webhooks, each with its own events, channel filter and headers: a JSON array \
         of {\"url\", \"event_types\": [...], \"filter\": {\"channel_name_starts_with\", \
         \"channel_name_ends_with\"}, \"headers\": {...}} (at most 16); a non-empty list \
         turns webhooks on unless --app-webhooks-enabled=false"),
    row(Key::AppChannelAuthorizationUrl, App, "app-channel-authorization-url",
        &["APP_CHANNEL_AUTHORIZATION_URL"], &["app_channel_authorization_url"], Value("URL"), "",
        "Auth offload: a private/presence subscribe without auth is authorized by POSTing \
         socket_id and channel_name to this endpoint (http:// or https://), as pusher-js would"),
    row(Key::AppChannelAuthorizationHeaders, App, "app-channel-authorization-headers",
        &["APP_CHANNEL_AUTHORIZATION_HEADERS"], &["app_channel_authorization_headers"],
        Value("NAMES"), "",
        "Auth offload: headers of the connection's upgrade request sent along (comma-separated \
         names, e.g. Cookie,Authorization)"),
    row(Key::AppChannelAuthorizationQuery, App, "app-channel-authorization-query",
        &["APP_CHANNEL_AUTHORIZATION_QUERY"], &["app_channel_authorization_query"], Bool,
        "false",
        "Auth offload: send the connection's own query parameters along as form fields"),
    row(Key::AppAllowedOrigins, App, "app-allowed-origins", &["APP_ALLOWED_ORIGINS"],
        &["app_allowed_origins"], Json("ORIGINS"), "",
        "Web origins whose pages may open a socket to the app (comma-separated, or a JSON \
         array in the file): https://app.example.com, *.example.com or *; an upgrade from \
         another Origin gets 403; requests without Origin (SDKs, devices) are allowed. \
         Default: any. Required when auth offload forwards Cookie"),
    row(Key::AppSlipTargetUrl, App, "app-slip-target-url", &["APP_SLIP_TARGET_URL"],
        &["app_slip_target_url"], Value("URL"), "",
        "WebSocket-over-HTTP (SLIP Sockets' TARGET_URL): mounts /slip/{key}; every socket \
         event is POSTed here (http:// or https://) and the answer's commands run"),
    row(Key::AppSlipJwtSecret, App, "app-slip-jwt-secret", &["APP_SLIP_JWT_SECRET"],
        &["app_slip_jwt_secret"], Value("SECRET"), "the app's secret",
        "WebSocket-over-HTTP (SLIP Sockets' JWT_SECRET): signs the event requests' tokens and \
         checks the control API's"),
];

/// The command line: one argument per row, help text naming the env vars, JSON keys and
/// default. No clap defaults or `env` attributes: the caller needs to know which layer gave a
/// value (for precedence), and the environment comes from the caller, not from the process.
pub(crate) fn command() -> Command {
    let mut cmd = Command::new("ringcast")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "ringcast: thread-per-core WebSocket pub/sub server speaking Pusher Channels v7.\n\
             Precedence: flags > environment > JSON file (--prefer-config-file: flags > file \
             > environment). Empty environment variables count as unset.",
        )
        // Wrapper scripts append flags; the last one should win rather than be an error.
        .args_override_self(true)
        .next_line_help(true);
    for spec in SPECS {
        cmd = cmd.arg(arg(spec));
    }
    cmd
}

fn arg(spec: &'static Spec) -> Arg {
    let arg = Arg::new(spec.flag)
        .long(spec.flag)
        .visible_aliases(spec.aliases)
        .aliases(spec.hidden_aliases)
        .help(help_text(spec))
        .help_heading(spec.section.heading())
        .action(ArgAction::Set)
        .value_parser(ValueParser::string());
    match spec.kind {
        // Negative numbers reach the option's own check, which names the option.
        Kind::Value(name) => arg.value_name(name).allow_negative_numbers(true),
        Kind::Json(name) => arg.value_name(name),
        Kind::Bool => arg
            .value_name("BOOL")
            .num_args(0..=1)
            .default_missing_value("true"),
    }
}

/// Number of CPUs this process may run on: `available_parallelism` honours the affinity mask
/// (taskset, cpusets) and cgroup quotas on Linux.
pub(crate) fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

fn help_text(spec: &Spec) -> String {
    let mut text = spec.help.to_owned();
    if !spec.env.is_empty() {
        text.push_str(&format!(" [env: {}]", spec.env.join(", ")));
    }
    if !spec.json.is_empty() {
        let prefix = spec.section.json_prefix();
        let keys: Vec<String> = spec.json.iter().map(|k| format!("{prefix}{k}")).collect();
        text.push_str(&format!(" [json: {}]", keys.join(", ")));
    }
    if spec.key == Key::Shards {
        text.push_str(&format!(
            " [default: {}, here {}]",
            spec.default,
            default_shards()
        ));
    } else if spec.default.is_empty() {
        text.push_str(" [default: unset]");
    } else {
        text.push_str(&format!(" [default: {}]", spec.default));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn specs_are_indexed_by_key() {
        for (i, spec) in SPECS.iter().enumerate() {
            assert_eq!(spec.key as usize, i, "SPECS[{i}] is {:?}", spec.key);
        }
    }

    #[test]
    fn clap_accepts_the_command() {
        command().debug_assert();
    }

    #[test]
    fn help_lists_every_flag_env_var_json_key_and_default() {
        let help = command().render_help().to_string();
        for spec in SPECS {
            assert!(help.contains(&format!("--{}", spec.flag)), "{}", spec.flag);
            for alias in spec.aliases {
                assert!(help.contains(&format!("--{alias}")), "{alias}");
            }
            for env in spec.env {
                assert!(help.contains(env), "{env}");
            }
            for key in spec.json {
                assert!(help.contains(key), "{key}");
            }
            assert!(help.contains(&help_text(spec)), "{}", spec.flag);
        }
    }

    #[test]
    fn json_keys_and_env_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for spec in SPECS {
            for key in spec.json {
                let scoped = (spec.section == Section::App, *key);
                assert!(seen.insert(scoped), "JSON key {key} listed twice");
            }
            for env in spec.env {
                assert!(seen.insert((false, env)), "env var {env} listed twice");
            }
        }
    }
}
