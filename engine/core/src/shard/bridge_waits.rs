//! What a shard waits for from the bridge: the entry of each kind of request (offloaded
//! authorizations, members queries, cache queries, channels questions) and each kind's table (a
//! [`Pending`]); their caps and longest waits are in `crate::limits`. What happens on an answer,
//! when a table is full and when a request is overdue is each feature's business
//! (`auth_offload`, `cluster_presence`, `cluster_state`, `cluster_channels`).

use std::sync::Arc;

use bytes::Bytes;

use super::message::{AppIndex, ConnRef, MemberData};
use super::pending::Pending;

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
