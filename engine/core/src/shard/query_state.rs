//! The cross-shard questions a shard has in flight ([`PendingQueries`]): what each one is for
//! ([`Purpose`]), the parts received so far, and how the parts add up ([`merge`]).

use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;

use super::message::QueryPart;
use super::pending::Pending;

/// What to do with the merged answer.
#[derive(Debug)]
pub enum Purpose {
    /// `GET /apps/{id}/channels`.
    ChannelList {
        /// Include `user_count`.
        user_count: bool,
    },
    /// `GET /apps/{id}/channels/{name}`.
    ChannelInfo {
        /// Channel name.
        name: Arc<str>,
        /// `info` attributes asked for.
        attributes: Vec<crate::pusher::rest::InfoAttribute>,
    },
    /// `GET /apps/{id}/channels/{name}/users`.
    Users,
    /// `POST /apps/{id}/events` with `info`.
    EventInfo {
        /// `info` attributes asked for.
        attributes: Vec<crate::pusher::rest::InfoAttribute>,
    },
    /// `POST /apps/{id}/batch_events` with `info` on some events: one entry per event.
    BatchInfo {
        /// (channel, attributes) per event, in batch order.
        events: Vec<(Arc<str>, Vec<crate::pusher::rest::InfoAttribute>)>,
    },
    /// `GET /metrics`.
    Metrics,
    /// Another node asked for this node's channel counts (through the bridge).
    NodeChannels {
        /// The bridge's question id.
        query_id: u32,
    },
}

/// A question in flight.
#[derive(Debug)]
pub struct PendingQuery {
    /// The HTTP connection waiting for the answer.
    pub conn_key: u32,
    /// Its serial (the key may be reused if it goes away).
    pub conn_serial: u64,
    /// Parts still missing.
    pub waiting: u16,
    /// Parts received.
    pub parts: Vec<QueryPart>,
    /// What to build.
    pub purpose: Purpose,
    /// Keep the connection after answering.
    pub keep_alive: bool,
    /// Route label for metrics.
    pub route: &'static str,
}

impl PendingQuery {
    /// Adds one part; true when it was the last one missing.
    pub fn add_part(&mut self, part: QueryPart) -> bool {
        self.parts.push(part);
        self.waiting = self.waiting.saturating_sub(1);
        self.waiting == 0
    }
}

/// Merged view of one channel over every shard.
#[derive(Debug, Default, Clone)]
pub struct ChannelTotals {
    /// Subscriptions on every shard.
    pub subscriptions: u64,
    /// Presence users (from the owner).
    pub users: Option<u64>,
    /// Cached event frame and remaining seconds (from the owner).
    pub cache: Option<(Bytes, u64)>,
}

/// The questions a shard has in flight, by id (the answers always come: no deadline).
pub type PendingQueries = Pending<PendingQuery>;

/// Sums the parts per channel: subscriptions add up, users and cache come from the owner —
/// and user counts from the other nodes' part (the cluster's) win over the node's.
pub fn merge(parts: &[QueryPart]) -> AHashMap<Arc<str>, ChannelTotals> {
    let mut totals: AHashMap<Arc<str>, ChannelTotals> = AHashMap::new();
    let node_first = parts
        .iter()
        .filter(|p| !p.cluster)
        .chain(parts.iter().filter(|p| p.cluster));
    for stat in node_first.flat_map(|p| p.channels.iter()) {
        let t = totals.entry(stat.name.clone()).or_default();
        t.subscriptions += stat.subscriptions;
        if stat.users.is_some() {
            t.users = stat.users;
        }
        if stat.cache.is_some() {
            t.cache = stat.cache.clone();
        }
    }
    totals
}
