//! The presence task: carries out the engine shards' presence messages against Redis, one at a
//! time and in arrival order (a join and the leave after it must reach Redis in that order):
//! joins, leaves and resyncs run the `redis::scripts`, queries are answered from
//! `P#members`. Channel occupancy (for webhooks) is kept the same way, with one pseudo-member
//! per (node, shard) holding the channel. Member events come back through the channels'
//! pub/sub subscriptions (the hub), not from here; the webhook events the scripts return go to
//! the webhook task. A Redis failure never blocks a query (it is answered empty, so the engine
//! never waits forever), and a change that fails is not lost: its shard is marked in the
//! [`PresenceRepair`], and once Redis answers again (the next change, or a probe each second)
//! that shard's link ends so that its engine restates everything it holds.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ringcast_core::limits::SHARD_COUNT_MAX;
use ringcast_core::link::{self, LinkMessage, Member, PresenceChannel};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

use crate::cluster::counts::NodeCount;
use crate::cluster::repair::PresenceRepair;
use crate::counters::{add, BridgeCounters};
use crate::limits::{
    PRESENCE_REPAIR_PROBE_INTERVAL_MS, PRESENCE_SNAPSHOT_FRAME_MARGIN_BYTES,
    REDIS_COMMAND_TIMEOUT_MS, WEBHOOK_APPS_FIRST_LISTING_WAIT_MS,
};
use crate::links::LinkWriter;
use crate::redis::connect::{RedisClient, RedisConnection};
use crate::redis::envelope::member_event_head;
use crate::redis::layout::{
    cache_key, channel_base_of_meta, held_suffix, members_key, occupancy_base,
    occupancy_head_channel, redis_channel_name, subscriptions_key, NodeKeys, OCCUPANCY_MEMBER,
};
use crate::redis::scripts::{Hooks, Scripts};
use crate::redis::session::RedisSession;
use crate::webhooks::events::{count_event, forward};
use crate::webhooks::task::{InboxRefused, WebhookInbox, WebhookInput};

/// A hash as HGETALL returns it.
type HashPairs = Vec<(String, Vec<u8>)>;

/// What a join or leave is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// A user of a presence channel.
    Member,
    /// The channel's occupancy by this (node, shard) (the member is [`occupancy_member`]).
    Occupancy,
}

/// The pseudo-member standing for a (node, shard) that holds a channel.
pub fn occupancy_member() -> Member {
    Member {
        user_id: OCCUPANCY_MEMBER.to_owned(),
        user_info: bytes::Bytes::new(),
    }
}

/// What a link hands to the presence task.
#[derive(Debug)]
pub enum PresenceInput {
    /// A shard said Hello: what it mentions from now on is what it holds.
    Hello {
        /// Shard index.
        shard: u16,
    },
    /// `MemberJoin`, or a channel the node now holds.
    Join {
        /// Shard index.
        shard: u16,
        /// Member or occupancy.
        tracked: Tracked,
        /// The channel.
        channel: PresenceChannel,
        /// The member.
        member: Member,
    },
    /// `MemberLeave`, or a channel the node no longer holds.
    Leave {
        /// Shard index.
        shard: u16,
        /// Member or occupancy.
        tracked: Tracked,
        /// The channel.
        channel: PresenceChannel,
        /// The user id.
        user_id: String,
    },
    /// `MembersQuery`, answered on `reply`.
    Query {
        /// The channel.
        channel: PresenceChannel,
        /// Echoed in the answer.
        query_id: u32,
        /// The asking link's writer queue.
        reply: LinkWriter,
    },
    /// `MembersResync`.
    Resync {
        /// Shard index.
        shard: u16,
        /// The channel.
        channel: PresenceChannel,
        /// Everything the shard holds for the channel.
        members: Vec<Member>,
    },
    /// `ResyncDone`.
    ResyncDone {
        /// Shard index.
        shard: u16,
    },
    /// The node's subscription count of a channel changed (`subscription_count` webhooks): it
    /// is stored and summed with the other nodes' in Redis, and the cluster's count goes out.
    SubscriptionCount(NodeCount),
    /// `CacheQuery`, answered on `reply` with `CacheAnswer`.
    CacheQuery {
        /// App id.
        app_id: String,
        /// Channel name.
        channel: String,
        /// Echoed in the answer.
        query_id: u32,
        /// The asking link's writer queue.
        reply: LinkWriter,
    },
}

/// State of the presence task.
struct Presence {
    keys: NodeKeys,
    /// The heartbeat TTL in ms, as text for the scripts.
    ttl_ms: String,
    scripts: Scripts,
    /// Never waited for: while Redis is away the engine's questions are answered at once.
    redis: RedisSession,
    /// Per shard: the channel bases (`P`) it mentioned since its Hello.
    mentioned: Vec<HashSet<String, ahash::RandomState>>,
    webhooks: WebhookInbox,
    counters: Arc<BridgeCounters>,
    /// Shards whose changes did not reach Redis, to be restated.
    repair: Arc<PresenceRepair>,
    /// The shard whose change is being carried out (`None`: a question).
    current_shard: Option<u16>,
}

/// What the presence task works with besides its inbox.
pub struct PresenceSetup {
    /// The Redis client.
    pub client: RedisClient,
    /// The node's key names.
    pub keys: NodeKeys,
    /// The node's heartbeat TTL.
    pub ttl: Duration,
    /// The webhook task's inbox.
    pub webhooks: WebhookInbox,
    /// The bridge's counters.
    pub counters: Arc<BridgeCounters>,
    /// Shards to restate, shared with the link readers.
    pub repair: Arc<PresenceRepair>,
    /// True once the due task listed the node's webhook apps in Redis (see `webhooks::due`).
    pub listed: watch::Receiver<bool>,
}

/// Runs until every sender of `inputs` is gone. While a change is lost, Redis is probed every
/// [`PRESENCE_REPAIR_PROBE_INTERVAL_MS`], so the repair does not wait for the next change.
pub async fn run_presence(setup: PresenceSetup, mut inputs: mpsc::Receiver<PresenceInput>) {
    let PresenceSetup {
        client,
        keys,
        ttl,
        webhooks,
        counters,
        repair,
        mut listed,
    } = setup;
    // The scripts keep webhook state only for listed apps: on a cold start of the cluster
    // nobody has listed them yet, and the first joins would make no webhooks. The wait is
    // bounded, since this task is never to wait on Redis for long.
    let _ = timeout(
        Duration::from_millis(WEBHOOK_APPS_FIRST_LISTING_WAIT_MS),
        listed.wait_for(|done| *done),
    )
    .await;
    let mut presence = Presence {
        scripts: Scripts::new(&keys.script_keys()),
        redis: RedisSession::for_state(client, "presence"),
        keys,
        ttl_ms: ttl.as_millis().to_string(),
        mentioned: (0..SHARD_COUNT_MAX).map(|_| HashSet::default()).collect(),
        webhooks,
        counters,
        repair,
        current_shard: None,
    };
    let mut probe = tokio::time::interval(Duration::from_millis(PRESENCE_REPAIR_PROBE_INTERVAL_MS));
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            input = inputs.recv() => match input {
                Some(input) => presence.handle(input).await,
                None => return,
            },
            // Ticks always: a condition on this branch would be read only when the loop comes
            // round, and another task (liveness) may mark the loss while this one waits.
            _ = probe.tick() => {
                if presence.repair.has_lost() {
                    presence.probe().await;
                    presence.repair.promote();
                }
            }
        }
    }
}

impl Presence {
    /// While changes are lost: is Redis back?
    async fn probe(&mut self) {
        let Some(mut connection) = self.connect().await else {
            return;
        };
        let pong: Result<redis::RedisResult<String>, _> = timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            redis::cmd("PING").query_async(&mut connection),
        )
        .await;
        match pong {
            Ok(Ok(_)) => self.repair.redis_answered(),
            _ => self.redis.reconnect_at_next_use(),
        }
    }

    async fn handle(&mut self, input: PresenceInput) {
        self.current_shard = match &input {
            PresenceInput::Join { shard, .. }
            | PresenceInput::Leave { shard, .. }
            | PresenceInput::Resync { shard, .. }
            | PresenceInput::ResyncDone { shard } => Some(*shard),
            _ => None,
        };
        match input {
            PresenceInput::Hello { shard } => {
                if let Some(mentioned) = self.mentioned.get_mut(usize::from(shard)) {
                    mentioned.clear();
                }
            }
            PresenceInput::Join {
                shard,
                tracked,
                channel,
                member,
            } => self.join(shard, tracked, &channel, &member).await,
            PresenceInput::Leave {
                shard,
                tracked,
                channel,
                user_id,
            } => self.leave(shard, tracked, &channel, &user_id).await,
            PresenceInput::Query {
                channel,
                query_id,
                reply,
            } => {
                let members = self.query(&channel).await;
                let answer = LinkMessage::MembersSnapshot(channel, query_id, members);
                if reply.try_send(answer).is_err() {
                    tracing::warn!(
                        query_id,
                        "members snapshot dropped: link queue full or gone"
                    );
                }
            }
            PresenceInput::Resync {
                shard,
                channel,
                members,
            } => self.resync(shard, &channel, &members).await,
            PresenceInput::ResyncDone { shard } => self.resync_done(shard).await,
            PresenceInput::SubscriptionCount(count) => self.subscription_count(count).await,
            PresenceInput::CacheQuery {
                app_id,
                channel,
                query_id,
                reply,
            } => {
                let frame = self.last_cached(&app_id, &channel).await;
                let answer = LinkMessage::CacheAnswer { query_id, frame };
                if reply.try_send(answer).is_err() {
                    tracing::warn!(query_id, "cache answer dropped: link queue full or gone");
                }
            }
        }
    }

    /// A user's first connection on (node, `shard`) joined `channel`.
    async fn join(
        &mut self,
        shard: u16,
        tracked: Tracked,
        channel: &PresenceChannel,
        member: &Member,
    ) {
        let (base, head) = self.names(tracked, channel);
        self.mention(shard, &base);
        let held = self.keys.held(&base, shard);
        let (keys_hash, nodes, node, heartbeat) = self.node_names();
        let Some(mut connection) = self.connect().await else {
            return self.failed("join", "redis unavailable");
        };
        let result = timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            self.scripts.join.run::<Hooks>(
                &mut connection,
                &[&held, &keys_hash, &nodes, &heartbeat],
                &[
                    base.as_bytes(),
                    &head,
                    node.as_bytes(),
                    self.ttl_ms.as_bytes(),
                    member.user_id.as_bytes(),
                    &member.user_info,
                ],
            ),
        )
        .await;
        self.settle("join", result);
    }

    /// A user's last connection on (node, `shard`) left `channel`.
    async fn leave(
        &mut self,
        shard: u16,
        tracked: Tracked,
        channel: &PresenceChannel,
        user_id: &str,
    ) {
        let (base, head) = self.names(tracked, channel);
        let held = self.keys.held(&base, shard);
        let Some(mut connection) = self.connect().await else {
            return self.failed("leave", "redis unavailable");
        };
        let result = timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            self.scripts.leave.run::<Hooks>(
                &mut connection,
                &[&held],
                &[base.as_bytes(), &head, user_id.as_bytes()],
            ),
        )
        .await;
        self.settle("leave", result);
    }

    /// `shard`'s engine lists all its members of `channel` (after a new link).
    async fn resync(&mut self, shard: u16, channel: &PresenceChannel, members: &[Member]) {
        let (base, head) = self.names(Tracked::Member, channel);
        self.mention(shard, &base);
        let held = self.keys.held(&base, shard);
        let (keys_hash, nodes, node, heartbeat) = self.node_names();
        let ttl_ms = self.ttl_ms.clone();
        let mut args: Vec<&[u8]> = Vec::with_capacity(4 + members.len() * 2);
        args.extend([
            base.as_bytes(),
            &head[..],
            node.as_bytes(),
            ttl_ms.as_bytes(),
        ]);
        for member in members {
            args.push(member.user_id.as_bytes());
            args.push(&member.user_info);
        }
        let Some(mut connection) = self.connect().await else {
            return self.failed("resync", "redis unavailable");
        };
        let result = timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            self.scripts.resync.run::<Hooks>(
                &mut connection,
                &[&held, &keys_hash, &nodes, &heartbeat],
                &args,
            ),
        )
        .await;
        self.settle("resync", result);
    }

    /// Channels of `shard` not mentioned since its Hello have no members there any more.
    async fn resync_done(&mut self, shard: u16) {
        let Some(mut connection) = self.connect().await else {
            return self.failed("resync done", "redis unavailable");
        };
        let keys_hash = self.keys.keys_hash();
        let listed: Result<redis::RedisResult<HashPairs>, _> = timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            redis::cmd("HGETALL")
                .arg(&keys_hash)
                .query_async(&mut connection),
        )
        .await;
        let held_keys = match listed {
            Ok(Ok(held_keys)) => held_keys,
            Ok(Err(err)) => return self.failed("resync done", &err.to_string()),
            Err(_) => return self.failed("resync done", "timed out"),
        };
        let suffix = held_suffix(self.keys.node_id, shard);
        let empty = HashSet::default();
        let mentioned = self.mentioned.get(usize::from(shard)).unwrap_or(&empty);
        let stale: Vec<String> = held_keys
            .into_iter()
            .filter(|(held, _)| held.ends_with(&suffix))
            .filter(|(_, meta)| {
                channel_base_of_meta(meta)
                    .and_then(|base| std::str::from_utf8(base).ok())
                    .is_none_or(|base| !mentioned.contains(base))
            })
            .map(|(held, _)| held)
            .collect();
        tracing::info!(shard, stale = stale.len(), "presence resync done");
        for held in stale {
            let result = timeout(
                Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
                self.scripts.drop_held.run::<Hooks>(
                    &mut connection,
                    &[&keys_hash],
                    &[held.as_bytes()],
                ),
            )
            .await;
            self.settle("resync done", result);
        }
    }

    /// Stores the node's count of a channel and sends the cluster's (the script sums the live
    /// nodes' counts atomically). A count Redis does not take is dropped: the channel's next
    /// change corrects it.
    async fn subscription_count(&mut self, count: NodeCount) {
        let counts_key = subscriptions_key(&self.keys.channel_base(&count.app_id, &count.channel));
        let (_, nodes, node, heartbeat) = self.node_names();
        let node_count = count.total.to_string();
        let Some(mut connection) = self.connect().await else {
            return self.failed("subscription count", "redis unavailable");
        };
        let summed = timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            self.scripts.subscription_count.run::<u64>(
                &mut connection,
                &[&counts_key, &nodes, &heartbeat],
                &[
                    node.as_bytes(),
                    node_count.as_bytes(),
                    self.ttl_ms.as_bytes(),
                ],
            ),
        )
        .await;
        let total = match summed {
            Ok(Ok(total)) => total,
            Ok(Err(err)) => {
                self.redis.reconnect_at_next_use();
                return self.failed("subscription count", &err.to_string());
            }
            Err(_) => {
                self.redis.reconnect_at_next_use();
                return self.failed("subscription count", "timed out");
            }
        };
        let event = count_event(count.app_id, count.channel, total);
        if let Err(InboxRefused::Full) = self.webhooks.try_send(WebhookInput::Event(event)) {
            add(&self.counters.webhooks.events_dropped_queue_full, 1);
        }
    }

    /// The cluster's last event of a cache channel; empty when there is none (or Redis does not
    /// answer: the subscriber gets a cache miss rather than a wait).
    async fn last_cached(&mut self, app_id: &str, channel: &str) -> bytes::Bytes {
        let key = cache_key(&redis_channel_name(
            &self.keys.channel_prefix,
            app_id,
            channel,
        ));
        let Some(mut connection) = self.connect().await else {
            self.failed("cache query", "redis unavailable; answering a miss");
            return bytes::Bytes::new();
        };
        let result: Result<redis::RedisResult<Option<Vec<u8>>>, _> = timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            redis::cmd("GET").arg(&key).query_async(&mut connection),
        )
        .await;
        match result {
            Ok(Ok(frame)) => frame
                .filter(|frame| frame.len() <= link::FRAME_BYTES_MAX)
                .map(bytes::Bytes::from)
                .unwrap_or_default(),
            Ok(Err(err)) => {
                self.redis.reconnect_at_next_use();
                self.failed("cache query", &err.to_string());
                bytes::Bytes::new()
            }
            Err(_) => {
                self.redis.reconnect_at_next_use();
                self.failed("cache query", "timed out; answering a miss");
                bytes::Bytes::new()
            }
        }
    }

    /// The cluster's members of a channel, bounded to what one link frame carries; empty (and
    /// logged) when Redis does not answer.
    async fn query(&mut self, channel: &PresenceChannel) -> Vec<Member> {
        let base = self.keys.channel_base(&channel.app_id, &channel.channel);
        let Some(mut connection) = self.connect().await else {
            self.failed("members query", "redis unavailable; answering empty");
            return Vec::new();
        };
        let result: Result<redis::RedisResult<HashPairs>, _> = timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            redis::cmd("HGETALL")
                .arg(members_key(&base))
                .query_async(&mut connection),
        )
        .await;
        let all = match result {
            Ok(Ok(all)) => all,
            Ok(Err(err)) => {
                self.redis.reconnect_at_next_use();
                self.failed("members query", &err.to_string());
                return Vec::new();
            }
            Err(_) => {
                self.redis.reconnect_at_next_use();
                self.failed("members query", "timed out; answering empty");
                return Vec::new();
            }
        };
        let total = all.len();
        let mut bytes = 0usize;
        let mut members = Vec::with_capacity(total.min(link::MEMBERS_MAX));
        for (user_id, user_info) in all {
            if user_id.len() > link::NAME_BYTES_MAX {
                continue;
            }
            bytes += user_id.len() + user_info.len() + 6;
            if members.len() >= link::MEMBERS_MAX
                || bytes > link::FRAME_BYTES_MAX - PRESENCE_SNAPSHOT_FRAME_MARGIN_BYTES
            {
                tracing::warn!(total, sent = members.len(), "members snapshot truncated");
                break;
            }
            members.push(Member {
                user_id,
                user_info: user_info.into(),
            });
        }
        members
    }

    /// The base `P` and the event head of what a join or leave is about.
    fn names(&self, tracked: Tracked, channel: &PresenceChannel) -> (String, Vec<u8>) {
        match tracked {
            Tracked::Member => (
                self.keys.channel_base(&channel.app_id, &channel.channel),
                member_event_head(&channel.app_id, &channel.channel),
            ),
            Tracked::Occupancy => (
                occupancy_base(&self.keys.prefix, &channel.app_id, &channel.channel),
                member_event_head(&channel.app_id, &occupancy_head_channel(&channel.channel)),
            ),
        }
    }

    /// Records that `shard` mentioned the base `base` since its Hello.
    fn mention(&mut self, shard: u16, base: &str) {
        if let Some(mentioned) = self.mentioned.get_mut(usize::from(shard)) {
            mentioned.insert(base.to_owned());
        }
    }

    /// Keys hash, node set, node id and heartbeat key: what registering the node needs.
    fn node_names(&self) -> (String, String, String, String) {
        (
            self.keys.keys_hash(),
            self.keys.nodes(),
            self.keys.node_id.to_string(),
            self.keys.heartbeat(),
        )
    }

    /// The connection, opening one unless a recent attempt failed.
    async fn connect(&mut self) -> Option<RedisConnection> {
        let connection = self.redis.connection().await?.clone();
        self.redis.succeeded();
        Some(connection)
    }

    /// Hands the webhook events of a script's answer on, or records its failure.
    fn settle(
        &mut self,
        what: &str,
        result: Result<redis::RedisResult<Hooks>, tokio::time::error::Elapsed>,
    ) {
        match result {
            Ok(Ok(hooks)) => {
                self.repair.redis_answered();
                forward(hooks, false, &self.webhooks, &self.counters);
            }
            Ok(Err(err)) => {
                self.redis.reconnect_at_next_use();
                self.failed(what, &err.to_string());
            }
            Err(_) => {
                self.redis.reconnect_at_next_use();
                self.failed(what, "timed out");
            }
        }
    }

    /// What did not reach Redis. A change marks its shard for a resync (see
    /// [`PresenceRepair`]); a question was answered empty. The counter warns (rate-limited);
    /// the reason of each failure is only worth a debug line.
    fn failed(&mut self, what: &str, reason: &str) {
        if let Some(shard) = self.current_shard {
            self.repair.mark_lost(shard);
        }
        self.counters.drops.presence_failed.add(1);
        tracing::debug!("presence {what} failed: {reason}");
    }
}
