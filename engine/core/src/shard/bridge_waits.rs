//! [`BridgeWaits`]: what a shard waits for from the bridge: the entry of each kind of request
//! (offloaded authorizations, members queries, cache queries, channels questions,
//! channel-function pipelines, WebSocket-over-HTTP calls), each kind's
//! table (a [`Pending`], its cap and longest wait from `crate::limits`), and [`Stranded`], the
//! requests nobody will answer (overdue, or the link went down), handed back in one piece so the
//! shard lets every one of them go on. What an answer does is each feature's business
//! (`auth_offload`, `cluster_presence`, `cluster_state`, `cluster_channels`,
//! `channel_functions`, `slip`).

use std::sync::Arc;

use bytes::Bytes;

use super::message::{AppIndex, ConnRef, MemberData};
use super::pending::Pending;
use crate::functions::Publication;
use crate::limits::{
    AUTH_WAIT_MS_MAX, CACHE_WAIT_MS_MAX, CHANNELS_WAIT_MS_MAX, MEMBERS_WAIT_MS_MAX,
    PENDING_AUTHS_MAX, PENDING_CACHE_MAX, PENDING_CHANNELS_MAX, PENDING_MEMBERS_MAX,
    PENDING_PIPELINES_MAX, PENDING_SLIP_CALLS_MAX, PIPELINE_WAIT_MS_MAX, SLIP_CALL_WAIT_MS_MAX,
};

/// One authorization in flight: the subscription waiting for it.
#[derive(Debug)]
pub struct PendingAuth {
    /// The connection's slab key.
    pub key: u32,
    /// Its serial (the key may be reused if it goes away).
    pub serial: u64,
    /// Its app.
    pub app: AppIndex,
    /// The channel it subscribes to.
    pub channel: Arc<str>,
}

/// The shard's authorizations in flight, by request id.
pub type PendingAuths = Pending<PendingAuth>;

/// What waits for the cluster's member list of a channel.
#[derive(Debug)]
pub enum MembersWaiter {
    /// A presence join the owner has accepted.
    Join {
        /// The joining connection.
        conn: ConnRef,
        /// Its member.
        me: MemberData,
        /// Frames that follow `subscription_succeeded` (a presence-cache channel's last event).
        after: Vec<Bytes>,
    },
    /// `GET …/users`: the question `id` of shard `from`.
    Users {
        /// The question's id at the asking shard.
        id: u64,
        /// The asking shard.
        from: u16,
    },
}

/// One members query in flight.
#[derive(Debug)]
pub struct PendingMembers {
    /// The channel's app.
    pub app: AppIndex,
    /// The presence channel.
    pub channel: Arc<str>,
    /// What the member list is for.
    pub waiting: MembersWaiter,
}

/// The owner's members queries in flight, by query id.
pub type PendingJoins = Pending<PendingMembers>;

/// A cache subscription waiting for the cluster's last event.
#[derive(Debug)]
pub struct PendingCacheJoin {
    /// The channel's app.
    pub app: AppIndex,
    /// The cache channel.
    pub channel: Arc<str>,
    /// The subscribing connection.
    pub conn: ConnRef,
    /// What goes before the last event (`subscription_succeeded`).
    pub frames: Vec<Bytes>,
}

/// The owner's cache queries in flight, by query id.
pub type PendingCache = Pending<PendingCacheJoin>;

/// Channels questions waiting for the other nodes, by query id: the id of the shard's own
/// question ([`super::query_state::PendingQueries`]) the answer is a part of.
pub type ClusterQueries = Pending<u64>;

/// A message held by its channel's owner while its functions run.
#[derive(Debug)]
pub struct PendingPipeline {
    /// The channel's app.
    pub app: AppIndex,
    /// The channel.
    pub channel: Arc<str>,
    /// What was published (delivered unchanged if the pipeline fails).
    pub publication: Publication,
}

/// The owner's pipelines in flight, by request id.
pub type PendingPipelines = Pending<PendingPipeline>;

/// What a WebSocket-over-HTTP call is for.
#[derive(Debug)]
pub enum SlipCallKind {
    /// The connection's open event: its upgrade waits, with this `Sec-WebSocket-Accept`.
    Open {
        /// The handshake's accept value, for the 101 if the backend accepts.
        accept: Box<str>,
    },
    /// A text message of the connection.
    Text,
    /// The connection is gone; the answer's commands still run.
    Close,
}

/// One WebSocket-over-HTTP call in flight.
#[derive(Debug)]
pub struct PendingSlipCall {
    /// The connection's app.
    pub app: AppIndex,
    /// The connection (on this shard).
    pub conn: ConnRef,
    /// What the call is for.
    pub kind: SlipCallKind,
    /// Bytes of its request body (bounded in all by `PENDING_SLIP_CALL_BYTES_MAX`).
    pub bytes: usize,
}

/// The shard's WebSocket-over-HTTP calls in flight, by call id.
pub type PendingSlipCalls = Pending<PendingSlipCall>;

/// How many requests of one kind each app has in flight; an app leaves the map with its last
/// one, so it never holds more entries than requests.
#[derive(Debug, Default)]
pub struct AppCounts(ahash::AHashMap<AppIndex, usize>);

impl AppCounts {
    /// The app's count.
    pub fn get(&self, app: AppIndex) -> usize {
        self.0.get(&app).copied().unwrap_or(0)
    }

    /// One more for the app.
    pub fn add(&mut self, app: AppIndex) {
        *self.0.entry(app).or_insert(0) += 1;
    }

    /// One fewer for the app.
    pub fn remove(&mut self, app: AppIndex) {
        if let Some(count) = self.0.get_mut(&app) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.0.remove(&app);
            }
        }
    }
}

/// Every request of a shard waiting for the bridge, one table per kind.
#[derive(Debug)]
pub struct BridgeWaits {
    /// Offloaded authorizations, by request id.
    pub auths: PendingAuths,
    /// Members queries, by query id.
    pub members: PendingJoins,
    /// Cache queries, by query id.
    pub cache: PendingCache,
    /// Channels questions to the other nodes, by query id.
    pub channels: ClusterQueries,
    /// Channel-function pipelines, by request id.
    pub pipelines: PendingPipelines,
    /// Bytes the pipelines' messages hold (bounded by `PENDING_PIPELINE_BYTES_MAX`).
    pub pipeline_bytes: usize,
    /// Pipelines per app (bounded by `PENDING_PIPELINES_PER_APP_MAX`).
    pub pipelines_by_app: AppCounts,
    /// WebSocket-over-HTTP calls, by call id.
    pub slip_calls: PendingSlipCalls,
    /// Calls per app (bounded by `PENDING_SLIP_CALLS_PER_APP_MAX`).
    pub slip_calls_by_app: AppCounts,
    /// Bytes of the calls' request bodies (bounded by `PENDING_SLIP_CALL_BYTES_MAX`).
    pub slip_call_bytes: usize,
}

/// Why requests were taken out unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrandedBy {
    /// Their longest wait passed.
    Timeout,
    /// The link went down: nobody will answer any of them.
    LinkDown,
}

/// Requests taken out unanswered, each kind oldest first, for the shard to let go on.
#[derive(Debug)]
pub struct Stranded {
    /// Why.
    pub by: StrandedBy,
    /// Authorizations (they fail).
    pub auths: Vec<(u32, PendingAuth)>,
    /// Members queries (answered from the node's own members).
    pub members: Vec<(u32, PendingMembers)>,
    /// Cache queries (answered from the node's own cache).
    pub cache: Vec<(u32, PendingCacheJoin)>,
    /// Channels questions (they go on with the node's own counts).
    pub channels: Vec<(u32, u64)>,
    /// Pipelines (their messages go out unchanged).
    pub pipelines: Vec<(u32, PendingPipeline)>,
    /// WebSocket-over-HTTP calls (they fail).
    pub slip_calls: Vec<(u32, PendingSlipCall)>,
}

impl BridgeWaits {
    /// Empty tables with the caps and longest waits of `crate::limits`.
    pub fn new() -> Self {
        BridgeWaits {
            auths: Pending::new(PENDING_AUTHS_MAX, AUTH_WAIT_MS_MAX),
            members: Pending::new(PENDING_MEMBERS_MAX, MEMBERS_WAIT_MS_MAX),
            cache: Pending::new(PENDING_CACHE_MAX, CACHE_WAIT_MS_MAX),
            channels: Pending::new(PENDING_CHANNELS_MAX, CHANNELS_WAIT_MS_MAX),
            pipelines: Pending::new(PENDING_PIPELINES_MAX, PIPELINE_WAIT_MS_MAX),
            pipeline_bytes: 0,
            pipelines_by_app: AppCounts::default(),
            slip_calls: Pending::new(PENDING_SLIP_CALLS_MAX, SLIP_CALL_WAIT_MS_MAX),
            slip_calls_by_app: AppCounts::default(),
            slip_call_bytes: 0,
        }
    }

    /// Takes out every request overdue at `now_ms`.
    pub fn take_overdue(&mut self, now_ms: u64) -> Stranded {
        Stranded {
            by: StrandedBy::Timeout,
            auths: self.auths.drain_overdue(now_ms),
            members: self.members.drain_overdue(now_ms),
            cache: self.cache.drain_overdue(now_ms),
            channels: self.channels.drain_overdue(now_ms),
            pipelines: self.pipelines.drain_overdue(now_ms),
            slip_calls: self.slip_calls.drain_overdue(now_ms),
        }
    }

    /// The link went down: takes out every request.
    pub fn take_all(&mut self) -> Stranded {
        Stranded {
            by: StrandedBy::LinkDown,
            auths: self.auths.drain_all(),
            members: self.members.drain_all(),
            cache: self.cache.drain_all(),
            channels: self.channels.drain_all(),
            pipelines: self.pipelines.drain_all(),
            slip_calls: self.slip_calls.drain_all(),
        }
    }
}

impl Default for BridgeWaits {
    fn default() -> Self {
        Self::new()
    }
}
