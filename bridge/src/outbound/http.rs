//! Outbound HTTP calls of the bridge (webhooks, channel-auth offload, channel functions): one
//! shared `reqwest` client per use, so connections to a receiver are pooled and kept alive,
//! plus a bounded map of per-key semaphores, so one app (the key) can have at most
//! `concurrent_per_key_max` requests open and a slow receiver of one app cannot take every
//! connection. This module owns the limits of a call (timeouts, response size, concurrency) and
//! the mapping of transport failures to [`OutboundError`]; what to send and whether to retry is
//! the caller's business.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::limits::{
    OUTBOUND_CONNECT_RETRY_PAUSE_MS_MAX, OUTBOUND_CONNECT_RETRY_PAUSE_MS_MIN,
    OUTBOUND_IDLE_CONNECTIONS_PER_HOST_MAX, OUTBOUND_IDLE_CONNECTION_TIMEOUT_MS, OUTBOUND_KEYS_MAX,
    WEBHOOK_CONCURRENT_PER_APP_MAX, WEBHOOK_CONNECT_TIMEOUT_MS, WEBHOOK_REQUEST_TIMEOUT_MS,
    WEBHOOK_RESPONSE_BYTES_MAX,
};
use ahash::AHashMap;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;

/// Limits applied to every outbound call.
#[derive(Debug, Clone)]
pub struct OutboundLimits {
    /// Whole call, from connecting to the last byte of the response body (permit wait excluded).
    pub request_timeout: Duration,
    /// TCP (and TLS) connection setup.
    pub connect_timeout: Duration,
    /// Longest response body kept; a longer one is [`OutboundError::ResponseTooLarge`].
    pub response_bytes_max: usize,
    /// Requests open at the same time for one key (an app id).
    pub concurrent_per_key_max: usize,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_millis(WEBHOOK_REQUEST_TIMEOUT_MS),
            connect_timeout: Duration::from_millis(WEBHOOK_CONNECT_TIMEOUT_MS),
            response_bytes_max: WEBHOOK_RESPONSE_BYTES_MAX,
            concurrent_per_key_max: WEBHOOK_CONCURRENT_PER_APP_MAX,
        }
    }
}

/// A complete answer of the remote end, whatever its status (3xx included: redirects are not
/// followed, a redirecting endpoint is a configuration error the caller reports).
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    /// HTTP status code.
    pub status: u16,
    /// The response body, at most `response_bytes_max` bytes.
    pub body: Bytes,
}

/// Why an outbound call produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundError {
    /// The URL is not an absolute `http://` or `https://` URL. Retrying will not help.
    InvalidUrl(String),
    /// A header name or value cannot be sent. Retrying will not help.
    InvalidHeader(String),
    /// No connection could be made (refused, DNS, TLS, connect timeout).
    Connect(String),
    /// The call did not complete within `request_timeout`.
    Timeout,
    /// The response body exceeded `response_bytes_max`; `status` is the status the remote end
    /// sent (so a caller that ignores bodies can still tell success from failure).
    ResponseTooLarge {
        /// HTTP status code of the oversized response.
        status: u16,
    },
    /// Any other failure of the exchange (connection reset, malformed response, ...).
    Http(String),
}

impl OutboundError {
    /// True when the same call may succeed later (the remote end or the network is at fault),
    /// false when the request itself is unusable.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::InvalidUrl(_) | Self::InvalidHeader(_))
    }
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(reason) => write!(f, "invalid URL: {reason}"),
            Self::InvalidHeader(reason) => write!(f, "invalid header: {reason}"),
            Self::Connect(reason) => write!(f, "cannot connect: {reason}"),
            Self::Timeout => f.write_str("request timed out"),
            Self::ResponseTooLarge { status } => {
                write!(f, "response body too large (status {status})")
            }
            Self::Http(reason) => write!(f, "HTTP exchange failed: {reason}"),
        }
    }
}

impl std::error::Error for OutboundError {}

/// The shared outbound HTTP service; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct OutboundHttp {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    limits: OutboundLimits,
    permits: Mutex<PermitMap>,
}

/// Per-key semaphores, at most [`OUTBOUND_KEYS_MAX`] of them, then one shared by every further key.
struct PermitMap {
    by_key: AHashMap<String, Arc<Semaphore>>,
    overflow: Arc<Semaphore>,
}

impl OutboundHttp {
    /// Builds the client. Fails on unusable limits (a zero timeout or concurrency) or when the
    /// TLS backend cannot be initialised.
    pub fn new(limits: OutboundLimits) -> Result<Self, String> {
        if limits.request_timeout.is_zero() || limits.connect_timeout.is_zero() {
            return Err("outbound HTTP timeouts must be greater than zero".to_owned());
        }
        if limits.concurrent_per_key_max == 0
            || limits.concurrent_per_key_max > Semaphore::MAX_PERMITS
        {
            return Err(format!(
                "outbound concurrent_per_key_max must be between 1 and {}",
                Semaphore::MAX_PERMITS
            ));
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("ringcast-bridge/", env!("CARGO_PKG_VERSION")))
            // A webhook or auth endpoint that redirects is misconfigured: hand the 3xx back.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(limits.request_timeout)
            .connect_timeout(limits.connect_timeout)
            .pool_max_idle_per_host(OUTBOUND_IDLE_CONNECTIONS_PER_HOST_MAX)
            .pool_idle_timeout(Duration::from_millis(OUTBOUND_IDLE_CONNECTION_TIMEOUT_MS))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the outbound HTTP client: {}", error_chain(e)))?;
        let overflow = Arc::new(Semaphore::new(limits.concurrent_per_key_max));
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                limits,
                permits: Mutex::new(PermitMap {
                    by_key: AHashMap::new(),
                    overflow,
                }),
            }),
        })
    }

    /// POST `body` to `url` with `headers`, holding one of `key`'s permits (key = app id:
    /// bounded concurrency per app). Waits for a permit first; the request timeout starts once
    /// the permit is held.
    pub async fn post(
        &self,
        key: &str,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<OutboundResponse, OutboundError> {
        // Validate before waiting for a permit: a bad request must not queue behind good ones.
        let url = parse_url(url)?;
        let header_map = header_map(headers)?;
        let semaphore = self.semaphore_for(key);
        let _permit = semaphore
            .acquire()
            .await
            .map_err(|_| OutboundError::Http("outbound permits closed".to_owned()))?;
        let mut response = self
            .inner
            .client
            .post(url)
            .headers(header_map)
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status().as_u16();
        let body_max = self.inner.limits.response_bytes_max;
        // Refuse early when the length is announced, then cut while reading in case it was not
        // (or lied): never more than `body_max` + one chunk in memory.
        if response
            .content_length()
            .is_some_and(|length| length > body_max as u64)
        {
            return Err(OutboundError::ResponseTooLarge { status });
        }
        let mut received = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if chunk.len() > body_max - received.len() {
                return Err(OutboundError::ResponseTooLarge { status });
            }
            received.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse {
            status,
            body: received.freeze(),
        })
    }

    /// Like [`post`](Self::post), but retries connect failures (refused, DNS, TLS setup), which
    /// never reached the remote end, so sending again cannot do anything twice. Everything, the
    /// permit wait and the pauses included, fits in one `request_timeout`: a caller that owes
    /// somebody an answer (auth offload) gets one in time. Other failures are returned at once.
    pub async fn post_retrying_connect(
        &self,
        key: &str,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<OutboundResponse, OutboundError> {
        let deadline = tokio::time::Instant::now() + self.inner.limits.request_timeout;
        let mut pause = Duration::from_millis(OUTBOUND_CONNECT_RETRY_PAUSE_MS_MIN);
        loop {
            let attempt =
                tokio::time::timeout_at(deadline, self.post(key, url, headers, body.clone())).await;
            match attempt {
                Err(_) => return Err(OutboundError::Timeout),
                Ok(Err(OutboundError::Connect(reason))) => {
                    // No point pausing when no attempt could start before the deadline.
                    if tokio::time::Instant::now() + pause >= deadline {
                        return Err(OutboundError::Connect(reason));
                    }
                    tokio::time::sleep(pause).await;
                    pause =
                        (pause * 2).min(Duration::from_millis(OUTBOUND_CONNECT_RETRY_PAUSE_MS_MAX));
                }
                Ok(result) => return result,
            }
        }
    }

    /// The semaphore bounding `key`'s concurrent requests.
    fn semaphore_for(&self, key: &str) -> Arc<Semaphore> {
        // The lock is held for a map lookup only, never across an await. A poisoned lock only
        // means another caller panicked mid-lookup; the map itself is still consistent.
        let mut permits = self
            .inner
            .permits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(semaphore) = permits.by_key.get(key) {
            return Arc::clone(semaphore);
        }
        if permits.by_key.len() >= OUTBOUND_KEYS_MAX {
            return Arc::clone(&permits.overflow);
        }
        let semaphore = Arc::new(Semaphore::new(self.inner.limits.concurrent_per_key_max));
        permits
            .by_key
            .insert(key.to_owned(), Arc::clone(&semaphore));
        semaphore
    }
}

/// Accepts absolute `http://` and `https://` URLs with a host. The URL itself is left out of
/// the error: it may carry a token.
fn parse_url(url: &str) -> Result<reqwest::Url, OutboundError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| OutboundError::InvalidUrl(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        scheme => {
            return Err(OutboundError::InvalidUrl(format!(
                "scheme `{scheme}` is not http or https"
            )))
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(OutboundError::InvalidUrl("no host".to_owned()));
    }
    Ok(parsed)
}

/// Converts caller headers, keeping repeated names. Values are never echoed in errors (they may
/// be credentials).
fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, OutboundError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| OutboundError::InvalidHeader(format!("bad header name {name:?}")))?;
        let header_value = HeaderValue::from_str(value)
            .map_err(|_| OutboundError::InvalidHeader(format!("bad value for header {name}")))?;
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// Maps a reqwest failure to the caller's vocabulary.
fn classify(error: reqwest::Error) -> OutboundError {
    if error.is_timeout() {
        OutboundError::Timeout
    } else if error.is_connect() {
        OutboundError::Connect(error_chain(error))
    } else {
        OutboundError::Http(error_chain(error))
    }
}

/// The error and its causes on one line, without the URL (it may carry a token).
fn error_chain(error: reqwest::Error) -> String {
    use std::error::Error as _;
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A real HTTP/1.1 receiver on loopback for tests: records every request, answers what the
/// test's responder says, can hold requests open, and tracks how many are open at once per path.
#[cfg(test)]
pub(crate) mod test_receiver {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;
    use tokio::task::{JoinHandle, JoinSet};

    /// One received request.
    #[derive(Debug, Clone)]
    pub(crate) struct Recorded {
        pub method: String,
        pub path: String,
        /// Names lowercased, in arrival order, repeats kept.
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Recorded {
        /// Every value of header `name` (case-insensitive).
        pub(crate) fn header_values(&self, name: &str) -> Vec<&str> {
            let name = name.to_ascii_lowercase();
            self.headers
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        }
    }

    /// What to answer.
    #[derive(Debug, Clone)]
    pub(crate) enum Reply {
        /// This status with an empty body.
        Status(u16),
        /// This status and body, with Content-Length.
        Body(u16, Vec<u8>),
        /// This status and body without Content-Length, closing the connection to end it.
        BodyUntilClose(u16, Vec<u8>),
        /// This status and body, with Content-Length, after waiting this long (a slow endpoint
        /// that still answers).
        BodyAfter(Duration, u16, Vec<u8>),
        /// Answer nothing until [`TestReceiver::release`], then 200.
        Hold,
    }

    type Responder = Arc<dyn Fn(&Recorded, usize) -> Reply + Send + Sync>;

    #[derive(Default)]
    struct State {
        requests: Vec<Recorded>,
        open_by_path: HashMap<String, usize>,
        open_max_by_path: HashMap<String, usize>,
    }

    struct Shared {
        state: Mutex<State>,
        responder: Responder,
        released: watch::Receiver<bool>,
    }

    pub(crate) struct TestReceiver {
        pub addr: SocketAddr,
        shared: Arc<Shared>,
        release: watch::Sender<bool>,
        accept_task: JoinHandle<()>,
    }

    impl Drop for TestReceiver {
        fn drop(&mut self) {
            // Dropping the accept task drops its JoinSet, which aborts every connection.
            self.accept_task.abort();
        }
    }

    impl TestReceiver {
        /// Starts on a free loopback port. `responder` gets the request and its 0-based index.
        pub(crate) async fn start(
            responder: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
        ) -> Self {
            Self::start_on("127.0.0.1:0".parse().expect("literal address"), responder).await
        }

        /// Starts on `addr`.
        pub(crate) async fn start_on(
            addr: SocketAddr,
            responder: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
        ) -> Self {
            let listener = TcpListener::bind(addr).await.expect("bind test receiver");
            let addr = listener.local_addr().expect("local addr");
            let (release, released) = watch::channel(false);
            let shared = Arc::new(Shared {
                state: Mutex::new(State::default()),
                responder: Arc::new(responder),
                released,
            });
            let accept_shared = Arc::clone(&shared);
            let accept_task = tokio::spawn(async move {
                let mut connections = JoinSet::new();
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            connections.spawn(serve(stream, Arc::clone(&accept_shared)));
                        }
                        Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    }
                }
            });
            Self {
                addr,
                shared,
                release,
                accept_task,
            }
        }

        pub(crate) fn url(&self, path: &str) -> String {
            format!("http://{}{}", self.addr, path)
        }

        pub(crate) fn requests(&self) -> Vec<Recorded> {
            self.shared.state.lock().expect("state").requests.clone()
        }

        pub(crate) fn request_count(&self) -> usize {
            self.shared.state.lock().expect("state").requests.len()
        }

        /// Most requests of `path` that were open (received, not yet answered) at once.
        pub(crate) fn open_max(&self, path: &str) -> usize {
            let state = self.shared.state.lock().expect("state");
            state.open_max_by_path.get(path).copied().unwrap_or(0)
        }

        /// Lets every held request (and every later one) be answered 200.
        pub(crate) fn release(&self) {
            let _ = self.release.send(true);
        }
    }

    struct Head {
        length: usize,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        content_length: usize,
    }

    fn parse_head(buf: &[u8]) -> Result<Option<Head>, ()> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(buf) {
            Ok(httparse::Status::Complete(length)) => {
                let headers: Vec<(String, String)> = request
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let content_length = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                Ok(Some(Head {
                    length,
                    method: request.method.unwrap_or("").to_owned(),
                    path: request.path.unwrap_or("").to_owned(),
                    headers,
                    content_length,
                }))
            }
            Ok(httparse::Status::Partial) => Ok(None),
            Err(_) => Err(()),
        }
    }

    async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let head = loop {
                match parse_head(&buf) {
                    Ok(Some(head)) => break head,
                    Ok(None) => {}
                    Err(()) => return,
                }
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let end = head.length + head.content_length;
            while buf.len() < end {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = buf[head.length..end].to_vec();
            buf.drain(..end);
            let recorded = Recorded {
                method: head.method,
                path: head.path,
                headers: head.headers,
                body,
            };
            let reply = {
                let mut state = shared.state.lock().expect("state");
                let index = state.requests.len();
                state.requests.push(recorded.clone());
                let open = state.open_by_path.entry(recorded.path.clone()).or_insert(0);
                *open += 1;
                let open = *open;
                let open_max = state
                    .open_max_by_path
                    .entry(recorded.path.clone())
                    .or_insert(0);
                *open_max = (*open_max).max(open);
                drop(state);
                (shared.responder)(&recorded, index)
            };
            let (status, body, close) = match reply {
                Reply::Status(status) => (status, Vec::new(), false),
                Reply::Body(status, body) => (status, body, false),
                Reply::BodyUntilClose(status, body) => (status, body, true),
                Reply::BodyAfter(delay, status, body) => {
                    tokio::time::sleep(delay).await;
                    (status, body, false)
                }
                Reply::Hold => {
                    let mut released = shared.released.clone();
                    if released.wait_for(|released| *released).await.is_err() {
                        return;
                    }
                    (200, Vec::new(), false)
                }
            };
            let head = if close {
                format!("HTTP/1.1 {status} Scripted\r\nConnection: close\r\n\r\n")
            } else {
                format!(
                    "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
            };
            let written = async {
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(&body).await?;
                stream.flush().await
            }
            .await;
            {
                let mut state = shared.state.lock().expect("state");
                if let Some(open) = state.open_by_path.get_mut(&recorded.path) {
                    *open = open.saturating_sub(1);
                }
            }
            if written.is_err() || close {
                return;
            }
        }
    }
}

/// The host of `url` for logs, or a placeholder when it does not parse.
pub fn url_host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|parsed| parsed.host_str().map(str::to_owned))
        .unwrap_or_else(|| "<invalid url>".to_owned())
}

#[cfg(test)]
mod tests {
    use super::test_receiver::{Reply, TestReceiver};
    use super::*;

    fn http_with(limits: OutboundLimits) -> OutboundHttp {
        OutboundHttp::new(limits).expect("client builds")
    }

    #[tokio::test]
    async fn posts_body_and_headers_and_returns_the_answer() {
        let receiver = TestReceiver::start(|_, _| Reply::Body(201, b"created".to_vec())).await;
        let http = http_with(OutboundLimits::default());
        let headers = vec![
            ("X-One".to_owned(), "1".to_owned()),
            ("X-Two".to_owned(), "two".to_owned()),
        ];
        let response = http
            .post(
                "app",
                &receiver.url("/hook?x=1"),
                &headers,
                Bytes::from_static(b"{\"a\":1}"),
            )
            .await
            .expect("post succeeds");
        assert_eq!(response.status, 201);
        assert_eq!(&response.body[..], b"created");
        let requests = receiver.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].path, "/hook?x=1");
        assert_eq!(requests[0].body, b"{\"a\":1}");
        assert_eq!(requests[0].header_values("x-one"), ["1"]);
        assert_eq!(requests[0].header_values("x-two"), ["two"]);
    }

    #[tokio::test]
    async fn redirect_is_returned_not_followed() {
        let receiver = TestReceiver::start(|request, _| {
            if request.path == "/moved" {
                Reply::Status(302)
            } else {
                Reply::Status(200)
            }
        })
        .await;
        let http = http_with(OutboundLimits::default());
        let response = http
            .post("app", &receiver.url("/moved"), &[], Bytes::new())
            .await
            .expect("a 3xx is a response");
        assert_eq!(response.status, 302);
        assert_eq!(receiver.request_count(), 1);
    }

    #[tokio::test]
    async fn response_larger_than_the_limit_is_refused() {
        let big = vec![b'x'; 100 * 1024];
        let announced = big.clone();
        let receiver_announced =
            TestReceiver::start(move |_, _| Reply::Body(200, announced.clone())).await;
        let receiver_unannounced =
            TestReceiver::start(move |_, _| Reply::BodyUntilClose(200, big.clone())).await;
        let http = http_with(OutboundLimits {
            response_bytes_max: 64 * 1024,
            ..OutboundLimits::default()
        });
        for receiver in [&receiver_announced, &receiver_unannounced] {
            let result = http
                .post("app", &receiver.url("/big"), &[], Bytes::new())
                .await;
            assert!(
                matches!(result, Err(OutboundError::ResponseTooLarge { status: 200 })),
                "got {result:?}"
            );
        }
        // A body of exactly the limit is fine, announced or not.
        let exact = vec![b'y'; 64 * 1024];
        let exact_clone = exact.clone();
        let receiver_exact =
            TestReceiver::start(move |_, _| Reply::BodyUntilClose(200, exact_clone.clone())).await;
        let response = http
            .post("app", &receiver_exact.url("/exact"), &[], Bytes::new())
            .await
            .expect("body at the limit is accepted");
        assert_eq!(response.body.len(), exact.len());
    }

    #[tokio::test]
    async fn invalid_urls_and_headers_are_errors() {
        let http = http_with(OutboundLimits::default());
        for url in [
            "ftp://x",
            "not a url",
            "",
            "http://",
            "/relative",
            "file:///etc/passwd",
        ] {
            let result = http.post("app", url, &[], Bytes::new()).await;
            assert!(
                matches!(result, Err(OutboundError::InvalidUrl(_))),
                "{url:?} gave {result:?}"
            );
        }
        let bad_value = vec![("X-Ok".to_owned(), "line\nbreak".to_owned())];
        let result = http
            .post("app", "http://127.0.0.1:9/", &bad_value, Bytes::new())
            .await;
        assert!(
            matches!(result, Err(OutboundError::InvalidHeader(_))),
            "{result:?}"
        );
        let bad_name = vec![("bad name".to_owned(), "v".to_owned())];
        let result = http
            .post("app", "http://127.0.0.1:9/", &bad_name, Bytes::new())
            .await;
        assert!(
            matches!(result, Err(OutboundError::InvalidHeader(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let http = http_with(OutboundLimits::default());
        let result = http
            .post("app", &format!("http://{addr}/"), &[], Bytes::new())
            .await;
        assert!(
            matches!(result, Err(OutboundError::Connect(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn connect_errors_are_retried_until_the_receiver_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let http = http_with(OutboundLimits {
            request_timeout: Duration::from_secs(10),
            ..OutboundLimits::default()
        });
        let url = format!("http://{addr}/late");
        let call = tokio::spawn({
            let http = http.clone();
            async move {
                http.post_retrying_connect("app", &url, &[], Bytes::from_static(b"x"))
                    .await
            }
        });
        // The first attempts are refused; then the receiver comes up on the same port.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let receiver = TestReceiver::start_on(addr, |_, _| Reply::Status(204)).await;
        let response = call
            .await
            .expect("task")
            .expect("a later attempt reaches the receiver");
        assert_eq!(response.status, 204);
        assert_eq!(receiver.request_count(), 1, "sent once it could connect");
    }

    #[tokio::test]
    async fn connect_retries_stop_at_the_request_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let http = http_with(OutboundLimits {
            request_timeout: Duration::from_millis(400),
            ..OutboundLimits::default()
        });
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            http.post_retrying_connect("app", &format!("http://{addr}/"), &[], Bytes::new()),
        )
        .await
        .expect("gives up within its own timeout");
        assert!(
            matches!(
                result,
                Err(OutboundError::Connect(_) | OutboundError::Timeout)
            ),
            "{result:?}"
        );
        // Anything but a connect error is not retried: a silent receiver is asked once.
        let silent = TestReceiver::start(|_, _| Reply::Hold).await;
        let result = http
            .post_retrying_connect("app", &silent.url("/slow"), &[], Bytes::new())
            .await;
        assert!(matches!(result, Err(OutboundError::Timeout)), "{result:?}");
        assert_eq!(silent.request_count(), 1);
    }

    #[tokio::test]
    async fn silent_receiver_times_out() {
        let receiver = TestReceiver::start(|_, _| Reply::Hold).await;
        let http = http_with(OutboundLimits {
            request_timeout: Duration::from_millis(300),
            ..OutboundLimits::default()
        });
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            http.post("app", &receiver.url("/slow"), &[], Bytes::new()),
        )
        .await
        .expect("the request timeout fires before the test's");
        assert!(matches!(result, Err(OutboundError::Timeout)), "{result:?}");
    }

    #[tokio::test]
    async fn concurrency_is_bounded_per_key_only() {
        let receiver = TestReceiver::start(|request, _| {
            if request.path == "/a" {
                Reply::Hold
            } else {
                Reply::Status(200)
            }
        })
        .await;
        let http = http_with(OutboundLimits {
            concurrent_per_key_max: 2,
            ..OutboundLimits::default()
        });
        let mut held = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let http = http.clone();
            let url = receiver.url("/a");
            held.spawn(async move { http.post("key-a", &url, &[], Bytes::new()).await });
        }
        // Two of key A's requests reach the receiver and stay open there.
        eventually(|| receiver.request_count() >= 2).await;
        // Key B is not blocked by key A's full permits.
        let other = tokio::time::timeout(
            Duration::from_secs(10),
            http.post("key-b", &receiver.url("/b"), &[], Bytes::new()),
        )
        .await
        .expect("key B is not held up by key A")
        .expect("key B's request succeeds");
        assert_eq!(other.status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let a_seen = receiver
            .requests()
            .iter()
            .filter(|request| request.path == "/a")
            .count();
        assert_eq!(a_seen, 2, "only key A's two permitted requests were sent");
        receiver.release();
        let all_done = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(joined) = held.join_next().await {
                let response = joined.expect("task").expect("post succeeds");
                assert_eq!(response.status, 200);
            }
        })
        .await;
        assert!(
            all_done.is_ok(),
            "every held request completes after release"
        );
        assert_eq!(receiver.open_max("/a"), 2);
        assert_eq!(
            receiver
                .requests()
                .iter()
                .filter(|request| request.path == "/a")
                .count(),
            5
        );
    }

    #[test]
    fn semaphore_map_is_bounded() {
        let http = http_with(OutboundLimits::default());
        for i in 0..OUTBOUND_KEYS_MAX + 50 {
            let _ = http.semaphore_for(&format!("app-{i}"));
        }
        let first = http.semaphore_for("app-0");
        assert!(Arc::ptr_eq(&first, &http.semaphore_for("app-0")));
        let late_a = http.semaphore_for("late-a");
        let late_b = http.semaphore_for("late-b");
        assert!(Arc::ptr_eq(&late_a, &late_b), "keys past the cap share one");
        let permits = http.inner.permits.lock().expect("lock");
        assert_eq!(permits.by_key.len(), OUTBOUND_KEYS_MAX);
    }

    #[test]
    fn unusable_limits_are_refused() {
        for limits in [
            OutboundLimits {
                concurrent_per_key_max: 0,
                ..OutboundLimits::default()
            },
            OutboundLimits {
                request_timeout: Duration::ZERO,
                ..OutboundLimits::default()
            },
        ] {
            assert!(OutboundHttp::new(limits).is_err());
        }
    }

    /// Waits until `condition` holds, failing the test after 10 s.
    async fn eventually(condition: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "condition not met within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
