//! The `churn` scenario: a population of `connections` subscribers on one channel, replaced at
//! `churn_per_s` (open loop: replacement k is due at `t0 + k/C`; it starts closing the oldest
//! connection and opens a new one that subscribes), while a publisher broadcasts on the channel
//! at `rate`. Runs in the coordinator process on one tokio thread (connections here live for
//! seconds, so the worker processes' receive loop buys nothing).
//!
//! **Loss rule.** A connection *expects* a measured event iff the publisher started writing the
//! event's request after the connection had received `subscription_succeeded`, and the server's
//! 200 answer arrived before the connection started closing (sending its close frame). A
//! closing connection keeps reading until the server's close frame or EOF, so events already
//! queued for it still count. `lost` = expected pairs not delivered; events delivered outside
//! the rule (published around the subscribe or the close) are reported as `delivered_unexpected`
//! and never make up for a lost one.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{oneshot, Semaphore};

use crate::profile::Plan;
use crate::publisher::{publish_request, send_once, Event};
use crate::report::{latency_line, ms, Latency};
use crate::stats::new_histogram;
use crate::tls::Stream;
use crate::wire::{now_us, parse_stamp, MEASURED_MARKER};
use crate::ws_client::{open, subscribe_message, Message};

/// Time one connection gets to connect, upgrade and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Time a closing connection waits for the server's close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// One measured event as the publisher saw it.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    /// Stream (pool connection).
    pub stream: u32,
    /// Sequence number.
    pub seq: u64,
    /// When the request write started, µs since the epoch.
    pub sent_us: u64,
    /// When the 200 answer arrived, µs since the epoch.
    pub answered_us: u64,
}

/// One subscriber's life as the accounting needs it.
#[derive(Debug, Default, Clone)]
pub struct Life {
    /// When `subscription_succeeded` arrived, µs.
    pub subscribed_us: u64,
    /// When it started closing (or the run stopped it), µs.
    pub close_us: u64,
    /// Measured events received, (stream, seq).
    pub received: HashSet<(u32, u64)>,
}

/// Result of the loss rule.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// (connection, event) pairs the rule expects.
    pub expected: u64,
    /// Expected pairs delivered.
    pub delivered_expected: u64,
    /// Expected pairs not delivered.
    pub lost: u64,
    /// Deliveries the rule did not expect (published around a subscribe or close).
    pub delivered_unexpected: u64,
}

/// Applies the loss rule (module docs) to every (life, event) pair.
pub fn account(lives: &[Life], events: &[Published]) -> Accounting {
    let mut a = Accounting::default();
    for life in lives {
        let mut expected_here = 0u64;
        for e in events {
            if e.sent_us >= life.subscribed_us && e.answered_us <= life.close_us {
                expected_here += 1;
                if life.received.contains(&(e.stream, e.seq)) {
                    a.delivered_expected += 1;
                }
            }
        }
        a.expected += expected_here;
        a.delivered_unexpected += life.received.len() as u64;
    }
    a.delivered_unexpected -= a.delivered_expected;
    a.lost = a.expected - a.delivered_expected;
    a
}

/// What a churn run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnResult {
    /// The resolved plan.
    pub plan: Plan,
    /// Initial population subscribed.
    pub initial_subscribed: u64,
    /// Time to connect the initial population, ms.
    pub initial_connect_ms: u64,
    /// Replacements started (closes + opens) during warm-up and the measured window.
    pub replacements: u64,
    /// Replacement connects that subscribed during the measured window.
    pub churn_connects: u64,
    /// Replacement connects per second achieved over the measured window.
    pub connects_per_s: f64,
    /// Connect errors (initial and churn).
    pub connect_errors: u64,
    /// Connect error kinds with counts.
    pub connect_error_kinds: Vec<(String, u64)>,
    /// Subscribed connections the server closed or reset before we closed them.
    pub disconnects: u64,
    /// Replacement connections whose turn to close came before they had subscribed (churn
    /// outpacing connects); counted neither as subscribed nor as errors.
    pub closed_before_subscribed: u64,
    /// Handshake + subscribe latency (TCP connect → `subscription_succeeded`) of the
    /// replacement connects of the measured window, µs.
    pub handshake: Latency,
    /// Measured events the server answered 200.
    pub published_ok: u64,
    /// Publishes that failed.
    pub publish_errors: u64,
    /// The loss rule's figures.
    pub accounting: Accounting,
    /// Second and later copies of an event on one connection.
    pub duplicates: u64,
    /// Delivery latency (receive − intended send), µs, every measured delivery.
    pub latency: Latency,
}

#[derive(Default)]
struct State {
    lives: Vec<Life>,
    events: Vec<Published>,
    publish_errors: u64,
    handshake: Option<Histogram<u64>>,
    latency: Option<Histogram<u64>>,
    subscribed: u64,
    connect_errors: u64,
    error_kinds: Vec<(String, u64)>,
    disconnects: u64,
    closed_before_subscribed: u64,
    duplicates: u64,
    measuring_from_us: u64,
    churn_connects: u64,
    open: u64,
}

impl State {
    fn connect_error(&mut self, kind: String) {
        self.connect_errors += 1;
        crate::stats::tally_error_kind(&mut self.error_kinds, &kind);
    }
}

type Shared = Rc<RefCell<State>>;

/// Runs the churn scenario.
pub fn run(plan: Plan) -> Result<(ChurnResult, Histogram<u64>), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, churn(plan))
}

async fn churn(plan: Plan) -> Result<(ChurnResult, Histogram<u64>), String> {
    let st: Shared = Rc::new(RefCell::new(State {
        handshake: Some(new_histogram()),
        latency: Some(new_histogram()),
        measuring_from_us: u64::MAX,
        ..State::default()
    }));
    let slots = Rc::new(Semaphore::new(plan.connect_concurrency as usize));
    let plan = Rc::new(plan);
    let channel = plan.channel_name(&plan.channel_prefix);
    let mut live: VecDeque<oneshot::Sender<()>> = VecDeque::new();
    let mut tasks = Vec::new();
    let mut next_index = 0u64;
    let mut spawn = |live: &mut VecDeque<oneshot::Sender<()>>, tasks: &mut Vec<_>| {
        let (tx, rx) = oneshot::channel();
        live.push_back(tx);
        tasks.push(tokio::task::spawn_local(connection(
            plan.clone(),
            st.clone(),
            slots.clone(),
            channel.clone(),
            next_index,
            rx,
        )));
        next_index += 1;
    };

    // Initial population.
    let started = Instant::now();
    for _ in 0..plan.connections {
        spawn(&mut live, &mut tasks);
    }
    let mut last_line = Instant::now();
    loop {
        let (done, subscribed, errors) = {
            let s = st.borrow();
            (
                s.subscribed + s.connect_errors >= plan.connections,
                s.subscribed,
                s.connect_errors,
            )
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        if last_line.elapsed() < Duration::from_secs(1) {
            continue;
        }
        last_line = Instant::now();
        eprintln!(
            "[{:>4}s] connect  subscribed {subscribed}/{} errors {errors}",
            started.elapsed().as_secs(),
            plan.connections
        );
    }
    let initial_connect_ms = started.elapsed().as_millis() as u64;
    let initial_subscribed = st.borrow().subscribed;
    eprintln!(
        "initial population: {initial_subscribed} subscribed in {:.2} s",
        initial_connect_ms as f64 / 1000.0
    );

    // Churn + publishing.
    let t0 = Instant::now();
    let t0_us = now_us();
    let window_start_us = t0_us + (plan.warmup_s * 1e6) as u64;
    st.borrow_mut().measuring_from_us = window_start_us;
    let total_s = plan.warmup_s + plan.duration_s;
    let publisher = (plan.rate > 0.0).then(|| {
        tokio::task::spawn_local(publish(plan.clone(), st.clone(), channel.clone(), t0_us))
    });
    let total_replacements = (total_s * plan.churn_per_s).floor() as u64;
    let mut replacements = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_report = Instant::now();
    let end = t0 + Duration::from_secs_f64(total_s);
    while Instant::now() < end {
        tick.tick().await;
        let elapsed = t0.elapsed().as_secs_f64();
        while replacements < total_replacements
            && (replacements as f64) / plan.churn_per_s <= elapsed
        {
            if let Some(tx) = live.pop_front() {
                let _ = tx.send(());
            }
            spawn(&mut live, &mut tasks);
            replacements += 1;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let s = st.borrow();
            eprintln!(
                "[{:>4}s] {:<8} open {} replacements {replacements} errors {} published {}",
                t0.elapsed().as_secs(),
                if now_us() < window_start_us {
                    "warmup"
                } else {
                    "measure"
                },
                s.open,
                s.connect_errors,
                s.events.len()
            );
        }
    }
    let window_end_us = now_us();
    if let Some(p) = publisher {
        let _ = p.await;
    }
    // Drain: let deliveries in flight arrive, then stop everyone.
    tokio::time::sleep(Duration::from_secs_f64(plan.drain_s.min(2.0))).await;
    for tx in live.drain(..) {
        let _ = tx.send(());
    }
    for t in tasks {
        let _ = t.await;
    }

    let mut s = st.borrow_mut();
    let accounting = account(&s.lives, &s.events);
    let hist = s.latency.take().unwrap_or_else(new_histogram);
    let handshake = s.handshake.take().unwrap_or_else(new_histogram);
    let window_s = (window_end_us.saturating_sub(window_start_us)) as f64 / 1e6;
    let result = ChurnResult {
        initial_subscribed,
        initial_connect_ms,
        replacements,
        churn_connects: s.churn_connects,
        connects_per_s: if window_s > 0.0 {
            s.churn_connects as f64 / window_s
        } else {
            0.0
        },
        connect_errors: s.connect_errors,
        connect_error_kinds: std::mem::take(&mut s.error_kinds),
        disconnects: s.disconnects,
        closed_before_subscribed: s.closed_before_subscribed,
        handshake: Latency::of(&handshake),
        published_ok: s.events.len() as u64,
        publish_errors: s.publish_errors,
        accounting,
        duplicates: s.duplicates,
        latency: Latency::of(&hist),
        plan: (*plan).clone(),
    };
    Ok((result, hist))
}

/// One subscriber: connect, subscribe, read until told to close, close, read until the
/// server's close frame, then leave its [`Life`] in the state.
async fn connection(
    plan: Rc<Plan>,
    st: Shared,
    slots: Rc<Semaphore>,
    channel: String,
    index: u64,
    mut close_rx: oneshot::Receiver<()>,
) {
    let connect_start = now_us();
    let setup = async {
        let _permit = slots.acquire().await;
        let (mut conn, socket_id) = open(&plan, index).await?;
        let msg = subscribe_message(&plan, &channel, &socket_id, index);
        conn.send_text(msg.as_bytes())
            .await
            .map_err(|e| format!("subscribe write: {}", e.kind()))?;
        loop {
            if let Message::Text(text) = conn.next_message().await? {
                let event = event_name(&text);
                match event.as_deref() {
                    Some("pusher_internal:subscription_succeeded") => return Ok(conn),
                    Some("pusher:subscription_error") => return Err("subscription_error".into()),
                    Some("pusher:error") => return Err("pusher:error".into()),
                    _ => {}
                }
            }
        }
    };
    let setup = tokio::select! {
        r = tokio::time::timeout(CONNECT_TIMEOUT, setup) => r,
        _ = &mut close_rx => {
            // Told to close before it was up: counts as neither success nor error.
            st.borrow_mut().closed_before_subscribed += 1;
            return;
        }
    };
    let mut conn = match setup {
        Ok(Ok(conn)) => conn,
        Ok(Err(kind)) => return st.borrow_mut().connect_error(kind),
        Err(_) => return st.borrow_mut().connect_error("timeout".into()),
    };
    let subscribed_us = now_us();
    {
        let mut s = st.borrow_mut();
        s.subscribed += 1;
        s.open += 1;
        if index >= plan.connections && connect_start >= s.measuring_from_us {
            s.churn_connects += 1;
            if let Some(h) = s.handshake.as_mut() {
                h.saturating_record((subscribed_us - connect_start).max(1));
            }
        }
    }
    let mut life = Life {
        subscribed_us,
        close_us: u64::MAX,
        received: HashSet::new(),
    };
    let mut closing = false;
    loop {
        let msg = if closing {
            match tokio::time::timeout(CLOSE_TIMEOUT, conn.next_message()).await {
                Ok(m) => m,
                Err(_) => break,
            }
        } else {
            tokio::select! {
                m = conn.next_message() => m,
                _ = &mut close_rx => {
                    life.close_us = now_us();
                    closing = true;
                    if conn.close().await.is_err() {
                        break;
                    }
                    continue;
                }
            }
        };
        match msg {
            Ok(Message::Text(text)) => receive(&st, &mut life, &text),
            Ok(_) => {}
            Err(_) => {
                if !closing {
                    life.close_us = now_us();
                    st.borrow_mut().disconnects += 1;
                }
                break;
            }
        }
    }
    let mut s = st.borrow_mut();
    s.open -= 1;
    s.lives.push(life);
}

fn receive(st: &Shared, life: &mut Life, text: &[u8]) {
    let Some(pos) = memchr::memmem::find(text, MEASURED_MARKER) else {
        return;
    };
    let now = now_us();
    let Some((stream, seq, sent)) = parse_stamp(&text[pos + MEASURED_MARKER.len()..]) else {
        return;
    };
    let mut s = st.borrow_mut();
    if !life.received.insert((stream, seq)) {
        s.duplicates += 1;
        return;
    }
    if let Some(h) = s.latency.as_mut() {
        h.saturating_record(now.saturating_sub(sent).max(1));
    }
}

/// The `event` field of a Pusher message.
pub fn event_name(text: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct E {
        event: String,
    }
    serde_json::from_slice::<E>(text).ok().map(|e| e.event)
}

/// Open-loop publisher of the churn run: event i due at `t0 + i/R`, handed to pool connection
/// `i % publishers`; each pool connection sends its queue in order and records when each
/// request write started and when its answer arrived.
async fn publish(plan: Rc<Plan>, st: Shared, channel: String, t0_us: u64) {
    let pool = plan.publishers.max(1);
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..pool {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        senders.push(tx);
        let (plan, st) = (plan.clone(), st.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut conn: Option<(Stream, BytesMut)> = None;
            let path = format!("/apps/{}/events", plan.app_id);
            while let Some(event) = rx.recv().await {
                let request = publish_request(&plan, &path, &event);
                let sent_us = now_us();
                let result = send_once(&plan, &mut conn, request.as_bytes()).await;
                let answered_us = now_us();
                let mut s = st.borrow_mut();
                match result {
                    Ok(200) if !event.warmup => s.events.push(Published {
                        stream: event.stream,
                        seq: event.seq,
                        sent_us,
                        answered_us,
                    }),
                    Ok(200) => {}
                    Ok(_) => s.publish_errors += 1,
                    Err(_) => {
                        conn = None;
                        s.publish_errors += 1;
                    }
                }
            }
        }));
    }
    let total = ((plan.warmup_s + plan.duration_s) * plan.rate).floor() as u64;
    let warmup_end = t0_us + (plan.warmup_s * 1e6) as u64;
    let mut seqs = vec![0u64; pool as usize];
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next = 0u64;
    while next < total {
        tick.tick().await;
        let now = now_us();
        while next < total {
            let intended_us = t0_us + (next as f64 * 1e6 / plan.rate) as u64;
            if intended_us > now {
                break;
            }
            let stream = (next % u64::from(pool)) as u32;
            let warmup = intended_us < warmup_end;
            let seq = if warmup {
                0
            } else {
                seqs[stream as usize] += 1;
                seqs[stream as usize] - 1
            };
            let _ = senders[stream as usize].send(Event {
                stream,
                channel: channel.clone(),
                seq,
                intended_us,
                warmup,
                recipients: 0,
            });
            next += 1;
        }
    }
    drop(senders);
    for t in tasks {
        let _ = t.await;
    }
}

/// The readable summary of a churn run.
pub fn summary(r: &ChurnResult) -> String {
    let a = &r.accounting;
    let mut s = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "churn: {} connections on one channel, {}/s replaced, publish {}/s, {} s measured",
        r.plan.connections, r.plan.churn_per_s, r.plan.rate, r.plan.duration_s
    );
    let _ = writeln!(
        s,
        "initial: {} subscribed in {:.2} s",
        r.initial_subscribed,
        r.initial_connect_ms as f64 / 1000.0
    );
    let _ = writeln!(
        s,
        "churn: {} replacements, {} measured connects = {:.1} connects/s; connect errors {} {:?}; \
         server-side disconnects {}; closed before subscribed {}",
        r.replacements,
        r.churn_connects,
        r.connects_per_s,
        r.connect_errors,
        r.connect_error_kinds,
        r.disconnects,
        r.closed_before_subscribed
    );
    let h = &r.handshake;
    let _ = writeln!(
        s,
        "handshake+subscribe: n {} p50 {} p99 {} max {}",
        h.count,
        ms(h.p50_us),
        ms(h.p99_us),
        ms(h.max_us)
    );
    let _ = writeln!(
        s,
        "events: published {} (errors {}); expected {} delivered {} lost {} \
         (+{} outside the rule) duplicates {}",
        r.published_ok,
        r.publish_errors,
        a.expected,
        a.delivered_expected,
        a.lost,
        a.delivered_unexpected,
        r.duplicates
    );
    let _ = writeln!(s, "{}", latency_line("latency", &r.latency));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, sent_us: u64, answered_us: u64) -> Published {
        Published {
            stream: 0,
            seq,
            sent_us,
            answered_us,
        }
    }

    #[test]
    fn loss_rule_expects_only_events_inside_the_subscription() {
        let events = [
            ev(0, 90, 95),
            ev(1, 100, 110),
            ev(2, 150, 160),
            ev(3, 195, 205),
        ];
        // Subscribed at 100, closing from 200: expects seq 1 and 2 only.
        let life = Life {
            subscribed_us: 100,
            close_us: 200,
            received: [(0, 0), (0, 1), (0, 3)].into_iter().collect(),
        };
        let a = account(&[life], &events);
        assert_eq!(
            a,
            Accounting {
                expected: 2,
                delivered_expected: 1,
                lost: 1,
                delivered_unexpected: 2,
            }
        );
    }

    #[test]
    fn extra_deliveries_never_hide_a_loss() {
        let events = [ev(0, 10, 20), ev(1, 30, 40)];
        let a = account(
            &[
                Life {
                    subscribed_us: 0,
                    close_us: u64::MAX,
                    received: [(0, 0), (0, 1)].into_iter().collect(),
                },
                Life {
                    subscribed_us: 25,
                    close_us: u64::MAX,
                    received: [(0, 0)].into_iter().collect(),
                },
            ],
            &events,
        );
        assert_eq!(a.expected, 3);
        assert_eq!(a.lost, 1);
        assert_eq!(a.delivered_unexpected, 1);
    }
}
