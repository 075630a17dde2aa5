//! The `presence` scenario: a join/leave storm on `channels` presence channels. Connection i
//! belongs to user `u{i / tabs_per_user}` (several tabs per user) on channel
//! `presence-{prefix}-{user % channels}`; `observers_per_channel` extra connections (users
//! `obs-…`) join every channel first and watch. Then every member joins, and the storm toggles
//! one tab at `churn_per_s` (open loop: op k due at `t0 + k/C`; op k takes user `k % users`
//! and, on that user's r-th turn, tab `r % tabs`: a joined tab leaves with
//! `pusher:unsubscribe`, a left tab joins again with a fresh `pusher:subscribe`).
//!
//! **Member event rule.** Per user and channel the generator counts joined tabs in the order
//! it sends the commands; ops on one user are `users / churn_per_s` seconds apart, so the server
//! sees them in the same order. A 0 → 1 transition expects exactly one `member_added` at every
//! observer of the channel, a 1 → 0 transition exactly one `member_removed`. After the storm
//! the run waits (up to `drain_s`) for the observers to catch up, then compares per
//! (observer, user): `extra` = seen beyond expected, `missing` = expected not seen. Latency is
//! from writing the `pusher:subscribe` of a 0 → 1 join to `member_added` at each observer
//! (measured-window joins only). Every `subscription_succeeded` is checked: `presence.count`
//! equals the number of `ids` and the ids include the subscriber's own user id.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{mpsc, Semaphore};

use crate::churn::event_name;
use crate::profile::Plan;
use crate::report::{latency_line, Latency};
use crate::stats::new_histogram;
use crate::wire::now_us;
use crate::ws_client::{open, Conn, Message};

/// Time one connection gets to connect, upgrade and subscribe.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Expected and seen member events, and the comparison.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct MemberEvents {
    /// `member_added` expected (Σ over observers).
    pub added_expected: u64,
    /// `member_added` seen.
    pub added_seen: u64,
    /// `member_removed` expected.
    pub removed_expected: u64,
    /// `member_removed` seen.
    pub removed_seen: u64,
    /// Events seen beyond the expected count, per (observer, user, kind), summed.
    pub extra: u64,
    /// Expected events not seen, summed.
    pub missing: u64,
}

/// Joined-tab counts per user and the member events they imply.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// Joined tabs per user.
    pub joined: Vec<u64>,
    /// `member_added` each observer of the user's channel should see.
    pub added: Vec<u64>,
    /// `member_removed` each observer of the user's channel should see.
    pub removed: Vec<u64>,
}

impl Ledger {
    /// A ledger for `users` users with no tab joined.
    pub fn new(users: usize) -> Ledger {
        Ledger {
            joined: vec![0; users],
            added: vec![0; users],
            removed: vec![0; users],
        }
    }

    /// A tab of `user` joins; true when it is the user's first (a `member_added` is due).
    pub fn join(&mut self, user: usize) -> bool {
        self.joined[user] += 1;
        let first = self.joined[user] == 1;
        self.added[user] += u64::from(first);
        first
    }

    /// A tab of `user` leaves; true when it was the user's last (a `member_removed` is due).
    pub fn leave(&mut self, user: usize) -> bool {
        self.joined[user] = self.joined[user].saturating_sub(1);
        let last = self.joined[user] == 0;
        self.removed[user] += u64::from(last);
        last
    }

    /// Compares with what observers saw: `seen[(observer, user)] = (added, removed)`;
    /// `observers_of(user)` lists the observers of the user's channel.
    pub fn compare(
        &self,
        seen: &HashMap<(usize, usize), (u64, u64)>,
        observers_of: impl Fn(usize) -> Vec<usize>,
    ) -> MemberEvents {
        let mut m = MemberEvents::default();
        for user in 0..self.joined.len() {
            for obs in observers_of(user) {
                let (a, r) = seen.get(&(obs, user)).copied().unwrap_or((0, 0));
                m.added_expected += self.added[user];
                m.removed_expected += self.removed[user];
                m.added_seen += a;
                m.removed_seen += r;
                m.extra +=
                    a.saturating_sub(self.added[user]) + r.saturating_sub(self.removed[user]);
                m.missing +=
                    self.added[user].saturating_sub(a) + self.removed[user].saturating_sub(r);
            }
        }
        // Events about a user at an observer of another channel are all extra.
        for (&(obs, user), &(a, r)) in seen {
            if user >= self.joined.len() || !observers_of(user).contains(&obs) {
                m.extra += a + r;
                m.added_seen += a;
                m.removed_seen += r;
            }
        }
        m
    }
}

/// What a presence run measured.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceResult {
    /// The resolved plan.
    pub plan: Plan,
    /// Users (connections / tabs_per_user, rounded up).
    pub users: u64,
    /// Observer connections.
    pub observers: u64,
    /// Members + observers subscribed at the start.
    pub subscribed: u64,
    /// Time to connect and join everyone, ms.
    pub connect_ms: u64,
    /// Connect errors.
    pub connect_errors: u64,
    /// Connect error kinds with counts.
    pub connect_error_kinds: Vec<(String, u64)>,
    /// Connections the server closed or reset during the run.
    pub disconnects: u64,
    /// Storm ops (leaves + joins) sent.
    pub ops: u64,
    /// Joins (re-subscribes) sent in the storm.
    pub rejoins: u64,
    /// Joins answered `subscription_error` or never answered by the end.
    pub rejoin_errors: u64,
    /// Storm ops per second achieved.
    pub ops_per_s: f64,
    /// `subscription_succeeded` received.
    pub succeeded: u64,
    /// `subscription_succeeded` whose member data failed the sanity check.
    pub succeeded_bad: u64,
    /// Member event accounting.
    pub members: MemberEvents,
    /// Join (`pusher:subscribe` written) → `member_added` at an observer, µs.
    pub latency: Latency,
}

#[derive(Default)]
struct State {
    subscribed: u64,
    connect_errors: u64,
    error_kinds: Vec<(String, u64)>,
    disconnects: u64,
    succeeded: u64,
    succeeded_bad: u64,
    rejoin_errors: u64,
    /// When the pending first join of each user was written, µs.
    join_sent: Vec<Option<u64>>,
    seen: HashMap<(usize, usize), (u64, u64)>,
    latency: Option<Histogram<u64>>,
    measuring_from_us: u64,
}

impl State {
    fn connect_error(&mut self, kind: String) {
        self.connect_errors += 1;
        crate::stats::tally_error_kind(&mut self.error_kinds, &kind);
    }
}

type Shared = Rc<RefCell<State>>;

/// What a member task is told.
enum Cmd {
    /// Subscribe; `first` when this is the user's 0 → 1 join (latency is timed).
    Join { first: bool },
    /// Unsubscribe.
    Leave,
    /// Close the connection.
    Close,
}

/// Who a connection is.
#[derive(Clone)]
struct Who {
    index: u64,
    user_id: String,
    /// User number for members, `None` for observers.
    user: Option<usize>,
    /// Observer number for observers.
    observer: Option<usize>,
    channel: String,
}

/// Runs the presence scenario.
pub fn run(plan: Plan) -> Result<(PresenceResult, Histogram<u64>), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, storm(plan))
}

async fn storm(plan: Plan) -> Result<(PresenceResult, Histogram<u64>), String> {
    let n = plan.connections;
    let tabs = plan.tabs_per_user;
    let users = n.div_ceil(tabs) as usize;
    let k = plan.channels;
    let per = plan.observers_per_channel;
    // Always presence channels, whatever `channel_type` says.
    let channel_of = |user: usize| format!("presence-{}-{}", plan.channel_prefix, user as u64 % k);
    let st: Shared = Rc::new(RefCell::new(State {
        join_sent: vec![None; users],
        latency: Some(new_histogram()),
        measuring_from_us: u64::MAX,
        ..State::default()
    }));
    let slots = Rc::new(Semaphore::new(plan.connect_concurrency as usize));
    let plan = Rc::new(plan.clone());
    let started = Instant::now();

    // Observers first.
    let mut tasks = Vec::new();
    let mut observer_tx = Vec::new();
    for c in 0..k {
        for j in 0..per {
            let o = (c * per + j) as usize;
            let who = Who {
                index: n + o as u64,
                user_id: format!("obs-{c}-{j}"),
                user: None,
                observer: Some(o),
                channel: channel_of(c as usize),
            };
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(Cmd::Join { first: false });
            observer_tx.push(tx);
            tasks.push(tokio::task::spawn_local(connection(
                plan.clone(),
                st.clone(),
                slots.clone(),
                who,
                rx,
            )));
        }
    }
    let observers = k * per;
    wait_subscribed(&st, observers, started).await;

    // Members: everyone joins.
    let mut ledger = Ledger::new(users);
    let mut member_tx = Vec::new();
    let mut joined_tab = vec![true; n as usize];
    for i in 0..n {
        let user = (i / tabs) as usize;
        let who = Who {
            index: i,
            user_id: format!("u{user}"),
            user: Some(user),
            observer: None,
            channel: channel_of(user),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let first = ledger.join(user);
        let _ = tx.send(Cmd::Join { first });
        member_tx.push(tx);
        tasks.push(tokio::task::spawn_local(connection(
            plan.clone(),
            st.clone(),
            slots.clone(),
            who,
            rx,
        )));
    }
    wait_subscribed(&st, observers + n, started).await;
    let connect_ms = started.elapsed().as_millis() as u64;
    let subscribed = st.borrow().subscribed;
    eprintln!(
        "all joined: {subscribed} subscribed in {:.2} s",
        connect_ms as f64 / 1000.0
    );

    // Storm.
    let t0 = Instant::now();
    let window_start_us = now_us() + (plan.warmup_s * 1e6) as u64;
    st.borrow_mut().measuring_from_us = window_start_us;
    let total_s = plan.warmup_s + plan.duration_s;
    let total_ops = if plan.churn_per_s > 0.0 {
        (total_s * plan.churn_per_s).floor() as u64
    } else {
        0
    };
    let mut ops = 0u64;
    let mut rejoins = 0u64;
    let mut window_ops = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_line = Instant::now();
    let end = t0 + Duration::from_secs_f64(total_s);
    while Instant::now() < end {
        tick.tick().await;
        let elapsed = t0.elapsed().as_secs_f64();
        while ops < total_ops && (ops as f64) / plan.churn_per_s <= elapsed {
            let user = (ops % users as u64) as usize;
            let round = ops / users as u64;
            let first_tab = user as u64 * tabs;
            let user_tabs = tabs.min(n - first_tab);
            let i = (first_tab + round % user_tabs) as usize;
            let cmd = if joined_tab[i] {
                ledger.leave(user);
                Cmd::Leave
            } else {
                rejoins += 1;
                Cmd::Join {
                    first: ledger.join(user),
                }
            };
            joined_tab[i] = !joined_tab[i];
            let _ = member_tx[i].send(cmd);
            ops += 1;
            if now_us() >= window_start_us {
                window_ops += 1;
            }
        }
        if last_line.elapsed() >= Duration::from_secs(1) {
            last_line = Instant::now();
            let s = st.borrow();
            let (a, r) = s
                .seen
                .values()
                .fold((0, 0), |(a, r), (x, y)| (a + x, r + y));
            eprintln!(
                "[{:>4}s] {:<8} ops {ops} member_added {a} member_removed {r} errors {}",
                t0.elapsed().as_secs(),
                if now_us() < window_start_us {
                    "warmup"
                } else {
                    "measure"
                },
                s.connect_errors
            );
        }
    }
    let ops_per_s = window_ops as f64 / plan.duration_s.max(1e-9);

    // Settle: wait until the observers saw everything expected (or drain_s passes).
    let observers_of = |user: usize| -> Vec<usize> {
        let c = (user as u64 % k) * per;
        (c..c + per).map(|o| o as usize).collect()
    };
    let deadline = Instant::now() + Duration::from_secs_f64(plan.drain_s);
    let members = loop {
        let m = ledger.compare(&st.borrow().seen, observers_of);
        if m.missing == 0 || Instant::now() >= deadline {
            // A short grace period so late extras show up too.
            tokio::time::sleep(Duration::from_millis(200)).await;
            break ledger.compare(&st.borrow().seen, observers_of);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for tx in observer_tx.iter().chain(member_tx.iter()) {
        let _ = tx.send(Cmd::Close);
    }
    drop(observer_tx);
    drop(member_tx);
    for t in tasks {
        let _ = t.await;
    }
    let mut s = st.borrow_mut();
    let hist = s.latency.take().unwrap_or_else(new_histogram);
    let result = PresenceResult {
        users: users as u64,
        observers,
        subscribed,
        connect_ms,
        connect_errors: s.connect_errors,
        connect_error_kinds: std::mem::take(&mut s.error_kinds),
        disconnects: s.disconnects,
        ops,
        rejoins,
        rejoin_errors: s.rejoin_errors,
        ops_per_s,
        succeeded: s.succeeded,
        succeeded_bad: s.succeeded_bad,
        members,
        latency: Latency::of(&hist),
        plan: (*plan).clone(),
    };
    Ok((result, hist))
}

async fn wait_subscribed(st: &Shared, target: u64, started: Instant) {
    let mut last_line = Instant::now();
    loop {
        let (sub, err) = {
            let s = st.borrow();
            (s.subscribed, s.connect_errors)
        };
        if sub + err >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        if last_line.elapsed() >= Duration::from_secs(1) {
            last_line = Instant::now();
            eprintln!(
                "[{:>4}s] connect  subscribed {sub}/{target} errors {err}",
                started.elapsed().as_secs()
            );
        }
    }
}

fn subscribe_message(plan: &Plan, who: &Who, socket_id: &str) -> String {
    use ringcast_core::pusher::auth::channel_auth_token;
    let channel_data = serde_json::json!({ "user_id": who.user_id, "user_info": {} }).to_string();
    serde_json::json!({
        "event": "pusher:subscribe",
        "data": {
            "channel": who.channel,
            "auth": channel_auth_token(
                &plan.key, &plan.secret, socket_id, &who.channel, Some(&channel_data)),
            "channel_data": channel_data,
        }
    })
    .to_string()
}

/// One member or observer: connects, then follows its commands while reading.
async fn connection(
    plan: Rc<Plan>,
    st: Shared,
    slots: Rc<Semaphore>,
    who: Who,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
) {
    let opened = {
        let _permit = slots.acquire().await;
        tokio::time::timeout(CONNECT_TIMEOUT, async {
            let (mut conn, socket_id) = open(&plan, who.index).await?;
            // The first command is always the initial join.
            if let Some(Cmd::Join { first }) = rx.recv().await {
                join(&plan, &st, &who, &mut conn, &socket_id, first).await?;
            }
            loop {
                let Message::Text(text) = conn.next_message().await? else {
                    continue;
                };
                match on_text(&st, &who, &text) {
                    Seen::Succeeded => return Ok((conn, socket_id)),
                    Seen::Error(e) => return Err(e),
                    Seen::Other => {}
                }
            }
        })
        .await
    };
    let (mut conn, socket_id) = match opened {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return st.borrow_mut().connect_error(e),
        Err(_) => return st.borrow_mut().connect_error("timeout".into()),
    };
    st.borrow_mut().subscribed += 1;
    let mut pending_joins = 0u64;
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Join { first }) => {
                    if join(&plan, &st, &who, &mut conn, &socket_id, first).await.is_err() {
                        break;
                    }
                    pending_joins += 1;
                }
                Some(Cmd::Leave) => {
                    let msg = serde_json::json!({
                        "event": "pusher:unsubscribe",
                        "data": { "channel": who.channel },
                    })
                    .to_string();
                    if conn.send_text(msg.as_bytes()).await.is_err() {
                        st.borrow_mut().disconnects += 1;
                        break;
                    }
                }
                Some(Cmd::Close) | None => {
                    let _ = conn.close().await;
                    break;
                }
            },
            msg = conn.next_message() => match msg {
                Ok(Message::Text(text)) => match on_text(&st, &who, &text) {
                    Seen::Succeeded => pending_joins = pending_joins.saturating_sub(1),
                    Seen::Error(_) => {
                        pending_joins = pending_joins.saturating_sub(1);
                        st.borrow_mut().rejoin_errors += 1;
                    }
                    Seen::Other => {}
                },
                Ok(_) => {}
                Err(_) => {
                    st.borrow_mut().disconnects += 1;
                    break;
                }
            },
        }
    }
    st.borrow_mut().rejoin_errors += pending_joins;
}

async fn join(
    plan: &Plan,
    st: &Shared,
    who: &Who,
    conn: &mut Conn,
    socket_id: &str,
    first: bool,
) -> Result<(), String> {
    let msg = subscribe_message(plan, who, socket_id);
    if first {
        if let Some(u) = who.user {
            st.borrow_mut().join_sent[u] = Some(now_us());
        }
    }
    conn.send_text(msg.as_bytes())
        .await
        .map_err(|e| format!("subscribe write: {}", e.kind()))
}

enum Seen {
    Succeeded,
    Error(String),
    Other,
}

fn on_text(st: &Shared, who: &Who, text: &[u8]) -> Seen {
    let Some(event) = event_name(text) else {
        return Seen::Other;
    };
    match event.as_str() {
        "pusher_internal:subscription_succeeded" => {
            let ok = presence_data_sane(text, &who.user_id);
            let mut s = st.borrow_mut();
            s.succeeded += 1;
            s.succeeded_bad += u64::from(!ok);
            Seen::Succeeded
        }
        "pusher:subscription_error" | "pusher:error" => {
            // The kind is the error's `type` (e.g. LimitReached), not the channel-specific text.
            let kind = error_type(text).unwrap_or_else(|| "?".into());
            Seen::Error(format!("{event} {kind}"))
        }
        "pusher_internal:member_added" | "pusher_internal:member_removed" => {
            let Some(obs) = who.observer else {
                return Seen::Other;
            };
            let Some(user) = member_user(text) else {
                return Seen::Other;
            };
            let added = event.ends_with("added");
            let now = now_us();
            let mut s = st.borrow_mut();
            let entry = s.seen.entry((obs, user)).or_default();
            if added {
                entry.0 += 1;
                let sent = s.join_sent.get(user).copied().flatten();
                if let Some(sent) = sent {
                    if sent >= s.measuring_from_us {
                        if let Some(h) = s.latency.as_mut() {
                            h.saturating_record(now.saturating_sub(sent).max(1));
                        }
                    }
                }
            } else {
                entry.1 += 1;
            }
            Seen::Other
        }
        _ => Seen::Other,
    }
}

/// The member's user number from `member_added`/`member_removed` data (`u{n}`; observers'
/// `obs-…` ids give `None`).
fn member_user(text: &[u8]) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_slice(text).ok()?;
    let data = match &v["data"] {
        serde_json::Value::String(s) => serde_json::from_str(s).ok()?,
        other => other.clone(),
    };
    data["user_id"].as_str()?.strip_prefix('u')?.parse().ok()
}

/// The `type` (or `code`) of a `pusher:subscription_error` / `pusher:error`.
fn error_type(text: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(text).ok()?;
    let data = match &v["data"] {
        serde_json::Value::String(s) => serde_json::from_str(s).ok()?,
        other => other.clone(),
    };
    match (&data["type"], &data["code"]) {
        (serde_json::Value::String(t), _) => Some(t.clone()),
        (_, serde_json::Value::Null) => None,
        (_, code) => Some(code.to_string()),
    }
}

/// `presence.count == ids.len()` and `ids` contains `own`.
pub fn presence_data_sane(text: &[u8], own: &str) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(text) else {
        return false;
    };
    let data = match &v["data"] {
        serde_json::Value::String(s) => match serde_json::from_str(s) {
            Ok(d) => d,
            Err(_) => return false,
        },
        other => other.clone(),
    };
    let p = &data["presence"];
    let Some(ids) = p["ids"].as_array() else {
        return false;
    };
    p["count"].as_u64() == Some(ids.len() as u64) && ids.iter().any(|i| i.as_str() == Some(own))
}

/// The readable summary of a presence run.
pub fn summary(r: &PresenceResult) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let p = &r.plan;
    let _ = writeln!(
        s,
        "presence: {} connections = {} users × {} tabs on {} channels, {} observers/channel, \
         {} ops/s, {} s measured",
        p.connections,
        r.users,
        p.tabs_per_user,
        p.channels,
        p.observers_per_channel,
        p.churn_per_s,
        p.duration_s
    );
    let _ = writeln!(
        s,
        "connect: {} subscribed in {:.2} s; connect errors {} {:?}; disconnects {}",
        r.subscribed,
        r.connect_ms as f64 / 1000.0,
        r.connect_errors,
        r.connect_error_kinds,
        r.disconnects
    );
    let _ = writeln!(
        s,
        "storm: {} ops ({} rejoins, {} rejoin errors), {:.1} ops/s measured; \
         subscription_succeeded {} ({} failed the member-data check)",
        r.ops, r.rejoins, r.rejoin_errors, r.ops_per_s, r.succeeded, r.succeeded_bad
    );
    let m = &r.members;
    let _ = writeln!(
        s,
        "member events: added {}/{} removed {}/{} (seen/expected); extra {} missing {}",
        m.added_seen, m.added_expected, m.removed_seen, m.removed_expected, m.extra, m.missing
    );
    let _ = writeln!(s, "{}", latency_line("join→member_added", &r.latency));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_expects_events_on_first_join_and_last_leave_only() {
        let mut l = Ledger::new(1);
        assert!(l.join(0));
        assert!(!l.join(0));
        assert!(!l.leave(0));
        assert!(l.leave(0));
        assert!(l.join(0));
        assert_eq!((l.added[0], l.removed[0]), (2, 1));
    }

    #[test]
    fn compare_reports_extra_and_missing_per_observer() {
        let mut l = Ledger::new(2);
        l.join(0);
        l.join(1);
        l.leave(1);
        // Observer 0 watches both users; it saw user 0 added twice and missed user 1's removal.
        let seen: HashMap<(usize, usize), (u64, u64)> =
            [((0, 0), (2, 0)), ((0, 1), (1, 0)), ((5, 0), (1, 0))]
                .into_iter()
                .collect();
        let m = l.compare(&seen, |_| vec![0]);
        assert_eq!(m.added_expected, 2);
        assert_eq!(m.removed_expected, 1);
        assert_eq!(m.missing, 1);
        // One duplicate add, plus one event at an observer of another channel.
        assert_eq!(m.extra, 2);
    }

    #[test]
    fn presence_data_check() {
        let ok = br#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-x","data":"{\"presence\":{\"count\":2,\"ids\":[\"u1\",\"u2\"],\"hash\":{}}}"}"#;
        assert!(presence_data_sane(ok, "u1"));
        assert!(!presence_data_sane(ok, "u3"));
        let bad = br#"{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":3,\"ids\":[\"u1\"]}}"}"#;
        assert!(!presence_data_sane(bad, "u1"));
    }
}
