//! The webhook events the cluster makes, and how they reach the webhook task: the member and
//! occupancy events that the Redis scripts return (first joins) or take from the delayed set
//! (last leaves) become [`HookEvent`]s, as does a channel's cluster-wide subscription count.
//! The scripts decide cluster-wide and atomically, so each event is made by exactly one bridge.

use bytes::Bytes;
use ringcast_core::app::WebhookEventType;
use ringcast_core::link::{HookEvent, LinkMessage, PresenceChannel};
use ringcast_core::webhook_config::{event_body, subscription_count_body};

use crate::counters::{add, BridgeCounters};
use crate::redis::envelope::decode_member_event;
use crate::redis::layout::occupied_channel_of_head;
use crate::redis::scripts::Hooks;
use crate::webhooks::task::{InboxRefused, WebhookInbox, WebhookInput};

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
    let (kind, channel, user_id) = match occupied_channel_of_head(&channel) {
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
pub fn forward(hooks: Hooks, due: bool, webhooks: &WebhookInbox, counters: &BridgeCounters) {
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
        if let Err(InboxRefused::Full) = webhooks.try_send(input) {
            add(&counters.webhooks.events_dropped_queue_full, 1);
        }
    }
}

/// The `subscription_count` webhook event of a channel's count.
pub fn count_event(app_id: String, channel: String, count: u64) -> HookEvent {
    let body = subscription_count_body(&channel, count);
    HookEvent {
        app_id,
        channel,
        kind: WebhookEventType::SubscriptionCount,
        body: body.into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::redis::envelope::encode_member_event;
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
