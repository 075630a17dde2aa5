//! The one connect-or-back-off rule of the bridge's Redis tasks: a [`RedisSession`] opens a
//! connection when a task needs one, keeps it while commands work, drops it after a failure and
//! does not try again before the backoff's delay has passed. A task that must not wait (the
//! presence task answers the engine while Redis is away) asks and gets `None`; a task with
//! nothing else to do waits with [`RedisSession::wait_retry`]. The backoff starts over when a
//! command works ([`RedisSession::succeeded`]).
//!
//! The pub/sub subscribers hold connections of another kind (pushes, resubscriptions) and pace
//! their reconnects with the same [`Backoff`].

use std::time::Duration;

use tokio::time::Instant;

use crate::limits::{REDIS_COMMAND_TIMEOUT_MS, REDIS_CONNECT_TIMEOUT_MS};
use crate::redis::connect::{self, RedisClient, RedisConnection};
use ringcast_core::backoff::Backoff;

/// A task's connection to Redis, opened on demand, with the reconnect backoff.
pub struct RedisSession {
    client: RedisClient,
    /// Names the task in the log.
    what: &'static str,
    connect_timeout: Duration,
    response_timeout: Duration,
    connection: Option<RedisConnection>,
    backoff: Backoff,
    /// No connect attempt before this.
    retry_at: Instant,
    /// Why the last connect attempt failed, for a task's own warning.
    connect_error: Option<String>,
}

impl RedisSession {
    /// A session of the task `what`, not connected yet, with the bridge's reconnect backoff.
    pub fn new(
        client: RedisClient,
        what: &'static str,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Self {
        Self {
            client,
            what,
            connect_timeout,
            response_timeout,
            connection: None,
            backoff: Backoff::reconnect(),
            retry_at: Instant::now(),
            connect_error: None,
        }
    }

    /// A session of a state task (presence, liveness, counts, queries, delayed leaves): the
    /// bridge's connect and command deadlines.
    pub fn for_state(client: RedisClient, what: &'static str) -> Self {
        Self::new(
            client,
            what,
            Duration::from_millis(REDIS_CONNECT_TIMEOUT_MS),
            Duration::from_millis(REDIS_COMMAND_TIMEOUT_MS),
        )
    }

    /// The same session, but trying to connect whenever asked: for a task whose own interval
    /// already paces its attempts.
    pub fn paced_by_caller(mut self) -> Self {
        self.backoff = Backoff::new(0, 0);
        self
    }

    /// Whether a connection is open now (a task that prepares each new connection asks first).
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// The open connection, connecting first when there is none and the backoff allows it;
    /// `None` when that fails or it is too early to try.
    pub async fn connection(&mut self) -> Option<&mut RedisConnection> {
        if self.connection.is_none() {
            if Instant::now() < self.retry_at {
                return None;
            }
            match connect::open(&self.client, self.connect_timeout, self.response_timeout).await {
                Ok(opened) => {
                    self.connect_error = None;
                    self.connection = Some(opened);
                }
                Err(err) => {
                    tracing::debug!("{}: cannot connect to redis: {err}", self.what);
                    self.connect_error = Some(err.to_string());
                    self.back_off();
                    return None;
                }
            }
        }
        self.connection.as_mut()
    }

    /// A command worked: the next failure waits the backoff's first delay again. (Not on connect:
    /// a Redis that accepts connections and fails every command still gets backed off.)
    pub fn succeeded(&mut self) {
        self.backoff.reset();
    }

    /// A command failed: the connection is dropped, and the next attempt waits the backoff.
    pub fn failed(&mut self) {
        self.connection = None;
        self.back_off();
    }

    /// Why the last connect attempt failed (`None` after a success).
    pub fn connect_error(&self) -> Option<&str> {
        self.connect_error.as_deref()
    }

    /// A command failed in a way that may be this connection's alone: it is dropped, and the
    /// next use connects again at once (a failing connect then backs off).
    pub fn reconnect_at_next_use(&mut self) {
        self.connection = None;
    }

    /// The delay before the next connect attempt (for the log).
    pub fn retry_in(&self) -> Duration {
        self.retry_at.saturating_duration_since(Instant::now())
    }

    /// Sleeps until the next connect attempt is allowed.
    pub async fn wait_retry(&self) {
        tokio::time::sleep_until(self.retry_at).await;
    }

    fn back_off(&mut self) {
        self.retry_at = Instant::now() + Duration::from_millis(self.backoff.next_delay_ms());
    }
}
