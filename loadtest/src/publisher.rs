//! The open-loop publisher: a fixed schedule of events (rate R/s, intended send times fixed in
//! advance, a 1 ms tick that enqueues whatever is due and never waits for a response) feeding
//! a small keep-alive pool of HTTP/1.1 connections (TLS for `https://`) that `POST /apps/{id}/events`, signed
//! with `ringcast_core::pusher::rest::sign_query`. Each event's `data` carries its stream
//! (publisher) id, sequence number and intended send time in µs since the UNIX epoch.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::profile::{Plan, Scenario};
use crate::stats::new_histogram;
use crate::tls::{wrap, Stream};
use crate::wire::now_us;

/// Event name of load events.
pub const EVENT_NAME: &str = "loadtest";
/// Largest HTTP response accepted from the REST API, bytes.
const RESPONSE_MAX: usize = 1 << 20;

/// Scheduler tick.
const TICK: Duration = Duration::from_millis(1);

/// One scheduled publish.
pub struct Event {
    /// Sequence stream.
    pub stream: u32,
    /// Channel.
    pub channel: String,
    /// Sequence number in its stream.
    pub seq: u64,
    /// Intended send time, µs since the epoch.
    pub intended_us: u64,
    /// Warm-up event (marker `lw`).
    pub warmup: bool,
    /// Subscribers this event should reach when the run has no connect errors.
    pub recipients: u64,
}

/// What the publisher did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PublishReport {
    /// Events scheduled (warm-up included).
    pub scheduled: u64,
    /// Measured events the server answered 200 to.
    pub measured_ok: u64,
    /// Σ recipients of the measured events answered 200 (the plan's subscriber count per event).
    pub measured_recipients: u64,
    /// Warm-up events answered 200.
    pub warmup_ok: u64,
    /// Publishes that failed (non-200 or connection error).
    pub errors: u64,
    /// Kinds of publish errors with counts.
    pub error_kinds: Vec<(String, u64)>,
    /// Largest number of events queued behind the pool at one time.
    pub backlog_max: u64,
    /// REST round trip of each publish in µs (p50, p99, max).
    pub rtt_p50_us: u64,
    /// REST round trip p99, µs.
    pub rtt_p99_us: u64,
    /// REST round trip max, µs.
    pub rtt_max_us: u64,
}

/// Running publisher state shared by the pool tasks and the progress reporter.
#[derive(Default)]
pub struct PublishState {
    /// Report being filled in.
    pub report: PublishReport,
    /// Events handed to the pool but not yet answered.
    pub in_flight: u64,
    rtt: Option<Histogram<u64>>,
}

impl PublishState {
    fn error(&mut self, kind: String) {
        self.report.errors += 1;
        crate::stats::tally_error_kind(&mut self.report.error_kinds, &kind);
    }
}

/// Runs the schedule for `plan` (warm-up then measured window) and waits for every response.
/// `state` is updated as responses arrive so progress can be shown meanwhile.
pub async fn run(plan: &Plan, state: Rc<RefCell<PublishState>>) {
    state.borrow_mut().rtt = Some(new_histogram());
    let pool = plan.publishers.max(1);
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..pool {
        let (tx, rx) = mpsc::unbounded_channel::<Event>();
        senders.push(tx);
        tasks.push(tokio::task::spawn_local(pool_connection(
            plan.clone(),
            rx,
            state.clone(),
        )));
    }
    let total_s = plan.warmup_s + plan.duration_s;
    let total = (total_s * plan.rate).floor() as u64;
    let interval_us = if plan.rate > 0.0 {
        1e6 / plan.rate
    } else {
        f64::INFINITY
    };
    let t0 = now_us() + 1000;
    let warmup_end = t0 + (plan.warmup_s * 1e6) as u64;
    let mut seqs = vec![0u64; stream_count(plan) as usize];
    let mut next = 0u64;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while next < total {
        ticker.tick().await;
        let now = now_us();
        while next < total {
            let intended_us = t0 + (next as f64 * interval_us) as u64;
            if intended_us > now {
                break;
            }
            let warmup = intended_us < warmup_end;
            let (stream, channel, recipients) = target(plan, next);
            let seq = if warmup {
                0
            } else {
                let s = seqs[stream as usize];
                seqs[stream as usize] += 1;
                s
            };
            let event = Event {
                stream,
                channel,
                seq,
                intended_us,
                warmup,
                recipients,
            };
            let conn = (stream % pool) as usize;
            {
                let mut st = state.borrow_mut();
                st.report.scheduled += 1;
                st.in_flight += 1;
                st.report.backlog_max = st.report.backlog_max.max(st.in_flight);
            }
            if senders[conn].send(event).is_err() {
                let mut st = state.borrow_mut();
                st.in_flight -= 1;
                st.error("pool connection task ended".into());
            }
            next += 1;
        }
    }
    drop(senders);
    for t in tasks {
        let _ = t.await;
    }
    let mut st = state.borrow_mut();
    if let Some(h) = st.rtt.take() {
        st.report.rtt_p50_us = h.value_at_quantile(0.5);
        st.report.rtt_p99_us = h.value_at_quantile(0.99);
        st.report.rtt_max_us = h.max();
    }
}

/// Number of sequence streams: one per pool connection for a broadcast, one per channel for
/// the channels scenario.
fn stream_count(plan: &Plan) -> u64 {
    match plan.scenario {
        Scenario::Channels => plan.connections + plan.connections.div_ceil(plan.group_size),
        _ => u64::from(plan.publishers.max(1)),
    }
}

/// Stream, channel and recipient count of event `index`.
fn target(plan: &Plan, index: u64) -> (u32, String, u64) {
    let p = &plan.channel_prefix;
    match plan.scenario {
        Scenario::Channels => {
            // Alternate personal and group channels, walking each set with a stride that
            // spreads consecutive events over the whole population.
            let groups = plan.connections.div_ceil(plan.group_size);
            let k = index / 2;
            if index & 1 == 0 {
                let c = (k.wrapping_mul(7919)) % plan.connections;
                let name = plan.channel_name(&format!("{p}-personal-{c}"));
                (c as u32, name, 1)
            } else {
                let g = (k.wrapping_mul(7919)) % groups;
                let members = plan.group_size.min(plan.connections - g * plan.group_size);
                let name = plan.channel_name(&format!("{p}-group-{g}"));
                ((plan.connections + g) as u32, name, members)
            }
        }
        _ => {
            let stream = (index % u64::from(plan.publishers.max(1))) as u32;
            (stream, plan.channel_name(p), plan.connections)
        }
    }
}

/// The event's `data` string: `{"lt":"STREAM.SEQ.SENT_US","pad":"x…"}` (`lw` for warm-up),
/// padded to `payload_bytes` where possible.
pub fn event_data(event: &Event, payload_bytes: usize) -> String {
    let marker = if event.warmup { "lw" } else { "lt" };
    let head = format!(
        "{{\"{marker}\":\"{}.{}.{}\",\"pad\":\"",
        event.stream, event.seq, event.intended_us
    );
    let pad = payload_bytes.saturating_sub(head.len() + 2);
    let mut data = head;
    data.push_str(&"x".repeat(pad));
    data.push_str("\"}");
    data
}

/// The signed HTTP/1.1 `POST /apps/{id}/events` request for one event (`path` is that path).
pub fn publish_request(plan: &Plan, path: &str, event: &Event) -> String {
    let body = serde_json::json!({
        "name": EVENT_NAME,
        "channel": event.channel,
        "data": event_data(event, plan.payload_bytes),
    })
    .to_string();
    let query = ringcast_core::pusher::rest::sign_query(
        "POST",
        path,
        &[],
        body.as_bytes(),
        &plan.key,
        &plan.secret,
        now_us() / 1_000_000,
    );
    format!(
        "POST {path}?{query} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        plan.rest_host,
        body.len()
    )
}

/// One keep-alive HTTP connection: sends its queue's events one after another.
async fn pool_connection(
    plan: Plan,
    mut rx: mpsc::UnboundedReceiver<Event>,
    state: Rc<RefCell<PublishState>>,
) {
    let mut conn: Option<(Stream, BytesMut)> = None;
    let path = format!("/apps/{}/events", plan.app_id);
    while let Some(event) = rx.recv().await {
        let request = publish_request(&plan, &path, &event);
        let started = now_us();
        let result = send_once(&plan, &mut conn, request.as_bytes()).await;
        let rtt = now_us().saturating_sub(started);
        let mut st = state.borrow_mut();
        st.in_flight -= 1;
        if let Some(h) = st.rtt.as_mut() {
            h.saturating_record(rtt.max(1));
        }
        match result {
            Ok(200) if event.warmup => st.report.warmup_ok += 1,
            Ok(200) => {
                st.report.measured_ok += 1;
                st.report.measured_recipients += event.recipients;
            }
            Ok(status) => st.error(format!("HTTP {status}")),
            Err(e) => {
                conn = None;
                st.error(e);
            }
        }
    }
}

/// Sends one request on the pooled connection (opening it when needed) and returns the status.
pub async fn send_once(
    plan: &Plan,
    conn: &mut Option<(Stream, BytesMut)>,
    request: &[u8],
) -> Result<u16, String> {
    if conn.is_none() {
        let tcp = TcpStream::connect(plan.rest_addr)
            .await
            .map_err(|e| format!("REST connect: {}", e.kind()))?;
        let _ = tcp.set_nodelay(true);
        let stream = wrap(plan.rest_tls.as_ref(), tcp).await?;
        *conn = Some((stream, BytesMut::with_capacity(4096)));
    }
    let Some((stream, buf)) = conn.as_mut() else {
        return Err("REST connection missing".into());
    };
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("REST write: {}", e.kind()))?;
    stream
        .flush()
        .await
        .map_err(|e| format!("REST write: {}", e.kind()))?;
    loop {
        if let Some((status, len, close)) = parse_response(buf)? {
            buf.advance(len);
            if close {
                *conn = None;
            }
            return Ok(status);
        }
        if buf.len() > RESPONSE_MAX {
            return Err("REST response too large".into());
        }
        buf.reserve(4096);
        match stream.read_buf(buf).await {
            Ok(0) => return Err("REST connection closed".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("REST read: {}", e.kind())),
        }
    }
}

/// A complete response at the start of `buf`: (status, total length, server closes).
fn parse_response(buf: &[u8]) -> Result<Option<(u16, usize, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let header_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("REST response: {e}")),
    };
    let mut content_length = 0usize;
    let mut close = false;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or("REST response: bad Content-Length")?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("REST response: chunked bodies are not supported".into());
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    let status = response.code.unwrap_or(0);
    if buf.len() < header_len + content_length {
        return Ok(None);
    }
    Ok(Some((status, header_len + content_length, close)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_padded_to_payload_bytes() {
        let e = Event {
            stream: 1,
            channel: "c".into(),
            seq: 42,
            intended_us: 1_732_550_000_000_000,
            warmup: false,
            recipients: 1,
        };
        let d = event_data(&e, 100);
        assert_eq!(d.len(), 100);
        assert!(d.starts_with(r#"{"lt":"1.42.1732550000000000","pad":"x"#));
        assert!(serde_json::from_str::<serde_json::Value>(&d).is_ok());
    }

    #[test]
    fn response_needs_its_body() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(&full[..full.len() - 1]), Ok(None));
        assert_eq!(parse_response(full), Ok(Some((200, full.len(), false))));
    }
}
