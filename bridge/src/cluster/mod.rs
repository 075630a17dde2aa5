//! State shared by the nodes of a cluster, kept in Redis: presence members, node liveness,
//! subscription counts, connection counts and the channels queries between nodes. Uses
//! `redis/` and hands webhook events to `webhooks/`.
//!
//! - [`presence`]: the presence task (joins, leaves, resyncs, cache reads) and its inbox.
//! - [`liveness`]: the node's heartbeat, and reaping the nodes whose heartbeat expired.
//! - [`counts`]: the node's subscription count per channel, without IO.
//! - [`count_task`]: the task that owns the counts and hands node totals on.
//! - [`connections`]: `app_max_connections` across nodes (each node's counts in Redis).
//! - [`query`]: `GET /channels…` across nodes (questions and answers over Redis).
//! - [`repair`]: which shards must restate their presence after a change did not reach Redis.

pub mod connections;
pub mod count_task;
pub mod counts;
pub mod liveness;
pub mod presence;
pub mod query;
pub mod repair;
