//! Auth offload, the bridge side: an engine shard asks (`LinkMessage::AuthRequest`) for a
//! private or presence subscription that came without `auth`; this module POSTs the form
//! pusher-js would send to the app's `app_channel_authorization_url`, turns the endpoint's
//! answer into an [`AuthOutcome`] and answers `LinkMessage::AuthResponse` on the asking link.
//! It owns the shape of that request (form body, which upgrade headers are forwarded), the
//! reading of the answer, the bounds on authorizations in flight (per app and in all), and the
//! [`AuthCounters`]. The signature in a granted `auth` is checked by the engine, not here.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ahash::AHashMap;
use bytes::Bytes;
use reqwest::header::{HeaderName, HeaderValue};
use ringcast_core::link::{AuthOutcome, AuthRequest, LinkMessage};
use tokio::sync::mpsc;

use crate::counters::outcomes::AuthCounters;
use crate::limits::{
    AUTH_CONCURRENT_PER_APP_MAX, AUTH_CONNECT_TIMEOUT_MS, AUTH_IN_FLIGHT_PER_APP_MAX,
    AUTH_IN_FLIGHT_TOTAL_MAX, AUTH_REASON_EXCERPT_CHARS_MAX, AUTH_REQUEST_TIMEOUT_MS,
    AUTH_RESPONSE_BYTES_MAX,
};
use crate::links::LinkWriter;
use crate::outbound::http::{OutboundError, OutboundHttp, OutboundLimits};

/// Status reported when a 2xx answer holds no usable `auth` (the endpoint, a gateway's
/// upstream, answered badly).
const INVALID_ANSWER_STATUS: u16 = 502;
/// Status reported when the bridge itself has no room for one more authorization.
const BRIDGE_BUSY_STATUS: u16 = 503;
/// Status reported when an app has [`AUTH_IN_FLIGHT_PER_APP_MAX`] authorizations open.
const APP_BUSY_STATUS: u16 = 429;

/// Upgrade-request headers never forwarded: hop-by-hop and framing ones describe the client's
/// connection to the engine, not this request (the client sets its own), and forwarding
/// `Accept-Encoding` would invite a compressed answer this client does not decode.
const HEADERS_NOT_FORWARDED: [&str; 14] = [
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "proxy-connection",
    "accept-encoding",
    "http2-settings",
];

/// Limits of the auth offload's own [`OutboundHttp`] (not the webhooks'): an auth answer is
/// awaited by a subscriber, so it gets a short deadline and a small body.
pub fn auth_limits() -> OutboundLimits {
    OutboundLimits {
        request_timeout: Duration::from_millis(AUTH_REQUEST_TIMEOUT_MS),
        connect_timeout: Duration::from_millis(AUTH_CONNECT_TIMEOUT_MS),
        response_bytes_max: AUTH_RESPONSE_BYTES_MAX,
        concurrent_per_key_max: AUTH_CONCURRENT_PER_APP_MAX,
    }
}

/// One authorization to do, and where to answer it.
#[derive(Debug)]
pub struct AuthJob {
    /// The engine's request.
    pub request: AuthRequest,
    /// The asking link's writer queue.
    pub reply: LinkWriter,
}

/// The handle a link reader hands requests to; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthQueue {
    jobs: mpsc::Sender<AuthJob>,
    counters: Arc<AuthCounters>,
}

impl AuthQueue {
    /// The handle on `jobs`, the queue [`run_auth`] drains (capacity [`AUTH_QUEUE_REQUESTS_MAX`](crate::limits::AUTH_QUEUE_REQUESTS_MAX)).
    pub fn new(jobs: mpsc::Sender<AuthJob>, counters: Arc<AuthCounters>) -> Self {
        Self { jobs, counters }
    }

    /// Hands `request` to the auth task without waiting: a link reader must not stall behind
    /// slow endpoints. When the queue is full (or the task is gone) the request is refused on
    /// `reply` at once, so it is still answered exactly once.
    pub fn submit(&self, request: AuthRequest, reply: &LinkWriter) {
        let job = AuthJob {
            request,
            reply: reply.clone(),
        };
        let (job, reason) = match self.jobs.try_send(job) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(job)) => {
                (job, "too many authorizations queued on this node")
            }
            Err(mpsc::error::TrySendError::Closed(job)) => (job, "authorization offload stopped"),
        };
        self.counters.shed.fetch_add(1, Ordering::Relaxed);
        let outcome = AuthOutcome::Refused {
            status: BRIDGE_BUSY_STATUS,
            reason: reason.to_owned(),
        };
        answer(&job.reply, job.request.request_id, outcome, &self.counters);
    }
}

/// Authorizations open right now, per app and in all. Shared between [`run_auth`] (which
/// counts a job in) and the job's task (whose [`InFlightSlot`] counts it out).
#[derive(Debug, Default)]
struct InFlight {
    by_app: AHashMap<String, usize>,
    total: usize,
}

/// One job's place in [`InFlight`]; released on drop, so also when the task is aborted.
struct InFlightSlot {
    in_flight: Arc<Mutex<InFlight>>,
    app_id: String,
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.in_flight);
        in_flight.total = in_flight.total.saturating_sub(1);
        if let Some(count) = in_flight.by_app.get_mut(&self.app_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Idle apps leave the map: it never holds more than the jobs in flight.
                in_flight.by_app.remove(&self.app_id);
            }
        }
    }
}

/// A poisoned lock only means a holder panicked between two plain integer updates.
fn lock(in_flight: &Mutex<InFlight>) -> std::sync::MutexGuard<'_, InFlight> {
    in_flight
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes a slot for `app_id`, or says why there is none.
fn take_slot(
    in_flight: &Arc<Mutex<InFlight>>,
    app_id: &str,
) -> Result<InFlightSlot, (u16, &'static str)> {
    let mut guard = lock(in_flight);
    if guard.total >= AUTH_IN_FLIGHT_TOTAL_MAX {
        return Err((
            BRIDGE_BUSY_STATUS,
            "too many authorizations in flight on this node",
        ));
    }
    let count = guard.by_app.get(app_id).copied().unwrap_or(0);
    if count >= AUTH_IN_FLIGHT_PER_APP_MAX {
        return Err((
            APP_BUSY_STATUS,
            "too many authorizations in flight for this app",
        ));
    }
    guard.by_app.insert(app_id.to_owned(), count + 1);
    guard.total += 1;
    Ok(InFlightSlot {
        in_flight: Arc::clone(in_flight),
        app_id: app_id.to_owned(),
    })
}

/// Drains `jobs` until every [`AuthQueue`] is dropped, one task per job, each answered exactly
/// once. `http` should be built with [`auth_limits`]; its per-key namespace is `auth#{app_id}`.
pub async fn run_auth(
    mut jobs: mpsc::Receiver<AuthJob>,
    http: OutboundHttp,
    counters: Arc<AuthCounters>,
) {
    let in_flight = Arc::new(Mutex::new(InFlight::default()));
    while let Some(job) = jobs.recv().await {
        let slot = match take_slot(&in_flight, &job.request.app_id) {
            Ok(slot) => slot,
            Err((status, reason)) => {
                counters.shed.fetch_add(1, Ordering::Relaxed);
                let outcome = AuthOutcome::Refused {
                    status,
                    reason: reason.to_owned(),
                };
                answer(&job.reply, job.request.request_id, outcome, &counters);
                continue;
            }
        };
        let http = http.clone();
        let counters = Arc::clone(&counters);
        tokio::spawn(async move {
            let _slot = slot;
            let AuthJob { request, reply } = job;
            let outcome = authorize(&http, &request, &counters).await;
            answer(&reply, request.request_id, outcome, &counters);
        });
    }
}

/// Asks the endpoint and counts the result.
async fn authorize(
    http: &OutboundHttp,
    request: &AuthRequest,
    counters: &AuthCounters,
) -> AuthOutcome {
    let key = format!("auth#{}", request.app_id);
    let body = Bytes::from(form_body(
        &request.socket_id,
        &request.channel,
        &request.form,
    ));
    let mut headers = forwarded_headers(&request.headers);
    headers.push((
        "Content-Type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    ));
    let result = http
        .post_retrying_connect(&key, &request.url, &headers, body)
        .await;
    let outcome = match result {
        Ok(response) => outcome_of(response.status, &response.body),
        Err(OutboundError::ResponseTooLarge { status }) => AuthOutcome::Refused {
            status: if is_success(status) {
                INVALID_ANSWER_STATUS
            } else {
                status
            },
            reason: format!(
                "authorization endpoint answered {status} with a body over {} KiB",
                AUTH_RESPONSE_BYTES_MAX / 1024
            ),
        },
        Err(err) => {
            // The error never holds the URL or a header value (OutboundHttp strips them).
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                app_id = %request.app_id,
                request_id = request.request_id,
                "authorization endpoint did not answer: {err}"
            );
            return AuthOutcome::Refused {
                status: 0,
                reason: format!("authorization endpoint did not answer: {err}"),
            };
        }
    };
    match &outcome {
        AuthOutcome::Granted { .. } => counters.granted.fetch_add(1, Ordering::Relaxed),
        AuthOutcome::Refused { status, reason } => {
            tracing::debug!(
                app_id = %request.app_id,
                request_id = request.request_id,
                status,
                "authorization refused: {reason}"
            );
            counters.refused.fetch_add(1, Ordering::Relaxed)
        }
    };
    outcome
}

/// Answers on the link without waiting: the reply is small, and a link whose queue is full is
/// far behind; the engine's own timeout answers the subscriber then.
fn answer(reply: &LinkWriter, request_id: u32, outcome: AuthOutcome, counters: &AuthCounters) {
    let message = LinkMessage::AuthResponse {
        request_id,
        outcome,
    };
    if reply.try_send(message).is_err() {
        counters.replies_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(request_id, "auth answer dropped: link queue full or closed");
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The body pusher-js POSTs to an auth endpoint: `socket_id` and `channel_name`, each encoded
/// like `encodeURIComponent`, then `form` (already URL-encoded by the engine) when not empty.
fn form_body(socket_id: &str, channel: &str, form: &str) -> String {
    let mut body = String::with_capacity(32 + socket_id.len() + channel.len() + form.len());
    body.push_str("socket_id=");
    encode_uri_component(socket_id, &mut body);
    body.push_str("&channel_name=");
    encode_uri_component(channel, &mut body);
    if !form.is_empty() {
        body.push('&');
        body.push_str(form);
    }
    body
}

/// JavaScript's `encodeURIComponent` (what pusher-js uses): keeps `A-Z a-z 0-9 - _ . ! ~ * ' ( )`
/// and percent-encodes every other UTF-8 byte, so a channel name's `=`, `@`, `,` and `;` (all
/// legal in Pusher channel names) arrive exactly as the endpoint's framework expects them.
fn encode_uri_component(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        let kept = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        if kept {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// The upgrade headers worth forwarding (cookies, authorization, origin, ...): without the
/// [`HEADERS_NOT_FORWARDED`] ones and `Sec-WebSocket-*`, and without any that could not be sent
/// (a browser's odd header must not cost the subscriber its authorization).
fn forwarded_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            !HEADERS_NOT_FORWARDED.contains(&lower.as_str())
                && !lower.starts_with("sec-websocket-")
                && HeaderName::from_bytes(name.as_bytes()).is_ok()
                && HeaderValue::from_str(value).is_ok()
        })
        .cloned()
        .collect()
}

/// Reads an endpoint's answer: 2xx with a JSON object holding a string `auth` (and optionally
/// `channel_data`, a JSON string or, leniently, an object) is granted; anything else refused.
fn outcome_of(status: u16, body: &[u8]) -> AuthOutcome {
    if !is_success(status) {
        let excerpt = printable_excerpt(body);
        let reason = if excerpt.is_empty() {
            format!("authorization endpoint answered {status}")
        } else {
            format!("authorization endpoint answered {status}: {excerpt}")
        };
        return AuthOutcome::Refused { status, reason };
    }
    match granted_fields(body) {
        Some((auth, channel_data)) => AuthOutcome::Granted { auth, channel_data },
        None => AuthOutcome::Refused {
            status: INVALID_ANSWER_STATUS,
            reason: "authorization endpoint answered without a valid auth".to_owned(),
        },
    }
}

/// `auth` and `channel_data` of a granting body, `None` when it is not one.
fn granted_fields(body: &[u8]) -> Option<(String, String)> {
    let serde_json::Value::Object(mut object) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    let auth = match object.remove("auth")? {
        serde_json::Value::String(auth) if !auth.is_empty() => auth,
        _ => return None,
    };
    let channel_data = match object.remove("channel_data") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(text)) => text,
        // Some backends return the member as an object; its JSON text is what pusher-js would
        // have sent on.
        Some(member @ serde_json::Value::Object(_)) => member.to_string(),
        Some(_) => return None,
    };
    Some((auth, channel_data))
}

/// The start of a refusing body, fit for a reason shown to a subscriber: at most
/// [`AUTH_REASON_EXCERPT_CHARS_MAX`] characters, control characters (newlines included) as spaces,
/// whitespace runs collapsed, invalid UTF-8 replaced.
fn printable_excerpt(body: &[u8]) -> String {
    // Enough bytes for the longest excerpt in any encoding; the rest is never decoded.
    let head = &body[..body.len().min(AUTH_REASON_EXCERPT_CHARS_MAX * 4)];
    let text = String::from_utf8_lossy(head);
    let mut excerpt = String::new();
    let mut chars = 0;
    let mut space_pending = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            space_pending = !excerpt.is_empty();
            continue;
        }
        let needed = if space_pending { 2 } else { 1 };
        if chars + needed > AUTH_REASON_EXCERPT_CHARS_MAX {
            break;
        }
        if space_pending {
            excerpt.push(' ');
            space_pending = false;
        }
        excerpt.push(c);
        chars += needed;
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::limits::AUTH_QUEUE_REQUESTS_MAX;
    use crate::outbound::http::test_receiver::{Reply, TestReceiver};

    /// Waits this long at most for anything in a test (a noisy VM can be slow; nothing here
    /// asserts on speed).
    const TEST_WAIT: Duration = Duration::from_secs(20);

    fn request(request_id: u32, app_id: &str, url: String) -> AuthRequest {
        AuthRequest {
            request_id,
            app_id: app_id.to_owned(),
            url,
            socket_id: "1234.5678".to_owned(),
            channel: "private-room".to_owned(),
            headers: Vec::new(),
            form: String::new(),
        }
    }

    /// An auth task with `limits`, its queue handle, and one link's writer queue.
    struct Harness {
        queue: AuthQueue,
        link: mpsc::Receiver<LinkMessage>,
        writer: LinkWriter,
        counters: Arc<AuthCounters>,
    }

    fn start(limits: OutboundLimits) -> Harness {
        let counters = Arc::new(AuthCounters::default());
        let (jobs_sender, jobs) = mpsc::channel(AUTH_QUEUE_REQUESTS_MAX);
        let http = OutboundHttp::new(limits).expect("client builds");
        tokio::spawn(run_auth(jobs, http, Arc::clone(&counters)));
        let (writer, link) = mpsc::channel(4096);
        Harness {
            queue: AuthQueue::new(jobs_sender, Arc::clone(&counters)),
            link,
            writer,
            counters,
        }
    }

    impl Harness {
        fn submit(&self, request: AuthRequest) {
            self.queue.submit(request, &self.writer);
        }

        /// The next answer on the link: (request id, outcome).
        async fn answer(&mut self) -> (u32, AuthOutcome) {
            let message = tokio::time::timeout(TEST_WAIT, self.link.recv())
                .await
                .expect("an answer arrives")
                .expect("link open");
            match message {
                LinkMessage::AuthResponse {
                    request_id,
                    outcome,
                } => (request_id, outcome),
                other => panic!("not an AuthResponse: {other:?}"),
            }
        }

        /// The one answer to the one submitted request.
        async fn only_answer(&mut self, request_id: u32) -> AuthOutcome {
            let (id, outcome) = self.answer().await;
            assert_eq!(id, request_id);
            outcome
        }
    }

    fn granted_body() -> Vec<u8> {
        br#"{"auth":"app-key:0123abcd","channel_data":"{\"user_id\":\"7\"}"}"#.to_vec()
    }

    #[tokio::test]
    async fn posts_the_pusher_js_form_and_forwards_headers() {
        let receiver = TestReceiver::start(|_, _| Reply::Body(200, granted_body())).await;
        let mut harness = start(auth_limits());
        let mut job = request(7, "app-1", receiver.url("/broadcasting/auth?tenant=t1"));
        job.form = "device=abc".to_owned();
        job.headers = vec![
            ("Cookie".to_owned(), "session=s3cret".to_owned()),
            ("Authorization".to_owned(), "Bearer t0k".to_owned()),
            ("Host".to_owned(), "evil.example".to_owned()),
            ("Content-Length".to_owned(), "9999".to_owned()),
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("Connection".to_owned(), "Upgrade".to_owned()),
            ("Upgrade".to_owned(), "websocket".to_owned()),
            (
                "Sec-WebSocket-Key".to_owned(),
                "dGhlIHNhbXBsZQ==".to_owned(),
            ),
            ("Accept-Encoding".to_owned(), "gzip".to_owned()),
        ];
        harness.submit(job);
        let outcome = harness.only_answer(7).await;
        assert_eq!(
            outcome,
            AuthOutcome::Granted {
                auth: "app-key:0123abcd".to_owned(),
                channel_data: r#"{"user_id":"7"}"#.to_owned(),
            }
        );
        let requests = receiver.requests();
        assert_eq!(requests.len(), 1);
        let seen = &requests[0];
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.path, "/broadcasting/auth?tenant=t1");
        let body = "socket_id=1234.5678&channel_name=private-room&device=abc";
        assert_eq!(String::from_utf8_lossy(&seen.body), body);
        assert_eq!(
            seen.header_values("content-type"),
            ["application/x-www-form-urlencoded"]
        );
        assert_eq!(seen.header_values("cookie"), ["session=s3cret"]);
        assert_eq!(seen.header_values("authorization"), ["Bearer t0k"]);
        // The request's own framing wins over anything forwarded.
        assert_eq!(
            seen.header_values("host"),
            [receiver.url("").trim_start_matches("http://")]
        );
        assert_eq!(
            seen.header_values("content-length"),
            [body.len().to_string()]
        );
        assert!(seen.header_values("upgrade").is_empty());
        assert!(seen.header_values("sec-websocket-key").is_empty());
        assert!(seen.header_values("accept-encoding").is_empty());
        assert!(!seen
            .header_values("connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("upgrade")));
        assert_eq!(harness.counters.granted.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn special_characters_are_encoded_like_encode_uri_component() {
        let receiver = TestReceiver::start(|_, _| Reply::Body(200, granted_body())).await;
        let mut harness = start(auth_limits());
        let mut job = request(1, "app-1", receiver.url("/auth"));
        job.channel = "presence-a=b@c,d;e".to_owned();
        job.socket_id = "12.34 &x".to_owned();
        harness.submit(job);
        harness.only_answer(1).await;
        assert_eq!(
            String::from_utf8_lossy(&receiver.requests()[0].body),
            "socket_id=12.34%20%26x&channel_name=presence-a%3Db%40c%2Cd%3Be"
        );
    }

    #[test]
    fn form_body_matches_pusher_js() {
        assert_eq!(
            form_body("1234.5678", "private-room", ""),
            "socket_id=1234.5678&channel_name=private-room"
        );
        assert_eq!(
            form_body("1.2", "private-é+/?", "a=1&b=%20"),
            "socket_id=1.2&channel_name=private-%C3%A9%2B%2F%3F&a=1&b=%20"
        );
        assert_eq!(
            form_body("1.2", "private-x", ""),
            "socket_id=1.2&channel_name=private-x"
        );
        let mut kept = String::new();
        encode_uri_component("AZaz09-_.!~*'()", &mut kept);
        assert_eq!(kept, "AZaz09-_.!~*'()");
    }

    #[test]
    fn answers_are_read_like_pusher_js_would() {
        assert_eq!(
            outcome_of(200, br#"{"auth":"k:s"}"#),
            AuthOutcome::Granted {
                auth: "k:s".to_owned(),
                channel_data: String::new(),
            }
        );
        assert_eq!(
            outcome_of(201, br#"{"auth":"k:s","channel_data":{"user_id":"1"}}"#),
            AuthOutcome::Granted {
                auth: "k:s".to_owned(),
                channel_data: r#"{"user_id":"1"}"#.to_owned(),
            }
        );
        assert_eq!(
            outcome_of(200, br#"{"auth":"k:s","channel_data":null}"#),
            AuthOutcome::Granted {
                auth: "k:s".to_owned(),
                channel_data: String::new(),
            }
        );
        let invalid = AuthOutcome::Refused {
            status: INVALID_ANSWER_STATUS,
            reason: "authorization endpoint answered without a valid auth".to_owned(),
        };
        for body in [
            &b"<html>ok</html>"[..],
            b"",
            b"[]",
            b"\"k:s\"",
            br#"{"token":"k:s"}"#,
            br#"{"auth":""}"#,
            br#"{"auth":42}"#,
            br#"{"auth":"k:s","channel_data":5}"#,
        ] {
            assert_eq!(outcome_of(200, body), invalid, "{body:?}");
        }
        assert_eq!(
            outcome_of(403, b""),
            AuthOutcome::Refused {
                status: 403,
                reason: "authorization endpoint answered 403".to_owned(),
            }
        );
        assert_eq!(
            outcome_of(302, b"Found"),
            AuthOutcome::Refused {
                status: 302,
                reason: "authorization endpoint answered 302: Found".to_owned(),
            }
        );
    }

    #[test]
    fn refusal_excerpts_are_short_and_printable() {
        let AuthOutcome::Refused { reason, .. } =
            outcome_of(500, b"line one\r\n\tline\x00two\x1b[31m   three")
        else {
            panic!("refused");
        };
        assert_eq!(
            reason,
            "authorization endpoint answered 500: line one line two [31m three"
        );
        let long = "é".repeat(10_000);
        let excerpt = printable_excerpt(long.as_bytes());
        assert_eq!(excerpt.chars().count(), AUTH_REASON_EXCERPT_CHARS_MAX);
        assert_eq!(printable_excerpt(b" \n "), "");
        assert_eq!(printable_excerpt(&[0xff, b'a']), "\u{fffd}a");
    }

    #[tokio::test]
    async fn refusal_carries_the_status_and_body_excerpt() {
        let receiver =
            TestReceiver::start(|_, _| Reply::Body(403, b"{\"message\":\"Forbidden\"}".to_vec()))
                .await;
        let mut harness = start(auth_limits());
        harness.submit(request(3, "app-1", receiver.url("/auth")));
        assert_eq!(
            harness.only_answer(3).await,
            AuthOutcome::Refused {
                status: 403,
                reason: "authorization endpoint answered 403: {\"message\":\"Forbidden\"}"
                    .to_owned(),
            }
        );
        assert_eq!(harness.counters.refused.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn garbage_on_200_is_refused() {
        let receiver =
            TestReceiver::start(|_, _| Reply::Body(200, b"<html>Welcome!</html>".to_vec())).await;
        let mut harness = start(auth_limits());
        harness.submit(request(4, "app-1", receiver.url("/auth")));
        assert_eq!(
            harness.only_answer(4).await,
            AuthOutcome::Refused {
                status: INVALID_ANSWER_STATUS,
                reason: "authorization endpoint answered without a valid auth".to_owned(),
            }
        );
        assert_eq!(harness.counters.refused.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn silent_endpoint_is_refused_with_status_0_in_time() {
        let receiver = TestReceiver::start(|_, _| Reply::Hold).await;
        let mut harness = start(OutboundLimits {
            request_timeout: Duration::from_millis(500),
            ..auth_limits()
        });
        harness.submit(request(5, "app-1", receiver.url("/auth?token=s3cret")));
        let AuthOutcome::Refused { status, reason } = harness.only_answer(5).await else {
            panic!("granted by a silent endpoint");
        };
        assert_eq!(status, 0);
        assert!(
            reason.starts_with("authorization endpoint did not answer: "),
            "{reason}"
        );
        assert!(!reason.contains("s3cret"), "{reason}");
        assert_eq!(harness.counters.failed.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_refused_with_status_0() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let mut harness = start(OutboundLimits {
            request_timeout: Duration::from_millis(800),
            ..auth_limits()
        });
        harness.submit(request(
            6,
            "app-1",
            format!("http://{addr}/auth?token=s3cret"),
        ));
        let AuthOutcome::Refused { status, reason } = harness.only_answer(6).await else {
            panic!("granted by nobody");
        };
        assert_eq!(status, 0);
        assert!(
            reason.starts_with("authorization endpoint did not answer: "),
            "{reason}"
        );
        assert!(!reason.contains("s3cret"), "{reason}");
        assert_eq!(harness.counters.failed.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn in_flight_bound_is_per_app_and_every_job_is_answered_once() {
        let receiver = TestReceiver::start(|request, _| {
            if request.path == "/slow" {
                Reply::Hold
            } else {
                Reply::Body(200, granted_body())
            }
        })
        .await;
        let mut harness = start(OutboundLimits {
            // Long enough for the held requests to outlive the checks below.
            request_timeout: Duration::from_secs(30),
            ..auth_limits()
        });
        let busy_count = AUTH_IN_FLIGHT_PER_APP_MAX as u32;
        for id in 0..busy_count {
            harness.submit(request(id, "busy", receiver.url("/slow")));
        }
        let excess = busy_count;
        harness.submit(request(excess, "busy", receiver.url("/slow")));
        let other = busy_count + 1;
        harness.submit(request(other, "other", receiver.url("/fast")));

        let mut answers: HashMap<u32, AuthOutcome> = HashMap::new();
        // The excess is refused at once and the other app is granted while "busy" is held.
        while !(answers.contains_key(&excess) && answers.contains_key(&other)) {
            let (id, outcome) = harness.answer().await;
            assert!(answers.insert(id, outcome).is_none(), "{id} answered twice");
        }
        assert_eq!(
            answers[&excess],
            AuthOutcome::Refused {
                status: 429,
                reason: "too many authorizations in flight for this app".to_owned(),
            }
        );
        assert!(matches!(answers[&other], AuthOutcome::Granted { .. }));
        // Of the admitted, the per-app concurrency reaches the endpoint; the rest wait.
        let slow_seen = || {
            receiver
                .requests()
                .iter()
                .filter(|seen| seen.path == "/slow")
                .count()
        };
        let deadline = tokio::time::Instant::now() + TEST_WAIT;
        while slow_seen() < AUTH_CONCURRENT_PER_APP_MAX {
            assert!(
                tokio::time::Instant::now() < deadline,
                "held requests not seen"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(slow_seen(), AUTH_CONCURRENT_PER_APP_MAX);
        assert!(
            harness.link.try_recv().is_err(),
            "busy's admitted jobs are still held"
        );

        // Released (an empty 200: no valid auth), every admitted job gets its one answer.
        receiver.release();
        while answers.len() < AUTH_IN_FLIGHT_PER_APP_MAX + 2 {
            let (id, outcome) = harness.answer().await;
            assert!(id < busy_count, "unexpected id {id}");
            assert!(
                matches!(
                    outcome,
                    AuthOutcome::Refused {
                        status: INVALID_ANSWER_STATUS,
                        ..
                    }
                ),
                "{outcome:?}"
            );
            assert!(answers.insert(id, outcome).is_none(), "{id} answered twice");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(harness.link.try_recv().is_err(), "no extra answers");
        let counters = &harness.counters;
        assert_eq!(counters.shed.load(Ordering::Relaxed), 1);
        assert_eq!(counters.granted.load(Ordering::Relaxed), 1);
        assert_eq!(
            counters.refused.load(Ordering::Relaxed),
            AUTH_IN_FLIGHT_PER_APP_MAX as u64
        );
        assert_eq!(counters.failed.load(Ordering::Relaxed), 0);

        // The app's slots came back: it is admitted again.
        harness.submit(request(9_999, "busy", receiver.url("/fast")));
        assert!(matches!(
            harness.only_answer(9_999).await,
            AuthOutcome::Granted { .. }
        ));
    }

    #[tokio::test]
    async fn full_queue_is_refused_at_once() {
        let counters = Arc::new(AuthCounters::default());
        // Nobody drains this queue of one.
        let (jobs_sender, _jobs) = mpsc::channel(1);
        let queue = AuthQueue::new(jobs_sender, Arc::clone(&counters));
        let (writer, mut link) = mpsc::channel(8);
        queue.submit(
            request(1, "app-1", "http://127.0.0.1:9/".to_owned()),
            &writer,
        );
        queue.submit(
            request(2, "app-1", "http://127.0.0.1:9/".to_owned()),
            &writer,
        );
        match link.try_recv() {
            Ok(LinkMessage::AuthResponse {
                request_id: 2,
                outcome: AuthOutcome::Refused { status: 503, .. },
            }) => {}
            other => panic!("expected a busy refusal of 2, got {other:?}"),
        }
        assert!(link.try_recv().is_err(), "job 1 waits in the queue");
        assert_eq!(counters.shed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn framing_and_websocket_headers_are_not_forwarded() {
        let headers: Vec<(String, String)> = [
            ("Origin", "https://app.example"),
            ("HOST", "x"),
            ("Transfer-Encoding", "chunked"),
            ("Sec-WebSocket-Version", "13"),
            ("sec-websocket-extensions", "permessage-deflate"),
            ("X-Odd", "line\nbreak"),
            ("X-Utf8", "caf\u{e9}"),
            ("Bad Name", "v"),
            ("Cookie", "a=b"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        let forwarded = forwarded_headers(&headers);
        let kept: Vec<&str> = forwarded.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, ["Origin", "X-Utf8", "Cookie"]);
    }
}
