//! The apps' webhooks, from the events the engine and the cluster report to signed POSTs that
//! receivers answer. Uses `redis/` (the Redis queue, the delayed leaves) and `outbound/` (the
//! HTTP client); the cluster tasks above hand it their events.
//!
//! - [`batch`]: the types every stage passes on: target, batch, settle token.
//! - [`task`]: the webhook task and its inbox, [`task::WebhookInput`].
//! - [`router`]: what happens to an event, without IO: settings, leave delays, batching.
//! - [`sender`]: delivery, signing and retries of batches.
//! - [`queue`]: the Redis webhook queue (`--webhook-queue redis`): producer, consumer, acker.
//! - [`events`]: the webhook events the cluster's scripts and counts make.
//! - [`due`]: the task that takes the cluster's delayed leaves once they are due.

pub mod batch;
pub mod due;
pub mod events;
pub mod queue;
pub mod router;
pub mod sender;
pub mod task;
