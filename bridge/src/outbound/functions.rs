//! Channel functions, the bridge side: an engine shard (the channel's owner) hands over a
//! published message with its channel's pipeline (`LinkMessage::FunctionRequest`); this module
//! POSTs the message to the first function's URL, each usable answer to the next function, and
//! answers `LinkMessage::FunctionResult` on the asking link. It owns the order (one channel's
//! pipelines run one after another, in arrival order; different channels run concurrently),
//! the reading of a function's answer (2xx with JSON text, or empty / `null` to keep the
//! message), the bounds on the pipelines a node holds (in all, in bytes, per channel, in time)
//! and the [`FunctionCounters`]. What the result means for the publish is the engine's business.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ringcast_core::limits::{FUNCTIONS_PER_PIPELINE_MAX, FUNCTION_CALL_TIMEOUT_MS};
use ringcast_core::link::{FunctionOutcome, FunctionRequest, LinkMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::counters::outcomes::FunctionCounters;
use crate::limits::{
    FUNCTION_CHANNEL_QUEUE_MAX, FUNCTION_CONCURRENT_PER_APP_MAX, FUNCTION_CONNECT_TIMEOUT_MS,
    FUNCTION_PIPELINES_MAX, FUNCTION_PIPELINES_PER_APP_MAX, FUNCTION_PIPELINE_BYTES_MAX,
    FUNCTION_PIPELINE_DEADLINE_MS, FUNCTION_RESPONSE_BYTES_MAX,
};
use crate::links::LinkWriter;
use crate::outbound::http::{OutboundError, OutboundHttp, OutboundLimits, OutboundResponse};
use crate::outbound::ordered::{
    Admission, KeyWorker, OrderBounds, OrderedJob, OrderedQueues, Refusal,
};

/// Limits of the channel functions' own [`OutboundHttp`]: a published message waits for every
/// call, so each gets the engine's short per-call deadline, connect retries included.
pub fn function_limits() -> OutboundLimits {
    OutboundLimits {
        request_timeout: Duration::from_millis(FUNCTION_CALL_TIMEOUT_MS),
        connect_timeout: Duration::from_millis(FUNCTION_CONNECT_TIMEOUT_MS),
        response_bytes_max: FUNCTION_RESPONSE_BYTES_MAX,
        concurrent_per_key_max: FUNCTION_CONCURRENT_PER_APP_MAX,
    }
}

/// One pipeline to run, and where to answer it.
#[derive(Debug)]
pub struct FunctionJob {
    /// The engine's request.
    pub request: FunctionRequest,
    /// The asking link's writer queue.
    pub reply: LinkWriter,
    /// When the link reader handed it over: the pipeline's deadline runs from here.
    pub received: Instant,
}

/// The handle a link reader hands requests to; cheap to clone.
#[derive(Debug, Clone)]
pub struct FunctionQueue {
    jobs: mpsc::Sender<FunctionJob>,
    counters: Arc<FunctionCounters>,
}

impl FunctionQueue {
    /// The handle on `jobs`, the queue [`run_functions`] drains (capacity
    /// [`FUNCTION_QUEUE_REQUESTS_MAX`](crate::limits::FUNCTION_QUEUE_REQUESTS_MAX)).
    pub fn new(jobs: mpsc::Sender<FunctionJob>, counters: Arc<FunctionCounters>) -> Self {
        Self { jobs, counters }
    }

    /// Hands `request` to the functions task without waiting: a link reader must not stall
    /// behind slow functions. When the queue is full (or the task is gone) the request fails on
    /// `reply` at once, so it is still answered exactly once.
    pub fn submit(&self, request: FunctionRequest, reply: &LinkWriter) {
        let job = FunctionJob {
            request,
            reply: reply.clone(),
            received: Instant::now(),
        };
        let (job, reason) = match self.jobs.try_send(job) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(job)) => {
                (job, "too many pipelines queued on this node")
            }
            Err(mpsc::error::TrySendError::Closed(job)) => {
                (job, "channel functions stopped on this node")
            }
        };
        self.counters.shed.fetch_add(1, Ordering::Relaxed);
        let outcome = FunctionOutcome::Failed(reason.to_owned());
        answer(&job.reply, job.request.request_id, outcome, &self.counters);
    }
}

/// The bounds on the pipelines of a node: the limits' in [`run_functions`], smaller in tests.
type PipelineBounds = OrderBounds;

fn pipeline_bounds() -> PipelineBounds {
    OrderBounds {
        jobs_max: FUNCTION_PIPELINES_MAX,
        app_jobs_max: FUNCTION_PIPELINES_PER_APP_MAX,
        bytes_max: FUNCTION_PIPELINE_BYTES_MAX,
        key_queue_max: FUNCTION_CHANNEL_QUEUE_MAX,
        deadline: Duration::from_millis(FUNCTION_PIPELINE_DEADLINE_MS),
    }
}

impl OrderedJob for FunctionJob {
    fn app_id(&self) -> &str {
        &self.request.app_id
    }

    fn order_key(&self) -> &str {
        &self.request.channel
    }

    fn held_bytes(&self) -> usize {
        request_bytes(&self.request)
    }

    fn received(&self) -> Instant {
        self.received
    }
}

/// Why a bound refused a pipeline, as the engine (and the admin room) hears it.
fn refusal_reason(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::Jobs => "too many pipelines queued on this node",
        Refusal::Bytes => "pipelines queued on this node hold too many bytes",
        Refusal::App => "too many pipelines queued for this app on this node",
        Refusal::Key => "too many messages queued for this channel's functions",
    }
}

/// Drains `jobs` until every [`FunctionQueue`] is dropped: each request is queued on its
/// channel (a worker task per busy channel runs the channel's pipelines in arrival order) or
/// refused at once past a bound, and answered exactly once. `http` should be built with
/// [`function_limits`]; its per-key namespace is `fn#{app_id}`.
pub async fn run_functions(
    jobs: mpsc::Receiver<FunctionJob>,
    http: OutboundHttp,
    counters: Arc<FunctionCounters>,
) {
    run_with_bounds(jobs, http, counters, pipeline_bounds()).await;
}

async fn run_with_bounds(
    mut jobs: mpsc::Receiver<FunctionJob>,
    http: OutboundHttp,
    counters: Arc<FunctionCounters>,
    bounds: PipelineBounds,
) {
    let queues = OrderedQueues::new(bounds);
    while let Some(job) = jobs.recv().await {
        match queues.admit(job) {
            Admission::Queued => {}
            Admission::NewKey(worker) => {
                tokio::spawn(drain_channel(worker, http.clone(), Arc::clone(&counters)));
            }
            Admission::Refused(job, refusal) => {
                let reason = refusal_reason(refusal);
                counters.shed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    app_id = %job.request.app_id,
                    request_id = job.request.request_id,
                    "function pipeline refused: {reason}"
                );
                let outcome = FunctionOutcome::Failed(reason.to_owned());
                answer(&job.reply, job.request.request_id, outcome, &counters);
            }
        }
    }
}

/// What a pipeline holds in memory beside the answers it reads: the message, the names and the
/// URLs.
fn request_bytes(request: &FunctionRequest) -> usize {
    let names = request.app_id.len() + request.channel.len();
    request
        .functions
        .iter()
        .fold(request.message.len() + names, |sum, (name, url)| {
            sum + name.len() + url.len()
        })
}

/// Runs one channel's pipelines one after another until its queue is empty.
async fn drain_channel(
    mut worker: KeyWorker<FunctionJob>,
    http: OutboundHttp,
    counters: Arc<FunctionCounters>,
) {
    while let Some(queued) = worker.next_job() {
        let job = &queued.job;
        let ended = run_pipeline(&http, job, queued.deadline).await;
        let request = &job.request;
        let outcome = match ended {
            Ended::Done(result) => {
                counters.done.fetch_add(1, Ordering::Relaxed);
                FunctionOutcome::Done(result)
            }
            Ended::Failed(reason) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    app_id = %request.app_id,
                    request_id = request.request_id,
                    "function pipeline failed: {reason}"
                );
                FunctionOutcome::Failed(reason)
            }
            Ended::Shed(reason) => {
                counters.shed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    app_id = %request.app_id,
                    request_id = request.request_id,
                    "function pipeline refused: {reason}"
                );
                FunctionOutcome::Failed(reason)
            }
        };
        answer(&job.reply, request.request_id, outcome, &counters);
        // Counted out once answered, so the bounds cover the pipeline until then.
        drop(queued);
    }
}

/// How a pipeline ended, for the counters (the engine sees `Done` or `Failed`).
enum Ended {
    /// Every function answered; the last change (empty: none).
    Done(Bytes),
    /// A function failed; why, naming it.
    Failed(String),
    /// Nothing was called; why.
    Shed(String),
}

/// Calls the functions in order, each with the previous one's result, until one fails.
async fn run_pipeline(http: &OutboundHttp, job: &FunctionJob, deadline: Instant) -> Ended {
    let request = &job.request;
    // A shard that linked again has forgotten this request: calling on its behalf would only
    // repeat the functions' side effects.
    if job.reply.is_closed() {
        return Ended::Shed("the asking link is gone".to_owned());
    }
    // The link's decoder already refuses longer pipelines; checked here too, so that the time
    // bound below does not rest on the codec.
    if request.functions.len() > FUNCTIONS_PER_PIPELINE_MAX {
        return Ended::Shed(format!(
            "{} functions in one pipeline, more than {FUNCTIONS_PER_PIPELINE_MAX}",
            request.functions.len()
        ));
    }
    let key = format!("fn#{}", request.app_id);
    let headers = [("Content-Type".to_owned(), "application/json".to_owned())];
    let mut current = request.message.clone();
    let mut changed = false;
    for (index, (name, url)) in request.functions.iter().enumerate() {
        if Instant::now() >= deadline {
            let reason =
                format!("function {name:?} not called: the message waited too long on this node");
            return if index == 0 {
                Ended::Shed(reason)
            } else {
                Ended::Failed(reason)
            };
        }
        // The call's own deadline covers its permit wait and connect retries; the pipeline's
        // covers the time the message already spent queued.
        let call = http.post_retrying_connect(&key, url, &headers, current.clone());
        let result = tokio::time::timeout_at(deadline, call)
            .await
            .unwrap_or_else(|_elapsed| Err(OutboundError::Timeout));
        match read_answer(name, result) {
            Ok(Some(next)) => {
                current = next;
                changed = true;
            }
            Ok(None) => {}
            Err(reason) => return Ended::Failed(reason),
        }
    }
    Ended::Done(if changed { current } else { Bytes::new() })
}

/// A function's answer: `Ok(Some)` the next input, `Ok(None)` keep the current one, `Err` why
/// the pipeline stops, naming the function (never its URL, which may carry a token, nor a body).
fn read_answer(
    name: &str,
    result: Result<OutboundResponse, OutboundError>,
) -> Result<Option<Bytes>, String> {
    let response = match result {
        Ok(response) => response,
        Err(OutboundError::Timeout) => return Err(format!("function {name:?} timed out")),
        Err(OutboundError::ResponseTooLarge { status }) if is_success(status) => {
            return Err(format!(
                "function {name:?} answered {status} with a body over {} KiB",
                FUNCTION_RESPONSE_BYTES_MAX / 1024
            ))
        }
        Err(OutboundError::ResponseTooLarge { status }) => {
            return Err(format!("function {name:?} answered {status}"))
        }
        Err(err @ (OutboundError::InvalidUrl(_) | OutboundError::InvalidHeader(_))) => {
            return Err(format!("function {name:?} cannot be called: {err}"))
        }
        // The error never holds the URL (OutboundHttp strips it).
        Err(err) => return Err(format!("function {name:?} did not answer: {err}")),
    };
    if !is_success(response.status) {
        return Err(format!("function {name:?} answered {}", response.status));
    }
    let body = trim_json_whitespace(&response.body);
    if body.is_empty() || body[..] == *b"null" {
        return Ok(None);
    }
    // The engine publishes this as JSON text: whole UTF-8 and one JSON value, nothing after it.
    let valid = std::str::from_utf8(&body).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
    if !valid {
        return Err(format!("function {name:?} answered with invalid JSON"));
    }
    Ok(Some(body))
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// `body` without JSON's insignificant whitespace around it (sharing its memory).
fn trim_json_whitespace(body: &Bytes) -> Bytes {
    let is_space = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
    let start = body
        .iter()
        .position(|byte| !is_space(byte))
        .unwrap_or(body.len());
    let end = body
        .iter()
        .rposition(|byte| !is_space(byte))
        .map_or(start, |last| last + 1);
    body.slice(start..end)
}

/// Answers on the link without waiting: a link whose queue is full is far behind; the engine's
/// own wait then ends the message's pipeline.
fn answer(
    reply: &LinkWriter,
    request_id: u32,
    outcome: FunctionOutcome,
    counters: &FunctionCounters,
) {
    let message = LinkMessage::FunctionResult {
        request_id,
        outcome,
    };
    if reply.try_send(message).is_err() {
        counters.replies_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            request_id,
            "function result dropped: link queue full or closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::limits::FUNCTION_QUEUE_REQUESTS_MAX;
    use crate::outbound::http::test_receiver::{Recorded, Reply, TestReceiver};

    /// Waits this long at most for anything in a test (a noisy VM can be slow; nothing here
    /// asserts on speed).
    const TEST_WAIT: Duration = Duration::from_secs(20);

    /// The message every pipeline of these tests starts from.
    const MESSAGE: &str = r#"{"text":"hello"}"#;

    /// The test functions, by path: `/upper` upper-cases the message, `/append` adds a field,
    /// `/jitter` adds it after 0 to 30 ms, `/empty` and `/null` keep the message, `/fail`
    /// answers 500, `/garbage` and `/latin1` answer what is not JSON text, `/big` answers 2 KiB,
    /// `/slow` answers only once released.
    async fn functions_receiver() -> TestReceiver {
        let jitter = ahash::RandomState::new();
        TestReceiver::start(
            move |request: &Recorded, index| match request.path.as_str() {
                "/upper" => Reply::Body(200, request.body.to_ascii_uppercase()),
                "/append" => Reply::Body(200, appended(&request.body)),
                "/jitter" => {
                    let delay = Duration::from_millis(jitter.hash_one(index) % 31);
                    Reply::BodyAfter(delay, 200, appended(&request.body))
                }
                "/empty" => Reply::Status(200),
                "/null" => Reply::Body(200, b" null\n".to_vec()),
                "/fail" => Reply::Body(500, b"{\"error\":\"boom\"}".to_vec()),
                "/garbage" => Reply::Body(200, b"{\"text\":".to_vec()),
                "/latin1" => Reply::Body(200, b"\"caf\xe9\"".to_vec()),
                "/big" => Reply::Body(200, format!("\"{}\"", "x".repeat(2048)).into_bytes()),
                _ => Reply::Hold,
            },
        )
        .await
    }

    /// `{...}` with `"seen":2` added at the end.
    fn appended(body: &[u8]) -> Vec<u8> {
        let mut out = body.strip_suffix(b"}").unwrap_or(body).to_vec();
        out.extend_from_slice(b",\"seen\":2}");
        out
    }

    fn request(
        request_id: u32,
        channel: &str,
        message: &str,
        functions: &[(&str, String)],
    ) -> FunctionRequest {
        FunctionRequest {
            request_id,
            app_id: "app-1".to_owned(),
            channel: channel.to_owned(),
            message: Bytes::from(message.to_owned()),
            functions: functions
                .iter()
                .map(|(name, url)| ((*name).to_owned(), url.clone()))
                .collect(),
        }
    }

    /// A functions task with `limits` and `bounds`, its queue handle, and one link's writer
    /// queue.
    struct Harness {
        queue: FunctionQueue,
        jobs: mpsc::Sender<FunctionJob>,
        link: mpsc::Receiver<LinkMessage>,
        writer: LinkWriter,
        counters: Arc<FunctionCounters>,
    }

    fn start(limits: OutboundLimits, bounds: PipelineBounds) -> Harness {
        let counters = Arc::new(FunctionCounters::default());
        let (jobs_sender, jobs) = mpsc::channel(FUNCTION_QUEUE_REQUESTS_MAX);
        let http = OutboundHttp::new(limits).expect("client builds");
        tokio::spawn(run_with_bounds(jobs, http, Arc::clone(&counters), bounds));
        let (writer, link) = mpsc::channel(4096);
        Harness {
            queue: FunctionQueue::new(jobs_sender.clone(), Arc::clone(&counters)),
            jobs: jobs_sender,
            link,
            writer,
            counters,
        }
    }

    fn start_default() -> Harness {
        start(function_limits(), pipeline_bounds())
    }

    /// With `bounds` and calls that may wait 30 s: for tests that hold a function's answer.
    fn start_patient(bounds: PipelineBounds) -> Harness {
        let limits = OutboundLimits {
            request_timeout: Duration::from_secs(30),
            ..function_limits()
        };
        start(limits, bounds)
    }

    impl Harness {
        fn submit(&self, request: FunctionRequest) {
            self.queue.submit(request, &self.writer);
        }

        /// Hands over `request` as if it had arrived `ago`.
        async fn submit_received(&self, request: FunctionRequest, ago: Duration) {
            let job = FunctionJob {
                request,
                reply: self.writer.clone(),
                received: Instant::now()
                    .checked_sub(ago)
                    .expect("the clock has run longer than that"),
            };
            self.jobs.send(job).await.expect("task runs");
        }

        /// The next answer on the link: (request id, outcome).
        async fn answer(&mut self) -> (u32, FunctionOutcome) {
            let message = tokio::time::timeout(TEST_WAIT, self.link.recv())
                .await
                .expect("an answer arrives")
                .expect("link open");
            match message {
                LinkMessage::FunctionResult {
                    request_id,
                    outcome,
                } => (request_id, outcome),
                other => panic!("not a FunctionResult: {other:?}"),
            }
        }

        /// The one answer to the one submitted request.
        async fn only_answer(&mut self, request_id: u32) -> FunctionOutcome {
            let (id, outcome) = self.answer().await;
            assert_eq!(id, request_id);
            outcome
        }

        fn count(&self, counter: fn(&FunctionCounters) -> &AtomicU64) -> u64 {
            counter(&self.counters).load(Ordering::Relaxed)
        }
    }

    fn done(text: &str) -> FunctionOutcome {
        FunctionOutcome::Done(Bytes::from(text.to_owned()))
    }

    fn failed(reason: &str) -> FunctionOutcome {
        FunctionOutcome::Failed(reason.to_owned())
    }

    /// Waits until `condition` holds, failing the test after [`TEST_WAIT`].
    async fn eventually(condition: impl Fn() -> bool) {
        let deadline = Instant::now() + TEST_WAIT;
        while !condition() {
            assert!(Instant::now() < deadline, "condition not met in time");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn two_functions_transform_the_message_in_order() {
        let receiver = functions_receiver().await;
        let mut harness = start_default();
        let functions = [
            ("upper", receiver.url("/upper")),
            ("append", receiver.url("/append")),
        ];
        harness.submit(request(7, "chat", MESSAGE, &functions));
        assert_eq!(
            harness.only_answer(7).await,
            done(r#"{"TEXT":"HELLO","seen":2}"#)
        );
        let requests = receiver.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].path, "/upper");
        assert_eq!(requests[0].body, MESSAGE.as_bytes());
        assert_eq!(requests[1].path, "/append");
        assert_eq!(requests[1].body, br#"{"TEXT":"HELLO"}"#);
        for seen in &requests {
            assert_eq!(seen.method, "POST");
            assert_eq!(seen.header_values("content-type"), ["application/json"]);
        }
        assert_eq!(harness.count(|c| &c.done), 1);
        assert_eq!(harness.count(|c| &c.failed), 0);
    }

    #[tokio::test]
    async fn an_empty_or_null_answer_keeps_the_message() {
        let receiver = functions_receiver().await;
        let mut harness = start_default();
        let keep_all = [
            ("empty", receiver.url("/empty")),
            ("null", receiver.url("/null")),
        ];
        harness.submit(request(1, "chat", MESSAGE, &keep_all));
        // Nothing changed: empty, which the engine reads as "publish the message as it was".
        assert_eq!(harness.only_answer(1).await, done(""));
        let keep_the_change = [
            ("upper", receiver.url("/upper")),
            ("null", receiver.url("/null")),
            ("empty", receiver.url("/empty")),
        ];
        harness.submit(request(2, "chat", MESSAGE, &keep_the_change));
        assert_eq!(harness.only_answer(2).await, done(r#"{"TEXT":"HELLO"}"#));
        let bodies: Vec<(String, Vec<u8>)> = receiver
            .requests()
            .into_iter()
            .map(|seen| (seen.path, seen.body))
            .collect();
        let upper = br#"{"TEXT":"HELLO"}"#.to_vec();
        assert_eq!(
            bodies,
            [
                ("/empty".to_owned(), MESSAGE.as_bytes().to_vec()),
                ("/null".to_owned(), MESSAGE.as_bytes().to_vec()),
                ("/upper".to_owned(), MESSAGE.as_bytes().to_vec()),
                ("/null".to_owned(), upper.clone()),
                ("/empty".to_owned(), upper),
            ]
        );
        assert_eq!(harness.count(|c| &c.done), 2);
    }

    #[tokio::test]
    async fn a_failing_function_stops_the_pipeline_and_is_named() {
        let receiver = functions_receiver().await;
        let mut harness = start_default();
        let functions = [
            ("upper", receiver.url("/upper")),
            ("broken", receiver.url("/fail")),
            ("append", receiver.url("/append")),
        ];
        harness.submit(request(3, "chat", MESSAGE, &functions));
        assert_eq!(
            harness.only_answer(3).await,
            failed(r#"function "broken" answered 500"#)
        );
        let paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(
            paths,
            ["/upper", "/fail"],
            "nothing called after the failure"
        );
        assert_eq!(harness.count(|c| &c.failed), 1);
        assert_eq!(harness.count(|c| &c.done), 0);
    }

    #[tokio::test]
    async fn a_slow_function_times_out() {
        let receiver = functions_receiver().await;
        let mut harness = start(
            OutboundLimits {
                request_timeout: Duration::from_millis(300),
                ..function_limits()
            },
            pipeline_bounds(),
        );
        let functions = [("slow", receiver.url("/slow?token=s3cret"))];
        harness.submit(request(4, "chat", MESSAGE, &functions));
        assert_eq!(
            harness.only_answer(4).await,
            failed(r#"function "slow" timed out"#)
        );
        assert_eq!(harness.count(|c| &c.failed), 1);
    }

    #[tokio::test]
    async fn an_answer_that_is_not_json_text_fails() {
        let receiver = functions_receiver().await;
        let mut harness = start(
            OutboundLimits {
                response_bytes_max: 1024,
                ..function_limits()
            },
            pipeline_bounds(),
        );
        // One channel, so the answers come in this order.
        for (id, (name, path)) in [
            ("garbage", "/garbage"),
            ("latin1", "/latin1"),
            ("big", "/big"),
        ]
        .into_iter()
        .enumerate()
        {
            let functions = [(name, receiver.url(path))];
            harness.submit(request(id as u32, "chat", MESSAGE, &functions));
        }
        assert_eq!(
            harness.only_answer(0).await,
            failed(r#"function "garbage" answered with invalid JSON"#)
        );
        assert_eq!(
            harness.only_answer(1).await,
            failed(r#"function "latin1" answered with invalid JSON"#)
        );
        let FunctionOutcome::Failed(reason) = harness.only_answer(2).await else {
            panic!("a body over the bound is not a result");
        };
        assert!(
            reason.starts_with(r#"function "big" answered 200 with a body over"#),
            "{reason}"
        );
        assert_eq!(harness.count(|c| &c.failed), 3);
    }

    #[tokio::test]
    async fn an_unreachable_function_fails_without_its_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let mut harness = start(
            OutboundLimits {
                request_timeout: Duration::from_millis(500),
                ..function_limits()
            },
            pipeline_bounds(),
        );
        let functions = [("gone", format!("http://{addr}/fn?token=s3cret"))];
        harness.submit(request(5, "chat", MESSAGE, &functions));
        let FunctionOutcome::Failed(reason) = harness.only_answer(5).await else {
            panic!("nobody answered");
        };
        // Refused connects are retried until the call's deadline, which may end them first.
        assert!(
            reason.starts_with(r#"function "gone" did not answer: "#)
                || reason == r#"function "gone" timed out"#,
            "{reason}"
        );
        assert!(!reason.contains("s3cret"), "{reason}");
        assert_eq!(harness.count(|c| &c.failed), 1);
    }

    #[tokio::test]
    async fn one_channels_messages_run_one_at_a_time_in_order() {
        let receiver = functions_receiver().await;
        let mut harness = start_default();
        let functions = [("jitter", receiver.url("/jitter"))];
        let message = |n: u32| format!(r#"{{"n":{n}}}"#);
        for n in 0..20 {
            harness.submit(request(n, "ordered", &message(n), &functions));
        }
        for n in 0..20 {
            let (id, outcome) = harness.answer().await;
            assert_eq!(id, n, "answers come in submission order");
            assert_eq!(outcome, done(&format!(r#"{{"n":{n},"seen":2}}"#)));
        }
        let bodies: Vec<Vec<u8>> = receiver.requests().into_iter().map(|r| r.body).collect();
        let sent: Vec<Vec<u8>> = (0..20).map(|n| message(n).into_bytes()).collect();
        assert_eq!(bodies, sent, "the function saw them in submission order");
        assert_eq!(receiver.open_max("/jitter"), 1, "never two at once");
        assert_eq!(harness.count(|c| &c.done), 20);
    }

    #[tokio::test]
    async fn different_channels_run_concurrently() {
        let receiver = functions_receiver().await;
        let mut harness = start_patient(pipeline_bounds());
        harness.submit(request(
            1,
            "held",
            MESSAGE,
            &[("slow", receiver.url("/slow"))],
        ));
        eventually(|| receiver.request_count() == 1).await;
        harness.submit(request(
            2,
            "free",
            MESSAGE,
            &[("upper", receiver.url("/upper"))],
        ));
        // The free channel is answered while the held one's function still holds its call.
        assert_eq!(harness.only_answer(2).await, done(r#"{"TEXT":"HELLO"}"#));
        receiver.release();
        // Released: an empty 200, the message kept.
        assert_eq!(harness.only_answer(1).await, done(""));
    }

    #[tokio::test]
    async fn bounds_refuse_at_once_with_a_reason_and_come_back() {
        let receiver = functions_receiver().await;
        let mut harness = start_patient(PipelineBounds {
            jobs_max: 3,
            app_jobs_max: 3,
            bytes_max: 1024,
            key_queue_max: 1,
            deadline: Duration::from_secs(30),
        });
        let slow = [("slow", receiver.url("/slow"))];
        // Channel a: one running (its call seen), one waiting, the next one refused.
        harness.submit(request(1, "a", MESSAGE, &slow));
        eventually(|| receiver.request_count() == 1).await;
        harness.submit(request(2, "a", MESSAGE, &slow));
        harness.submit(request(3, "a", MESSAGE, &slow));
        assert_eq!(
            harness.only_answer(3).await,
            failed("too many messages queued for this channel's functions")
        );
        // Too many bytes, whatever the channel.
        let big = format!("\"{}\"", "x".repeat(2048));
        harness.submit(request(4, "b", &big, &slow));
        assert_eq!(
            harness.only_answer(4).await,
            failed("pipelines queued on this node hold too many bytes")
        );
        // Channel b: running; then the node holds three.
        harness.submit(request(5, "b", MESSAGE, &slow));
        eventually(|| receiver.request_count() == 2).await;
        harness.submit(request(6, "c", MESSAGE, &slow));
        assert_eq!(
            harness.only_answer(6).await,
            failed("too many pipelines queued on this node")
        );
        assert_eq!(harness.count(|c| &c.shed), 3);

        // Released, every admitted pipeline gets its one answer (an empty 200 keeps the message).
        receiver.release();
        let mut answers = HashMap::new();
        while answers.len() < 3 {
            let (id, outcome) = harness.answer().await;
            assert!(answers.insert(id, outcome).is_none(), "{id} answered twice");
        }
        assert_eq!(
            answers,
            HashMap::from([(1, done("")), (2, done("")), (5, done(""))])
        );
        assert_eq!(harness.count(|c| &c.done), 3);
        // Their slots came back: the node takes pipelines again.
        harness.submit(request(
            7,
            "c",
            MESSAGE,
            &[("upper", receiver.url("/upper"))],
        ));
        assert_eq!(harness.only_answer(7).await, done(r#"{"TEXT":"HELLO"}"#));
    }

    #[tokio::test]
    async fn one_app_cannot_take_every_slot_of_the_node() {
        let receiver = functions_receiver().await;
        let mut harness = start_patient(PipelineBounds {
            app_jobs_max: 2,
            ..pipeline_bounds()
        });
        let slow = [("slow", receiver.url("/slow"))];
        // The flooding app's two pipelines run (on two channels); its third is refused.
        harness.submit(request(1, "a", MESSAGE, &slow));
        harness.submit(request(2, "b", MESSAGE, &slow));
        eventually(|| receiver.request_count() == 2).await;
        harness.submit(request(3, "c", MESSAGE, &slow));
        assert_eq!(
            harness.only_answer(3).await,
            failed("too many pipelines queued for this app on this node")
        );
        // Another app still gets its pipeline run.
        let mut other = request(4, "a", MESSAGE, &[("upper", receiver.url("/upper"))]);
        other.app_id = "app-2".to_owned();
        harness.submit(other);
        assert_eq!(harness.only_answer(4).await, done(r#"{"TEXT":"HELLO"}"#));
        // Released, the flooding app's slots come back.
        receiver.release();
        let mut answered = [harness.answer().await.0, harness.answer().await.0];
        answered.sort_unstable();
        assert_eq!(answered, [1, 2]);
        harness.submit(request(
            5,
            "c",
            MESSAGE,
            &[("upper", receiver.url("/upper"))],
        ));
        assert_eq!(harness.only_answer(5).await, done(r#"{"TEXT":"HELLO"}"#));
    }

    #[tokio::test]
    async fn a_pipeline_past_its_deadline_is_not_run_and_a_late_call_times_out() {
        let receiver = functions_receiver().await;
        let mut harness = start_patient(pipeline_bounds());
        let deadline = Duration::from_millis(FUNCTION_PIPELINE_DEADLINE_MS);
        // Arrived (as if queued) longer ago than the deadline: nothing is called.
        let upper = [("upper", receiver.url("/upper"))];
        harness
            .submit_received(request(1, "chat", MESSAGE, &upper), deadline * 2)
            .await;
        assert_eq!(
            harness.only_answer(1).await,
            failed(r#"function "upper" not called: the message waited too long on this node"#)
        );
        assert_eq!(receiver.request_count(), 0);
        assert_eq!(harness.count(|c| &c.shed), 1);
        // A call still open at the pipeline's deadline ends there, well before its own.
        let slow = [("slow", receiver.url("/slow"))];
        let ago = deadline - Duration::from_millis(300);
        harness
            .submit_received(request(2, "chat", MESSAGE, &slow), ago)
            .await;
        assert_eq!(
            harness.only_answer(2).await,
            failed(r#"function "slow" timed out"#)
        );
        assert_eq!(harness.count(|c| &c.failed), 1);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        let counters = Arc::new(FunctionCounters::default());
        // Nobody drains this queue of one.
        let (jobs_sender, _jobs) = mpsc::channel(1);
        let queue = FunctionQueue::new(jobs_sender, Arc::clone(&counters));
        let (writer, mut link) = mpsc::channel(8);
        let functions = [("upper", "http://127.0.0.1:9/".to_owned())];
        queue.submit(request(1, "chat", MESSAGE, &functions), &writer);
        queue.submit(request(2, "chat", MESSAGE, &functions), &writer);
        match link.try_recv() {
            Ok(LinkMessage::FunctionResult {
                request_id: 2,
                outcome: FunctionOutcome::Failed(reason),
            }) => assert_eq!(reason, "too many pipelines queued on this node"),
            other => panic!("expected a refusal of 2, got {other:?}"),
        }
        assert!(link.try_recv().is_err(), "job 1 waits in the queue");
        assert_eq!(counters.shed.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_gone_link_is_not_called_for() {
        let receiver = functions_receiver().await;
        let harness = start_default();
        let (writer, link) = mpsc::channel(8);
        drop(link);
        let functions = [("upper", receiver.url("/upper"))];
        harness
            .queue
            .submit(request(1, "chat", MESSAGE, &functions), &writer);
        eventually(|| harness.count(|c| &c.replies_dropped) == 1).await;
        assert_eq!(harness.count(|c| &c.shed), 1);
        assert_eq!(receiver.request_count(), 0);
    }

    #[test]
    fn answers_are_read_as_json_text() {
        let ok = |status: u16, body: &'static [u8]| {
            read_answer(
                "f",
                Ok(OutboundResponse {
                    status,
                    body: Bytes::from_static(body),
                }),
            )
        };
        assert_eq!(
            ok(200, b" \r\n{\"a\":[1,2]}\t\n"),
            Ok(Some(Bytes::from_static(b"{\"a\":[1,2]}")))
        );
        assert_eq!(
            ok(201, b"\"text\""),
            Ok(Some(Bytes::from_static(b"\"text\"")))
        );
        assert_eq!(ok(200, b"42"), Ok(Some(Bytes::from_static(b"42"))));
        for keep in [&b""[..], b"   ", b"null", b"\n null \n"] {
            assert_eq!(ok(200, keep), Ok(None), "{keep:?}");
            assert_eq!(ok(204, keep), Ok(None), "{keep:?}");
        }
        let invalid = Err(r#"function "f" answered with invalid JSON"#.to_owned());
        for body in [
            &b"nul"[..],
            b"{} {}",
            b"{\"a\":}",
            b"<html>ok</html>",
            b"\"caf\xe9\"",
            b"NULL",
        ] {
            assert_eq!(ok(200, body), invalid, "{body:?}");
        }
        assert_eq!(ok(302, b""), Err(r#"function "f" answered 302"#.to_owned()));
        assert_eq!(
            ok(404, b"null"),
            Err(r#"function "f" answered 404"#.to_owned())
        );
        assert_eq!(
            read_answer("f", Err(OutboundError::Timeout)),
            Err(r#"function "f" timed out"#.to_owned())
        );
        assert_eq!(
            read_answer("f", Err(OutboundError::ResponseTooLarge { status: 503 })),
            Err(r#"function "f" answered 503"#.to_owned())
        );
        assert_eq!(
            read_answer("f", Err(OutboundError::InvalidUrl("no host".to_owned()))),
            Err(r#"function "f" cannot be called: invalid URL: no host"#.to_owned())
        );
    }

    #[test]
    fn request_bytes_count_message_names_and_urls() {
        let functions = [("ab", "http://x/".to_owned())];
        // 6 (message) + 5 (app-1) + 4 (chat) + 2 + 9.
        assert_eq!(
            request_bytes(&request(1, "chat", "\"hi!\" ", &functions)),
            26
        );
    }
}
