//! Delivery of webhook batches: builds the Pusher webhook request once per batch (JSON body
//! `{"time_ms":…,"events":[…]}`, `X-Pusher-Key`, `X-Pusher-Signature` = hex HMAC-SHA256 of the
//! body with the app secret), POSTs it through [`OutboundHttp`], and retries with capped,
//! jittered exponential backoff until a 2xx answer or the give-up deadline. This module owns
//! the request format, the retry schedule and the bound on pending batches; the queueing of
//! events into batches is the producers' business.
//!
//! Each batch is its own task, so a dead receiver of one app never holds up another app, and
//! the per-app concurrency is bounded by [`OutboundHttp`]'s per-key permits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::counters::outcomes::WebhookCounters;
use crate::limits::{
    WEBHOOK_ANSWER_EXCERPT_BYTES_MAX, WEBHOOK_GIVE_UP_MS, WEBHOOK_PENDING_BATCHES_MAX,
    WEBHOOK_RETRY_DELAY_MS_MAX, WEBHOOK_RETRY_DELAY_MS_MIN,
};
use crate::outbound::http::url_host;
use crate::outbound::http::{OutboundError, OutboundHttp};
use crate::webhooks::batch::SettleToken;
use crate::webhooks::batch::{WebhookBatch, WebhookTarget};

/// Header names the sender sets itself, or that describe the message framing: a webhook's
/// custom headers may not replace them (compared case-insensitively).
const RESERVED_HEADER_NAMES: [&str; 7] = [
    "content-type",
    "x-pusher-key",
    "x-pusher-signature",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
];

/// When to retry a failed delivery.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubles after each further failure.
    pub first_delay: Duration,
    /// Ceiling of the wait between attempts.
    pub delay_max: Duration,
    /// Counted from the first attempt: no attempt starts later than this.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(WEBHOOK_RETRY_DELAY_MS_MIN),
            delay_max: Duration::from_millis(WEBHOOK_RETRY_DELAY_MS_MAX),
            give_up_after: Duration::from_millis(WEBHOOK_GIVE_UP_MS),
        }
    }
}

/// Runs until the sender side of `batches` closes and every pending batch finished or gave up.
pub async fn run_sender(
    batches: mpsc::Receiver<WebhookBatch>,
    http: OutboundHttp,
    policy: RetryPolicy,
    counters: Arc<WebhookCounters>,
) {
    run_sender_bounded(batches, http, policy, counters, WEBHOOK_PENDING_BATCHES_MAX).await;
}

/// [`run_sender`] with the pending bound as a parameter, so tests can reach it.
async fn run_sender_bounded(
    mut batches: mpsc::Receiver<WebhookBatch>,
    http: OutboundHttp,
    policy: RetryPolicy,
    counters: Arc<WebhookCounters>,
    pending_batches_max: usize,
) {
    // Zero would disable both branches of the select below and stall for good.
    let pending_batches_max = pending_batches_max.max(1);
    let jitter = Jitter::new();
    let mut deliveries: JoinSet<()> = JoinSet::new();
    let mut queue_open = true;
    loop {
        if !queue_open && deliveries.is_empty() {
            break;
        }
        let may_take = queue_open && deliveries.len() < pending_batches_max;
        tokio::select! {
            received = batches.recv(), if may_take => match received {
                Some(batch) if batch.events.is_empty() => {
                    tracing::debug!(app_id = %batch.target.app_id, "empty webhook batch skipped");
                }
                Some(batch) => {
                    let guard = PendingGuard::new(Arc::clone(&counters), batch.events.len());
                    deliveries.spawn(deliver(
                        batch,
                        http.clone(),
                        policy.clone(),
                        jitter.clone(),
                        guard,
                    ));
                }
                None => queue_open = false,
            },
            Some(joined) = deliveries.join_next(), if !deliveries.is_empty() => {
                // A panicking delivery is a bug; its guard already fixed the pending gauge.
                if let Err(error) = joined {
                    tracing::error!(%error, "webhook delivery task failed");
                }
            }
        }
    }
}

/// Keeps `events_pending` right whichever way a delivery ends (done, given up, panicked).
struct PendingGuard {
    counters: Arc<WebhookCounters>,
    events: u64,
}

impl PendingGuard {
    fn new(counters: Arc<WebhookCounters>, events: usize) -> Self {
        let events = events as u64;
        counters.events_pending.fetch_add(events, Ordering::Relaxed);
        Self { counters, events }
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.counters
            .events_pending
            .fetch_sub(self.events, Ordering::Relaxed);
    }
}

/// Delivers one batch: attempts until a 2xx answer, an unusable request or the deadline.
async fn deliver(
    batch: WebhookBatch,
    http: OutboundHttp,
    policy: RetryPolicy,
    jitter: Jitter,
    guard: PendingGuard,
) {
    let counters = Arc::clone(&guard.counters);
    let target = &batch.target;
    let events = batch.events.len() as u64;
    let first_attempt_at = Instant::now();
    // Built once: every retry sends the same bytes and signature, so receivers can de-duplicate.
    let body = build_body(unix_time_ms(), &batch.events);
    let signature = sign(&target.app_secret, &body);
    let headers = request_headers(target, &signature);
    let jitter_stream = jitter.stream();
    let mut failures: u32 = 0;
    loop {
        let outcome = http
            .post(&target.app_id, &target.url, &headers, body.clone())
            .await;
        let failure = match outcome {
            Ok(response) if (200..300).contains(&response.status) => None,
            // The receiver accepted the batch; its (oversized) answer is of no interest here.
            Err(OutboundError::ResponseTooLarge { status }) if (200..300).contains(&status) => None,
            // The start of the receiver's answer says why it refused (operators read it).
            Ok(response) => Some(format!(
                "status {}: {}",
                response.status,
                answer_excerpt(&response.body)
            )),
            Err(error) if !error.is_retryable() => {
                counters.requests_failed.fetch_add(1, Ordering::Relaxed);
                give_up(target, events, failures + 1, &error.to_string(), &counters);
                settle(batch.settle);
                return;
            }
            Err(error) => Some(error.to_string()),
        };
        let Some(reason) = failure else {
            counters.requests_ok.fetch_add(1, Ordering::Relaxed);
            counters
                .events_delivered
                .fetch_add(events, Ordering::Relaxed);
            settle(batch.settle);
            return;
        };
        counters.requests_failed.fetch_add(1, Ordering::Relaxed);
        failures = failures.saturating_add(1);
        let delay = retry_delay(
            &policy,
            failures,
            first_attempt_at.elapsed(),
            jitter_stream.unit(failures),
        );
        let Some(delay) = delay else {
            give_up(target, events, failures, &reason, &counters);
            settle(batch.settle);
            return;
        };
        tracing::debug!(
            app_id = %target.app_id,
            host = %url_host(&target.url),
            attempt = failures,
            %reason,
            retry_in_ms = delay.as_millis() as u64,
            "webhook attempt failed"
        );
        tokio::time::sleep(delay).await;
    }
}

/// The batch is done with, one way or the other: its queue entries may go.
fn settle(tokens: Vec<SettleToken>) {
    for token in tokens {
        token.settle();
    }
}

/// Counts and logs an abandoned batch (once per batch; host only, never the secret or the URL's
/// path and query, which may hold tokens).
fn give_up(
    target: &WebhookTarget,
    events: u64,
    attempts: u32,
    reason: &str,
    counters: &WebhookCounters,
) {
    counters
        .events_given_up
        .fetch_add(events, Ordering::Relaxed);
    tracing::warn!(
        app_id = %target.app_id,
        host = %url_host(&target.url),
        events,
        attempts,
        last_error = %reason,
        "webhook batch given up"
    );
}

/// The wait before the next attempt after `failures` failed ones, `elapsed` after the first
/// attempt started, or `None` when the deadline has passed. `jitter_unit` is any random `u64`;
/// it shortens the wait by up to a tenth so that batches failing together spread out. The wait
/// never reaches past the deadline: the last attempt is made at the deadline at the latest.
fn retry_delay(
    policy: &RetryPolicy,
    failures: u32,
    elapsed: Duration,
    jitter_unit: u64,
) -> Option<Duration> {
    let remaining = policy.give_up_after.checked_sub(elapsed)?;
    if remaining.is_zero() {
        return None;
    }
    let doublings = failures.saturating_sub(1).min(31);
    let base = policy
        .first_delay
        .saturating_mul(1u32 << doublings)
        .min(policy.delay_max);
    let base_ns = base.as_nanos();
    let jitter_ns = base_ns / 10 * u128::from(jitter_unit % 1024) / 1024;
    let delay_ns = u64::try_from(base_ns - jitter_ns).unwrap_or(u64::MAX);
    Some(Duration::from_nanos(delay_ns).min(remaining))
}

/// `{"time_ms":<time_ms>,"events":[<event>,…]}` with each event's JSON text spliced as is.
fn build_body(time_ms: u64, events: &[Bytes]) -> Bytes {
    let time_text = time_ms.to_string();
    let events_len: usize = events.iter().map(|event| event.len() + 1).sum();
    let mut body = Vec::with_capacity(24 + time_text.len() + events_len);
    body.extend_from_slice(b"{\"time_ms\":");
    body.extend_from_slice(time_text.as_bytes());
    body.extend_from_slice(b",\"events\":[");
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event);
    }
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

/// Lowercase hex of HMAC-SHA256(`secret`, `body`): the `X-Pusher-Signature` value.
fn sign(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(ring::hmac::sign(&key, body).as_ref())
}

/// The headers of every attempt: the webhook's own (minus reserved names), then the three the
/// Pusher format requires.
fn request_headers(target: &WebhookTarget, signature: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = target
        .headers
        .iter()
        .filter(|(name, _)| {
            !RESERVED_HEADER_NAMES
                .iter()
                .any(|reserved| name.trim().eq_ignore_ascii_case(reserved))
        })
        .cloned()
        .collect();
    headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
    headers.push(("X-Pusher-Key".to_owned(), target.app_key.clone()));
    headers.push(("X-Pusher-Signature".to_owned(), signature.to_owned()));
    headers
}

fn unix_time_ms() -> u64 {
    // A clock before 1970 is a broken host; 0 still yields a valid body.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Cheap randomness for backoff jitter: a per-process random ahash key over a counter.
#[derive(Clone)]
struct Jitter {
    hasher: ahash::RandomState,
    next_stream: Arc<AtomicU64>,
}

impl Jitter {
    fn new() -> Self {
        Self {
            hasher: ahash::RandomState::new(),
            next_stream: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A source for one batch, distinct from every other batch's.
    fn stream(&self) -> JitterStream {
        JitterStream {
            hasher: self.hasher.clone(),
            stream: self.next_stream.fetch_add(1, Ordering::Relaxed),
        }
    }
}

struct JitterStream {
    hasher: ahash::RandomState,
    stream: u64,
}

impl JitterStream {
    /// A pseudo-random value for the batch's `attempt`.
    fn unit(&self, attempt: u32) -> u64 {
        self.hasher.hash_one((self.stream, attempt))
    }
}

/// The first bytes of a receiver's answer, printable, for a log line.
fn answer_excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(WEBHOOK_ANSWER_EXCERPT_BYTES_MAX)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::http::test_receiver::{Reply, TestReceiver};
    use crate::outbound::http::OutboundLimits;

    const EVENT_OCCUPIED: &str = r#"{"name":"channel_occupied","channel":"private-a"}"#;
    const EVENT_VACATED: &str = r#"{"name":"channel_vacated","channel":"private-b"}"#;

    fn target(url: String, headers: Vec<(String, String)>) -> Arc<WebhookTarget> {
        Arc::new(WebhookTarget {
            app_id: "app-1".to_owned(),
            url,
            app_key: "key-1".to_owned(),
            app_secret: "secret-1".to_owned(),
            headers,
        })
    }

    fn events() -> Vec<Bytes> {
        vec![
            Bytes::from_static(EVENT_OCCUPIED.as_bytes()),
            Bytes::from_static(EVENT_VACATED.as_bytes()),
        ]
    }

    fn fast_policy() -> RetryPolicy {
        RetryPolicy {
            first_delay: Duration::from_millis(50),
            delay_max: Duration::from_millis(200),
            give_up_after: Duration::from_secs(30),
        }
    }

    fn http(limits: OutboundLimits) -> OutboundHttp {
        OutboundHttp::new(limits).expect("client builds")
    }

    struct Running {
        queue: mpsc::Sender<WebhookBatch>,
        counters: Arc<WebhookCounters>,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(http: OutboundHttp, policy: RetryPolicy, pending_batches_max: usize) -> Running {
        let (queue, batches) = mpsc::channel(4);
        let counters = Arc::new(WebhookCounters::default());
        let task = tokio::spawn(run_sender_bounded(
            batches,
            http,
            policy,
            Arc::clone(&counters),
            pending_batches_max,
        ));
        Running {
            queue,
            counters,
            task,
        }
    }

    impl Running {
        async fn send(&self, batch: WebhookBatch) {
            self.queue.send(batch).await.expect("sender is running");
        }

        /// Closes the queue and waits for the sender to finish every batch.
        async fn finish(self) -> Arc<WebhookCounters> {
            drop(self.queue);
            tokio::time::timeout(Duration::from_secs(20), self.task)
                .await
                .expect("sender finishes after the queue closes")
                .expect("sender task");
            self.counters
        }
    }

    fn load(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Waits until `condition` holds, failing the test after 10 s.
    async fn eventually(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < deadline, "not within 10 s: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn verify_signature(body: &[u8], signature_hex: &str) {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret-1");
        let signature = hex::decode(signature_hex).expect("signature is hex");
        assert_eq!(signature_hex, signature_hex.to_ascii_lowercase());
        ring::hmac::verify(&key, body, &signature).expect("signature verifies over the raw body");
    }

    #[tokio::test]
    async fn delivers_signed_batch_once_with_custom_headers() {
        let receiver = TestReceiver::start(|_, _| Reply::Status(200)).await;
        let custom = vec![
            ("X-Custom".to_owned(), "custom-value".to_owned()),
            ("x-pusher-signature".to_owned(), "forged".to_owned()),
            ("X-PUSHER-KEY".to_owned(), "forged-key".to_owned()),
            ("Content-Type".to_owned(), "text/plain".to_owned()),
        ];
        let running = start(
            http(OutboundLimits::default()),
            fast_policy(),
            WEBHOOK_PENDING_BATCHES_MAX,
        );
        let before_ms = unix_time_ms();
        running
            .send(WebhookBatch {
                target: target(receiver.url("/hooks"), custom),
                events: events(),
                settle: Vec::new(),
                charge: None,
            })
            .await;
        let counters = running.finish().await;

        let requests = receiver.requests();
        assert_eq!(requests.len(), 1, "delivered exactly once");
        let request = &requests[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hooks");
        assert_eq!(request.header_values("content-type"), ["application/json"]);
        assert_eq!(request.header_values("x-pusher-key"), ["key-1"]);
        assert_eq!(request.header_values("x-custom"), ["custom-value"]);
        let signatures = request.header_values("x-pusher-signature");
        assert_eq!(
            signatures.len(),
            1,
            "the custom signature header is dropped"
        );
        verify_signature(&request.body, signatures[0]);

        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("body is JSON");
        let time_ms = body["time_ms"].as_u64().expect("time_ms is a number");
        assert!(time_ms >= before_ms && time_ms <= unix_time_ms());
        let expected: Vec<serde_json::Value> = [EVENT_OCCUPIED, EVENT_VACATED]
            .iter()
            .map(|text| serde_json::from_str(text).expect("event JSON"))
            .collect();
        assert_eq!(body["events"], serde_json::Value::Array(expected));
        assert_eq!(body.as_object().map(|o| o.len()), Some(2));

        assert_eq!(load(&counters.requests_ok), 1);
        assert_eq!(load(&counters.requests_failed), 0);
        assert_eq!(load(&counters.events_delivered), 2);
        assert_eq!(load(&counters.events_pending), 0);
        assert_eq!(load(&counters.events_given_up), 0);
    }

    #[tokio::test]
    async fn retries_after_500_with_identical_body() {
        let receiver = TestReceiver::start(|_, index| {
            if index < 2 {
                Reply::Status(500)
            } else {
                Reply::Status(200)
            }
        })
        .await;
        let running = start(
            http(OutboundLimits::default()),
            fast_policy(),
            WEBHOOK_PENDING_BATCHES_MAX,
        );
        running
            .send(WebhookBatch {
                target: target(receiver.url("/hooks"), Vec::new()),
                events: events(),
                settle: Vec::new(),
                charge: None,
            })
            .await;
        let counters = running.finish().await;

        let requests = receiver.requests();
        assert_eq!(requests.len(), 3, "delivered on the third attempt");
        for request in &requests[1..] {
            assert_eq!(request.body, requests[0].body, "body resent byte for byte");
            assert_eq!(
                request.header_values("x-pusher-signature"),
                requests[0].header_values("x-pusher-signature")
            );
        }
        verify_signature(
            &requests[2].body,
            requests[2].header_values("x-pusher-signature")[0],
        );
        assert_eq!(load(&counters.requests_failed), 2);
        assert_eq!(load(&counters.requests_ok), 1);
        assert_eq!(load(&counters.events_delivered), 2);
        assert_eq!(load(&counters.events_pending), 0);
        assert_eq!(load(&counters.events_given_up), 0);
    }

    #[tokio::test]
    async fn delivers_once_the_receiver_starts_listening() {
        let placeholder = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = placeholder.local_addr().expect("addr");
        drop(placeholder);
        let running = start(
            http(OutboundLimits::default()),
            fast_policy(),
            WEBHOOK_PENDING_BATCHES_MAX,
        );
        running
            .send(WebhookBatch {
                target: target(format!("http://{addr}/late"), Vec::new()),
                events: events(),
                settle: Vec::new(),
                charge: None,
            })
            .await;
        let counters = Arc::clone(&running.counters);
        eventually("a refused attempt", || load(&counters.requests_failed) >= 1).await;
        assert_eq!(load(&counters.events_pending), 2, "held while retrying");

        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let receiver = TestReceiver::start_on(addr, |_, _| Reply::Status(200)).await;
        eventually("delivery", || load(&counters.events_delivered) == 2).await;
        let counters = running.finish().await;
        assert_eq!(receiver.request_count(), 1);
        assert_eq!(load(&counters.requests_ok), 1);
        assert!(load(&counters.requests_failed) >= 1);
        assert_eq!(load(&counters.events_pending), 0);
        assert_eq!(load(&counters.events_given_up), 0);
    }

    #[tokio::test]
    async fn gives_up_after_the_deadline_and_stops() {
        let receiver = TestReceiver::start(|_, _| Reply::Status(503)).await;
        let policy = RetryPolicy {
            first_delay: Duration::from_millis(50),
            delay_max: Duration::from_millis(100),
            give_up_after: Duration::from_millis(400),
        };
        let running = start(
            http(OutboundLimits::default()),
            policy,
            WEBHOOK_PENDING_BATCHES_MAX,
        );
        running
            .send(WebhookBatch {
                target: target(receiver.url("/down"), Vec::new()),
                events: events(),
                settle: Vec::new(),
                charge: None,
            })
            .await;
        let counters = running.finish().await;

        assert_eq!(load(&counters.events_given_up), 2);
        assert_eq!(load(&counters.events_delivered), 0);
        assert_eq!(load(&counters.events_pending), 0);
        let attempts = receiver.request_count();
        assert!(attempts >= 2, "retried before giving up ({attempts})");
        assert_eq!(load(&counters.requests_failed), attempts as u64);
        assert_eq!(load(&counters.requests_ok), 0);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            receiver.request_count(),
            attempts,
            "no request after giving up"
        );
    }

    #[tokio::test]
    async fn timeout_counts_as_failed_and_retries() {
        let receiver = TestReceiver::start(|_, _| Reply::Hold).await;
        let limits = OutboundLimits {
            request_timeout: Duration::from_millis(300),
            ..OutboundLimits::default()
        };
        let policy = RetryPolicy {
            first_delay: Duration::from_millis(50),
            delay_max: Duration::from_millis(100),
            give_up_after: Duration::from_secs(2),
        };
        let running = start(http(limits), policy, WEBHOOK_PENDING_BATCHES_MAX);
        running
            .send(WebhookBatch {
                target: target(receiver.url("/silent"), Vec::new()),
                events: events(),
                settle: Vec::new(),
                charge: None,
            })
            .await;
        let counters = Arc::clone(&running.counters);
        eventually("two timed-out attempts", || {
            load(&counters.requests_failed) >= 2
        })
        .await;
        assert!(receiver.request_count() >= 2, "the batch was sent again");
        let counters = running.finish().await;
        assert_eq!(load(&counters.events_given_up), 2);
        assert_eq!(load(&counters.events_delivered), 0);
        assert_eq!(load(&counters.events_pending), 0);
    }

    #[tokio::test]
    async fn apps_are_delivered_independently() {
        let receiver = TestReceiver::start(|request, _| {
            if request.path == "/dead" {
                Reply::Status(503)
            } else {
                Reply::Status(200)
            }
        })
        .await;
        let running = start(
            http(OutboundLimits::default()),
            fast_policy(),
            WEBHOOK_PENDING_BATCHES_MAX,
        );
        let dead = Arc::new(WebhookTarget {
            app_id: "app-dead".to_owned(),
            ..(*target(receiver.url("/dead"), Vec::new())).clone()
        });
        running
            .send(WebhookBatch {
                target: dead,
                events: events(),
                settle: Vec::new(),
                charge: None,
            })
            .await;
        running
            .send(WebhookBatch {
                target: target(receiver.url("/alive"), Vec::new()),
                events: events(),
                settle: Vec::new(),
                charge: None,
            })
            .await;
        let counters = Arc::clone(&running.counters);
        eventually("the live app's delivery", || {
            load(&counters.events_delivered) == 2
        })
        .await;
        assert_eq!(
            load(&counters.events_pending),
            2,
            "the dead app's batch still retries"
        );
        running.task.abort();
    }

    #[tokio::test]
    async fn stops_taking_batches_at_the_pending_bound() {
        let receiver = TestReceiver::start(|_, _| Reply::Hold).await;
        let running = start(http(OutboundLimits::default()), fast_policy(), 1);
        for _ in 0..3 {
            running
                .send(WebhookBatch {
                    target: target(receiver.url("/held"), Vec::new()),
                    events: events(),
                    settle: Vec::new(),
                    charge: None,
                })
                .await;
        }
        eventually("the first batch reaches the receiver", || {
            receiver.request_count() == 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.request_count(), 1, "one batch pending at most");
        assert_eq!(load(&running.counters.events_pending), 2);
        assert_eq!(
            running.queue.capacity(),
            4 - 2,
            "two batches wait in the queue"
        );
        receiver.release();
        let counters = running.finish().await;
        assert_eq!(receiver.request_count(), 3);
        assert_eq!(load(&counters.events_delivered), 6);
        assert_eq!(load(&counters.events_pending), 0);
    }

    #[tokio::test]
    async fn empty_batch_is_not_sent() {
        let receiver = TestReceiver::start(|_, _| Reply::Status(200)).await;
        let running = start(
            http(OutboundLimits::default()),
            fast_policy(),
            WEBHOOK_PENDING_BATCHES_MAX,
        );
        running
            .send(WebhookBatch {
                target: target(receiver.url("/hooks"), Vec::new()),
                events: Vec::new(),
                settle: Vec::new(),
                charge: None,
            })
            .await;
        let counters = running.finish().await;
        assert_eq!(receiver.request_count(), 0);
        assert_eq!(load(&counters.requests_ok), 0);
        assert_eq!(load(&counters.events_pending), 0);
    }

    #[tokio::test]
    async fn invalid_url_gives_up_at_once() {
        let running = start(
            http(OutboundLimits::default()),
            fast_policy(),
            WEBHOOK_PENDING_BATCHES_MAX,
        );
        running
            .send(WebhookBatch {
                target: target("ftp://example.com/hook".to_owned(), Vec::new()),
                events: events(),
                settle: Vec::new(),
                charge: None,
            })
            .await;
        let counters = running.finish().await;
        assert_eq!(load(&counters.requests_failed), 1);
        assert_eq!(load(&counters.events_given_up), 2);
        assert_eq!(load(&counters.events_pending), 0);
    }

    #[test]
    fn body_is_valid_json_for_any_event_count() {
        for count in 0..3 {
            let events: Vec<Bytes> = (0..count)
                .map(|i| Bytes::from(format!(r#"{{"name":"e","n":{i}}}"#)))
                .collect();
            let body = build_body(1_700_000_000_123, &events);
            let parsed: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
            assert_eq!(parsed["time_ms"], 1_700_000_000_123u64);
            let array = parsed["events"].as_array().expect("events array");
            assert_eq!(array.len(), count);
            for (i, event) in array.iter().enumerate() {
                assert_eq!(event["n"], i);
            }
        }
    }

    #[test]
    fn signature_is_lowercase_hex_hmac_sha256() {
        // HMAC-SHA256 test vector (RFC 4231, test case 2).
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn reserved_headers_are_dropped_case_insensitively() {
        let target = target(
            "http://h/".to_owned(),
            vec![
                ("X-Keep".to_owned(), "1".to_owned()),
                ("CONTENT-TYPE".to_owned(), "text/plain".to_owned()),
                ("x-Pusher-Key".to_owned(), "k".to_owned()),
                ("X-Pusher-Signature".to_owned(), "s".to_owned()),
                ("Content-Length".to_owned(), "1".to_owned()),
            ],
        );
        let headers = request_headers(&target, "abc");
        assert_eq!(
            headers,
            [
                ("X-Keep".to_owned(), "1".to_owned()),
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("X-Pusher-Key".to_owned(), "key-1".to_owned()),
                ("X-Pusher-Signature".to_owned(), "abc".to_owned()),
            ]
        );
    }

    #[test]
    fn retry_delay_doubles_caps_and_respects_the_deadline() {
        let policy = RetryPolicy::default();
        let no_jitter = |failures| retry_delay(&policy, failures, Duration::ZERO, 0);
        let delays_s: Vec<u64> = (1..=9)
            .map(|failures| no_jitter(failures).expect("before deadline").as_secs())
            .collect();
        assert_eq!(delays_s, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(no_jitter(u32::MAX), Some(Duration::from_secs(60)));
        // Jitter shortens by at most a tenth and never lengthens.
        for unit in [1, 511, 1023, u64::MAX] {
            let delay = retry_delay(&policy, 3, Duration::ZERO, unit).expect("delay");
            assert!(delay <= Duration::from_secs(4) && delay >= Duration::from_millis(3_600));
        }
        // Close to the deadline the wait ends at the deadline; past it, give up.
        assert_eq!(
            retry_delay(&policy, 9, Duration::from_secs(290), 0),
            Some(Duration::from_secs(10))
        );
        assert_eq!(retry_delay(&policy, 9, Duration::from_secs(300), 0), None);
        assert_eq!(retry_delay(&policy, 1, Duration::from_secs(301), 0), None);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let target = target(
            "https://hooks.example.com/path?token=t0ken".to_owned(),
            vec![("Authorization".to_owned(), "Bearer abc".to_owned())],
        );
        let text = format!("{target:?}");
        assert!(!text.contains("secret-1"));
        assert!(!text.contains("t0ken"));
        assert!(!text.contains("Bearer abc"));
        assert!(text.contains("hooks.example.com"));
    }
}
