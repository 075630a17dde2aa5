//! What happens to a webhook event between the engine (or the cluster state) and the sender,
//! without IO: the apps' webhook settings, the 3 s delay of `channel_vacated` and
//! `member_removed` (cancelled, with the event that cancels it, when the channel or the user is
//! back in time, so reconnects do not flap), each event's id, the event-type and channel filters
//! of every webhook, and batching (`docs/protocol-notes.md`, Webhooks). The webhook task feeds it
//! and hands the batches it returns to the sender.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use ringcast_core::app::WebhookEventType;
use ringcast_core::link::HookEvent;
use ringcast_core::webhook_config::WebhookSettings;
use serde::Deserialize;

use crate::limits::{
    WEBHOOK_BATCH_EVENTS_MAX, WEBHOOK_BATCH_WINDOW_MS, WEBHOOK_DELAYED_EVENTS_MAX,
};
use crate::webhooks::batch::{SettleToken, WebhookBatch, WebhookTarget};
use ringcast_core::limits::LEAVE_DELAY_MS;

/// One webhook of an app, ready to route to.
#[derive(Debug)]
struct Route {
    target: Arc<WebhookTarget>,
    event_types: Vec<WebhookEventType>,
    channel_name_starts_with: Option<String>,
    channel_name_ends_with: Option<String>,
}

impl Route {
    fn wants(&self, kind: WebhookEventType, channel: &str) -> bool {
        self.event_types.contains(&kind)
            && self
                .channel_name_starts_with
                .as_deref()
                .is_none_or(|prefix| channel.starts_with(prefix))
            && self
                .channel_name_ends_with
                .as_deref()
                .is_none_or(|suffix| channel.ends_with(suffix))
    }
}

#[derive(Debug)]
struct AppRoutes {
    batching: bool,
    routes: Vec<Route>,
}

/// What a delayed event waits for: the channel (vacated) or the user in the channel (removed).
type DelayKey = (String, String, Option<String>);

/// Events being collected for one webhook (batching).
#[derive(Debug)]
struct OpenBatch {
    target: Arc<WebhookTarget>,
    events: Vec<Bytes>,
    settle: Vec<SettleToken>,
    due_ms: u64,
}

/// The routing state. Time is passed in (milliseconds, any monotonic origin).
#[derive(Debug)]
pub struct WebhookRouter {
    /// `{node id}-{run}`: the front of every event id.
    id_prefix: String,
    next_event_seq: u64,
    apps: HashMap<String, AppRoutes, ahash::RandomState>,
    /// Delayed leave events by key, with the generation of their timer entry.
    delayed: HashMap<DelayKey, (u64, HookEvent), ahash::RandomState>,
    /// Timer entries in due order (the delay is constant): (due, key, generation). Entries of
    /// cancelled events are skipped when they come due.
    delay_timers: VecDeque<(u64, DelayKey, u64)>,
    next_generation: u64,
    /// Batching: events collected per (app id, webhook index).
    open_batches: HashMap<(String, usize), OpenBatch, ahash::RandomState>,
    /// Events held here (delayed or collected).
    held_events: usize,
}

impl WebhookRouter {
    /// A router with no apps. Event ids are `{node_id}-{run_id}-{n}`: the node id keeps them
    /// apart in a cluster, `run_id` (different for every start of the bridge) across restarts
    /// of the same node's bridge.
    pub fn new(node_id: u64, run_id: u32) -> Self {
        Self {
            id_prefix: format!("{node_id:016x}-{run_id:08x}"),
            next_event_seq: 1,
            apps: HashMap::default(),
            delayed: HashMap::default(),
            delay_timers: VecDeque::new(),
            next_generation: 1,
            open_batches: HashMap::default(),
            held_events: 0,
        }
    }

    /// The ids of the apps with webhook settings, sorted.
    pub fn app_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.apps.keys().cloned().collect();
        ids.sort_unstable();
        ids
    }

    /// Replaces the apps' settings with the engine's document. Events already delayed or
    /// collected keep the settings they were routed with.
    pub fn configure(&mut self, document: &[u8]) -> Result<(), String> {
        let document = WebhookSettings::from_json(document)
            .map_err(|err| format!("unreadable webhook settings: {err}"))?;
        let mut apps = HashMap::default();
        for app in document.apps {
            let mut routes = Vec::with_capacity(app.webhooks.len());
            for hook in app.webhooks {
                let mut event_types = Vec::with_capacity(hook.event_types.len());
                for name in &hook.event_types {
                    match WebhookEventType::from_name(name) {
                        Some(kind) => event_types.push(kind),
                        None => {
                            tracing::warn!(app_id = %app.app_id, "unknown webhook event type {name:?} ignored")
                        }
                    }
                }
                routes.push(Route {
                    target: Arc::new(WebhookTarget {
                        app_id: app.app_id.clone(),
                        url: hook.url,
                        app_key: app.app_key.clone(),
                        app_secret: app.app_secret.clone(),
                        headers: hook.headers,
                    }),
                    event_types,
                    channel_name_starts_with: hook.channel_name_starts_with,
                    channel_name_ends_with: hook.channel_name_ends_with,
                });
            }
            apps.insert(
                app.app_id,
                AppRoutes {
                    batching: app.batching,
                    routes,
                },
            );
        }
        self.apps = apps;
        Ok(())
    }

    /// Takes one event at `now_ms`; returns the requests ready to go.
    pub fn push(&mut self, event: HookEvent, now_ms: u64) -> Vec<WebhookBatch> {
        let mut ready = Vec::new();
        match event.kind {
            WebhookEventType::ChannelVacated | WebhookEventType::MemberRemoved => {
                if self.delayed.len() < WEBHOOK_DELAYED_EVENTS_MAX {
                    self.delay(event, now_ms);
                } else {
                    self.route(event, now_ms, &mut ready);
                }
            }
            WebhookEventType::ChannelOccupied | WebhookEventType::MemberAdded => {
                let key = delay_key(&event, opposite(event.kind));
                if self.delayed.remove(&key).is_some() {
                    // Back within the delay: neither the leave nor this join is news.
                    self.held_events -= 1;
                } else {
                    self.route(event, now_ms, &mut ready);
                }
            }
            WebhookEventType::ClientEvent
            | WebhookEventType::CacheMiss
            | WebhookEventType::SubscriptionCount => {
                self.route(event, now_ms, &mut ready);
            }
        }
        ready
    }

    /// Takes an event from the Redis queue: delays and cancellations happened in Redis; the
    /// entry's id is the event's id (the same on every redelivery).
    pub fn push_queued(
        &mut self,
        event: HookEvent,
        id: &str,
        settle: SettleToken,
        now_ms: u64,
    ) -> Vec<WebhookBatch> {
        let mut ready = Vec::new();
        self.route_as(event, id, Some(settle), now_ms, &mut ready);
        ready
    }

    /// Takes a leave event whose delay already passed elsewhere (in Redis, cluster-wide):
    /// routed at once.
    pub fn push_due(&mut self, event: HookEvent, now_ms: u64) -> Vec<WebhookBatch> {
        let mut ready = Vec::new();
        self.route(event, now_ms, &mut ready);
        ready
    }

    /// Everything due at `now_ms`: delayed events whose time came, batches whose window ended.
    pub fn tick(&mut self, now_ms: u64) -> Vec<WebhookBatch> {
        let mut ready = Vec::new();
        while self
            .delay_timers
            .front()
            .is_some_and(|(due_ms, ..)| *due_ms <= now_ms)
        {
            let Some((_, key, generation)) = self.delay_timers.pop_front() else {
                break;
            };
            if self
                .delayed
                .get(&key)
                .is_some_and(|(current, _)| *current == generation)
            {
                if let Some((_, event)) = self.delayed.remove(&key) {
                    self.held_events -= 1;
                    self.route(event, now_ms, &mut ready);
                }
            }
        }
        let due: Vec<(String, usize)> = self
            .open_batches
            .iter()
            .filter(|(_, batch)| batch.due_ms <= now_ms)
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Some(batch) = self.open_batches.remove(&key) {
                ready.push(self.close_batch(batch));
            }
        }
        ready
    }

    /// When `tick` next has something to do.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let delay = self.delay_timers.front().map(|(due_ms, ..)| *due_ms);
        let batch = self.open_batches.values().map(|b| b.due_ms).min();
        match (delay, batch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Events delayed or being collected here.
    pub fn held_events(&self) -> usize {
        self.held_events
    }

    fn delay(&mut self, event: HookEvent, now_ms: u64) {
        let key = delay_key(&event, event.kind);
        let generation = self.next_generation;
        self.next_generation += 1;
        if self
            .delayed
            .insert(key.clone(), (generation, event))
            .is_none()
        {
            self.held_events += 1;
        }
        self.delay_timers
            .push_back((now_ms + LEAVE_DELAY_MS, key, generation));
    }

    /// Gives the event its id and hands it to every webhook that wants it.
    fn route(&mut self, event: HookEvent, now_ms: u64, ready: &mut Vec<WebhookBatch>) {
        let id = format!("{}-{}", self.id_prefix, self.next_event_seq);
        self.next_event_seq += 1;
        self.route_as(event, &id, None, now_ms, ready);
    }

    /// Routes an event with its id; `settle` (an entry of the Redis queue) goes with every batch
    /// the event joins and is settled at once when no webhook wants it. An entry of an app this
    /// node has no settings for (its settings changed since the entry was read, or it came from
    /// the shared stream of earlier versions) is left unsettled: a node that knows the app
    /// claims it once it has been idle long enough.
    fn route_as(
        &mut self,
        event: HookEvent,
        id: &str,
        settle: Option<SettleToken>,
        now_ms: u64,
        ready: &mut Vec<WebhookBatch>,
    ) {
        if settle.is_some() && !self.apps.contains_key(&event.app_id) {
            return; // the token is dropped unsettled: the entry stays pending in Redis
        }
        let wanted: Vec<(usize, Arc<WebhookTarget>)> = match self.apps.get(&event.app_id) {
            Some(app) => app
                .routes
                .iter()
                .enumerate()
                .filter(|(_, route)| route.wants(event.kind, &event.channel))
                .map(|(index, route)| (index, Arc::clone(&route.target)))
                .collect(),
            None => Vec::new(), // no webhooks (any more) for this app
        };
        let body = with_id(&event.body, id);
        let (Some(body), false) = (body, wanted.is_empty()) else {
            if let Some(token) = settle {
                token.settle(); // nothing to send: the entry is done
            }
            return;
        };
        let batching = self.apps.get(&event.app_id).is_some_and(|app| app.batching);
        for (index, target) in wanted {
            let share = settle.as_ref().map(SettleToken::share);
            if !batching {
                ready.push(WebhookBatch {
                    target,
                    events: vec![body.clone()],
                    settle: share.into_iter().collect(),
                    charge: None,
                });
                continue;
            }
            let batch = self
                .open_batches
                .entry((event.app_id.clone(), index))
                .or_insert_with(|| OpenBatch {
                    target,
                    events: Vec::new(),
                    settle: Vec::new(),
                    due_ms: now_ms + WEBHOOK_BATCH_WINDOW_MS,
                });
            batch.events.push(body.clone());
            batch.settle.extend(share);
            self.held_events += 1;
            if batch.events.len() >= WEBHOOK_BATCH_EVENTS_MAX {
                if let Some(full) = self.open_batches.remove(&(event.app_id.clone(), index)) {
                    ready.push(self.close_batch(full));
                }
            }
        }
        if let Some(token) = settle {
            token.settle(); // the batches hold their own shares now
        }
    }

    fn close_batch(&mut self, batch: OpenBatch) -> WebhookBatch {
        self.held_events -= batch.events.len();
        WebhookBatch {
            target: batch.target,
            events: batch.events,
            settle: batch.settle,
            charge: None,
        }
    }
}

/// The join that cancels a delayed leave, and the other way round.
fn opposite(kind: WebhookEventType) -> WebhookEventType {
    match kind {
        WebhookEventType::ChannelOccupied => WebhookEventType::ChannelVacated,
        WebhookEventType::MemberAdded => WebhookEventType::MemberRemoved,
        other => other,
    }
}

/// The delay key of a leave event of kind `leave` matching `event` (user events by user id).
fn delay_key(event: &HookEvent, leave: WebhookEventType) -> DelayKey {
    let user_id = if leave == WebhookEventType::MemberRemoved {
        serde_json::from_slice::<UserOf>(&event.body)
            .ok()
            .map(|body| body.user_id)
    } else {
        None
    };
    (event.app_id.clone(), event.channel.clone(), user_id)
}

#[derive(Deserialize)]
struct UserOf {
    user_id: String,
}

/// `{"id":"<id>",…rest of body}`: every event carries an id for de-duplication.
fn with_id(body: &[u8], id: &str) -> Option<Bytes> {
    let rest = body.strip_prefix(b"{")?;
    let id = format!("{{\"id\":\"{id}\"");
    let mut out = BytesMut::with_capacity(id.len() + body.len() + 1);
    out.put_slice(id.as_bytes());
    if rest.trim_ascii_start() != b"}" {
        out.put_u8(b',');
    }
    out.put_slice(rest);
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::{json, Value};

    fn config(batching: bool) -> Vec<u8> {
        json!({"apps": [{
            "app_id": "1", "app_key": "key", "app_secret": "secret", "batching": batching,
            "webhooks": [
                {"url": "http://127.0.0.1:1/all",
                 "event_types": ["channel_occupied", "channel_vacated", "member_added",
                                 "member_removed", "client_event", "cache_miss"],
                 "channel_name_starts_with": null, "channel_name_ends_with": null,
                 "headers": [["X-A", "1"]]},
                {"url": "http://127.0.0.1:1/private-vacated",
                 "event_types": ["channel_vacated", "no_such_kind"],
                 "channel_name_starts_with": "private-", "channel_name_ends_with": "-room",
                 "headers": []}
            ]
        }]})
        .to_string()
        .into_bytes()
    }

    fn router(batching: bool) -> WebhookRouter {
        let mut router = WebhookRouter::new(0xab, 0xcd);
        router.configure(&config(batching)).unwrap();
        router
    }

    fn channel_event(kind: WebhookEventType, channel: &str) -> HookEvent {
        HookEvent {
            app_id: "1".into(),
            channel: channel.into(),
            kind,
            body: Bytes::from(json!({"name": kind.name(), "channel": channel}).to_string()),
        }
    }

    fn member_event(kind: WebhookEventType, channel: &str, user: &str) -> HookEvent {
        HookEvent {
            body: Bytes::from(
                json!({"name": kind.name(), "channel": channel, "user_id": user}).to_string(),
            ),
            ..channel_event(kind, channel)
        }
    }

    /// (url path, event JSON) for every event of every batch.
    fn sent(batches: &[WebhookBatch]) -> Vec<(String, Value)> {
        batches
            .iter()
            .flat_map(|batch| {
                batch.events.iter().map(|event| {
                    let path = batch.target.url.rsplit('/').next().unwrap().to_owned();
                    (path, serde_json::from_slice(event).unwrap())
                })
            })
            .collect()
    }

    #[test]
    fn events_get_unique_ids_and_go_to_the_webhooks_whose_filters_match() {
        use WebhookEventType::*;
        let mut router = router(false);
        let out = sent(&router.push(channel_event(ChannelOccupied, "private-a-room"), 0));
        assert_eq!(
            out.len(),
            1,
            "only the first webhook wants occupied: {out:?}"
        );
        assert_eq!(out[0].0, "all");
        assert_eq!(out[0].1["name"], "channel_occupied");
        assert_eq!(out[0].1["channel"], "private-a-room");
        assert_eq!(out[0].1["id"], "00000000000000ab-000000cd-1");
        let out = sent(&router.push(channel_event(CacheMiss, "cache-x"), 1));
        assert_eq!(out[0].1["id"], "00000000000000ab-000000cd-2");

        assert!(router
            .push(channel_event(ChannelVacated, "private-a-room"), 10)
            .is_empty());
        assert!(router
            .push(channel_event(ChannelVacated, "private-b"), 10)
            .is_empty());
        assert_eq!(router.held_events(), 2);
        assert_eq!(router.next_deadline_ms(), Some(10 + LEAVE_DELAY_MS));
        assert!(
            router.tick(10 + LEAVE_DELAY_MS - 1).is_empty(),
            "never early"
        );
        let out = sent(&router.tick(10 + LEAVE_DELAY_MS));
        let mut got: Vec<(String, String)> = out
            .iter()
            .map(|(path, e)| (path.clone(), e["channel"].as_str().unwrap().to_owned()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("all".to_owned(), "private-a-room".to_owned()),
                ("all".to_owned(), "private-b".to_owned()),
                ("private-vacated".to_owned(), "private-a-room".to_owned()),
            ],
            "the filtered webhook gets only channels with its prefix and suffix"
        );
        let one_event = out
            .iter()
            .filter(|(_, e)| e["channel"] == "private-a-room")
            .map(|(_, e)| e["id"].clone())
            .collect::<Vec<_>>();
        assert_eq!(
            one_event[0], one_event[1],
            "one event, one id for every webhook"
        );
        assert_eq!(router.held_events(), 0);
        assert_eq!(router.next_deadline_ms(), None);
    }

    #[test]
    fn a_rejoin_within_the_delay_cancels_the_leave_and_the_join() {
        use WebhookEventType::*;
        let mut router = router(false);
        assert!(router
            .push(member_event(MemberRemoved, "presence-r", "u1"), 0)
            .is_empty());
        assert!(router
            .push(member_event(MemberRemoved, "presence-r", "u2"), 0)
            .is_empty());
        assert!(router
            .push(channel_event(ChannelVacated, "presence-r"), 0)
            .is_empty());
        // u1 and the channel come back in time; u2 does not.
        assert!(router
            .push(member_event(MemberAdded, "presence-r", "u1"), 2_999)
            .is_empty());
        assert!(router
            .push(channel_event(ChannelOccupied, "presence-r"), 2_999)
            .is_empty());
        let out = sent(&router.tick(LEAVE_DELAY_MS));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].1["name"], "member_removed");
        assert_eq!(out[0].1["user_id"], "u2");
        // Too late to cancel: both events go out.
        assert!(router
            .push(member_event(MemberRemoved, "presence-r", "u3"), 5_000)
            .is_empty());
        assert!(router.tick(8_000).len() == 1);
        assert_eq!(
            sent(&router.push(member_event(MemberAdded, "presence-r", "u3"), 8_001)).len(),
            1
        );
        // A second leave of the same user re-arms the delay from its own time.
        assert!(router
            .push(member_event(MemberRemoved, "presence-r", "u4"), 10_000)
            .is_empty());
        assert!(router
            .push(member_event(MemberAdded, "presence-r", "u4"), 10_001)
            .is_empty());
        assert!(router
            .push(member_event(MemberRemoved, "presence-r", "u4"), 11_000)
            .is_empty());
        assert!(
            router.tick(13_000).is_empty(),
            "the cancelled timer does not fire"
        );
        assert_eq!(sent(&router.tick(14_000)).len(), 1);
        assert_eq!(router.held_events(), 0);
    }

    #[test]
    fn batching_collects_per_webhook_for_a_window_or_up_to_the_maximum() {
        use WebhookEventType::*;
        let mut router = router(true);
        for i in 0..3 {
            let event = channel_event(ClientEvent, &format!("private-{i}"));
            assert!(router.push(event, 100).is_empty());
        }
        assert_eq!(router.held_events(), 3);
        assert_eq!(
            router.next_deadline_ms(),
            Some(100 + WEBHOOK_BATCH_WINDOW_MS)
        );
        let batches = router.tick(100 + WEBHOOK_BATCH_WINDOW_MS);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].events.len(), 3);
        assert_eq!(router.held_events(), 0);
        let mut full = Vec::new();
        for i in 0..WEBHOOK_BATCH_EVENTS_MAX {
            full.extend(router.push(channel_event(CacheMiss, &format!("cache-{i}")), 200));
        }
        assert_eq!(full.len(), 1, "a full batch goes at once");
        assert_eq!(full[0].events.len(), WEBHOOK_BATCH_EVENTS_MAX);
        assert_eq!(router.held_events(), 0);
    }

    #[test]
    fn unknown_apps_bad_bodies_and_bad_documents_are_refused_quietly() {
        use WebhookEventType::*;
        let mut router = router(false);
        let mut stranger = channel_event(ChannelOccupied, "x");
        stranger.app_id = "2".into();
        assert!(router.push(stranger, 0).is_empty());
        let mut broken = channel_event(CacheMiss, "x");
        broken.body = Bytes::from_static(b"[1]");
        assert!(router.push(broken, 0).is_empty());
        assert!(router.configure(b"{\"apps\":7}").is_err());
        let kept = sent(&router.push(channel_event(ClientEvent, "private-x"), 0));
        assert_eq!(kept.len(), 1, "a bad document keeps the old settings");
    }

    #[test]
    fn ids_are_spliced_into_any_object() {
        assert_eq!(&with_id(b"{}", "n-r-2").unwrap()[..], b"{\"id\":\"n-r-2\"}");
        assert_eq!(
            &with_id(b"{\"a\":1}", "n-r-3").unwrap()[..],
            b"{\"id\":\"n-r-3\",\"a\":1}"
        );
        assert_eq!(with_id(b"\"x\"", "n-r-4"), None);
    }
}
