//! Presence across nodes, the shard's side: while linked to the bridge, the owner shard of a
//! presence channel reports the node's first join / last leave of each user to the bridge
//! (which keeps the cluster's members in Redis and publishes `member_added` / `member_removed`
//! once per cluster-wide first join / last leave), asks it for the cluster's member list before
//! answering a join or `GET …/users`, and re-sends the node's members after every relink. Every shard delivers
//! the cluster's member events to its own subscribers.
//!
//! While the link is down the node is alone: the owner answers joins from its own members and
//! delivers member events itself, as on a single node.

use std::sync::Arc;

use bytes::Bytes;

use super::bridge_waits::{MembersWaiter, PendingMembers};
use super::frames::text_frame;
use super::message::{AppIndex, MemberData, QueryPart, ShardMessage};
use super::Shard;
use crate::app::AppTable;
use crate::dialect::Dialect;
use crate::link::{LinkMessage, Member, PresenceChannel};
use crate::pusher::server_message;

/// The link's name of a presence channel of `app`.
fn presence_channel(apps: &AppTable, app: AppIndex, channel: &str) -> PresenceChannel {
    PresenceChannel {
        app_id: apps.get(app).id.clone(),
        channel: channel.to_string(),
    }
}

impl Shard {
    /// Owner, node-level first join of a user: true when the bridge takes it (cluster mode);
    /// false when the caller must deliver `member_added` itself.
    pub(super) fn report_first_join(
        &mut self,
        app: AppIndex,
        channel: &str,
        member: &MemberData,
    ) -> bool {
        let apps = &self.apps;
        self.link.send_to_cluster(|| {
            LinkMessage::MemberJoin(
                presence_channel(apps, app, channel),
                Member {
                    user_id: member.user_id.to_string(),
                    user_info: Bytes::copy_from_slice(member.user_info.as_bytes()),
                },
            )
        })
    }

    /// Owner, node-level last leave: true when the bridge takes it.
    pub(super) fn report_last_leave(
        &mut self,
        app: AppIndex,
        channel: &str,
        user_id: &str,
    ) -> bool {
        let apps = &self.apps;
        self.link.send_to_cluster(|| {
            LinkMessage::MemberLeave(presence_channel(apps, app, channel), user_id.into())
        })
    }

    /// Owner, a presence join it accepted or `GET …/users`: in cluster mode, asks the bridge
    /// for the cluster's member list and answers `waiting` later (true); false (nothing sent)
    /// when unlinked or too many are in flight: the caller answers now from the node's members.
    pub(super) fn ask_members(
        &mut self,
        app: AppIndex,
        channel: &Arc<str>,
        waiting: MembersWaiter,
    ) -> bool {
        if !self.link.is_cluster_up() {
            return false;
        }
        let pending = PendingMembers {
            app,
            channel: channel.clone(),
            waiting,
        };
        let Ok(query) = self.waits.members.insert(self.now_ms, pending) else {
            return false;
        };
        let apps = &self.apps;
        self.link.send_to_cluster(|| {
            LinkMessage::MembersQuery(presence_channel(apps, app, channel), query)
        })
    }

    /// The bridge's answer to a members query.
    pub(super) fn members_answer(&mut self, query: u32, members: Vec<Member>) {
        let Some(pending) = self.waits.members.take(query) else {
            return; // answered already (timeout or link down)
        };
        let owned: Vec<(String, String)> = members
            .into_iter()
            .map(|m| {
                let info = info_json(&m.user_info).to_owned();
                (m.user_id, info)
            })
            .collect();
        self.answer_members(pending, owned);
    }

    /// A members query the bridge will not answer: answered from the node's own members.
    pub(super) fn answer_members_locally(&mut self, pending: PendingMembers) {
        let node_members: Vec<(String, String)> = self
            .owner
            .members(pending.app, &pending.channel)
            .map(|list| {
                list.iter()
                    .map(|(id, m)| (id.to_string(), m.user_info.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        self.answer_members(pending, node_members);
    }

    /// Answers what waited for a member list.
    fn answer_members(&mut self, pending: PendingMembers, mut members: Vec<(String, String)>) {
        match pending.waiting {
            MembersWaiter::Join { conn, me, after } => {
                // The joining user is a member even if the list was read before its join landed.
                if !members.iter().any(|(id, _)| id.as_str() == &*me.user_id) {
                    members.push((me.user_id.to_string(), me.user_info.to_string()));
                }
                let json = server_message::presence_subscription_succeeded(
                    &pending.channel,
                    members
                        .iter()
                        .map(|(id, info)| (id.as_str(), info.as_str())),
                    members.len(),
                );
                let mut frames = vec![text_frame(&json)];
                frames.extend(after);
                self.route(
                    conn.shard,
                    ShardMessage::OwnerJoined {
                        channel: pending.channel,
                        conn,
                        accepted: true,
                        frames,
                    },
                );
            }
            MembersWaiter::Users { id, from } => {
                let part = QueryPart {
                    users: members
                        .into_iter()
                        .map(|(id, _)| Arc::from(id.as_str()))
                        .collect(),
                    ..QueryPart::default()
                };
                self.route(
                    from,
                    ShardMessage::QueryReply {
                        id,
                        part: Box::new(part),
                    },
                );
            }
        }
    }

    /// After `Hello`: the node's members of every presence channel this shard owns, then
    /// `ResyncDone` (the bridge drops what this node and shard no longer hold).
    pub(super) fn resync_members(&mut self) {
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
                let apps = &self.apps;
                self.link.send_to_cluster(|| {
                    LinkMessage::MembersResync(presence_channel(apps, app, &channel), members)
                });
            }
        }
        // Channel occupancy is kept like members (one pseudo-member per channel and shard).
        self.resync_occupancy();
        self.link.send_to_cluster(|| LinkMessage::ResyncDone);
    }

    /// A cluster member event for this shard's subscribers of the channel. `member_added` is
    /// not sent to the joining user's own connections.
    pub(super) fn deliver_member_event(
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
                let info = info_json(&member.user_info);
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
        // Presence channels are Pusher's: no other dialect subscribes to them.
        let keys: Vec<u32> = entry
            .subscribers
            .of(Dialect::Pusher)
            .into_iter()
            .flatten()
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

/// A member's `user_info` as JSON text: what the client sent, or `null` when it is absent or
/// not UTF-8.
fn info_json(user_info: &[u8]) -> &str {
    match std::str::from_utf8(user_info) {
        Ok("") | Err(_) => "null",
        Ok(info) => info,
    }
}
