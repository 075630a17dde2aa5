//! The owner's side of a presence or cache join (`OwnerJoin` from the subscriber's shard): the
//! member list and its limit, the first join's `member_added`, the `subscription_succeeded`
//! with the members, and a cache channel's last event (with several nodes, the cluster's, which
//! the bridge is asked for first). The subscriber's side of the answer is in `subscribe`.

use std::sync::Arc;

use bytes::Bytes;

use super::bridge_waits::MembersWaiter;
use super::frames::text_frame;
use super::message::{AppIndex, MemberData, OwnerJoin, ShardMessage};
use super::owner::JoinOutcome;
use super::Shard;
use crate::dialect::Published;
use crate::pusher::{close, server_message};

/// The owner's answer to a join: accepted or not, and the frames for the subscriber. `None`:
/// the bridge was asked first, and the answer goes out once it replies.
type JoinAnswer = Option<(bool, Vec<Bytes>)>;

impl Shard {
    /// Owner side of a presence / cache join.
    pub(super) fn owner_join(&mut self, join: OwnerJoin) {
        if join.app as usize >= self.apps.len() {
            return;
        }
        let answer = match &join.member {
            Some(member) => self.owner_presence_join(&join, member),
            None => self.owner_cache_join(&join),
        };
        let Some((accepted, mut frames)) = answer else {
            return;
        };
        if accepted && join.want_cache {
            frames.push(self.cache_frame(join.app, &join.channel));
        }
        self.route(
            join.conn.shard,
            ShardMessage::OwnerJoined {
                channel: join.channel,
                conn: join.conn,
                accepted,
                frames,
            },
        );
    }

    /// A member joins a presence channel (a presence-cache one too): refused at the channel's
    /// member limit; else answered with the members (the cluster's, with several nodes).
    fn owner_presence_join(&mut self, join: &OwnerJoin, member: &MemberData) -> JoinAnswer {
        let members_max = self.apps.get(join.app).max_presence_members_per_channel as usize;
        let mut frames = Vec::with_capacity(2);
        let outcome = self.owner.presence_join(
            join.app,
            &join.channel,
            &member.user_id,
            &member.user_info,
            members_max,
        );
        match outcome {
            JoinOutcome::Full => {
                let json = server_message::subscription_error(
                    &join.channel,
                    "LimitReached",
                    "Presence channel is at its member limit",
                    close::OVER_CAPACITY,
                );
                frames.push(text_frame(&json));
                return Some((false, frames));
            }
            JoinOutcome::FirstJoin => self.member_first_join(join.app, &join.channel, member),
            JoinOutcome::AlreadyMember => {}
        }
        if self.is_linked() {
            // The member list must be the cluster's: answer once the bridge sent it.
            let after = if join.want_cache {
                vec![self.cache_frame(join.app, &join.channel)]
            } else {
                Vec::new()
            };
            let waiting = MembersWaiter::Join {
                conn: join.conn,
                me: member.clone(),
                after,
            };
            if self.ask_members(join.app, &join.channel, waiting) {
                return None;
            }
        }
        let json = self.node_members_succeeded(join.app, &join.channel);
        frames.push(text_frame(&json));
        Some((true, frames))
    }

    /// A user's first connection in a presence channel: `member_added` for the channel and the
    /// webhooks. With several nodes, the bridge decides whether this is the cluster's first join
    /// and every node delivers the event it publishes.
    fn member_first_join(&mut self, app: AppIndex, channel: &str, member: &MemberData) {
        if self.report_first_join(app, channel, member) {
            return;
        }
        let json = server_message::member_added(channel, &member.user_id, &member.user_info);
        let message = Arc::new(Published::pusher_only(text_frame(&json)));
        self.deliver_channel(app, channel, &message, None, true);
        self.hook_member(app, channel, &member.user_id, true);
    }

    /// A subscriber joins a cache channel that is not a presence one: `subscription_succeeded`,
    /// then the last event (the cluster's, with several nodes).
    fn owner_cache_join(&mut self, join: &OwnerJoin) -> JoinAnswer {
        let mut frames = Vec::with_capacity(2);
        frames.push(text_frame(&server_message::subscription_succeeded(
            &join.channel,
        )));
        if join.want_cache {
            // Several nodes: the last event is the cluster's, whichever node published it.
            match self.ask_cluster_cache(join.app, &join.channel, join.conn, frames) {
                Ok(()) => return None,
                Err(back) => frames = back,
            }
        }
        Some((true, frames))
    }

    /// `subscription_succeeded` of a presence channel with this node's members.
    fn node_members_succeeded(&self, app: AppIndex, channel: &str) -> String {
        match self.owner.members(app, channel) {
            Some(members) => server_message::presence_subscription_succeeded(
                channel,
                members.iter().map(|(id, m)| (&**id, &*m.user_info)),
                members.len(),
            ),
            None => server_message::presence_subscription_succeeded(channel, std::iter::empty(), 0),
        }
    }

    /// The frame a new subscriber of a cache channel gets: the last event, or a cache miss
    /// (which the app's webhooks hear of).
    fn cache_frame(&mut self, app: AppIndex, channel: &str) -> Bytes {
        if let Some(frame) = self.owner.cache_lookup(app, channel, self.now_ms / 1000) {
            return frame.clone();
        }
        self.hook_cache_miss(app, channel);
        text_frame(&server_message::cache_miss(channel))
    }
}
