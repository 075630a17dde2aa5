//! WebSocket-over-HTTP, the bridge side: an engine shard hands over one socket event of a
//! connection (`LinkMessage::SlipCall`); this module POSTs it to the app's backend with a fresh
//! token (`Authorization: Bearer <JWT>`, `Content-Type: application/websocket-events`) and
//! answers `LinkMessage::SlipAnswer` on the asking link with the backend's status and body. It
//! owns the order (one connection's calls one after another, in arrival order; connections
//! concurrent), the bounds on the calls a node holds and the [`SlipCounters`]. What the
//! answer means is the engine's business.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringcast_core::limits::{SLIP_CALL_DEADLINE_MS, SLIP_CALL_TIMEOUT_MS};
use ringcast_core::link::{LinkMessage, SlipCall, SlipOutcome};
use ringcast_core::slip::token;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::counters::outcomes::SlipCounters;
use crate::limits::{
    SLIP_CALLS_MAX, SLIP_CALLS_PER_APP_MAX, SLIP_CALL_BYTES_MAX, SLIP_CONCURRENT_PER_APP_MAX,
    SLIP_CONNECTION_QUEUE_MAX, SLIP_CONNECT_TIMEOUT_MS, SLIP_RESPONSE_BYTES_MAX,
};
use crate::links::LinkWriter;
use crate::outbound::http::{OutboundError, OutboundHttp, OutboundLimits};
use crate::outbound::ordered::{
    Admission, KeyWorker, OrderBounds, OrderedJob, OrderedQueues, Refusal,
};

/// The body's content type, as the original sent it.
const CONTENT_TYPE: &str = "application/websocket-events";

/// Limits of the WebSocket-over-HTTP [`OutboundHttp`]: an upgrade waits for its open event's
/// call, so each call gets the engine's short deadline, connect retries included.
pub fn slip_limits() -> OutboundLimits {
    OutboundLimits {
        request_timeout: Duration::from_millis(SLIP_CALL_TIMEOUT_MS),
        connect_timeout: Duration::from_millis(SLIP_CONNECT_TIMEOUT_MS),
        response_bytes_max: SLIP_RESPONSE_BYTES_MAX,
        concurrent_per_key_max: SLIP_CONCURRENT_PER_APP_MAX,
    }
}

/// One call to make, and where to answer it.
#[derive(Debug)]
pub struct SlipJob {
    /// The engine's call.
    pub call: SlipCall,
    /// The asking link's writer queue.
    pub reply: LinkWriter,
    /// When the link reader handed it over: the call's deadline runs from here.
    pub received: Instant,
}

impl OrderedJob for SlipJob {
    fn app_id(&self) -> &str {
        &self.call.app_id
    }

    fn order_key(&self) -> &str {
        &self.call.connection_id
    }

    fn held_bytes(&self) -> usize {
        let call = &self.call;
        call.body.len() + call.url.len() + call.secret.len() + call.connection_id.len()
    }

    fn received(&self) -> Instant {
        self.received
    }
}

/// The handle a link reader hands calls to; cheap to clone.
#[derive(Debug, Clone)]
pub struct SlipQueue {
    jobs: mpsc::Sender<SlipJob>,
    counters: Arc<SlipCounters>,
}

impl SlipQueue {
    /// The handle on `jobs`, the queue [`run_slip`] drains (capacity
    /// [`SLIP_QUEUE_REQUESTS_MAX`](crate::limits::SLIP_QUEUE_REQUESTS_MAX)).
    pub fn new(jobs: mpsc::Sender<SlipJob>, counters: Arc<SlipCounters>) -> Self {
        Self { jobs, counters }
    }

    /// Hands `call` to the SLIP task without waiting: a link reader must not stall behind a
    /// slow backend. When the queue is full (or the task is gone) the call fails on `reply` at
    /// once, so it is still answered exactly once.
    pub fn submit(&self, call: SlipCall, reply: &LinkWriter) {
        let job = SlipJob {
            call,
            reply: reply.clone(),
            received: Instant::now(),
        };
        let (job, reason) = match self.jobs.try_send(job) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(job)) => {
                (job, "too many calls queued on this node")
            }
            Err(mpsc::error::TrySendError::Closed(job)) => {
                (job, "WebSocket-over-HTTP stopped on this node")
            }
        };
        self.counters.shed.fetch_add(1, Ordering::Relaxed);
        let outcome = SlipOutcome::Failed(reason.to_owned());
        answer(&job.reply, job.call.call_id, outcome, &self.counters);
    }
}

/// The bounds of [`run_slip`] (smaller in tests).
fn slip_bounds() -> OrderBounds {
    OrderBounds {
        jobs_max: SLIP_CALLS_MAX,
        app_jobs_max: SLIP_CALLS_PER_APP_MAX,
        bytes_max: SLIP_CALL_BYTES_MAX,
        key_queue_max: SLIP_CONNECTION_QUEUE_MAX,
        deadline: Duration::from_millis(SLIP_CALL_DEADLINE_MS),
    }
}

/// Why a bound refused a call.
fn refusal_reason(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Jobs => "too many calls queued on this node",
        Refusal::Bytes => "calls queued on this node hold too many bytes",
        Refusal::App => "too many calls queued for this app on this node",
        Refusal::Key => "too many calls queued for this connection",
    }
}

/// Drains `jobs` until every [`SlipQueue`] is dropped: each call is queued on its connection
/// (a worker task per busy connection runs its calls in arrival order) or refused at once past
/// a bound, and answered exactly once. `http` should be built with [`slip_limits`]; its
/// per-key namespace is `slip#{app_id}`.
pub async fn run_slip(
    jobs: mpsc::Receiver<SlipJob>,
    http: OutboundHttp,
    counters: Arc<SlipCounters>,
) {
    run_with_bounds(jobs, http, counters, slip_bounds()).await;
}

async fn run_with_bounds(
    mut jobs: mpsc::Receiver<SlipJob>,
    http: OutboundHttp,
    counters: Arc<SlipCounters>,
    bounds: OrderBounds,
) {
    let queues = OrderedQueues::new(bounds);
    while let Some(job) = jobs.recv().await {
        match queues.admit(job) {
            Admission::Queued => {}
            Admission::NewKey(worker) => {
                tokio::spawn(drain_connection(
                    worker,
                    http.clone(),
                    Arc::clone(&counters),
                ));
            }
            Admission::Refused(job, refusal) => {
                counters.shed.fetch_add(1, Ordering::Relaxed);
                let outcome = SlipOutcome::Failed(refusal_reason(refusal).to_owned());
                answer(&job.reply, job.call.call_id, outcome, &counters);
            }
        }
    }
}

/// Runs one connection's calls one after another until its queue is empty.
async fn drain_connection(
    mut worker: KeyWorker<SlipJob>,
    http: OutboundHttp,
    counters: Arc<SlipCounters>,
) {
    while let Some(queued) = worker.next_job() {
        let job = &queued.job;
        let outcome = call_backend(&http, job, queued.deadline, &counters).await;
        answer(&job.reply, job.call.call_id, outcome, &counters);
        // Counted out once answered, so the bounds cover the call until then.
        drop(queued);
    }
}

/// POSTs one event; the backend's answer whatever its status, or why there is none.
async fn call_backend(
    http: &OutboundHttp,
    job: &SlipJob,
    deadline: Instant,
    counters: &SlipCounters,
) -> SlipOutcome {
    let call = &job.call;
    let shed = |reason: &str| {
        counters.shed.fetch_add(1, Ordering::Relaxed);
        SlipOutcome::Failed(reason.to_owned())
    };
    // A shard that linked again has forgotten this call: making it would only repeat the
    // event at the backend.
    if job.reply.is_closed() {
        return shed("the asking link is gone");
    }
    if Instant::now() >= deadline {
        return shed("the call waited too long on this node");
    }
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let authorization = match token::event_authorization(&call.secret, now_s) {
        Ok(value) => value,
        Err(reason) => return shed(&reason),
    };
    let headers = [
        ("Authorization".to_owned(), authorization),
        ("Content-Type".to_owned(), CONTENT_TYPE.to_owned()),
    ];
    let key = format!("slip#{}", call.app_id);
    let post = http.post_retrying_connect(&key, &call.url, &headers, call.body.clone());
    let result = tokio::time::timeout_at(deadline, post)
        .await
        .unwrap_or(Err(OutboundError::Timeout));
    match result {
        Ok(response) => {
            counters.answered.fetch_add(1, Ordering::Relaxed);
            SlipOutcome::Answered {
                status: response.status,
                body: response.body,
            }
        }
        Err(err) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            // The error never holds the URL (OutboundHttp strips it).
            tracing::debug!(app_id = %call.app_id, "WebSocket-over-HTTP call failed: {err}");
            SlipOutcome::Failed(err.to_string())
        }
    }
}

/// Answers on the link without waiting: a link whose queue is full is far behind; the engine's
/// own wait then ends the call.
fn answer(reply: &LinkWriter, call_id: u32, outcome: SlipOutcome, counters: &SlipCounters) {
    let message = LinkMessage::SlipAnswer { call_id, outcome };
    if reply.try_send(message).is_err() {
        counters.replies_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            call_id,
            "WebSocket-over-HTTP answer dropped: link queue full or closed"
        );
    }
}
