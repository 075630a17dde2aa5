//! The Redis webhook queue (`--webhook-queue redis`): webhook events survive a receiver outage
//! and a killed bridge (at-least-once; the event's id is its stream entry id, the same on every
//! redelivery, so receivers can de-duplicate).
//!
//! - The **producer** puts the events the engine hands over into the stream
//!   `{prefix}#webhooks#queue` (a leave first waits 3 s in the delayed set, where a rejoin
//!   cancels it; the due task moves it on). With several nodes the presence scripts queue their
//!   events themselves, in the same atomic step as the state change.
//! - The **consumer** reads the stream in the consumer group `ringcast` under the node's id (a
//!   restarted bridge of the node first takes back what its predecessor had not finished),
//!   hands each entry to the webhook task with a [`SettleToken`], and claims entries another
//!   consumer left idle past the retry window (a node that died for good).
//! - The **acker** acknowledges and deletes an entry once every batch it went into was
//!   delivered or given up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::counters::{add, BridgeCounters};
use crate::limits::{
    REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS, WEBHOOK_CLAIM_IDLE_MS,
    WEBHOOK_CLAIM_INTERVAL_MS, WEBHOOK_ENQUEUE_BATCH_EVENTS_MAX, WEBHOOK_IN_FLIGHT_POLL_MS,
    WEBHOOK_PRODUCER_WAITING_EVENTS_MAX, WEBHOOK_QUEUE_IN_FLIGHT_MAX,
    WEBHOOK_READ_BATCH_ENTRIES_MAX, WEBHOOK_READ_BLOCK_MS,
};
use crate::redis::connect::{RedisClient, RedisConnection};
use crate::redis::envelope::{member_event_head, put_field};
use crate::redis::layout::{
    occupancy_head_channel, webhook_due_key, webhook_queue_key, ScriptKeys, OCCUPANCY_MEMBER,
    WEBHOOK_QUEUE_GROUP,
};
use crate::redis::scripts::Scripts;
use crate::redis::session::RedisSession;
use crate::webhooks::batch::SettleToken;
use crate::webhooks::events::hook_of_payload;
use crate::webhooks::task::WebhookInput;
use bytes::BytesMut;
use ringcast_core::app::WebhookEventType;
use ringcast_core::link::{self, HookEvent, LinkMessage};
use tokio::sync::{mpsc, watch};

/// How the producer hands one event to Redis (see `redis::scripts::LUA_ENQUEUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueueEntry {
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
    mut inputs: mpsc::Receiver<WebhookInput>,
    router: mpsc::Sender<WebhookInput>,
    counters: Arc<BridgeCounters>,
) {
    let mut scripts = Scripts::new(&keys);
    let delayed = webhook_due_key(&keys.prefix);
    let mut session = session(client, "webhook queue producer", false);
    let mut waiting: VecDeque<QueueEntry> = VecDeque::new();
    loop {
        // Wait for input only when nothing is waiting for Redis; then take all that arrived.
        if waiting.is_empty() {
            match inputs.recv().await {
                Some(input) => {
                    if !take_input(input, &mut waiting, &router, &counters).await {
                        return;
                    }
                }
                None => return,
            }
        }
        while waiting.len() < WEBHOOK_ENQUEUE_BATCH_EVENTS_MAX {
            let Ok(input) = inputs.try_recv() else { break };
            if !take_input(input, &mut waiting, &router, &counters).await {
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
                        .arg(1)
                        .arg(&delayed)
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
                scripts
                    .enqueue
                    .run::<i64>(open, &[&delayed], &args)
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
    router: &mpsc::Sender<WebhookInput>,
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

/// The consumer: runs until the webhook task is gone. `consumer` is the node's name in the
/// group (the same for every bridge the node's engine starts). It starts reading once the
/// engine's webhook settings are in (`configured`).
pub async fn run_consumer(
    client: RedisClient,
    prefix: String,
    consumer: String,
    router: mpsc::Sender<WebhookInput>,
    mut configured: watch::Receiver<bool>,
) {
    if configured.wait_for(|known| *known).await.is_err() {
        return;
    }
    let key = webhook_queue_key(&prefix);
    let (acks, ack_queue) =
        mpsc::channel(WEBHOOK_QUEUE_IN_FLIGHT_MAX + WEBHOOK_READ_BATCH_ENTRIES_MAX);
    let in_flight = Arc::new(AtomicUsize::new(0));
    tokio::spawn(run_acker(
        client.clone(),
        key.clone(),
        ack_queue,
        Arc::clone(&in_flight),
    ));
    let mut session = session(client, "webhook queue consumer", true);
    // First what this node's previous bridge had taken and not finished, then new entries.
    let mut own_pending_after: Option<String> = Some("0".to_owned());
    let mut next_claim = tokio::time::Instant::now();
    loop {
        if router.is_closed() {
            return;
        }
        if in_flight.load(Ordering::Acquire) >= WEBHOOK_QUEUE_IN_FLIGHT_MAX {
            tokio::time::sleep(Duration::from_millis(WEBHOOK_IN_FLIGHT_POLL_MS)).await;
            continue;
        }
        // Every new connection makes sure the group exists (Redis may have been emptied).
        let fresh = !session.is_connected();
        let Some(open) = session.connection().await else {
            session.wait_retry().await;
            continue;
        };
        if fresh {
            if let Err(err) = create_group(open, &key).await {
                tracing::debug!("webhook queue: cannot create the group: {err}");
                session.failed();
                session.wait_retry().await;
                continue;
            }
        }
        let claiming = own_pending_after.is_none() && tokio::time::Instant::now() >= next_claim;
        let read = if claiming {
            next_claim =
                tokio::time::Instant::now() + Duration::from_millis(WEBHOOK_CLAIM_INTERVAL_MS);
            claim_idle(open, &key, &consumer).await
        } else {
            read_entries(open, &key, &consumer, own_pending_after.as_deref()).await
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
        if let (Some(after), false) = (&mut own_pending_after, claiming) {
            match entries.last() {
                Some((id, _)) => *after = id.clone(),
                None => {
                    // The predecessor's entries are all back in hand.
                    own_pending_after = None;
                    next_claim = tokio::time::Instant::now();
                }
            }
        }
        for (id, fields) in entries {
            let token = SettleToken::new(id.clone(), acks.clone());
            in_flight.fetch_add(1, Ordering::AcqRel);
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

/// Creates the consumer group (from the start of the stream) unless it exists.
async fn create_group(connection: &mut RedisConnection, key: &str) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(WEBHOOK_QUEUE_GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(connection)
        .await;
    match created {
        Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// This consumer's own pending entries after `pending_after`, or (`None`) new entries.
async fn read_entries(
    connection: &mut RedisConnection,
    key: &str,
    consumer: &str,
    pending_after: Option<&str>,
) -> redis::RedisResult<Vec<StreamEntry>> {
    let mut command = redis::cmd("XREADGROUP");
    command
        .arg("GROUP")
        .arg(WEBHOOK_QUEUE_GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(WEBHOOK_READ_BATCH_ENTRIES_MAX);
    if pending_after.is_none() {
        command.arg("BLOCK").arg(WEBHOOK_READ_BLOCK_MS);
    }
    command
        .arg("STREAMS")
        .arg(key)
        .arg(pending_after.unwrap_or(">"));
    // Nil (timeout) or [[key, [entries]]].
    let answer: Option<Vec<(String, Vec<StreamEntry>)>> = command.query_async(connection).await?;
    Ok(answer
        .into_iter()
        .flatten()
        .flat_map(|(_, entries)| entries)
        .collect())
}

/// Entries other consumers left idle past the retry window, now this consumer's.
async fn claim_idle(
    connection: &mut RedisConnection,
    key: &str,
    consumer: &str,
) -> redis::RedisResult<Vec<StreamEntry>> {
    let (_, entries, _): (String, Vec<StreamEntry>, Vec<String>) = redis::cmd("XAUTOCLAIM")
        .arg(key)
        .arg(WEBHOOK_QUEUE_GROUP)
        .arg(consumer)
        .arg(WEBHOOK_CLAIM_IDLE_MS)
        .arg("0-0")
        .arg("COUNT")
        .arg(WEBHOOK_READ_BATCH_ENTRIES_MAX)
        .query_async(connection)
        .await?;
    Ok(entries)
}

/// Acknowledges and deletes settled entries, a batch per round trip. Runs until every
/// [`SettleToken`] and the consumer are gone.
async fn run_acker(
    client: RedisClient,
    key: String,
    mut acks: mpsc::Receiver<String>,
    in_flight: Arc<AtomicUsize>,
) {
    let mut session = session(client, "webhook queue acker", false);
    let mut batch: Vec<String> = Vec::new();
    loop {
        if batch.is_empty() {
            match acks.recv().await {
                Some(id) => batch.push(id),
                None => return,
            }
        }
        while batch.len() < WEBHOOK_READ_BATCH_ENTRIES_MAX {
            match acks.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        let Some(open) = session.connection().await else {
            session.wait_retry().await;
            continue;
        };
        let mut pipe = redis::pipe();
        pipe.cmd("XACK")
            .arg(&key)
            .arg(WEBHOOK_QUEUE_GROUP)
            .arg(&batch)
            .ignore();
        pipe.cmd("XDEL").arg(&key).arg(&batch).ignore();
        match pipe.query_async::<()>(open).await {
            Ok(()) => {
                session.succeeded();
                in_flight.fetch_sub(batch.len(), Ordering::AcqRel);
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
        let token = SettleToken::new("1-0".into(), acks);
        let a = token.share();
        let b = token.share();
        token.settle();
        a.settle();
        assert!(queue.try_recv().is_err(), "one share still out");
        b.settle();
        assert_eq!(queue.try_recv().unwrap(), "1-0");
        let (acks, mut queue) = mpsc::channel(4);
        let dropped = SettleToken::new("2-0".into(), acks);
        drop(dropped.share());
        dropped.settle();
        assert!(
            queue.try_recv().is_err(),
            "a share dropped unsettled keeps the entry"
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
