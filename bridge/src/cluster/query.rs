//! `GET /channels…` across nodes, the bridge's side. When its engine asks (`ChannelsQuery`),
//! the bridge puts the question on the prefix's query channel; every other bridge hands it to
//! its engine, which answers with the node's counts, and publishes the answer back. The asking
//! bridge sums the answers of the live nodes (the node set in Redis) or whatever came within
//! [`QUERY_ANSWER_WAIT_MS`], adds the cluster's presence user counts (`P#members` in Redis) and answers
//! its engine (`ChannelsAnswer`). Every question is answered, also when Redis is away.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::counters::BridgeCounters;
use crate::limits::{
    QUERY_ANSWER_WAIT_MS, QUERY_ASKS_MAX, QUERY_FORWARDED_MAX, REDIS_COMMAND_TIMEOUT_MS,
};
use crate::links::LinkWriter;
use crate::redis::connect::{RedisClient, RedisConnection};
use crate::redis::envelope::QUERY_MAGIC;
use crate::redis::layout::query_channel;
use crate::redis::layout::{key_prefix, members_key, nodes_key, redis_channel_name};
use crate::redis::publish::Outbound;
use crate::redis::session::RedisSession;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use ringcast_core::link::{self, ChannelCount, ChannelFilter, LinkMessage, CHANNELS_MAX};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the query task reacts to.
#[derive(Debug)]
pub enum QueryInput {
    /// This node's engine asks for the other nodes' counts.
    Ask {
        /// The engine's id of the question.
        query_id: u32,
        /// App id.
        app_id: String,
        /// Which channels.
        filter: ChannelFilter,
        /// Where the answer goes.
        reply: LinkWriter,
    },
    /// This node's engine answered a question of another node.
    NodeAnswer {
        /// The id this bridge gave the forwarded question.
        query_id: u32,
        /// The node's counts.
        channels: Vec<ChannelCount>,
    },
    /// A payload from the query channel, with a link of this node's engine to ask (if any).
    Remote {
        /// The payload.
        payload: Bytes,
        /// One linked shard of this node.
        engine: Option<LinkWriter>,
    },
}

/// A question of this node's engine.
struct Ask {
    engine_query_id: u32,
    app_id: String,
    filter: ChannelFilter,
    reply: LinkWriter,
    /// Answers still expected.
    expected: usize,
    totals: HashMap<String, u64>,
    deadline: Instant,
}

/// A question of another node, at this node's engine.
struct Forwarded {
    origin_node: u64,
    origin_request: u32,
    deadline: Instant,
}

/// A decoded payload of the query channel.
#[derive(Debug, PartialEq, Eq)]
enum Wire {
    Question {
        from_node: u64,
        request: u32,
        app_id: String,
        filter: ChannelFilter,
    },
    Answer {
        to_node: u64,
        request: u32,
        channels: Vec<ChannelCount>,
    },
}

fn encode_question(
    from_node: u64,
    request: u32,
    app_id: &str,
    filter: &ChannelFilter,
) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(64);
    out.extend_from_slice(QUERY_MAGIC);
    out.put_u8(b'Q');
    out.put_u64_le(from_node);
    let message = LinkMessage::ChannelsQuery {
        query_id: request,
        app_id: app_id.to_owned(),
        filter: filter.clone(),
    };
    link::encode(&message, &mut out).ok()?;
    Some(out.freeze())
}

fn encode_answer(to_node: u64, request: u32, channels: Vec<ChannelCount>) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(64 + channels.len() * 32);
    out.extend_from_slice(QUERY_MAGIC);
    out.put_u8(b'A');
    out.put_u64_le(to_node);
    let message = LinkMessage::ChannelsAnswer {
        query_id: request,
        channels,
    };
    link::encode(&message, &mut out).ok()?;
    Some(out.freeze())
}

fn decode(payload: &[u8]) -> Option<Wire> {
    let rest = payload.strip_prefix(QUERY_MAGIC)?;
    let (&kind, mut rest) = rest.split_first()?;
    if rest.len() < 8 {
        return None;
    }
    let node = rest.get_u64_le();
    let mut frame = BytesMut::from(rest);
    let message = link::decode(&mut frame).ok()??;
    if !frame.is_empty() {
        return None;
    }
    match (kind, message) {
        (
            b'Q',
            LinkMessage::ChannelsQuery {
                query_id,
                app_id,
                filter,
            },
        ) => Some(Wire::Question {
            from_node: node,
            request: query_id,
            app_id,
            filter,
        }),
        (b'A', LinkMessage::ChannelsAnswer { query_id, channels }) => Some(Wire::Answer {
            to_node: node,
            request: query_id,
            channels,
        }),
        _ => None,
    }
}

/// The query task's state.
struct Queries {
    /// Asked per question (no backoff: a question comes at most once per engine request).
    redis: RedisSession,
    /// Prefix of the pub/sub channels.
    prefix: String,
    /// Prefix of the state keys (`{prefix}`).
    key_prefix: String,
    node_id: u64,
    publisher: mpsc::Sender<Outbound>,
    asks: HashMap<u32, Ask>,
    next_ask: u32,
    forwarded: HashMap<u32, Forwarded>,
    next_forward: u32,
    counters: Arc<BridgeCounters>,
}

/// Runs until every sender of `inputs` is gone.
pub async fn run_queries(
    client: RedisClient,
    prefix: String,
    node_id: u64,
    mut inputs: mpsc::Receiver<QueryInput>,
    publisher: mpsc::Sender<Outbound>,
    counters: Arc<BridgeCounters>,
) {
    let mut queries = Queries {
        redis: RedisSession::for_state(client, "channels query").paced_by_caller(),
        key_prefix: key_prefix(&prefix),
        prefix,
        node_id,
        publisher,
        asks: HashMap::new(),
        next_ask: 1,
        forwarded: HashMap::new(),
        next_forward: 1,
        counters,
    };
    loop {
        let next_deadline = queries
            .asks
            .values()
            .map(|a| a.deadline)
            .chain(queries.forwarded.values().map(|f| f.deadline))
            .min();
        let input = match next_deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, inputs.recv()).await {
                Ok(Some(input)) => Some(input),
                Ok(None) => return,
                Err(_) => None,
            },
            None => match inputs.recv().await {
                Some(input) => Some(input),
                None => return,
            },
        };
        if let Some(input) = input {
            queries.handle(input).await;
        }
        queries.expire().await;
    }
}

impl Queries {
    async fn handle(&mut self, input: QueryInput) {
        match input {
            QueryInput::Ask {
                query_id,
                app_id,
                filter,
                reply,
            } => self.ask(query_id, app_id, filter, reply).await,
            QueryInput::NodeAnswer { query_id, channels } => {
                let Some(forwarded) = self.forwarded.remove(&query_id) else {
                    return; // too late
                };
                if let Some(payload) =
                    encode_answer(forwarded.origin_node, forwarded.origin_request, channels)
                {
                    self.publish(payload);
                }
            }
            QueryInput::Remote { payload, engine } => match decode(&payload) {
                Some(Wire::Question {
                    from_node,
                    request,
                    app_id,
                    filter,
                }) if from_node != self.node_id => {
                    self.forward(from_node, request, app_id, filter, engine);
                }
                Some(Wire::Answer {
                    to_node,
                    request,
                    channels,
                }) if to_node == self.node_id => self.collect(request, channels).await,
                Some(_) => {} // our own question, or an answer for another node
                None => tracing::debug!("ignoring a malformed query payload"),
            },
        }
    }

    /// A question of this node's engine: ask the other nodes, or answer at once when alone.
    async fn ask(
        &mut self,
        query_id: u32,
        app_id: String,
        filter: ChannelFilter,
        reply: LinkWriter,
    ) {
        let others = self.other_nodes().await;
        let request = self.next_ask;
        self.next_ask = self.next_ask.wrapping_add(1).max(1);
        let mut ask = Ask {
            engine_query_id: query_id,
            app_id,
            filter,
            reply,
            expected: others,
            totals: HashMap::new(),
            deadline: Instant::now() + Duration::from_millis(QUERY_ANSWER_WAIT_MS),
        };
        if others == 0 || self.asks.len() >= QUERY_ASKS_MAX {
            return self.finish(&mut ask).await;
        }
        let Some(payload) = encode_question(self.node_id, request, &ask.app_id, &ask.filter) else {
            return self.finish(&mut ask).await;
        };
        self.publish(payload);
        self.asks.insert(request, ask);
    }

    /// One node's answer to a question of ours.
    async fn collect(&mut self, request: u32, channels: Vec<ChannelCount>) {
        let Some(ask) = self.asks.get_mut(&request) else {
            return; // late, after the wait
        };
        for channel in channels {
            if ask.totals.len() >= CHANNELS_MAX && !ask.totals.contains_key(&channel.name) {
                continue;
            }
            *ask.totals.entry(channel.name).or_default() += channel.subscriptions;
        }
        ask.expected = ask.expected.saturating_sub(1);
        if ask.expected == 0 {
            if let Some(mut ask) = self.asks.remove(&request) {
                self.finish(&mut ask).await;
            }
        }
    }

    /// A question of another node for this node's engine.
    fn forward(
        &mut self,
        origin_node: u64,
        origin_request: u32,
        app_id: String,
        filter: ChannelFilter,
        engine: Option<LinkWriter>,
    ) {
        let Some(engine) = engine else {
            // No engine linked: this node has nothing to count.
            if let Some(payload) = encode_answer(origin_node, origin_request, Vec::new()) {
                self.publish(payload);
            }
            return;
        };
        if self.forwarded.len() >= QUERY_FORWARDED_MAX {
            return; // the asker's wait ends it
        }
        let query_id = self.next_forward;
        self.next_forward = self.next_forward.wrapping_add(1).max(1);
        let question = LinkMessage::ChannelsQuery {
            query_id,
            app_id,
            filter,
        };
        if engine.try_send(question).is_ok() {
            self.forwarded.insert(
                query_id,
                Forwarded {
                    origin_node,
                    origin_request,
                    deadline: Instant::now() + Duration::from_millis(QUERY_ANSWER_WAIT_MS),
                },
            );
        }
    }

    /// Questions whose wait is over are answered with what came; forwarded questions the
    /// engine did not answer are forgotten.
    async fn expire(&mut self) {
        let now = Instant::now();
        self.forwarded.retain(|_, f| f.deadline > now);
        let due: Vec<u32> = self
            .asks
            .iter()
            .filter(|(_, a)| a.deadline <= now)
            .map(|(request, _)| *request)
            .collect();
        for request in due {
            if let Some(mut ask) = self.asks.remove(&request) {
                tracing::debug!(
                    missing = ask.expected,
                    "channels question answered without every node"
                );
                self.finish(&mut ask).await;
            }
        }
    }

    /// Answers the engine: the other nodes' subscriptions, with the cluster's presence user
    /// counts.
    async fn finish(&mut self, ask: &mut Ask) {
        let mut names: Vec<String> = ask.totals.keys().cloned().collect();
        if let ChannelFilter::Names(asked) = &ask.filter {
            for name in asked {
                if !ask.totals.contains_key(name) {
                    names.push(name.clone());
                }
            }
        }
        let presence: Vec<&String> = names
            .iter()
            .filter(|n| n.starts_with("presence-"))
            .collect();
        let users = self.user_counts(&ask.app_id, &presence).await;
        let channels: Vec<ChannelCount> = names
            .iter()
            .map(|name| ChannelCount {
                name: name.clone(),
                subscriptions: ask.totals.get(name).copied().unwrap_or(0),
                users: users.get(name).copied(),
            })
            .collect();
        let answer = LinkMessage::ChannelsAnswer {
            query_id: ask.engine_query_id,
            channels,
        };
        if ask.reply.try_send(answer).is_err() {
            self.counters.drops.delivery_queue_full.add(1);
        }
    }

    /// The cluster's member counts of presence channels (none when Redis does not answer).
    async fn user_counts(&mut self, app_id: &str, channels: &[&String]) -> HashMap<String, u64> {
        if channels.is_empty() {
            return HashMap::new();
        }
        let mut pipeline = redis::pipe();
        for channel in channels {
            let base = redis_channel_name(&self.key_prefix, app_id, channel);
            pipeline.cmd("HLEN").arg(members_key(&base));
        }
        let Some(connection) = self.connect().await else {
            return HashMap::new();
        };
        let counts: Result<redis::RedisResult<Vec<u64>>, _> = tokio::time::timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            pipeline.query_async(connection),
        )
        .await;
        match counts {
            Ok(Ok(counts)) => channels.iter().map(|c| (*c).clone()).zip(counts).collect(),
            _ => {
                self.redis.failed();
                HashMap::new()
            }
        }
    }

    /// How many other nodes are in the cluster (0 when Redis does not say).
    async fn other_nodes(&mut self) -> usize {
        let key = nodes_key(&self.key_prefix);
        let node = self.node_id.to_string();
        let Some(connection) = self.connect().await else {
            return 0;
        };
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SCARD")
            .arg(&key)
            .cmd("SISMEMBER")
            .arg(&key)
            .arg(&node);
        let answer: Result<redis::RedisResult<(usize, bool)>, _> = tokio::time::timeout(
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
            pipeline.query_async(connection),
        )
        .await;
        match answer {
            Ok(Ok((count, listed))) => count.saturating_sub(usize::from(listed)),
            _ => {
                self.redis.failed();
                0
            }
        }
    }

    async fn connect(&mut self) -> Option<&mut RedisConnection> {
        self.redis.connection().await
    }

    fn publish(&self, payload: Bytes) {
        let outbound = Outbound {
            redis_channel: query_channel(&self.prefix),
            payload,
            cache: None,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.publisher.try_send(outbound) {
            self.counters.drops.publish_queue_full.add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_answers_round_trip() {
        let filter = ChannelFilter::Names(vec!["presence-a".into(), "b".into()]);
        let payload = encode_question(7, 42, "app", &filter).expect("encodes");
        assert_eq!(
            decode(&payload),
            Some(Wire::Question {
                from_node: 7,
                request: 42,
                app_id: "app".into(),
                filter
            })
        );
        let channels = vec![ChannelCount {
            name: "b".into(),
            subscriptions: 3,
            users: None,
        }];
        let payload = encode_answer(9, 42, channels.clone()).expect("encodes");
        assert_eq!(
            decode(&payload),
            Some(Wire::Answer {
                to_node: 9,
                request: 42,
                channels
            })
        );
        assert_eq!(decode(&payload[..payload.len() - 1]), None);
        assert_eq!(decode(b"\xffrcqry\x00\x01Z"), None);
        assert_eq!(decode(b"not ours"), None);
    }
}
