//! The node's routing state and its rules, without IO: which link currently speaks for each
//! engine shard, which shards want which channel (a bitmask per channel), and what every event
//! implies — Redis SUBSCRIBE/UNSUBSCRIBE, acknowledgements, deliveries. `hub_task` feeds it and
//! carries out what it returns; keeping it IO-free keeps the rules unit-testable.

use std::collections::HashMap;

use bytes::Bytes;
use ringcast_core::limits::SHARD_COUNT_MAX;
use ringcast_core::link::{ChannelEvent, LinkMessage};

use crate::links::LinkId;
use crate::redis::envelope::{
    decode_envelope, decode_member_event, decode_user_command, is_member_event, EnvelopeError,
    USER_COMMAND_MAGIC,
};
use crate::redis::layout::redis_channel_name;
use crate::redis::subscribe::SubscriberCommand;

/// What a message from Redis means for this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteMessage {
    /// Deliver `event` to the links of the shards in `shard_mask`.
    Deliver {
        /// The event.
        event: ChannelEvent,
        /// Bit `s` set: shard `s` wants it.
        shard_mask: u64,
    },
    /// A presence `MemberAdded` / `MemberRemoved` for the links of the shards in `shard_mask`.
    Member {
        /// The message for the shards.
        message: LinkMessage,
        /// Bit `s` set: shard `s` has interest in the channel.
        shard_mask: u64,
    },
    /// A user command or an associations document from another node, for every linked shard.
    User(LinkMessage),
    /// A channels question or answer between nodes, for the query task.
    Query(Bytes),
    /// Published by this node; its engine already delivered it locally.
    OwnNode,
    /// No shard (any longer) wants the channel: an UNSUBSCRIBE still in flight.
    NoInterest,
    /// Not an envelope of ours.
    Malformed(EnvelopeError),
}

struct AttachedLink<L> {
    id: LinkId,
    handle: L,
}

/// Routing state of the node. `L` is how a link is reached (the writer queue in production).
pub struct Hub<L> {
    node_id: u64,
    redis_prefix: String,
    /// (app id, channel) → bit `s` set when shard `s` has local subscribers. No zero entries.
    interest: HashMap<(String, String), u64, ahash::RandomState>,
    /// Indexed by shard.
    links: Vec<Option<AttachedLink<L>>>,
}

impl<L: Clone> Hub<L> {
    /// An empty hub for node `node_id`, naming Redis channels under `redis_prefix`.
    pub fn new(node_id: u64, redis_prefix: String) -> Self {
        Self {
            node_id,
            redis_prefix,
            interest: HashMap::default(),
            links: (0..SHARD_COUNT_MAX).map(|_| None).collect(),
        }
    }

    /// A link for `shard` said Hello. It replaces the shard's previous link, whose interest is
    /// dropped first (the engine re-announces everything on a new link).
    pub fn attach(&mut self, shard: u16, id: LinkId, handle: L) -> Vec<SubscriberCommand<L>> {
        let Some(slot) = self.links.get_mut(usize::from(shard)) else {
            return Vec::new();
        };
        let replaced = slot.replace(AttachedLink { id, handle }).is_some();
        if replaced {
            self.drop_shard_interest(shard)
        } else {
            Vec::new()
        }
    }

    /// Link `id` of `shard` closed. Its interest goes as if it had unsubscribed from everything;
    /// a link that was already replaced changes nothing.
    pub fn detach(&mut self, shard: u16, id: LinkId) -> Vec<SubscriberCommand<L>> {
        if !self.is_current(shard, id) {
            return Vec::new();
        }
        if let Some(slot) = self.links.get_mut(usize::from(shard)) {
            *slot = None;
        }
        self.drop_shard_interest(shard)
    }

    /// `Subscribe` from link `id` of `shard`: SUBSCRIBE on Redis if the node did not have the
    /// channel yet, then the acknowledgement (queued behind any SUBSCRIBE still in flight).
    pub fn subscribe(
        &mut self,
        shard: u16,
        id: LinkId,
        app_id: String,
        channel: String,
        seq: u32,
    ) -> Vec<SubscriberCommand<L>> {
        let Some(link) = self.current_link(shard, id).cloned() else {
            return Vec::new();
        };
        let mut commands = Vec::with_capacity(2);
        let name = redis_channel_name(&self.redis_prefix, &app_id, &channel);
        let key = (app_id, channel);
        let shard_mask = self.interest.entry(key.clone()).or_insert(0);
        if *shard_mask == 0 {
            commands.push(SubscriberCommand::Subscribe(name));
        }
        *shard_mask |= 1u64 << shard;
        let (app_id, channel) = key;
        commands.push(SubscriberCommand::Ack {
            link,
            message: LinkMessage::Subscribed {
                app_id,
                channel,
                seq,
            },
        });
        commands
    }

    /// `Unsubscribe` from link `id` of `shard`: UNSUBSCRIBE on Redis once no shard wants it.
    pub fn unsubscribe(
        &mut self,
        shard: u16,
        id: LinkId,
        app_id: String,
        channel: String,
    ) -> Vec<SubscriberCommand<L>> {
        if !self.is_current(shard, id) {
            return Vec::new();
        }
        let key = (app_id, channel);
        let Some(shard_mask) = self.interest.get_mut(&key) else {
            return Vec::new();
        };
        *shard_mask &= !(1u64 << shard);
        if *shard_mask != 0 {
            return Vec::new();
        }
        self.interest.remove(&key);
        let (app_id, channel) = key;
        vec![SubscriberCommand::Unsubscribe(redis_channel_name(
            &self.redis_prefix,
            &app_id,
            &channel,
        ))]
    }

    /// What a Redis message payload means: a delivery, or why there is none.
    pub fn route_remote(&self, payload: Bytes) -> RemoteMessage {
        if is_member_event(&payload) {
            return self.route_member_event(payload);
        }
        if payload.starts_with(crate::redis::envelope::QUERY_MAGIC) {
            return RemoteMessage::Query(payload);
        }
        if payload.starts_with(USER_COMMAND_MAGIC) {
            return match decode_user_command(&payload) {
                Some((node_id, _)) if node_id == self.node_id => RemoteMessage::OwnNode,
                Some((_, message)) => RemoteMessage::User(message),
                None => RemoteMessage::Malformed(EnvelopeError::MemberEvent),
            };
        }
        let (node_id, event) = match decode_envelope(payload) {
            Ok(decoded) => decoded,
            Err(err) => return RemoteMessage::Malformed(err),
        };
        if node_id == self.node_id {
            return RemoteMessage::OwnNode;
        }
        // Routing by the envelope's names, not by the Redis channel name, keeps apps apart even
        // when '#' in names makes two Redis channel names collide.
        let key = (event.app_id, event.channel);
        match self.interest.get(&key) {
            Some(&shard_mask) => {
                let (app_id, channel) = key;
                RemoteMessage::Deliver {
                    event: ChannelEvent {
                        app_id,
                        channel,
                        ..event
                    },
                    shard_mask,
                }
            }
            None => RemoteMessage::NoInterest,
        }
    }

    /// A member event goes to every interested shard, this node's included: membership is
    /// decided cluster-wide, so the origin node learns it from Redis like the others.
    fn route_member_event(&self, payload: Bytes) -> RemoteMessage {
        let message = match decode_member_event(payload) {
            Ok(message) => message,
            Err(err) => return RemoteMessage::Malformed(err),
        };
        let channel = match &message {
            LinkMessage::MemberAdded(channel, _) | LinkMessage::MemberRemoved(channel, _) => {
                channel
            }
            _ => return RemoteMessage::Malformed(EnvelopeError::MemberEvent),
        };
        let key = (channel.app_id.clone(), channel.channel.clone());
        match self.interest.get(&key) {
            Some(&shard_mask) => RemoteMessage::Member {
                message,
                shard_mask,
            },
            None => RemoteMessage::NoInterest,
        }
    }

    /// The current links of the shards in `shard_mask`.
    pub fn links_in(&self, shard_mask: u64) -> impl Iterator<Item = &L> + '_ {
        self.links
            .iter()
            .enumerate()
            .filter(move |(shard, _)| shard_mask & (1u64 << shard) != 0)
            .filter_map(|(_, slot)| slot.as_ref().map(|link| &link.handle))
    }

    /// The current link of every shard.
    pub fn all_links(&self) -> impl Iterator<Item = &L> + '_ {
        self.links_in(u64::MAX)
    }

    /// Every Redis channel the node wants.
    #[cfg(test)]
    fn redis_channels(&self) -> impl Iterator<Item = String> + '_ {
        self.interest
            .keys()
            .map(|(app_id, channel)| redis_channel_name(&self.redis_prefix, app_id, channel))
    }

    fn is_current(&self, shard: u16, id: LinkId) -> bool {
        self.current_link(shard, id).is_some()
    }

    fn current_link(&self, shard: u16, id: LinkId) -> Option<&L> {
        match self.links.get(usize::from(shard)) {
            Some(Some(link)) if link.id == id => Some(&link.handle),
            _ => None,
        }
    }

    fn drop_shard_interest(&mut self, shard: u16) -> Vec<SubscriberCommand<L>> {
        let bit = 1u64 << shard;
        let mut commands = Vec::new();
        let redis_prefix = &self.redis_prefix;
        self.interest.retain(|(app_id, channel), shard_mask| {
            if *shard_mask & bit == 0 {
                return true;
            }
            *shard_mask &= !bit;
            if *shard_mask == 0 {
                commands.push(SubscriberCommand::Unsubscribe(redis_channel_name(
                    redis_prefix,
                    app_id,
                    channel,
                )));
                return false;
            }
            true
        });
        commands
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::envelope::encode_envelope;

    const OWN_NODE: u64 = 1;
    const OTHER_NODE: u64 = 2;

    /// Links are named after their shard in tests.
    type Hub = super::Hub<&'static str>;

    fn hub_with_links(links: &[(u16, LinkId, &'static str)]) -> Hub {
        let mut hub = Hub::new(OWN_NODE, "rc".into());
        for &(shard, id, name) in links {
            assert!(hub.attach(shard, id, name).is_empty());
        }
        hub
    }

    fn subscribe(
        hub: &mut Hub,
        shard: u16,
        id: LinkId,
        channel: &str,
        seq: u32,
    ) -> Vec<SubscriberCommand<&'static str>> {
        hub.subscribe(shard, id, "app".into(), channel.into(), seq)
    }

    fn unsubscribe(
        hub: &mut Hub,
        shard: u16,
        id: LinkId,
        channel: &str,
    ) -> Vec<SubscriberCommand<&'static str>> {
        hub.unsubscribe(shard, id, "app".into(), channel.into())
    }

    fn ack(link: &'static str, channel: &str, seq: u32) -> SubscriberCommand<&'static str> {
        SubscriberCommand::Ack {
            link,
            message: LinkMessage::Subscribed {
                app_id: "app".into(),
                channel: channel.into(),
                seq,
            },
        }
    }

    fn remote(node_id: u64, channel: &str) -> Bytes {
        encode_envelope(
            node_id,
            &ChannelEvent {
                app_id: "app".into(),
                channel: channel.into(),
                except_socket_id: String::new(),
                frame: Bytes::from_static(b"\x81\x02hi"),
                part: None,
            },
        )
        .expect("encodes")
    }

    fn delivered_to(hub: &Hub, payload: Bytes) -> Vec<&'static str> {
        match hub.route_remote(payload) {
            RemoteMessage::Deliver { shard_mask, .. } => {
                hub.links_in(shard_mask).copied().collect()
            }
            _ => Vec::new(),
        }
    }

    #[test]
    fn redis_subscribes_on_first_shard_and_unsubscribes_after_last() {
        let mut hub = hub_with_links(&[(0, 10, "s0"), (5, 11, "s5")]);
        assert_eq!(
            subscribe(&mut hub, 0, 10, "ch", 1),
            [
                SubscriberCommand::Subscribe("rc#app#ch".into()),
                ack("s0", "ch", 1)
            ]
        );
        // The second shard only waits behind the first one's SUBSCRIBE.
        assert_eq!(subscribe(&mut hub, 5, 11, "ch", 7), [ack("s5", "ch", 7)]);
        // A repeated announcement is acknowledged again, without a second SUBSCRIBE.
        assert_eq!(subscribe(&mut hub, 5, 11, "ch", 8), [ack("s5", "ch", 8)]);
        assert!(unsubscribe(&mut hub, 0, 10, "ch").is_empty());
        assert!(
            unsubscribe(&mut hub, 0, 10, "ch").is_empty(),
            "already gone"
        );
        assert_eq!(
            unsubscribe(&mut hub, 5, 11, "ch"),
            [SubscriberCommand::Unsubscribe("rc#app#ch".into())]
        );
        assert_eq!(hub.redis_channels().count(), 0);
        assert!(unsubscribe(&mut hub, 5, 11, "never-subscribed").is_empty());
    }

    #[test]
    fn closing_a_link_drops_its_interest() {
        let mut hub = hub_with_links(&[(0, 10, "s0"), (1, 11, "s1")]);
        subscribe(&mut hub, 0, 10, "shared", 1);
        subscribe(&mut hub, 1, 11, "shared", 1);
        subscribe(&mut hub, 0, 10, "only-s0", 2);
        assert_eq!(
            hub.detach(0, 10),
            [SubscriberCommand::Unsubscribe("rc#app#only-s0".into())]
        );
        assert_eq!(hub.redis_channels().collect::<Vec<_>>(), ["rc#app#shared"]);
        assert_eq!(delivered_to(&hub, remote(OTHER_NODE, "shared")), ["s1"]);
        // The closed link's late messages change nothing.
        assert!(subscribe(&mut hub, 0, 10, "late", 3).is_empty());
        assert!(hub.detach(0, 10).is_empty());
    }

    #[test]
    fn a_new_link_for_a_shard_replaces_the_old_one() {
        let mut hub = hub_with_links(&[(3, 10, "old")]);
        subscribe(&mut hub, 3, 10, "ch", 1);
        assert_eq!(
            hub.attach(3, 20, "new"),
            [SubscriberCommand::Unsubscribe("rc#app#ch".into())]
        );
        // Messages still in flight from the old link are ignored, its close too.
        assert!(subscribe(&mut hub, 3, 10, "ch", 2).is_empty());
        assert!(hub.detach(3, 10).is_empty());
        assert_eq!(
            subscribe(&mut hub, 3, 20, "ch", 1),
            [
                SubscriberCommand::Subscribe("rc#app#ch".into()),
                ack("new", "ch", 1)
            ]
        );
        assert_eq!(delivered_to(&hub, remote(OTHER_NODE, "ch")), ["new"]);
    }

    #[test]
    fn remote_events_go_only_to_interested_shards() {
        let mut hub = hub_with_links(&[(0, 10, "s0"), (1, 11, "s1"), (63, 12, "s63")]);
        subscribe(&mut hub, 0, 10, "ch", 1);
        subscribe(&mut hub, 63, 12, "ch", 1);
        subscribe(&mut hub, 1, 11, "other", 1);
        assert_eq!(delivered_to(&hub, remote(OTHER_NODE, "ch")), ["s0", "s63"]);
        assert_eq!(delivered_to(&hub, remote(OTHER_NODE, "other")), ["s1"]);
        assert_eq!(
            hub.route_remote(remote(OTHER_NODE, "nobody")),
            RemoteMessage::NoInterest
        );
        // Same channel name in another app is another channel.
        let other_app = encode_envelope(
            OTHER_NODE,
            &ChannelEvent {
                app_id: "app2".into(),
                channel: "ch".into(),
                except_socket_id: String::new(),
                frame: Bytes::new(),
                part: None,
            },
        )
        .expect("encodes");
        assert_eq!(hub.route_remote(other_app), RemoteMessage::NoInterest);
    }

    #[test]
    fn delivered_events_are_the_published_ones() {
        let mut hub = hub_with_links(&[(0, 10, "s0")]);
        subscribe(&mut hub, 0, 10, "ch", 1);
        let event = ChannelEvent {
            app_id: "app".into(),
            channel: "ch".into(),
            except_socket_id: "9.9".into(),
            frame: Bytes::from_static(b"\x81\x01x"),
            part: None,
        };
        let payload = encode_envelope(OTHER_NODE, &event).expect("encodes");
        assert_eq!(
            hub.route_remote(payload),
            RemoteMessage::Deliver {
                event,
                shard_mask: 1
            }
        );
    }

    #[test]
    fn own_node_messages_are_ignored() {
        let mut hub = hub_with_links(&[(0, 10, "s0")]);
        subscribe(&mut hub, 0, 10, "ch", 1);
        assert_eq!(
            hub.route_remote(remote(OWN_NODE, "ch")),
            RemoteMessage::OwnNode
        );
    }

    #[test]
    fn malformed_remote_messages_are_reported() {
        let hub = hub_with_links(&[(0, 10, "s0")]);
        assert_eq!(
            hub.route_remote(Bytes::from_static(b"short")),
            RemoteMessage::Malformed(EnvelopeError::NoNodeId)
        );
    }

    #[test]
    fn shards_out_of_range_are_refused() {
        let mut hub = Hub::new(OWN_NODE, "rc".into());
        assert!(hub.attach(SHARD_COUNT_MAX, 1, "x").is_empty());
        assert!(subscribe(&mut hub, SHARD_COUNT_MAX, 1, "ch", 1).is_empty());
        assert_eq!(hub.redis_channels().count(), 0);
    }

    #[test]
    fn all_links_are_the_current_ones() {
        let mut hub = hub_with_links(&[(0, 10, "s0"), (7, 11, "s7"), (63, 12, "s63")]);
        assert_eq!(
            hub.all_links().copied().collect::<Vec<_>>(),
            ["s0", "s7", "s63"]
        );
        hub.attach(7, 20, "s7-new");
        hub.detach(0, 10);
        assert_eq!(
            hub.all_links().copied().collect::<Vec<_>>(),
            ["s7-new", "s63"]
        );
    }

    #[test]
    fn associations_of_other_nodes_go_to_every_link_and_own_ones_are_skipped() {
        use crate::redis::envelope::encode_user_command;
        let hub = hub_with_links(&[(0, 10, "s0"), (9, 11, "s9")]);
        let message = LinkMessage::Associations(Bytes::from_static(br#"{"associations":[]}"#));
        let from_other = encode_user_command(OTHER_NODE, &message).expect("encodes");
        // `User` messages go to `all_links` (hub_task), no interest needed.
        assert_eq!(
            hub.route_remote(from_other),
            RemoteMessage::User(message.clone())
        );
        assert_eq!(hub.all_links().copied().collect::<Vec<_>>(), ["s0", "s9"]);
        // This node's engine applied its own document before it was published.
        let from_self = encode_user_command(OWN_NODE, &message).expect("encodes");
        assert_eq!(hub.route_remote(from_self), RemoteMessage::OwnNode);
    }

    #[test]
    fn member_events_reach_interested_shards_of_every_node() {
        use crate::redis::envelope::encode_member_event;
        use ringcast_core::link::PresenceChannel;
        let mut hub = hub_with_links(&[(0, 10, "s0"), (2, 11, "s2")]);
        subscribe(&mut hub, 2, 11, "presence-x", 1);
        let message = LinkMessage::MemberRemoved(
            PresenceChannel {
                app_id: "app".into(),
                channel: "presence-x".into(),
            },
            "u1".into(),
        );
        let payload = Bytes::from(encode_member_event(&message).expect("member event"));
        assert_eq!(
            hub.route_remote(payload),
            RemoteMessage::Member {
                message,
                shard_mask: 1 << 2
            }
        );
    }
}
