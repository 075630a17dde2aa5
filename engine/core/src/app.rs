//! An application's settings as the engine enforces them: identity, feature flags and the
//! per-app limits of the Socket Rush option table (seed 003). Parsed and validated by the
//! engine's configuration; read-only at run time and shared by every shard.

use crate::limits;
use crate::origin::AllowedOrigins;

/// One application (tenant). Field names follow the Socket Rush JSON keys without the `app_`
/// prefix; units are in the name.
#[derive(Debug, Clone, PartialEq)]
pub struct AppConfig {
    /// `app_id`: used in REST paths `/apps/{id}/…`.
    pub id: String,
    /// `app_key`: used by clients in `/app/{key}` and in auth strings.
    pub key: String,
    /// `app_secret`: HMAC key for channel auth, sign-in and REST signatures.
    pub secret: String,
    /// When false the app refuses new connections with 4003.
    pub enabled: bool,
    /// Seconds of silence before the server pings a client (sent in `connection_established`).
    pub activity_timeout_s: u32,
    /// `app_max_presence_users` (kept from the seed; presence limits use the per-channel value).
    pub max_presence_users: u32,
    /// `app_require_channel_authorization`: connections must sign in or hold a private/presence
    /// subscription within `authorization_timeout_s`, else close 4009.
    pub require_channel_authorization: bool,
    /// `app_authorization_timeout_seconds`.
    pub authorization_timeout_s: u32,
    /// `app_enable_client_messages`: allow `client-*` events.
    pub enable_client_messages: bool,
    /// `app_max_connections`, 0 = unlimited; over it a new connection gets 4004.
    pub max_connections: u64,
    /// `app_max_backend_events_per_second`, 0 = unlimited.
    pub max_backend_events_per_second: u32,
    /// `app_max_client_events_per_second`, 0 = unlimited (the seed's meaning, kept).
    pub max_client_events_per_second: u32,
    /// `app_max_read_requests_per_second`, 0 = unlimited.
    pub max_read_requests_per_second: u32,
    /// `app_max_presence_members_per_channel`.
    pub max_presence_members_per_channel: u32,
    /// `app_max_presence_member_size_in_kb`.
    pub max_presence_member_size_kb: u32,
    /// `app_max_channel_name_length`.
    pub max_channel_name_length: u32,
    /// `app_max_event_channels_at_once`.
    pub max_event_channels_at_once: u32,
    /// `app_max_event_name_length`.
    pub max_event_name_length: u32,
    /// `app_max_event_payload_in_kb`.
    pub max_event_payload_kb: u32,
    /// `app_max_event_batch_size`.
    pub max_event_batch_size: u32,
    /// Webhook switches (the bridge delivers them; kept here so one config describes the app).
    pub webhooks: WebhookFlags,
    /// `app_slip_target_url`: WebSocket-over-HTTP on `/slip/{key}`: every socket event is
    /// POSTed here (through the bridge) and the backend's answer decides; None: not mounted.
    pub slip_target_url: Option<String>,
    /// `app_slip_jwt_secret`: signs the event requests' tokens and checks the control API's;
    /// None: the app's secret.
    pub slip_jwt_secret: Option<String>,
    /// `app_channel_authorization_url`: a private/presence subscribe without `auth` is
    /// authorized by POSTing to it (through the bridge), as pusher-js would.
    pub channel_authorization_url: Option<String>,
    /// `app_channel_authorization_headers`: headers of the connection's upgrade request sent
    /// along (lower-case names, e.g. `cookie`, `authorization`).
    pub channel_authorization_headers: Vec<String>,
    /// `app_channel_authorization_query`: the connection's query parameters (except Pusher's
    /// own `protocol`, `client`, `version`) are sent along as form fields.
    pub channel_authorization_query: bool,
    /// `app_allowed_origins`: the web origins whose pages may open a socket (empty: any).
    pub allowed_origins: AllowedOrigins,
}

/// The seed's webhook switches for one app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookFlags {
    /// `app_webhooks_enabled` (also `--app-webhook-enabled`).
    pub enabled: bool,
    /// Where to POST, when enabled.
    pub url: Option<String>,
    /// `app_has_client_event_webhooks`.
    pub client_event: bool,
    /// `app_has_channel_occupied_webhooks`.
    pub channel_occupied: bool,
    /// `app_has_channel_vacated_webhooks`.
    pub channel_vacated: bool,
    /// `app_has_member_added_webhooks`.
    pub member_added: bool,
    /// `app_has_member_removed_webhooks`.
    pub member_removed: bool,
    /// `app_has_cache_miss_webhooks`.
    pub cache_miss: bool,
    /// `app_has_subscription_count_webhooks` (a ringcast addition: the seed has no such switch).
    pub subscription_count: bool,
    /// `app_has_webhook_batching_enabled`.
    pub batching: bool,
    /// `app_webhooks`: further webhooks, each with its own event types, channel filter and
    /// headers (sent whenever `enabled`, next to the flat `url`).
    pub targets: Vec<WebhookTarget>,
}

/// The kinds of webhook event (`docs/protocol-notes.md`, Webhooks), by their wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEventType {
    /// `channel_occupied`: the first subscriber anywhere.
    ChannelOccupied,
    /// `channel_vacated`: the last subscriber anywhere left (delayed, cancelled on a rejoin).
    ChannelVacated,
    /// `member_added`: a user's first connection in a presence channel.
    MemberAdded,
    /// `member_removed`: a user's last connection left (delayed, cancelled on a rejoin).
    MemberRemoved,
    /// `client_event`: a `client-*` event sent by a connection.
    ClientEvent,
    /// `cache_miss`: a subscription to a cache channel with no cached event.
    CacheMiss,
    /// `subscription_count`: the channel's number of subscribed connections changed (every
    /// channel type but presence, which has member events; sent at most once a second per
    /// channel, with the latest count).
    SubscriptionCount,
}

impl WebhookEventType {
    /// Every kind, in the order of the spec.
    pub const ALL: [WebhookEventType; 7] = [
        WebhookEventType::ChannelOccupied,
        WebhookEventType::ChannelVacated,
        WebhookEventType::MemberAdded,
        WebhookEventType::MemberRemoved,
        WebhookEventType::ClientEvent,
        WebhookEventType::CacheMiss,
        WebhookEventType::SubscriptionCount,
    ];

    /// The `name` of such events in a webhook body.
    pub fn name(self) -> &'static str {
        match self {
            WebhookEventType::ChannelOccupied => "channel_occupied",
            WebhookEventType::ChannelVacated => "channel_vacated",
            WebhookEventType::MemberAdded => "member_added",
            WebhookEventType::MemberRemoved => "member_removed",
            WebhookEventType::ClientEvent => "client_event",
            WebhookEventType::CacheMiss => "cache_miss",
            WebhookEventType::SubscriptionCount => "subscription_count",
        }
    }

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// One webhook endpoint of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// The kinds of event sent to it.
    pub event_types: Vec<WebhookEventType>,
    /// Only channels whose name starts with this.
    pub channel_name_starts_with: Option<String>,
    /// Only channels whose name ends with this.
    pub channel_name_ends_with: Option<String>,
    /// Extra request headers (name, value).
    pub headers: Vec<(String, String)>,
}

impl WebhookFlags {
    /// Every endpoint of the app when webhooks are enabled: the flat `url` with the kinds its
    /// `app_has_*_webhooks` switches select, then `targets`. Empty when disabled.
    pub fn effective_targets(&self) -> Vec<WebhookTarget> {
        if !self.enabled {
            return Vec::new();
        }
        let mut targets = Vec::with_capacity(self.targets.len() + 1);
        if let Some(url) = &self.url {
            let switches = [
                (self.channel_occupied, WebhookEventType::ChannelOccupied),
                (self.channel_vacated, WebhookEventType::ChannelVacated),
                (self.member_added, WebhookEventType::MemberAdded),
                (self.member_removed, WebhookEventType::MemberRemoved),
                (self.client_event, WebhookEventType::ClientEvent),
                (self.cache_miss, WebhookEventType::CacheMiss),
                (self.subscription_count, WebhookEventType::SubscriptionCount),
            ];
            let event_types: Vec<WebhookEventType> = switches
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, kind)| kind)
                .collect();
            if !event_types.is_empty() {
                targets.push(WebhookTarget {
                    url: url.clone(),
                    event_types,
                    channel_name_starts_with: None,
                    channel_name_ends_with: None,
                    headers: Vec::new(),
                });
            }
        }
        targets.extend(self.targets.iter().cloned());
        targets
    }
}

impl AppConfig {
    /// The secret of the app's WebSocket-over-HTTP tokens (`app_slip_jwt_secret`, else the
    /// app's secret).
    pub fn slip_secret(&self) -> &str {
        self.slip_jwt_secret.as_deref().unwrap_or(&self.secret)
    }

    /// An app with the seed's defaults (`crate::limits`, per-app defaults), except the activity
    /// timeout: 120 s (pusher-js accepts any value > 0; `docs/protocol-notes.md`, Connection).
    pub fn with_credentials(id: &str, key: &str, secret: &str) -> Self {
        AppConfig {
            id: id.to_owned(),
            key: key.to_owned(),
            secret: secret.to_owned(),
            enabled: true,
            activity_timeout_s: limits::APP_ACTIVITY_TIMEOUT_S_DEFAULT,
            max_presence_users: limits::APP_PRESENCE_USERS_MAX_DEFAULT,
            require_channel_authorization: false,
            authorization_timeout_s: limits::APP_AUTHORIZATION_TIMEOUT_S_DEFAULT,
            enable_client_messages: false,
            max_connections: 0,
            max_backend_events_per_second: 0,
            max_client_events_per_second: 0,
            max_read_requests_per_second: 0,
            max_presence_members_per_channel: limits::APP_PRESENCE_MEMBERS_PER_CHANNEL_MAX_DEFAULT,
            max_presence_member_size_kb: limits::APP_PRESENCE_MEMBER_KB_MAX_DEFAULT,
            max_channel_name_length: limits::APP_CHANNEL_NAME_LENGTH_MAX_DEFAULT,
            max_event_channels_at_once: limits::APP_EVENT_CHANNELS_MAX_DEFAULT,
            max_event_name_length: limits::APP_EVENT_NAME_LENGTH_MAX_DEFAULT,
            max_event_payload_kb: limits::APP_EVENT_PAYLOAD_KB_MAX_DEFAULT,
            max_event_batch_size: limits::APP_EVENT_BATCH_SIZE_MAX_DEFAULT,
            webhooks: WebhookFlags::default(),
            slip_target_url: None,
            slip_jwt_secret: None,
            channel_authorization_url: None,
            channel_authorization_headers: Vec::new(),
            channel_authorization_query: false,
            allowed_origins: AllowedOrigins::default(),
        }
    }
}

/// The process-wide table of apps, shared read-only by every shard, plus the one cross-shard
/// counter that admission needs: live connections per app (`app_max_connections`). A relaxed
/// atomic add at connect time is cheaper and simpler than a round trip between shards, and
/// connects are not on the fan-out path.
#[derive(Debug)]
pub struct AppTable {
    apps: Vec<AppConfig>,
    by_key: ahash::AHashMap<String, u32>,
    by_id: ahash::AHashMap<String, u32>,
    connections: Vec<std::sync::atomic::AtomicU64>,
    /// Several nodes: the other nodes' connections per app, as the bridge last reported them.
    remote_connections: Vec<std::sync::atomic::AtomicU64>,
    backend_events: Vec<RateWindow>,
    read_requests: Vec<RateWindow>,
}

/// A per-second budget shared by every shard: the current second in the high 32 bits and the
/// count used in it in the low 32, updated with one compare-and-swap (REST calls are not the
/// fan-out path, and limits are per node).
#[derive(Debug, Default)]
struct RateWindow(std::sync::atomic::AtomicU64);

impl RateWindow {
    /// Takes `n` from this second's budget of `limit` (0 = unlimited); false = over.
    fn try_take(&self, n: u64, limit: u32, unix_s: u64) -> bool {
        use std::sync::atomic::Ordering;
        if limit == 0 {
            return true;
        }
        let second = unix_s & 0xffff_ffff;
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
                let used = if packed >> 32 == second {
                    packed & 0xffff_ffff
                } else {
                    0
                };
                (used + n <= u64::from(limit)).then_some((second << 32) | (used + n))
            })
            .is_ok()
    }
}

impl AppTable {
    /// Builds the table; the configuration has already rejected duplicate ids and keys.
    pub fn new(apps: Vec<AppConfig>) -> Self {
        let by_key = apps
            .iter()
            .enumerate()
            .map(|(i, a)| (a.key.clone(), i as u32))
            .collect();
        let by_id = apps
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i as u32))
            .collect();
        let connections = apps
            .iter()
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect();
        let remote_connections = apps
            .iter()
            .map(|_| std::sync::atomic::AtomicU64::new(0))
            .collect();
        let backend_events = apps.iter().map(|_| RateWindow::default()).collect();
        let read_requests = apps.iter().map(|_| RateWindow::default()).collect();
        AppTable {
            apps,
            by_key,
            by_id,
            connections,
            remote_connections,
            backend_events,
            read_requests,
        }
    }

    /// Number of apps.
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    /// True when no app is configured.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// An app by index.
    pub fn get(&self, index: u32) -> &AppConfig {
        &self.apps[index as usize]
    }

    /// An app index by key (WebSocket path `/app/{key}`).
    pub fn index_by_key(&self, key: &str) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    /// An app index by id (REST path `/apps/{id}`).
    pub fn index_by_id(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Counts a new connection unless the app is at `max_connections` (with several nodes:
    /// counting the other nodes' connections, as last reported); false = refuse (4004).
    pub fn try_admit(&self, index: u32) -> bool {
        use std::sync::atomic::Ordering;
        let max = self.apps[index as usize].max_connections;
        let counter = &self.connections[index as usize];
        if max == 0 {
            counter.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let elsewhere = self.remote_connections[index as usize].load(Ordering::Relaxed);
        counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n.saturating_add(elsewhere) < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// This node's open connections per app (for the other nodes).
    pub fn connection_counts(&self) -> Vec<(String, u64)> {
        use std::sync::atomic::Ordering;
        self.apps
            .iter()
            .zip(&self.connections)
            .map(|(app, count)| (app.id.clone(), count.load(Ordering::Relaxed)))
            .collect()
    }

    /// The other nodes' connections of `index` (several nodes; 0 when alone).
    pub fn set_remote_connections(&self, index: u32, count: u64) {
        self.remote_connections[index as usize].store(count, std::sync::atomic::Ordering::Relaxed);
    }

    /// Releases a connection counted by `try_admit`.
    pub fn release(&self, index: u32) {
        self.connections[index as usize].fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Takes `events` from the app's `max_backend_events_per_second`; false = 429.
    pub fn try_take_backend_events(&self, index: u32, events: u64, unix_s: u64) -> bool {
        let limit = self.apps[index as usize].max_backend_events_per_second;
        self.backend_events[index as usize].try_take(events, limit, unix_s)
    }

    /// Takes one from the app's `max_read_requests_per_second`; false = 429.
    pub fn try_take_read_request(&self, index: u32, unix_s: u64) -> bool {
        let limit = self.apps[index as usize].max_read_requests_per_second;
        self.read_requests[index as usize].try_take(1, limit, unix_s)
    }

    /// Live connections of an app on this node.
    pub fn connection_count(&self, index: u32) -> u64 {
        self.connections[index as usize].load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_counts_the_other_nodes_connections() {
        let mut app = AppConfig::with_credentials("1", "k", "s");
        app.max_connections = 3;
        let table = AppTable::new(vec![app]);
        table.set_remote_connections(0, 2);
        assert!(table.try_admit(0), "2 elsewhere + 0 here < 3");
        assert!(!table.try_admit(0), "2 elsewhere + 1 here = 3");
        assert_eq!(table.connection_counts(), vec![("1".to_owned(), 1)]);
        table.set_remote_connections(0, 0);
        assert!(table.try_admit(0));
        assert!(table.try_admit(0));
        assert!(!table.try_admit(0), "alone again: 3 here");
        table.release(0);
        assert!(table.try_admit(0));
    }

    #[test]
    fn rate_windows_reset_each_second() {
        let mut app = AppConfig::with_credentials("1", "k", "s");
        app.max_backend_events_per_second = 3;
        let table = AppTable::new(vec![app]);
        assert!(table.try_take_backend_events(0, 2, 100));
        assert!(!table.try_take_backend_events(0, 2, 100), "would be 4 of 3");
        assert!(table.try_take_backend_events(0, 1, 100));
        assert!(!table.try_take_backend_events(0, 1, 100));
        assert!(table.try_take_backend_events(0, 3, 101));
        assert!(table.try_take_read_request(0, 101), "0 = unlimited");
    }
}
