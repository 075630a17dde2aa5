//! Webhook events of a cluster (several nodes on one Redis): the member and occupancy events
//! that the presence scripts return (first joins) or put in the delayed set (last leaves)
//! become [`HookEvent`]s for the webhook task, and the due task takes the delayed leaves whose
//! 3 s passed without a rejoin anywhere. The scripts decide cluster-wide and atomically, so each
//! event is made by exactly one bridge. With the Redis queue the scripts queue the events
//! themselves (in the same atomic step) and nothing comes back here.

use std::sync::Arc;
use std::time::Duration;

use crate::redis_connect::{self, RedisClient, RedisConnection};
use bytes::Bytes;
use ringcast_core::app::WebhookEventType;
use ringcast_core::link::{HookEvent, LinkMessage, PresenceChannel};
use ringcast_core::webhook_config::event_body;
use tokio::sync::{mpsc, watch};

use crate::backoff::Backoff;
use crate::envelope::decode_member_event;
use crate::presence_scripts::{webhook_due_key, Hooks, ScriptKeys, Scripts};
use crate::stats::{add, BridgeCounters};
use crate::webhook_task::WebhookInput;

/// How often the delayed leaves are checked.
const DUE_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Most delayed leaves taken by one script run (the task runs again at once when it got that
/// many).
const DUE_BATCH_MAX: usize = 512;
/// Longest wait for Redis.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);

/// The webhook event a script's member-event payload stands for: `member_added` /
/// `member_removed`, or `channel_occupied` / `channel_vacated` for an occupancy base.
pub fn hook_of_payload(payload: &[u8]) -> Option<HookEvent> {
    let message = decode_member_event(Bytes::copy_from_slice(payload)).ok()?;
    let (channel, user_id, joined) = match message {
        LinkMessage::MemberAdded(channel, member) => (channel, member.user_id, true),
        LinkMessage::MemberRemoved(channel, user_id) => (channel, user_id, false),
        _ => return None,
    };
    let PresenceChannel { app_id, channel } = channel;
    let (kind, channel, user_id) = match channel.strip_prefix("#occupancy#") {
        Some(real) if joined => (WebhookEventType::ChannelOccupied, real.to_owned(), None),
        Some(real) => (WebhookEventType::ChannelVacated, real.to_owned(), None),
        None if joined => (WebhookEventType::MemberAdded, channel, Some(user_id)),
        None => (WebhookEventType::MemberRemoved, channel, Some(user_id)),
    };
    let body = event_body(kind, &channel, user_id.as_deref());
    Some(HookEvent {
        app_id,
        channel,
        kind,
        body: body.into(),
    })
}

/// Hands the events of `hooks` to the webhook task without waiting (`due`: delayed leaves whose
/// delay already passed in Redis).
pub fn forward(
    hooks: Hooks,
    due: bool,
    webhooks: &mpsc::Sender<WebhookInput>,
    counters: &BridgeCounters,
) {
    for payload in hooks {
        let Some(event) = hook_of_payload(&payload) else {
            tracing::debug!("ignoring a malformed member event from a script");
            continue;
        };
        let input = if due {
            WebhookInput::Due(event)
        } else {
            WebhookInput::Event(event)
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = webhooks.try_send(input) {
            add(&counters.webhooks.events_dropped_queue_full, 1);
        }
    }
}

/// Runs until the webhook task is gone: takes due leaves from Redis every
/// [`DUE_POLL_INTERVAL`] (every bridge does; the script gives each to one). Starts once the
/// engine's webhook settings are in (`configured`), so that nothing taken is routed without
/// them.
pub async fn run_due(
    client: RedisClient,
    keys: ScriptKeys,
    webhooks: mpsc::Sender<WebhookInput>,
    mut configured: watch::Receiver<bool>,
    counters: Arc<BridgeCounters>,
) {
    if configured.wait_for(|known| *known).await.is_err() {
        return;
    }
    let mut scripts = Scripts::new(&keys);
    let mut connection: Option<RedisConnection> = None;
    let mut backoff = Backoff::for_redis();
    let limit = DUE_BATCH_MAX.to_string();
    let delayed = webhook_due_key(&keys.prefix);
    loop {
        if webhooks.is_closed() {
            return;
        }
        let Some(open) = connection.as_mut() else {
            match redis_connect::open(&client, REDIS_TIMEOUT, REDIS_TIMEOUT).await {
                Ok(opened) => {
                    backoff.reset();
                    connection = Some(opened);
                }
                Err(err) => {
                    tracing::debug!("webhook due task: cannot connect to redis: {err}");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
            continue;
        };
        let taken = tokio::time::timeout(
            REDIS_TIMEOUT,
            scripts
                .take_due
                .run::<(usize, Hooks)>(open, &[&delayed], &[limit.as_bytes()]),
        )
        .await;
        match taken {
            Ok(Ok((taken, hooks))) => {
                // With the Redis queue the script queued them itself (`hooks` is empty).
                let full = taken >= DUE_BATCH_MAX;
                forward(hooks, true, &webhooks, &counters);
                if full {
                    continue; // more are due right now
                }
            }
            Ok(Err(err)) => {
                tracing::debug!("webhook due task: {err}");
                connection = None;
            }
            Err(_) => connection = None,
        }
        tokio::time::sleep(DUE_POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::envelope::encode_member_event;
    use ringcast_core::link::Member;

    fn channel(name: &str) -> PresenceChannel {
        PresenceChannel {
            app_id: "7".into(),
            channel: name.into(),
        }
    }

    fn body(event: &HookEvent) -> serde_json::Value {
        serde_json::from_slice(&event.body).unwrap()
    }

    #[test]
    fn member_and_occupancy_payloads_become_their_webhook_events() {
        let added = LinkMessage::MemberAdded(
            channel("presence-a"),
            Member {
                user_id: "u\"1".into(),
                user_info: Bytes::from_static(b"{}"),
            },
        );
        let event = hook_of_payload(&encode_member_event(&added).unwrap()).unwrap();
        assert_eq!(event.kind, WebhookEventType::MemberAdded);
        assert_eq!(event.app_id, "7");
        assert_eq!(
            body(&event),
            serde_json::json!({"name":"member_added","channel":"presence-a","user_id":"u\"1"})
        );
        let removed = LinkMessage::MemberRemoved(channel("presence-a"), "u2".into());
        let event = hook_of_payload(&encode_member_event(&removed).unwrap()).unwrap();
        assert_eq!(event.kind, WebhookEventType::MemberRemoved);

        let occupied = LinkMessage::MemberAdded(
            channel("#occupancy#news"),
            Member {
                user_id: "node".into(),
                user_info: Bytes::new(),
            },
        );
        let event = hook_of_payload(&encode_member_event(&occupied).unwrap()).unwrap();
        assert_eq!(event.kind, WebhookEventType::ChannelOccupied);
        assert_eq!(event.channel, "news");
        assert_eq!(
            body(&event),
            serde_json::json!({"name":"channel_occupied","channel":"news"})
        );
        let vacated = LinkMessage::MemberRemoved(channel("#occupancy#news"), "node".into());
        let event = hook_of_payload(&encode_member_event(&vacated).unwrap()).unwrap();
        assert_eq!(event.kind, WebhookEventType::ChannelVacated);
        assert!(hook_of_payload(b"garbage").is_none());
    }
}
