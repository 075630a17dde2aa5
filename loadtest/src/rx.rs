//! The receive side of a worker: one thread runs a `mio` event loop over every subscribed
//! connection of the worker, so a received message costs a share of one `epoll_wait` and one
//! `read` instead of a task wakeup, a small read and a trip through the tokio scheduler.
//!
//! Connections arrive already upgraded and subscribed (the connect thread in
//! [`crate::ws_client`] does that on tokio) as [`Handoff`]s through the worker's inbox. From
//! then on each socket is registered edge-triggered; on readiness it is read into one large
//! per-thread buffer until a short read (epoll(7): a short read of a stream socket means its
//! receive queue was empty, so the next byte raises a new edge), and whole frames are scanned
//! in place. Only a trailing partial frame is copied, into the connection's small carry-over.
//! Load events are found by a `memmem` search for the `"lt":"STREAM.SEQ.INTENDED_US"` marker;
//! nothing is JSON-parsed on that path.
//!
//! **Batching**: a poll that found ready sockets is followed by a [`BATCH_WINDOW`] sleep, so the
//! next poll returns a batch instead of this thread going idle and being woken for nearly every
//! message (the wakeup cost more than the read, and the server paid for waking it too). When a
//! poll after the sleep finds nothing, the loop blocks in `epoll_wait` again.
//!
//! **TLS** (`wss://`): the socket's ciphertext is read into a second per-thread buffer and fed
//! to the connection's rustls state; the plaintext it yields is read into the shared buffer
//! and scanned as above, stamped when it comes out of rustls.
//!
//! **Clock**: one wall-clock reading per socket read, taken right after the read returns. Every
//! message of that read gets it. A message is therefore stamped late by at most the batch
//! window plus timer slack (≤ 0.3 ms) plus one read's scan time (µs), always in the same
//! direction, against the tens of ms reported at 10,000 subscribers; never early.

use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::memmem::Finder;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::ClientConnection;

use crate::stats::{SeqOutcome, SeqTracker, WorkerStats};
use crate::wire::{
    masked_frame, now_us, parse_frame_header, parse_stamp, FrameParse, MEASURED_MARKER,
    MESSAGE_MAX, WARMUP_MARKER,
};

/// The token of the inbox waker.
pub const WAKER: Token = Token(usize::MAX);
/// The per-thread read buffer, bytes: one read drains many frames of a busy socket.
const READ_BUF: usize = 256 * 1024;
/// A carry-over longer than this (a large partial frame) is read into directly instead of
/// being copied to the front of the shared buffer before every read.
const CARRY_IN_PLACE: usize = READ_BUF / 2;
/// Bytes one read into a large carry-over asks for.
const CARRY_READ: usize = 64 * 1024;
/// The per-thread buffer TLS sockets' ciphertext is read into, bytes.
const CIPHER_BUF: usize = 64 * 1024;
/// Streams one subscriber tracks at most (publisher connections × channels it is on).
const STREAMS_PER_CONNECTION_MAX: usize = 1024;
/// How long the loop sleeps after a poll that found something, before collecting the next
/// batch. Messages that arrive meanwhile are read, and stamped, up to this much (plus the
/// kernel's timer slack, 50 µs by default) after they reached the socket. Measured at 10,000
/// subscribers × 5/s: 4.1 µs CPU per message with no sleep, 3.2 µs at 100 µs, 2.4 µs at 300 µs.
const BATCH_WINDOW: Duration = Duration::from_micros(250);
/// Events one `epoll_wait` returns at most.
const EVENTS_MAX: usize = 1024;
/// `pusher:ping` as it appears in a Pusher event, searched before any JSON parse.
const PUSHER_PING: &[u8] = b"pusher:ping";

/// A subscribed connection handed from the connect thread to the receive loop.
pub struct Handoff {
    /// The socket (non-blocking).
    pub stream: std::net::TcpStream,
    /// The TLS state of a `wss://` connection (with any plaintext not read yet).
    pub tls: Option<Box<ClientConnection>>,
    /// Bytes already read past the last subscription reply.
    pub carry: Vec<u8>,
    /// A fragmented message in progress at handoff: first opcode and data so far.
    pub fragments: Option<(u8, Vec<u8>)>,
    /// State of the client frame masking-key generator.
    pub mask_seed: u32,
}

/// What the connect thread and the stdin reader tell the receive loop.
pub enum Inbox {
    /// A connection finished its handshake and every subscription.
    Subscribed(Box<Handoff>),
    /// A connection attempt failed with this error kind.
    Failed(String),
    /// The coordinator said `stop` (or closed stdin).
    Stop,
}

/// What the receive loop tells the worker (which turns it into protocol lines).
pub trait Reporter {
    /// Every connection has subscribed or failed.
    fn ready(&mut self, stats: &WorkerStats);
    /// One second has passed.
    fn tick(&mut self, stats: &mut WorkerStats);
}

/// Per-connection state other than the socket and its carry-over.
struct ConnState {
    fragments: Option<(u8, Vec<u8>)>,
    streams: Vec<(u32, SeqTracker)>,
    mask_seed: u32,
    /// Control frames (pongs, the close reply) not yet accepted by the socket.
    out: Vec<u8>,
}

/// One subscribed connection in the slab.
struct RxConn {
    stream: TcpStream,
    tls: Option<Box<ClientConnection>>,
    carry: Vec<u8>,
    state: ConnState,
}

/// Searchers built once per thread.
struct Finders {
    measured: Finder<'static>,
    warmup: Finder<'static>,
    ping: Finder<'static>,
}

/// The receive loop: owns the slab of connections and every counter of the worker.
pub struct RxLoop {
    poll: Poll,
    /// Held so the waker's eventfd outlives its other holders: closing it would drop a wake
    /// that is pending but not yet collected (a `stop` lost that way hung the worker).
    _waker: Arc<Waker>,
    inbox: Receiver<Inbox>,
    conns: Vec<Option<RxConn>>,
    buf: Vec<u8>,
    /// Ciphertext of TLS sockets; allocated with the first one.
    cipher: Vec<u8>,
    finders: Finders,
    stats: WorkerStats,
    share_len: u64,
}

impl RxLoop {
    /// A loop over `poll` (whose registry has `waker` at [`WAKER`]) fed by `inbox`, expecting
    /// `share_len` connection attempts.
    pub fn new(poll: Poll, waker: Arc<Waker>, inbox: Receiver<Inbox>, share_len: u64) -> Self {
        RxLoop {
            poll,
            _waker: waker,
            inbox,
            conns: Vec::new(),
            buf: vec![0; READ_BUF],
            cipher: Vec::new(),
            finders: Finders {
                measured: Finder::new(MEASURED_MARKER),
                warmup: Finder::new(WARMUP_MARKER),
                ping: Finder::new(PUSHER_PING),
            },
            stats: WorkerStats::new(),
            share_len,
        }
    }

    /// Runs until [`Inbox::Stop`] (or every sender is gone); returns the final state.
    pub fn run(mut self, reporter: &mut dyn Reporter) -> Result<WorkerStats, String> {
        let mut events = Events::with_capacity(EVENTS_MAX);
        let mut next_tick = Instant::now() + Duration::from_secs(1);
        let mut ready_sent = false;
        if self.share_len == 0 {
            reporter.ready(&self.stats);
            ready_sent = true;
        }
        // Set while events keep coming: the next poll only collects, it does not block.
        let mut batching = false;
        loop {
            let timeout = if batching {
                Duration::ZERO
            } else {
                next_tick.saturating_duration_since(Instant::now())
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("epoll: {e}")),
            }
            let mut woken = false;
            let mut ready = 0;
            for event in events.iter() {
                ready += 1;
                let token = event.token();
                if token == WAKER {
                    woken = true;
                    continue;
                }
                let outcome = if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.read_ready(token.0)
                } else {
                    Ok(())
                };
                let outcome = outcome.and_then(|()| self.flush(token.0));
                if outcome.is_err() {
                    self.drop_conn(token.0);
                }
            }
            if woken && self.drain_inbox(reporter, &mut ready_sent) {
                break;
            }
            // A poll that found something is followed by a short sleep, so the next one
            // collects a batch of sockets instead of waking this thread once per message
            // (the wakeup, not the read, was most of a message's cost). A full poll means
            // the loop is behind: no sleep then.
            batching = ready > 0;
            if batching && ready < EVENTS_MAX {
                std::thread::sleep(BATCH_WINDOW);
            }
            // Burst through missed seconds like the tokio interval this replaced, so the
            // coordinator still gets one tick per second of wall time.
            while Instant::now() >= next_tick {
                reporter.tick(&mut self.stats);
                next_tick += Duration::from_secs(1);
            }
        }
        Ok(self.stats)
    }

    /// Takes everything in the inbox; `true` once told to stop.
    fn drain_inbox(&mut self, reporter: &mut dyn Reporter, ready_sent: &mut bool) -> bool {
        let mut stop = false;
        loop {
            match self.inbox.try_recv() {
                Ok(Inbox::Subscribed(handoff)) => {
                    self.stats.counters.subscribed += 1;
                    self.adopt(*handoff);
                }
                Ok(Inbox::Failed(kind)) => self.stats.connect_error(&kind),
                Ok(Inbox::Stop) => stop = true,
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    stop = true;
                    break;
                }
            }
        }
        let c = &self.stats.counters;
        if !*ready_sent && c.subscribed + c.connect_errors == self.share_len {
            *ready_sent = true;
            reporter.ready(&self.stats);
        }
        stop
    }

    /// Registers a handed-off connection and scans whatever it had already read.
    fn adopt(&mut self, handoff: Handoff) {
        let idx = self.conns.len();
        // A socket that cannot be made non-blocking or registered is lost like one the
        // server reset.
        if handoff.stream.set_nonblocking(true).is_err() {
            self.stats.counters.disconnects += 1;
            return;
        }
        let mut stream = TcpStream::from_std(handoff.stream);
        if self
            .poll
            .registry()
            .register(
                &mut stream,
                Token(idx),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.stats.counters.disconnects += 1;
            return;
        }
        if handoff.tls.is_some() && self.cipher.is_empty() {
            self.cipher = vec![0; CIPHER_BUF];
        }
        let mut conn = RxConn {
            stream,
            tls: handoff.tls,
            carry: Vec::new(),
            state: ConnState {
                fragments: handoff.fragments,
                streams: Vec::new(),
                mask_seed: handoff.mask_seed,
                out: Vec::new(),
            },
        };
        let now = now_us();
        let scanned = scan(
            &mut conn.state,
            &handoff.carry,
            now,
            &mut self.stats,
            &self.finders,
        );
        self.conns.push(Some(conn));
        match scanned {
            Ok(consumed) => {
                let mut outcome = Ok(());
                if let Some(Some(c)) = self.conns.get_mut(idx) {
                    c.carry.extend_from_slice(&handoff.carry[consumed..]);
                    // Plaintext rustls decrypted during the setup but nobody read yet.
                    if c.tls.is_some() {
                        outcome = drain_plaintext(c, &mut self.buf, &mut self.stats, &self.finders);
                    }
                }
                if outcome.and_then(|()| self.flush(idx)).is_err() {
                    self.drop_conn(idx);
                }
            }
            Err(_) => self.drop_conn(idx),
        }
    }

    /// Reads connection `idx` until it has nothing more; `Err` when it must be dropped.
    fn read_ready(&mut self, idx: usize) -> Result<(), String> {
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return Ok(());
        };
        if conn.tls.is_some() {
            return read_tls_ready(
                conn,
                &mut self.buf,
                &mut self.cipher,
                &mut self.stats,
                &self.finders,
            );
        }
        loop {
            if conn.carry.len() > CARRY_IN_PLACE {
                if !read_into_carry(conn, &mut self.stats, &self.finders)? {
                    return Ok(());
                }
                continue;
            }
            let carry_len = conn.carry.len();
            self.buf[..carry_len].copy_from_slice(&conn.carry);
            let want = READ_BUF - carry_len;
            let n = match conn.stream.read(&mut self.buf[carry_len..]) {
                Ok(0) => return Err("eof".into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read: {}", e.kind())),
            };
            let now = now_us();
            let data = &self.buf[..carry_len + n];
            let consumed = scan(&mut conn.state, data, now, &mut self.stats, &self.finders)?;
            conn.carry.clear();
            conn.carry.extend_from_slice(&data[consumed..]);
            if n < want {
                return Ok(());
            }
        }
    }

    /// Writes pending control frames of connection `idx` as far as the socket takes them.
    fn flush(&mut self, idx: usize) -> Result<(), String> {
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return Ok(());
        };
        write_pending(conn)
    }

    /// Closes connection `idx` after it failed or the server closed it.
    fn drop_conn(&mut self, idx: usize) {
        let Some(slot) = self.conns.get_mut(idx) else {
            return;
        };
        if let Some(mut conn) = slot.take() {
            // Best effort: a close reply queued by `scan` goes out if the socket takes it.
            let _ = write_pending(&mut conn);
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.stats.counters.disconnects += 1;
        }
    }
}

/// Reads into a large carry-over in place (a partial frame longer than half the shared
/// buffer); `Ok(false)` when the socket has nothing more.
fn read_into_carry(
    conn: &mut RxConn,
    stats: &mut WorkerStats,
    finders: &Finders,
) -> Result<bool, String> {
    let old = conn.carry.len();
    conn.carry.resize(old + CARRY_READ, 0);
    let n = match conn.stream.read(&mut conn.carry[old..]) {
        Ok(0) => return Err("eof".into()),
        Ok(n) => n,
        Err(e) => {
            conn.carry.truncate(old);
            return match e.kind() {
                ErrorKind::WouldBlock => Ok(false),
                ErrorKind::Interrupted => Ok(true),
                kind => Err(format!("read: {kind}")),
            };
        }
    };
    conn.carry.truncate(old + n);
    let consumed = scan(&mut conn.state, &conn.carry, now_us(), stats, finders)?;
    conn.carry.drain(..consumed);
    Ok(n == CARRY_READ)
}

/// Reads a TLS connection until its socket has nothing more: ciphertext into `cipher`, through
/// rustls, plaintext scanned as for a plain socket.
fn read_tls_ready(
    conn: &mut RxConn,
    buf: &mut [u8],
    cipher: &mut [u8],
    stats: &mut WorkerStats,
    finders: &Finders,
) -> Result<(), String> {
    loop {
        let n = match conn.stream.read(cipher) {
            Ok(0) => return Err("eof".into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {}", e.kind())),
        };
        let mut rest = &cipher[..n];
        while !rest.is_empty() {
            let Some(tls) = conn.tls.as_mut() else {
                return Err("TLS state missing".into());
            };
            tls.read_tls(&mut rest)
                .map_err(|e| format!("tls read: {e}"))?;
            tls.process_new_packets().map_err(|e| format!("tls: {e}"))?;
            drain_plaintext(conn, buf, stats, finders)?;
        }
        if n < cipher.len() {
            return Ok(());
        }
    }
}

/// Scans every plaintext byte a TLS connection's rustls state holds (through the shared
/// buffer, a partial frame carried over as for a plain socket).
fn drain_plaintext(
    conn: &mut RxConn,
    buf: &mut [u8],
    stats: &mut WorkerStats,
    finders: &Finders,
) -> Result<(), String> {
    let RxConn {
        tls, carry, state, ..
    } = conn;
    let Some(tls) = tls.as_mut() else {
        return Ok(());
    };
    loop {
        let carry_len = carry.len();
        if carry_len > CARRY_IN_PLACE {
            // A large partial frame: read into the carry-over itself.
            carry.resize(carry_len + CARRY_READ, 0);
            let read = tls.reader().read(&mut carry[carry_len..]);
            let k = match read {
                Ok(k) => k,
                Err(e) => {
                    carry.truncate(carry_len);
                    return match e.kind() {
                        ErrorKind::WouldBlock => Ok(()),
                        kind => Err(format!("tls read: {kind}")),
                    };
                }
            };
            carry.truncate(carry_len + k);
            if k == 0 {
                return Err("closed by server (TLS close_notify)".into());
            }
            let consumed = scan(state, carry, now_us(), stats, finders)?;
            carry.drain(..consumed);
            continue;
        }
        buf[..carry_len].copy_from_slice(carry);
        let k = match tls.reader().read(&mut buf[carry_len..]) {
            Ok(0) => return Err("closed by server (TLS close_notify)".into()),
            Ok(k) => k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(format!("tls read: {}", e.kind())),
        };
        let data = &buf[..carry_len + k];
        let consumed = scan(state, data, now_us(), stats, finders)?;
        carry.clear();
        carry.extend_from_slice(&data[consumed..]);
    }
}

fn write_pending(conn: &mut RxConn) -> Result<(), String> {
    if let Some(tls) = conn.tls.as_mut() {
        if !conn.state.out.is_empty() {
            tls.writer()
                .write_all(&conn.state.out)
                .map_err(|e| format!("tls write: {}", e.kind()))?;
            conn.state.out.clear();
        }
        while tls.wants_write() {
            match tls.write_tls(&mut conn.stream) {
                Ok(0) => return Err("write: zero".into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {}", e.kind())),
            }
        }
        return Ok(());
    }
    while !conn.state.out.is_empty() {
        match conn.stream.write(&conn.state.out) {
            Ok(0) => return Err("write: zero".into()),
            Ok(n) => {
                conn.state.out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write: {}", e.kind())),
        }
    }
    Ok(())
}

/// Handles every whole frame at the start of `data`; returns the bytes consumed (a trailing
/// partial frame is left). `Err` when the connection must end (close frame, protocol error);
/// a close reply is then queued in `state.out`.
fn scan(
    state: &mut ConnState,
    data: &[u8],
    now_us: u64,
    stats: &mut WorkerStats,
    finders: &Finders,
) -> Result<usize, String> {
    let mut pos = 0;
    loop {
        let FrameParse::Frame {
            fin,
            opcode,
            header_len,
            payload_len,
        } = parse_frame_header(&data[pos..])?
        else {
            return Ok(pos);
        };
        let start = pos + header_len;
        let payload = &data[start..start + payload_len];
        pos = start + payload_len;
        match opcode {
            0x0 => {
                let Some((first, mut joined)) = state.fragments.take() else {
                    return Err("continuation without a first frame".into());
                };
                if joined.len() + payload.len() > MESSAGE_MAX {
                    return Err("message too large".into());
                }
                joined.extend_from_slice(payload);
                if fin {
                    on_message(state, first, &joined, now_us, stats, finders);
                } else {
                    state.fragments = Some((first, joined));
                }
            }
            0x1 | 0x2 if fin => on_message(state, opcode, payload, now_us, stats, finders),
            0x1 | 0x2 => state.fragments = Some((opcode, payload.to_vec())),
            0x8 => {
                let frame = masked_frame(0x8, &[], &mut state.mask_seed);
                state.out.extend_from_slice(&frame);
                return Err("closed by server".into());
            }
            0x9 => {
                let frame = masked_frame(0xA, payload, &mut state.mask_seed);
                state.out.extend_from_slice(&frame);
            }
            _ => stats.counters.other_frames += 1,
        }
    }
}

/// Accounts one complete message.
fn on_message(
    state: &mut ConnState,
    opcode: u8,
    text: &[u8],
    now_us: u64,
    stats: &mut WorkerStats,
    finders: &Finders,
) {
    if opcode != 0x1 {
        stats.counters.other_frames += 1;
        return;
    }
    if let Some(pos) = finders.measured.find(text) {
        match parse_stamp(&text[pos + MEASURED_MARKER.len()..]) {
            Some((stream, seq, sent_us)) => {
                let outcome = observe(&mut state.streams, stream, seq);
                stats.record(outcome, now_us.saturating_sub(sent_us));
            }
            None => stats.counters.bad_payloads += 1,
        }
        return;
    }
    if finders.warmup.find(text).is_some() {
        stats.counters.warmup_received += 1;
        return;
    }
    stats.counters.other_frames += 1;
    if finders.ping.find(text).is_some() && is_pusher_ping(text) {
        let frame = masked_frame(
            0x1,
            br#"{"event":"pusher:pong","data":{}}"#,
            &mut state.mask_seed,
        );
        state.out.extend_from_slice(&frame);
    }
}

/// Whether `text` is a Pusher event named `pusher:ping` (parsed only after a cheap search hit).
fn is_pusher_ping(text: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Named {
        event: String,
    }
    serde_json::from_slice::<Named>(text).is_ok_and(|n| n.event == "pusher:ping")
}

fn observe(streams: &mut Vec<(u32, SeqTracker)>, stream: u32, seq: u64) -> SeqOutcome {
    if let Some((_, t)) = streams.iter_mut().find(|(s, _)| *s == stream) {
        return t.observe(seq);
    }
    if streams.len() >= STREAMS_PER_CONNECTION_MAX {
        return SeqOutcome::Invalid;
    }
    let mut t = SeqTracker::default();
    let outcome = t.observe(seq);
    streams.push((stream, t));
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finders() -> Finders {
        Finders {
            measured: Finder::new(MEASURED_MARKER),
            warmup: Finder::new(WARMUP_MARKER),
            ping: Finder::new(PUSHER_PING),
        }
    }

    fn state() -> ConnState {
        ConnState {
            fragments: None,
            streams: Vec::new(),
            mask_seed: 1,
            out: Vec::new(),
        }
    }

    fn text_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode, payload.len() as u8];
        f.extend_from_slice(payload);
        f
    }

    fn event(stamp: &str) -> Vec<u8> {
        format!(r#"{{"event":"e","channel":"b","data":"{{\"lt\":\"{stamp}\",\"pad\":\"x\"}}"}}"#)
            .into_bytes()
    }

    #[test]
    fn scan_accounts_whole_frames_and_leaves_a_partial_one() {
        let (f, mut st, mut stats) = (finders(), state(), WorkerStats::new());
        let mut wire = text_frame(true, 1, &event("0.0.1000"));
        wire.extend(text_frame(true, 1, &event("0.1.1000")));
        wire.extend(text_frame(true, 1, &event("0.1.1000")));
        wire.extend(text_frame(true, 9, b"hi"));
        let whole = wire.len();
        let next = text_frame(true, 1, &event("0.2.1000"));
        wire.extend_from_slice(&next[..10]);
        let consumed = scan(&mut st, &wire, 3000, &mut stats, &f);
        assert_eq!(consumed, Ok(whole));
        assert_eq!(stats.counters.delivered, 2);
        assert_eq!(stats.counters.duplicates, 1);
        assert_eq!(stats.total.max(), stats.total.highest_equivalent(2000));
        assert_eq!(
            st.out.len(),
            2 + 4 + 2,
            "one masked pong carrying the ping payload"
        );
    }

    #[test]
    fn scan_joins_fragments_and_stops_at_close() {
        let (f, mut st, mut stats) = (finders(), state(), WorkerStats::new());
        let msg = event("4.7.10");
        let mut wire = text_frame(false, 1, &msg[..20]);
        wire.extend(text_frame(true, 0, &msg[20..]));
        wire.extend(text_frame(true, 1, br#"{"event":"pusher:ping","data":{}}"#));
        assert_eq!(scan(&mut st, &wire, 20, &mut stats, &f), Ok(wire.len()));
        assert_eq!(stats.counters.delivered, 1);
        assert_eq!(stats.counters.other_frames, 1);
        assert!(!st.out.is_empty(), "pusher:pong queued");
        let close = text_frame(true, 8, b"");
        assert!(scan(&mut st, &close, 20, &mut stats, &f).is_err());
    }
}
