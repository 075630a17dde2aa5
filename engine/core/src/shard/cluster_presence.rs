//! Presence across nodes, the shard's side: while linked to the bridge, the owner shard of a
//! presence channel reports the node's first join / last leave of each user to the bridge
//! (which keeps the cluster's members in Redis and publishes `member_added` / `member_removed`
//! once per cluster-wide first join / last leave), asks it for the cluster's member list before
//! answering a join, and re-sends the node's members after every relink. Every shard delivers
//! the cluster's member events to its own subscribers.
//!
//! While the link is down the node is alone: the owner answers joins from its own members and
//! delivers member events itself, as on a single node.

use std::sync::Arc;

use ahash::AHashMap;
use bytes::Bytes;

use super::message::{AppIndex, ConnRef, MemberData, ShardMessage};
use super::session::text_frame;
use super::Shard;
use crate::link::{LinkMessage, Member, PresenceChannel};
use crate::pusher::server_message;

/// Joins waiting for the cluster's member list, per shard; beyond it a join is answered from
/// the node's own members (degraded, never unbounded).
pub const PENDING_JOINS_MAX: usize = 16_384;
/// Longest a join waits for the bridge's member list before it is answered from the node's own.
pub const MEMBERS_QUERY_TIMEOUT_MS: u64 = 2_000;

/// A presence join the owner has accepted, waiting for the cluster's member list.
#[derive(Debug)]
pub struct PendingJoin {
    app: AppIndex,
    channel: Arc<str>,
    conn: ConnRef,
    me: MemberData,
    /// Frames that follow `subscription_succeeded` (a presence-cache channel's last event).
    after: Vec<Bytes>,
    deadline_ms: u64,
}

/// The owner's joins in flight, by query id.
#[derive(Debug, Default)]
pub struct PendingJoins {
    by_query: AHashMap<u32, PendingJoin>,
    next_query: u32,
}

impl Shard {
    fn presence_channel(&self, app: AppIndex, channel: &str) -> PresenceChannel {
        PresenceChannel {
            app_id: self.apps.get(app).id.clone(),
            channel: channel.to_string(),
        }
    }

    /// Owner, node-level first join of a user: true when the bridge takes it (cluster mode);
    /// false when the caller must deliver `member_added` itself.
    pub(super) fn cluster_member_join(
        &mut self,
        app: AppIndex,
        channel: &str,
        member: &MemberData,
    ) -> bool {
        if !self.link.is_up() {
            return false;
        }
        let message = LinkMessage::MemberJoin(
            self.presence_channel(app, channel),
            Member {
                user_id: member.user_id.to_string(),
                user_info: Bytes::copy_from_slice(member.user_info.as_bytes()),
            },
        );
        self.link.push(message);
        true
    }

    /// Owner, node-level last leave: true when the bridge takes it.
    pub(super) fn cluster_member_leave(
        &mut self,
        app: AppIndex,
        channel: &str,
        user_id: &str,
    ) -> bool {
        if !self.link.is_up() {
            return false;
        }
        let message = LinkMessage::MemberLeave(self.presence_channel(app, channel), user_id.into());
        self.link.push(message);
        true
    }

    /// Owner, an accepted presence join: in cluster mode, ask the bridge for the members and
    /// answer later (true); else the caller answers now from the node's members (false).
    pub(super) fn cluster_defer_join(
        &mut self,
        app: AppIndex,
        channel: &Arc<str>,
        conn: ConnRef,
        me: &MemberData,
        after: Vec<Bytes>,
    ) -> Result<(), Vec<Bytes>> {
        if !self.link.is_up() || self.pending_joins.by_query.len() >= PENDING_JOINS_MAX {
            return Err(after);
        }
        let query = self.pending_joins.next_query;
        self.pending_joins.next_query = query.wrapping_add(1);
        self.pending_joins.by_query.insert(
            query,
            PendingJoin {
                app,
                channel: channel.clone(),
                conn,
                me: me.clone(),
                after,
                deadline_ms: self.now_ms + MEMBERS_QUERY_TIMEOUT_MS,
            },
        );
        let message = LinkMessage::MembersQuery(self.presence_channel(app, channel), query);
        self.link.push(message);
        Ok(())
    }

    /// The bridge's answer to a members query.
    pub(super) fn cluster_members_snapshot(&mut self, query: u32, members: Vec<Member>) {
        let Some(pending) = self.pending_joins.by_query.remove(&query) else {
            return; // answered already (timeout or link down)
        };
        let mut list: Vec<(&str, &str)> = members
            .iter()
            .map(|m| {
                let info = std::str::from_utf8(&m.user_info).unwrap_or("null");
                (
                    m.user_id.as_str(),
                    if info.is_empty() { "null" } else { info },
                )
            })
            .collect();
        // The joining user is a member even if the snapshot was read before its join landed.
        if !list.iter().any(|(id, _)| *id == &*pending.me.user_id) {
            list.push((&pending.me.user_id, &pending.me.user_info));
        }
        let json = server_message::presence_subscription_succeeded(
            &pending.channel,
            list.iter().copied(),
            list.len(),
        );
        let mut frames = vec![text_frame(&json)];
        frames.extend(pending.after);
        self.route(
            pending.conn.shard,
            ShardMessage::OwnerJoined {
                channel: pending.channel,
                conn: pending.conn,
                accepted: true,
                frames,
            },
        );
    }

    /// Joins whose answer is overdue (`now_ms` given) or all of them (link down, `None`) are
    /// answered from the node's own members.
    pub(super) fn cluster_expire_joins(&mut self, now_ms: Option<u64>) {
        let due: Vec<u32> = self
            .pending_joins
            .by_query
            .iter()
            .filter(|(_, p)| match now_ms {
                Some(now) => p.deadline_ms <= now,
                None => true,
            })
            .map(|(query, _)| *query)
            .collect();
        for query in due {
            let Some(pending) = self.pending_joins.by_query.remove(&query) else {
                continue;
            };
            let json = match self.owner.members(pending.app, &pending.channel) {
                Some(members) => server_message::presence_subscription_succeeded(
                    &pending.channel,
                    members.iter().map(|(id, m)| (&**id, &*m.user_info)),
                    members.len(),
                ),
                None => server_message::presence_subscription_succeeded(
                    &pending.channel,
                    std::iter::once((&*pending.me.user_id, &*pending.me.user_info)),
                    1,
                ),
            };
            let mut frames = vec![text_frame(&json)];
            frames.extend(pending.after);
            self.route(
                pending.conn.shard,
                ShardMessage::OwnerJoined {
                    channel: pending.channel,
                    conn: pending.conn,
                    accepted: true,
                    frames,
                },
            );
        }
    }

    /// After `Hello`: the node's members of every presence channel this shard owns, then
    /// `ResyncDone` (the bridge drops what this node and shard no longer hold).
    pub(super) fn cluster_resync(&mut self) {
        for app in 0..self.apps.len() as AppIndex {
            let channels: Vec<Arc<str>> = self
                .owner
                .presence_channels(app)
                .map(|(name, _)| name.clone())
                .collect();
            for channel in channels {
                let members: Vec<Member> = self
                    .owner
                    .members(app, &channel)
                    .map(|list| {
                        list.iter()
                            .map(|(id, m)| Member {
                                user_id: id.to_string(),
                                user_info: Bytes::copy_from_slice(m.user_info.as_bytes()),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let message =
                    LinkMessage::MembersResync(self.presence_channel(app, &channel), members);
                self.link.push(message);
            }
        }
        self.link.push(LinkMessage::ResyncDone);
    }

    /// A cluster member event for this shard's subscribers of the channel. `member_added` is
    /// not sent to the joining user's own connections.
    pub(super) fn cluster_member_event(
        &mut self,
        channel: &PresenceChannel,
        added: Option<&Member>,
        removed: Option<&str>,
    ) {
        let Some(app) = self.apps.index_by_id(&channel.app_id) else {
            return;
        };
        let (json, skip_user) = match (added, removed) {
            (Some(member), _) => {
                let info = std::str::from_utf8(&member.user_info).unwrap_or("null");
                let info = if info.is_empty() { "null" } else { info };
                (
                    server_message::member_added(&channel.channel, &member.user_id, info),
                    Some(member.user_id.as_str()),
                )
            }
            (None, Some(user_id)) => (
                server_message::member_removed(&channel.channel, user_id),
                None,
            ),
            (None, None) => return,
        };
        let frame = text_frame(&json);
        let Some(entry) = self.registry.channel(app, &channel.channel) else {
            return;
        };
        let keys: Vec<u32> = entry
            .subscribers
            .iter()
            .copied()
            .filter(|key| {
                let Some(skip) = skip_user else { return true };
                let user = self.conns.get(*key as usize).and_then(|conn| {
                    let index = conn.subscription_index(&channel.channel)?;
                    conn.subscriptions[index].member.as_ref()
                });
                !matches!(user, Some(m) if &*m.user_id == skip)
            })
            .collect();
        self.stats.deliveries += keys.len() as u64;
        for key in keys {
            self.push_data(key, frame.clone());
        }
    }
}
