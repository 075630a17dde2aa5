//! The Redis webhook queue (`--webhook-queue redis`): webhook events survive a receiver outage
//! and a killed bridge (at-least-once; the event's id is its stream entry id, the same on every
//! redelivery, so receivers can de-duplicate).
//!
//! - The **producer** puts the events the engine hands over into their app's stream
//!   `{prefix}#webhooks#queue#{app_id}` (a leave first waits 3 s in the app's delayed set, where
//!   a rejoin cancels it; the due task moves it on). With several nodes the presence scripts
//!   queue their events themselves, in the same atomic step as the state change.
//! - The **consumer** reads the streams of the apps this node has webhook settings for (and the
//!   one shared stream of earlier versions) in the consumer group `ringcast` under the node's id
//!   (a restarted bridge of the node first takes back what its predecessor had not finished),
//!   hands each entry to the webhook task with a
//!   [`SettleToken`](crate::webhooks::batch::SettleToken), and claims entries another consumer
//!   left idle past the retry window (a node that died for good). A node never reads the stream
//!   of an app it does not know, so it never settles such an event.
//! - The **acker** acknowledges and deletes an entry once every batch it went into was
//!   delivered or given up.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::counters::{add, BridgeCounters};
use crate::limits::{
    REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS, WEBHOOK_CLAIM_IDLE_MS,
    WEBHOOK_CLAIM_INTERVAL_MS, WEBHOOK_ENQUEUE_BATCH_EVENTS_MAX, WEBHOOK_IN_FLIGHT_POLL_MS,
    WEBHOOK_PRODUCER_WAITING_EVENTS_MAX, WEBHOOK_QUEUE_IN_FLIGHT_MAX,
    WEBHOOK_READ_BATCH_ENTRIES_MAX, WEBHOOK_READ_BLOCK_MS, WEBHOOK_STREAMS_PER_COMMAND_MAX,
};
use crate::redis::connect::{RedisClient, RedisConnection};
use crate::redis::envelope::{member_event_head, put_field};
use crate::redis::layout::{
    occupancy_head_channel, webhook_due_key, webhook_legacy_queue_key, webhook_queue_key,
    ScriptKeys, OCCUPANCY_MEMBER, WEBHOOK_QUEUE_GROUP,
};
use crate::redis::scripts::Scripts;
use crate::redis::session::RedisSession;
use crate::webhooks::batch::AckQueue;
use crate::webhooks::events::hook_of_payload;
use crate::webhooks::task::{AppsWatch, Charged, WebhookInbox, WebhookInput};
use bytes::BytesMut;
use ringcast_core::app::WebhookEventType;
use ringcast_core::link::{self, HookEvent, LinkMessage};
use tokio::sync::mpsc;

/// How the producer hands one event to Redis (see `redis::scripts::LUA_ENQUEUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueueEntry {
    /// The event's app (its stream and delayed set).
    app_id: String,
    /// `leave`, `join` or `now`.
    mode: &'static str,
    /// `m` (member-event payload) or `h` (link-encoded hook event).
    field: &'static str,
    payload: Vec<u8>,
    /// For a join: the payload of the leave it cancels.
    cancels: Vec<u8>,
}

/// The queue entry of an event from the engine: member and occupancy events as the member-event
/// payloads the scripts use (so delays and cancellations work the same on one node and many),
/// the rest as link-encoded hook events.
fn queue_entry(event: &HookEvent) -> Option<QueueEntry> {
    let (channel, user) = match event.kind {
        WebhookEventType::ChannelOccupied | WebhookEventType::ChannelVacated => (
            occupancy_head_channel(&event.channel),
            OCCUPANCY_MEMBER.to_owned(),
        ),
        WebhookEventType::MemberAdded | WebhookEventType::MemberRemoved => {
            let body: serde_json::Value = serde_json::from_slice(&event.body).ok()?;
            (event.channel.clone(), body["user_id"].as_str()?.to_owned())
        }
        WebhookEventType::ClientEvent
        | WebhookEventType::CacheMiss
        | WebhookEventType::SubscriptionCount => {
            let mut encoded = BytesMut::new();
            link::encode(&LinkMessage::Hook(event.clone()), &mut encoded).ok()?;
            return Some(QueueEntry {
                app_id: event.app_id.clone(),
                mode: "now",
                field: "h",
                payload: encoded.to_vec(),
                cancels: Vec::new(),
            });
        }
    };
    let head = member_event_head(&event.app_id, &channel);
    let mut leave = head.clone();
    leave.push(b'R');
    put_field(&mut leave, user.as_bytes());
    let joined = matches!(
        event.kind,
        WebhookEventType::ChannelOccupied | WebhookEventType::MemberAdded
    );
    if !joined {
        return Some(QueueEntry {
            app_id: event.app_id.clone(),
            mode: "leave",
            field: "m",
            payload: leave,
            cancels: Vec::new(),
        });
    }
    let mut join = head;
    join.push(b'A');
    put_field(&mut join, user.as_bytes());
    put_field(&mut join, b"");
    Some(QueueEntry {
        app_id: event.app_id.clone(),
        mode: "join",
        field: "m",
        payload: join,
        cancels: leave,
    })
}

/// The event a stream entry holds (`m` or `h` field).
fn entry_event(fields: &[(String, Vec<u8>)]) -> Option<HookEvent> {
    let (name, value) = fields.first()?;
    match name.as_str() {
        "m" => hook_of_payload(value),
        "h" => match link::decode(&mut BytesMut::from(&value[..])) {
            Ok(Some(LinkMessage::Hook(event))) => Some(event),
            _ => None,
        },
        _ => None,
    }
}

/// A session of one of the queue's tasks; `block`: its reads block up to
/// [`WEBHOOK_READ_BLOCK_MS`] on top of the usual answer time.
fn session(client: RedisClient, what: &'static str, block: bool) -> RedisSession {
    let block_ms = if block { WEBHOOK_READ_BLOCK_MS } else { 0 };
    RedisSession::new(
        client,
        what,
        Duration::from_millis(REDIS_CONNECT_TIMEOUT_MS),
        Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS + block_ms),
    )
}

/// The producer: runs until every sender of `inputs` is gone. Settings go on to the webhook
/// task (`router`); events go into Redis, in order, kept while Redis is away.
pub async fn run_producer(
    client: RedisClient,
    keys: ScriptKeys,
    mut inputs: mpsc::Receiver<Charged>,
    router: WebhookInbox,
    counters: Arc<BridgeCounters>,
) {
    let mut scripts = Scripts::new(&keys);
    let mut session = session(client, "webhook queue producer", false);
    let mut waiting: VecDeque<QueueEntry> = VecDeque::new();
    loop {
        // Wait for input only when nothing is waiting for Redis; then take all that arrived.
        if waiting.is_empty() {
            match inputs.recv().await {
                Some(input) => {
                    if !take_input(input.input, &mut waiting, &router, &counters).await {
                        return;
                    }
                }
                None => return,
            }
        }
        while waiting.len() < WEBHOOK_ENQUEUE_BATCH_EVENTS_MAX {
            let Ok(input) = inputs.try_recv() else { break };
            if !take_input(input.input, &mut waiting, &router, &counters).await {
                return;
            }
        }
        if waiting.is_empty() {
            continue;
        }
        let Some(open) = session.connection().await else {
            session.wait_retry().await;
            continue;
        };
        // One round trip for many events, in order, once the script is loaded; the first
        // event (or one after NOSCRIPT) goes alone, which loads it.
        let result = match scripts.enqueue.loaded_sha() {
            Some(sha) if waiting.len() > 1 => {
                let count = waiting.len().min(WEBHOOK_ENQUEUE_BATCH_EVENTS_MAX);
                let mut pipeline = redis::pipe();
                for entry in waiting.iter().take(count) {
                    pipeline
                        .cmd("EVALSHA")
                        .arg(sha)
                        .arg(2)
                        .arg(webhook_due_key(&keys.prefix, &entry.app_id))
                        .arg(webhook_queue_key(&keys.prefix, &entry.app_id))
                        .arg(entry.mode)
                        .arg(entry.field)
                        .arg(&entry.payload[..])
                        .arg(&entry.cancels[..])
                        .ignore();
                }
                pipeline.query_async::<()>(open).await.map(|()| count)
            }
            _ => {
                let Some(entry) = waiting.front() else {
                    continue;
                };
                let args: [&[u8]; 4] = [
                    entry.mode.as_bytes(),
                    entry.field.as_bytes(),
                    &entry.payload,
                    &entry.cancels,
                ];
                let delayed = webhook_due_key(&keys.prefix, &entry.app_id);
                let queue = webhook_queue_key(&keys.prefix, &entry.app_id);
                scripts
                    .enqueue
                    .run::<i64>(open, &[&delayed, &queue], &args)
                    .await
                    .map(|_| 1)
            }
        };
        match result {
            Ok(queued) => {
                session.succeeded();
                waiting.drain(..queued);
            }
            Err(err)
                if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                // Redis forgot the script (restarted): nothing of the pipeline ran.
                scripts.enqueue.forget();
            }
            Err(err) => {
                tracing::debug!("webhook queue: cannot queue events: {err}");
                session.failed();
                session.wait_retry().await;
            }
        }
    }
}

/// Takes one input of the producer: settings go on to the router, events wait for Redis
/// (bounded). False when the router is gone.
async fn take_input(
    input: WebhookInput,
    waiting: &mut VecDeque<QueueEntry>,
    router: &WebhookInbox,
    counters: &BridgeCounters,
) -> bool {
    match input {
        WebhookInput::Config(document) => {
            return router.send(WebhookInput::Config(document)).await.is_ok();
        }
        WebhookInput::Event(event) | WebhookInput::Due(event) => match queue_entry(&event) {
            Some(_) if waiting.len() >= WEBHOOK_PRODUCER_WAITING_EVENTS_MAX => {
                add(&counters.webhooks.events_dropped_queue_full, 1);
            }
            Some(entry) => waiting.push_back(entry),
            None => tracing::debug!("ignoring a webhook event without a user id"),
        },
        WebhookInput::Queued { .. } => {}
    }
    true
}

/// A stream entry as XREADGROUP / XAUTOCLAIM return it.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

/// One stream the consumer reads: an app's, or the shared one of earlier versions.
#[derive(Debug)]
struct Stream {
    key: Arc<str>,
    /// `Some(after)` while this consumer's own pending entries (a predecessor's) are still to
    /// be taken back, from after that id; `None` once they are.
    own_pending_after: Option<String>,
}

/// The streams of `apps` (and the legacy one), keeping the state of streams already read.
fn streams_of(prefix: &str, apps: &[String], old: Vec<Stream>) -> Vec<Stream> {
    let mut old: HashMap<Arc<str>, Stream, ahash::RandomState> =
        old.into_iter().map(|s| (Arc::clone(&s.key), s)).collect();
    let keys = std::iter::once(webhook_legacy_queue_key(prefix))
        .chain(apps.iter().map(|app| webhook_queue_key(prefix, app)));
    keys.map(|key| {
        old.remove(key.as_str()).unwrap_or_else(|| Stream {
            key: Arc::from(key),
            own_pending_after: Some("0".to_owned()),
        })
    })
    .collect()
}

/// The consumer: runs until the webhook task is gone. `consumer` is the node's name in the
/// group (the same for every bridge the node's engine starts). It starts reading once the
/// engine's webhook settings are in (`apps`), and reads the streams of exactly the apps they
/// have webhooks for, following every change.
pub async fn run_consumer(
    client: RedisClient,
    prefix: String,
    consumer: String,
    router: WebhookInbox,
    mut apps: AppsWatch,
) {
    if apps.wait_for(Option::is_some).await.is_err() {
        return;
    }
    let (acks, ack_queue) =
        mpsc::channel(WEBHOOK_QUEUE_IN_FLIGHT_MAX + WEBHOOK_READ_BATCH_ENTRIES_MAX);
    let acks = AckQueue::new(acks);
    tokio::spawn(run_acker(client.clone(), ack_queue));
    let mut session = session(client, "webhook queue consumer", true);
    let mut streams: Vec<Stream> = Vec::new();
    let mut groups_made = false;
    let mut next_claim = tokio::time::Instant::now();
    loop {
        if router.is_closed() {
            return;
        }
        if apps.has_changed().unwrap_or(false) || streams.is_empty() {
            let known = apps.borrow_and_update().clone().unwrap_or_default();
            streams = streams_of(&prefix, &known, std::mem::take(&mut streams));
            groups_made = false;
        }
        let taken = acks.held();
        if taken >= WEBHOOK_QUEUE_IN_FLIGHT_MAX {
            tokio::time::sleep(Duration::from_millis(WEBHOOK_IN_FLIGHT_POLL_MS)).await;
            continue;
        }
        // COUNT is per stream: share the room left among them (at least one each).
        let count = ((WEBHOOK_QUEUE_IN_FLIGHT_MAX - taken) / streams.len())
            .clamp(1, WEBHOOK_READ_BATCH_ENTRIES_MAX);
        // Every new connection makes sure the groups exist (Redis may have been emptied).
        if !session.is_connected() {
            groups_made = false;
        }
        let Some(open) = session.connection().await else {
            session.wait_retry().await;
            continue;
        };
        if !groups_made {
            if let Err(err) = create_groups(open, &streams).await {
                tracing::debug!("webhook queue: cannot create the groups: {err}");
                session.failed();
                session.wait_retry().await;
                continue;
            }
            groups_made = true;
        }
        let reclaiming = streams.iter().any(|s| s.own_pending_after.is_some());
        let claiming = !reclaiming && tokio::time::Instant::now() >= next_claim;
        let read = if reclaiming {
            read_own_pending(open, &mut streams, &consumer, count).await
        } else if claiming {
            next_claim =
                tokio::time::Instant::now() + Duration::from_millis(WEBHOOK_CLAIM_INTERVAL_MS);
            claim_idle(open, &streams, &consumer, count).await
        } else {
            read_new(open, &streams, &consumer, count).await
        };
        let entries = match read {
            Ok(entries) => entries,
            Err(err) => {
                tracing::debug!("webhook queue: read failed: {err}");
                session.failed();
                session.wait_retry().await;
                continue;
            }
        };
        session.succeeded();
        if reclaiming && entries.is_empty() {
            // Every predecessor's entry is back in hand: claim what dead nodes left at once.
            next_claim = tokio::time::Instant::now();
        }
        for (key, (id, fields)) in entries {
            let token = acks.token(key, id.clone());
            let Some(event) = entry_event(&fields) else {
                tracing::debug!(id, "webhook queue: dropping an unreadable entry");
                token.settle();
                continue;
            };
            let input = WebhookInput::Queued {
                event,
                id,
                settle: token,
            };
            // Waiting is right here: the entry is safe in Redis meanwhile.
            if router.send(input).await.is_err() {
                return;
            }
        }
    }
}

/// Creates the consumer group (from the start of the stream) of every stream that lacks one,
/// in one script (the keys share a slot).
async fn create_groups(
    connection: &mut RedisConnection,
    streams: &[Stream],
) -> redis::RedisResult<()> {
    const LUA_CREATE_GROUPS: &str = "for _, key in ipairs(KEYS) do \
         local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', key, ARGV[1], '0', 'MKSTREAM') \
         if not ok and not string.find(tostring(err), 'BUSYGROUP', 1, true) then \
         return redis.error_reply(tostring(err)) end end return 0";
    for chunk in streams.chunks(WEBHOOK_STREAMS_PER_COMMAND_MAX) {
        let mut command = redis::cmd("EVAL");
        command.arg(LUA_CREATE_GROUPS).arg(chunk.len());
        for stream in chunk {
            command.arg(&*stream.key);
        }
        command.arg(WEBHOOK_QUEUE_GROUP);
        command.query_async::<()>(connection).await?;
    }
    Ok(())
}

/// Entries of the answer of XREADGROUP over `keys`, each with its stream's key.
type KeyedEntries = Vec<(Arc<str>, StreamEntry)>;

/// One XREADGROUP over `streams` from the ids `ids`; `block` only for new entries.
async fn read_group(
    connection: &mut RedisConnection,
    streams: &[&Stream],
    ids: &[&str],
    consumer: &str,
    count: usize,
    block: bool,
) -> redis::RedisResult<KeyedEntries> {
    let mut command = redis::cmd("XREADGROUP");
    command
        .arg("GROUP")
        .arg(WEBHOOK_QUEUE_GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if block {
        command.arg("BLOCK").arg(WEBHOOK_READ_BLOCK_MS);
    }
    command.arg("STREAMS");
    for stream in streams {
        command.arg(&*stream.key);
    }
    command.arg(ids);
    // Nil (timeout) or [[key, [entries]], …].
    let answer: Option<Vec<(String, Vec<StreamEntry>)>> = command.query_async(connection).await?;
    let mut out = Vec::new();
    for (key, entries) in answer.into_iter().flatten() {
        let Some(stream) = streams.iter().find(|s| *s.key == *key) else {
            continue;
        };
        out.extend(entries.into_iter().map(|e| (Arc::clone(&stream.key), e)));
    }
    Ok(out)
}

/// This consumer's own pending entries (a predecessor's) in the streams still being taken
/// back; a stream that has no more is done.
async fn read_own_pending(
    connection: &mut RedisConnection,
    streams: &mut [Stream],
    consumer: &str,
    count: usize,
) -> redis::RedisResult<KeyedEntries> {
    let pending: Vec<&Stream> = streams
        .iter()
        .filter(|s| s.own_pending_after.is_some())
        .take(WEBHOOK_STREAMS_PER_COMMAND_MAX)
        .collect();
    let ids: Vec<&str> = pending
        .iter()
        .filter_map(|s| s.own_pending_after.as_deref())
        .collect();
    let entries = read_group(connection, &pending, &ids, consumer, count, false).await?;
    let reached: Vec<Arc<str>> = pending.iter().map(|s| Arc::clone(&s.key)).collect();
    for stream in streams.iter_mut() {
        if !reached.contains(&stream.key) {
            continue;
        }
        let last = entries
            .iter()
            .rev()
            .find(|(key, _)| *key == stream.key)
            .map(|(_, (id, _))| id.clone());
        // No entry after the last one: this stream's pending entries are all back in hand.
        stream.own_pending_after = last;
    }
    Ok(entries)
}

/// New entries of every stream, waiting up to [`WEBHOOK_READ_BLOCK_MS`] for some.
async fn read_new(
    connection: &mut RedisConnection,
    streams: &[Stream],
    consumer: &str,
    count: usize,
) -> redis::RedisResult<KeyedEntries> {
    let mut out = Vec::new();
    let chunks: Vec<&[Stream]> = streams.chunks(WEBHOOK_STREAMS_PER_COMMAND_MAX).collect();
    // With more streams than one command takes, only the last chunk blocks.
    for (index, chunk) in chunks.iter().enumerate() {
        let refs: Vec<&Stream> = chunk.iter().collect();
        let ids = vec![">"; refs.len()];
        let block = index + 1 == chunks.len() && out.is_empty();
        out.extend(read_group(connection, &refs, &ids, consumer, count, block).await?);
    }
    Ok(out)
}

/// Entries other consumers left idle past the retry window, now this consumer's.
async fn claim_idle(
    connection: &mut RedisConnection,
    streams: &[Stream],
    consumer: &str,
    count: usize,
) -> redis::RedisResult<KeyedEntries> {
    let mut out = Vec::new();
    for stream in streams {
        let (_, entries, _): (String, Vec<StreamEntry>, Vec<String>) = redis::cmd("XAUTOCLAIM")
            .arg(&*stream.key)
            .arg(WEBHOOK_QUEUE_GROUP)
            .arg(consumer)
            .arg(WEBHOOK_CLAIM_IDLE_MS)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(connection)
            .await?;
        out.extend(entries.into_iter().map(|e| (Arc::clone(&stream.key), e)));
    }
    Ok(out)
}

/// Acknowledges and deletes settled entries, a batch per round trip. Runs until every
/// [`SettleToken`](crate::webhooks::batch::SettleToken) and the consumer are gone.
async fn run_acker(client: RedisClient, mut acks: mpsc::Receiver<(Arc<str>, String)>) {
    let mut session = session(client, "webhook queue acker", false);
    let mut batch: Vec<(Arc<str>, String)> = Vec::new();
    loop {
        if batch.is_empty() {
            match acks.recv().await {
                Some(ack) => batch.push(ack),
                None => return,
            }
        }
        while batch.len() < WEBHOOK_READ_BATCH_ENTRIES_MAX {
            match acks.try_recv() {
                Ok(ack) => batch.push(ack),
                Err(_) => break,
            }
        }
        let Some(open) = session.connection().await else {
            session.wait_retry().await;
            continue;
        };
        // One XACK and one XDEL per stream, all in one pipeline.
        let mut by_stream: HashMap<&str, Vec<&str>, ahash::RandomState> = HashMap::default();
        for (key, id) in &batch {
            by_stream.entry(key).or_default().push(id);
        }
        let mut pipe = redis::pipe();
        for (key, ids) in &by_stream {
            pipe.cmd("XACK")
                .arg(*key)
                .arg(WEBHOOK_QUEUE_GROUP)
                .arg(ids)
                .ignore();
            pipe.cmd("XDEL").arg(*key).arg(ids).ignore();
        }
        match pipe.query_async::<()>(open).await {
            Ok(()) => {
                session.succeeded();
                batch.clear();
            }
            Err(err) => {
                // Kept and tried again: an entry not acknowledged would be sent once more.
                tracing::debug!("webhook queue: acknowledging failed: {err}");
                session.failed();
                session.wait_retry().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use bytes::Bytes;

    fn event(kind: WebhookEventType, channel: &str, body: &str) -> HookEvent {
        HookEvent {
            app_id: "9".into(),
            channel: channel.into(),
            kind,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn a_token_acknowledges_once_every_share_settled() {
        let (acks, mut queue) = mpsc::channel(4);
        let acks = AckQueue::new(acks);
        let token = acks.token("s".into(), "1-0".into());
        let a = token.share();
        let b = token.share();
        token.settle();
        a.settle();
        assert!(queue.try_recv().is_err(), "one share still out");
        b.settle();
        assert_eq!(queue.try_recv().unwrap(), ("s".into(), "1-0".to_owned()));
        assert_eq!(acks.held(), 0, "a settled entry is no longer held");
        let (acks, mut queue) = mpsc::channel(4);
        let acks = AckQueue::new(acks);
        let dropped = acks.token("s".into(), "2-0".into());
        drop(dropped.share());
        assert_eq!(acks.held(), 1);
        dropped.settle();
        assert!(
            queue.try_recv().is_err(),
            "a share dropped unsettled keeps the entry"
        );
        assert_eq!(
            acks.held(),
            0,
            "an entry dropped unsettled no longer holds room in the consumer"
        );
    }

    #[test]
    fn queue_entries_round_trip_to_the_same_events() {
        use WebhookEventType::*;
        let joined = event(
            MemberAdded,
            "presence-a",
            r#"{"name":"member_added","channel":"presence-a","user_id":"u1"}"#,
        );
        let entry = queue_entry(&joined).unwrap();
        assert_eq!((entry.mode, entry.field), ("join", "m"));
        let back = entry_event(&[("m".into(), entry.payload.clone())]).unwrap();
        assert_eq!(
            (back.kind, back.channel.as_str()),
            (MemberAdded, "presence-a")
        );
        let left = queue_entry(&event(MemberRemoved, "presence-a", r#"{"user_id":"u1"}"#)).unwrap();
        assert_eq!(left.mode, "leave");
        assert_eq!(
            entry.cancels, left.payload,
            "a join names the leave it cancels"
        );
        let occupied = queue_entry(&event(ChannelOccupied, "news", "{}")).unwrap();
        let back = entry_event(&[("m".into(), occupied.payload)]).unwrap();
        assert_eq!(
            (back.kind, back.channel.as_str()),
            (ChannelOccupied, "news")
        );
        let client = event(ClientEvent, "private-x", r#"{"name":"client_event"}"#);
        let entry = queue_entry(&client).unwrap();
        assert_eq!((entry.mode, entry.field), ("now", "h"));
        assert_eq!(entry_event(&[("h".into(), entry.payload)]), Some(client));
        assert!(queue_entry(&event(MemberAdded, "presence-a", "{}")).is_none());
        assert!(entry_event(&[("x".into(), Vec::new())]).is_none());
    }
}
