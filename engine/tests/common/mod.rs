//! Shared helpers of the engine's integration tests: a guard around the real `ringcast`
//! binary, plain HTTP requests, and a raw WebSocket client that builds every frame by hand (so
//! a test can send unmasked frames, RSV bits, bad opcodes, broken fragmentation, lying length
//! headers …) plus small Pusher helpers on top of it. The client speaks over any [`Wire`]:
//! `std::net::TcpStream`, or a rustls client stream over one (`engine/tests/tls.rs`); a
//! throwaway CA made with `openssl` ([`tls_material`]) signs the certificates of TLS tests.
//!
//! Every read has a deadline: a test fails with a message naming what it waited for instead of
//! hanging.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// A byte stream the test clients speak over: plain TCP, or TLS over it.
pub trait Wire: Read + Write {
    /// The TCP socket underneath (read timeouts, half-close).
    fn tcp(&self) -> &TcpStream;
}

impl Wire for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Wire for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// App id of the app every test server runs.
pub const APP_ID: &str = "test-app";
/// App key of that app.
pub const APP_KEY: &str = "test-key";
/// App secret of that app.
pub const APP_SECRET: &str = "test-secret";

/// Longest wait for any single expected frame / response.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the server to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `Sec-WebSocket-Key` (the RFC 6455 example).
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

// ------------------------------------------------------------------------------ server guard

/// A running `ringcast` process, killed when dropped. Its stderr is drained by a thread into a
/// shared buffer (so the pipe never fills) and shown when a test needs it.
pub struct Server {
    child: Child,
    /// The address the server listens on (`127.0.0.1:PORT`).
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
    exited: Option<ExitStatus>,
}

impl Server {
    /// Starts the server on a free port with two shards and the test app, plus `extra` flags.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_with_extra_env(extra, &[])
    }

    /// Like [`Server::start`], with these environment variables only.
    pub fn start_with_extra_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut args = vec![
            "--port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--shards",
            "2",
            "--app-id",
            APP_ID,
            "--app-key",
            APP_KEY,
            "--app-secret",
            APP_SECRET,
        ];
        args.extend_from_slice(extra);
        Server::start_with_env(&args, env)
    }

    /// Starts the server with exactly these arguments (no environment, no `.env` file) and
    /// waits for `listening on 127.0.0.1:PORT` on its stderr.
    pub fn start_with_args(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// Like [`Server::start_with_args`], with these environment variables only.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringcast"))
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            // A directory without a `.env` file, so the default `./.env` is absent.
            .current_dir(env!("CARGO_TARGET_TMPDIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot spawn the ringcast binary");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            let mut tx = Some(tx);
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&line);
                sink.lock().unwrap().push_str(&text);
                if let Some(addr) = parse_listening(&text) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            exited: None,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => server.addr = addr,
            Err(_) => {
                // Give the reader thread a moment to collect the last lines of a failed start.
                std::thread::sleep(Duration::from_millis(200));
                let status = server.child.try_wait();
                panic!(
                    "ringcast did not print `listening on 127.0.0.1:PORT` (exit status: {status:?})\n\
                     args: {args:?}\nstderr:\n{}",
                    server.log()
                );
            }
        }
        server
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        if self.exited.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exited = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Sends SIGTERM (through `kill(1)`, so the tests need no unsafe code).
    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    /// Sends SIGHUP (TLS: reload the certificate).
    pub fn sighup(&self) {
        self.signal("HUP");
    }

    /// Sends the signal `name` (`TERM`, `HUP`, …) through `kill(1)`.
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("cannot run kill(1)");
        assert!(
            status.success(),
            "kill -{name} {} failed: {status}",
            self.pid()
        );
    }

    /// Waits until the log holds `text`, at most `timeout`; panics with the log otherwise.
    pub fn wait_log(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the log never said {text:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                return self.exited;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in a log line containing `listening on ADDR`.
fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

// ------------------------------------------------------------------------------ plain HTTP

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The head (status line and headers) as text.
    pub head: String,
    /// The body (by `Content-Length`, or up to EOF).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of the first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    /// The body as (lossy) text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects to the server with a read timeout set.
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
}

/// Reads into `buf` until `done(buf)` says it has enough, EOF, or the deadline. Returns true on
/// EOF.
fn read_until_deadline<S: Wire>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    deadline: Instant,
    mut done: impl FnMut(&[u8]) -> bool,
) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    while !done(buf) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "deadline passed"));
        }
        stream.tcp().set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(std::io::Error::new(ErrorKind::TimedOut, "deadline passed"))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP response from `stream`; `Err` with a description on timeout or a connection
/// that ends before a complete head. Bytes after the response stay in `rest`.
pub fn read_http_response<S: Wire>(
    stream: &mut S,
    rest: &mut Vec<u8>,
) -> Result<HttpResponse, String> {
    let deadline = Instant::now() + READ_TIMEOUT;
    let eof = read_until_deadline(stream, rest, deadline, |b| find(b, b"\r\n\r\n").is_some())
        .map_err(|e| format!("reading a response head: {e}; got {:?}", lossy(rest)))?;
    let Some(end) = find(rest, b"\r\n\r\n") else {
        return Err(format!(
            "connection ended (eof={eof}) before a complete response head; got {:?}",
            lossy(rest)
        ));
    };
    let head = String::from_utf8_lossy(&rest[..end]).into_owned();
    rest.drain(..end + 4);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut response = HttpResponse {
        status,
        head,
        body: Vec::new(),
    };
    let length = response
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    if status == 101 {
        return Ok(response);
    }
    match length {
        Some(n) => {
            read_until_deadline(stream, rest, deadline, |b| b.len() >= n)
                .map_err(|e| format!("reading a {n}-byte body: {e}"))?;
            if rest.len() < n {
                return Err(format!(
                    "body shorter than Content-Length {n}: {:?}",
                    lossy(rest)
                ));
            }
            response.body = rest.drain(..n).collect();
        }
        None => {
            read_until_deadline(stream, rest, deadline, |_| false)
                .map_err(|e| format!("reading a body up to EOF: {e}"))?;
            response.body = std::mem::take(rest);
        }
    }
    Ok(response)
}

/// Sends raw request bytes on a new connection and reads one response.
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = tcp_connect(addr);
    stream.write_all(request).unwrap();
    let mut rest = Vec::new();
    read_http_response(&mut stream, &mut rest)
        .unwrap_or_else(|e| panic!("no HTTP response to {:?}: {e}", lossy(request)))
}

/// `GET path` with `Connection: close`.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: ringcast.test\r\nConnection: close\r\n\r\n");
    http_raw(addr, request.as_bytes())
}

/// An upgrade request for `path` with the given key and version.
pub fn upgrade_request(path: &str, key: &str, version: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: ringcast.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    )
}

/// Text for assertion messages.
pub fn lossy(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(300)];
    String::from_utf8_lossy(shown).into_owned()
}

// ------------------------------------------------------------------------------ WebSocket

/// Frame opcodes.
pub mod op {
    /// Continuation.
    pub const CONT: u8 = 0;
    /// Text.
    pub const TEXT: u8 = 1;
    /// Binary.
    pub const BINARY: u8 = 2;
    /// Close.
    pub const CLOSE: u8 = 8;
    /// Ping.
    pub const PING: u8 = 9;
    /// Pong.
    pub const PONG: u8 = 10;
}

/// One frame received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// RSV1..3 bits (`0` from a conforming server).
    pub rsv: u8,
    /// Opcode.
    pub opcode: u8,
    /// Mask bit (a server must not mask).
    pub masked: bool,
    /// Payload (unmasked if it was masked).
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame with a payload.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == op::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The payload as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// Short description for assertion messages.
    pub fn describe(&self) -> String {
        match self.opcode {
            op::CLOSE => format!(
                "close frame code {:?} reason {:?}",
                self.close_code(),
                String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default())
            ),
            op::TEXT => format!("text frame (fin={}) {:?}", self.fin, lossy(&self.payload)),
            other => format!(
                "frame opcode {other} fin={} payload {:?}",
                self.fin,
                lossy(&self.payload)
            ),
        }
    }
}

/// What one read attempt produced.
#[derive(Debug)]
pub enum ReadOutcome {
    /// A complete frame.
    Frame(Frame),
    /// Nothing complete before the timeout.
    Timeout,
    /// The server closed the TCP connection (read returned 0) with no partial frame pending.
    Eof,
    /// A read error (e.g. connection reset), or EOF in the middle of a frame.
    Error(String),
}

/// Encodes one client frame. `mask: None` sends it unmasked (a protocol violation).
pub fn encode_frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push((u8::from(fin) << 7) | ((rsv & 0x7) << 4) | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A close payload: code then reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// A raw WebSocket client: frames are built byte by byte.
pub struct WsClient<S: Wire = TcpStream> {
    /// The connection (TCP, or TLS over TCP).
    pub stream: S,
    buf: Vec<u8>,
    mask_counter: u32,
    /// The Pusher socket id, once `connection_established` was read by [`WsClient::pusher`].
    pub socket_id: String,
}

impl WsClient {
    /// Opens a connection and performs the upgrade on `path`; panics unless the answer is a
    /// correct `101 Switching Protocols`.
    pub fn connect(addr: SocketAddr, path: &str) -> WsClient {
        WsClient::upgrade(addr, path).unwrap_or_else(|e| panic!("upgrade on {path}: {e}"))
    }

    /// Like [`WsClient::connect`], but every failure (refused connection, reset, a non-101
    /// answer) is returned as a description instead of panicking.
    pub fn upgrade(addr: SocketAddr, path: &str) -> Result<WsClient, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        WsClient::upgrade_over(stream, path)
    }

    /// Connects to `/app/{APP_KEY}?protocol=7…` and reads `connection_established`.
    pub fn pusher(addr: SocketAddr) -> WsClient {
        WsClient::pusher_on(addr, &pusher_path(APP_KEY, Some("7")))
    }

    /// Connects to a Pusher `path` and reads `connection_established` (checking its shape).
    pub fn pusher_on(addr: SocketAddr, path: &str) -> WsClient {
        WsClient::connect(addr, path).established()
    }
}

impl<S: Wire> WsClient<S> {
    /// Performs the upgrade on `path` over a connected `stream`; every failure (reset, a
    /// non-101 answer) is returned as a description.
    pub fn upgrade_over(mut stream: S, path: &str) -> Result<WsClient<S>, String> {
        stream
            .write_all(upgrade_request(path, WS_KEY, "13").as_bytes())
            .map_err(|e| format!("sending the upgrade request: {e}"))?;
        let mut rest = Vec::new();
        let response = read_http_response(&mut stream, &mut rest)
            .map_err(|e| format!("no answer to the upgrade: {e}"))?;
        if response.status != 101 {
            return Err(format!(
                "refused: {}\n{}",
                response.head,
                response.body_text()
            ));
        }
        assert_eq!(
            response.header("sec-websocket-accept").as_deref(),
            Some(accept_key(WS_KEY).as_str()),
            "wrong Sec-WebSocket-Accept in {}",
            response.head
        );
        assert!(
            response
                .header("upgrade")
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
            "no Upgrade: websocket in {}",
            response.head
        );
        Ok(WsClient {
            stream,
            buf: rest,
            mask_counter: 0x1234_5678,
            socket_id: String::new(),
        })
    }

    /// A fresh, varying, non-zero masking key.
    fn next_mask(&mut self) -> [u8; 4] {
        self.mask_counter = self
            .mask_counter
            .wrapping_mul(1_664_525)
            .wrapping_add(1_013_904_223);
        (self.mask_counter | 0x0101_0101).to_be_bytes()
    }

    /// Writes raw bytes. Errors (the server may already have closed) are returned.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one masked frame with the given FIN bit and opcode.
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mask = self.next_mask();
        let frame = encode_frame(fin, 0, opcode, payload, Some(mask));
        self.send_raw(&frame).expect("sending a frame");
    }

    /// Sends a masked frame with every field chosen by the caller.
    pub fn send_frame_with(
        &mut self,
        fin: bool,
        rsv: u8,
        opcode: u8,
        payload: &[u8],
        masked: bool,
    ) {
        let mask = masked.then(|| self.next_mask());
        let frame = encode_frame(fin, rsv, opcode, payload, mask);
        self.send_raw(&frame).expect("sending a frame");
    }

    /// A masked frame's bytes with this client's next key (to batch several into one write).
    pub fn frame_bytes(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = self.next_mask();
        encode_frame(fin, 0, opcode, payload, Some(mask))
    }

    /// Sends one text message in a single frame.
    pub fn send_text(&mut self, text: &str) {
        self.send_frame(true, op::TEXT, text.as_bytes());
    }

    /// Sends a JSON value as one text message.
    pub fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string());
    }

    /// Sends a close frame with a code and reason.
    pub fn send_close(&mut self, code: u16, reason: &str) {
        self.send_frame(true, op::CLOSE, &close_payload(code, reason));
    }

    /// Tries to read one frame within `timeout`.
    pub fn read_frame_within(&mut self, timeout: Duration) -> ReadOutcome {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(frame) = self.parse_buffered() {
                return ReadOutcome::Frame(frame);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return ReadOutcome::Timeout;
            }
            self.stream.tcp().set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) if self.buf.is_empty() => return ReadOutcome::Eof,
                Ok(0) => {
                    return ReadOutcome::Error(format!(
                        "EOF inside a frame; partial bytes {:?}",
                        lossy(&self.buf)
                    ))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return ReadOutcome::Timeout
                }
                Err(e) => return ReadOutcome::Error(e.to_string()),
            }
        }
    }

    /// A complete frame from the front of the buffer, if there is one.
    fn parse_buffered(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        let masked = b[1] & 0x80 != 0;
        let (mut pos, len) = match b[1] & 0x7F {
            126 => (4, u64::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]))),
            127 => {
                let mut be = [0u8; 8];
                be.copy_from_slice(b.get(2..10)?);
                (10, u64::from_be_bytes(be))
            }
            n => (2, u64::from(n)),
        };
        let mut key = [0u8; 4];
        if masked {
            key.copy_from_slice(b.get(pos..pos + 4)?);
            pos += 4;
        }
        let len = usize::try_from(len).ok()?;
        let end = pos.checked_add(len)?;
        if b.len() < end {
            return None;
        }
        let mut payload = b[pos..end].to_vec();
        if masked {
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= key[i % 4];
            }
        }
        let frame = Frame {
            fin: b[0] & 0x80 != 0,
            rsv: (b[0] >> 4) & 0x7,
            opcode: b[0] & 0x0F,
            masked,
            payload,
        };
        self.buf.drain(..end);
        Some(frame)
    }

    /// The next frame; panics (with `what` it was waiting for) on timeout, EOF or error.
    pub fn next_frame_for(&mut self, what: &str) -> Frame {
        match self.read_frame_within(READ_TIMEOUT) {
            ReadOutcome::Frame(frame) => {
                assert!(!frame.masked, "server frames must not be masked: {frame:?}");
                assert_eq!(frame.rsv, 0, "server frame with RSV bits: {frame:?}");
                frame
            }
            other => panic!("waiting for {what}: got {other:?} instead of a frame"),
        }
    }

    /// The next frame.
    pub fn next_frame(&mut self) -> Frame {
        self.next_frame_for("a frame")
    }

    /// The next frame must be a (single-frame) text message holding JSON.
    pub fn next_json(&mut self) -> Value {
        let frame = self.next_frame_for("a JSON text frame");
        assert!(
            frame.opcode == op::TEXT && frame.fin,
            "expected a JSON text frame, got {}",
            frame.describe()
        );
        serde_json::from_slice(&frame.payload)
            .unwrap_or_else(|e| panic!("server sent invalid JSON ({e}): {}", frame.text()))
    }

    /// The next frame must be the Pusher event `event`; returns the whole envelope.
    pub fn expect_event(&mut self, event: &str) -> Value {
        let frame = self.next_frame_for(event);
        assert!(
            frame.opcode == op::TEXT,
            "expected {event}, got {}",
            frame.describe()
        );
        let value: Value = serde_json::from_slice(&frame.payload)
            .unwrap_or_else(|e| panic!("server sent invalid JSON ({e}): {}", frame.text()));
        assert_eq!(value["event"], event, "expected {event}, got {value}");
        value
    }

    /// Reads frames until the Pusher event `event` arrives (others are skipped) or `timeout`.
    pub fn wait_for_event(&mut self, event: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame_within(left) {
                ReadOutcome::Frame(frame) if frame.opcode == op::TEXT => {
                    let value: Value = serde_json::from_slice(&frame.payload).unwrap_or_else(|e| {
                        panic!("server sent invalid JSON ({e}): {}", frame.text())
                    });
                    if value["event"] == event {
                        return value;
                    }
                    skipped.push(value.to_string());
                }
                ReadOutcome::Frame(frame) => {
                    panic!(
                        "waiting for {event}: got {} (skipped {skipped:?})",
                        frame.describe()
                    )
                }
                other => panic!("waiting for {event}: got {other:?} (skipped {skipped:?})"),
            }
        }
    }

    /// The next frame must be a close frame with `code`.
    pub fn expect_close(&mut self, code: u16) -> Frame {
        let frame = self.next_frame_for(&format!("close frame {code}"));
        assert_eq!(
            (frame.opcode, frame.close_code()),
            (op::CLOSE, Some(code)),
            "expected a close frame with code {code}, got {}",
            frame.describe()
        );
        frame
    }

    /// The next frames must be `pusher:error` with `code` and then a close frame with `code`.
    pub fn expect_pusher_close(&mut self, code: u16) {
        let error = self.expect_event("pusher:error");
        assert_eq!(
            error["data"]["code"], code,
            "wrong pusher:error code: {error}"
        );
        assert!(
            error["data"]["message"].is_string(),
            "pusher:error without a message: {error}"
        );
        self.expect_close(code);
    }

    /// The next frame must be `pusher:error` with `code` (connection kept).
    pub fn expect_pusher_error(&mut self, code: Option<u16>) -> Value {
        let error = self.expect_event("pusher:error");
        match code {
            Some(code) => assert_eq!(error["data"]["code"], code, "wrong code: {error}"),
            None => assert!(
                error["data"]["code"].is_null(),
                "code should be null: {error}"
            ),
        }
        assert!(error["data"]["message"].is_string(), "no message: {error}");
        error
    }

    /// The server must close the TCP connection (read returns 0) with no further frame.
    pub fn expect_eof(&mut self) {
        match self.read_frame_within(READ_TIMEOUT) {
            ReadOutcome::Eof => {}
            other => panic!("expected the server to close the TCP connection, got {other:?}"),
        }
    }

    /// Sends `pusher:ping` and requires `pusher:pong` as the very next frame: the connection
    /// is alive and nothing else was queued before the pong.
    pub fn ping_pong(&mut self) {
        self.send_json(&json!({"event": "pusher:ping", "data": {}}));
        let pong = self.expect_event("pusher:pong");
        assert_eq!(data_of(&pong), json!({}), "pong data: {pong}");
    }

    /// Closes cleanly: close 1000, the server's echo, EOF.
    pub fn close_cleanly(&mut self) {
        self.send_close(1000, "");
        loop {
            let frame = self.next_frame_for("the close echo");
            if frame.opcode == op::CLOSE {
                break;
            }
        }
        self.expect_eof();
    }

    /// Half-closes our side (sends FIN).
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.tcp().shutdown(Shutdown::Write);
    }

    // --------------------------------------------------------------------- Pusher helpers

    /// Reads `connection_established` (checking its shape) and keeps the socket id.
    pub fn established(mut self) -> WsClient<S> {
        let client = &mut self;
        let established = client.expect_event("pusher:connection_established");
        let data = established["data"].as_str().unwrap_or_else(|| {
            panic!("connection_established data must be a string: {established}")
        });
        let data: Value = serde_json::from_str(data).unwrap();
        let socket_id = data["socket_id"].as_str().unwrap().to_string();
        assert!(is_socket_id(&socket_id), "bad socket id {socket_id:?}");
        client.socket_id = socket_id;
        self
    }

    /// The shard index encoded in the socket id.
    pub fn shard(&self) -> u32 {
        shard_of(&self.socket_id)
    }

    /// Sends `pusher:subscribe` (data as an object, `auth: ""` when none, like pusher-js).
    pub fn subscribe(&mut self, channel: &str, auth: Option<&str>, channel_data: Option<&str>) {
        let mut data = json!({"channel": channel, "auth": auth.unwrap_or("")});
        if let Some(channel_data) = channel_data {
            data["channel_data"] = json!(channel_data);
        }
        self.send_json(&json!({"event": "pusher:subscribe", "data": data}));
    }

    /// Subscribes with a valid signature (when the channel needs one) and requires
    /// `subscription_succeeded`; returns it.
    pub fn subscribe_ok(&mut self, channel: &str, channel_data: Option<&str>) -> Value {
        let needs_auth = channel.starts_with("private-") || channel.starts_with("presence-");
        let auth = needs_auth.then(|| sign_channel(&self.socket_id, channel, channel_data));
        self.subscribe(channel, auth.as_deref(), channel_data);
        let ok = self.expect_event("pusher_internal:subscription_succeeded");
        assert_eq!(ok["channel"], channel, "{ok}");
        ok
    }
}

/// `/app/{key}` with an optional `protocol` query parameter (and pusher-js's other ones).
pub fn pusher_path(key: &str, protocol: Option<&str>) -> String {
    match protocol {
        Some(p) => format!("/app/{key}?protocol={p}&client=js&version=8.4.0&flash=false"),
        None => format!("/app/{key}?client=js&version=8.4.0&flash=false"),
    }
}

/// `^\d+\.\d+$`.
pub fn is_socket_id(s: &str) -> bool {
    let Some((a, b)) = s.split_once('.') else {
        return false;
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    digits(a) && digits(b)
}

/// The two digits before the dot of a socket id: the shard index (documented).
pub fn shard_of(socket_id: &str) -> u32 {
    let (prefix, _) = socket_id.split_once('.').unwrap();
    assert!(prefix.len() >= 2, "socket id prefix too short: {socket_id}");
    prefix[prefix.len() - 2..].parse().unwrap()
}

/// The `data` of a Pusher envelope, parsed when it is a JSON string.
pub fn data_of(envelope: &Value) -> Value {
    match &envelope["data"] {
        Value::String(s) => serde_json::from_str(s)
            .unwrap_or_else(|e| panic!("data is a string but not JSON ({e}): {envelope}")),
        other => other.clone(),
    }
}

/// The channel auth token for the test app.
pub fn sign_channel(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    ringcast_core::pusher::auth::channel_auth_token(
        APP_KEY,
        APP_SECRET,
        socket_id,
        channel,
        channel_data,
    )
}

/// Opens Pusher connections until one lands on a shard other than `shard` (SO_REUSEPORT
/// spreads them by hash; the socket id tells where each landed).
pub fn pusher_on_other_shard(addr: SocketAddr, shard: u32) -> WsClient {
    for _ in 0..200 {
        let client = WsClient::pusher(addr);
        if client.shard() != shard {
            return client;
        }
    }
    panic!("200 connections all landed on shard {shard}");
}

/// Opens Pusher connections until `n` of them are open and both shards 0 and 1 are used.
pub fn pusher_clients_on_both_shards(addr: SocketAddr, n: usize) -> Vec<WsClient> {
    assert!(n >= 2);
    let mut clients: Vec<WsClient> = Vec::new();
    for _ in 0..200 {
        let client = WsClient::pusher(addr);
        let shards_used = |cs: &[WsClient]| {
            let mut seen = [false; 2];
            for c in cs {
                seen[c.shard() as usize] = true;
            }
            seen
        };
        let seen = shards_used(&clients);
        let is_new_shard = !seen[client.shard() as usize];
        if clients.len() < n - 1 || is_new_shard || (seen[0] && seen[1]) {
            clients.push(client);
        }
        let seen = shards_used(&clients);
        if clients.len() >= n && seen[0] && seen[1] {
            return clients;
        }
    }
    panic!("could not place {n} clients on both shards");
}

// ------------------------------------------------------------------------------ SHA-1 / base64

/// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2): base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let mut input = key.as_bytes().to_vec();
    input.extend_from_slice(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha1(&input))
}

fn sha1(message: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut data = message.to_vec();
    let bit_len = (message.len() as u64).wrapping_mul(8);
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&bit_len.to_be_bytes());
    for block in data.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------ PRNG

/// A small deterministic PRNG (xorshift64*), so garbage tests are reproducible from a seed.
pub struct Prng(u64);

impl Prng {
    /// Seeded generator (seed 0 is replaced by a constant).
    pub fn new(seed: u64) -> Prng {
        Prng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

// ------------------------------------------------------------------------------ the bridge child

/// Longest wait for a node's bridge to start and link.
pub const BRIDGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The pid of the bridge `server` started (its child process named `ringcast-bridge`), waiting
/// for it up to [`BRIDGE_TIMEOUT`].
pub fn bridge_child_pid(server: &Server) -> u32 {
    let deadline = Instant::now() + BRIDGE_TIMEOUT;
    loop {
        if let Some(pid) = child_named(server.pid(), "ringcast-bridge") {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no ringcast-bridge child of {}\n{}",
            server.pid(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child of `parent` whose name (`/proc/{pid}/status`) is `name`.
pub fn child_named(parent: u32, name: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let own_name = status.lines().next()?.strip_prefix("Name:")?.trim();
        let ppid: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()?;
        (ppid == parent && own_name == name).then_some(pid)
    })
}

/// The arguments of process `pid` (`/proc/{pid}/cmdline`), the program first.
pub fn process_args(pid: u32) -> Vec<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    cmdline
        .split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// The value after `flag` in `args`.
pub fn arg_after(args: &[String], flag: &str) -> Option<String> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).cloned()
}

/// Waits until each of the node's `shards` shards has linked to its bridge at least once.
pub fn wait_bridge_linked(server: &Server, shards: usize) {
    let deadline = Instant::now() + BRIDGE_TIMEOUT;
    loop {
        let metrics = http_get(server.addr, "/metrics").body_text();
        let linked = metrics
            .lines()
            .filter(|l| l.starts_with("ringcast_bridge_link_connects_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .filter(|connects| *connects >= 1)
            .count();
        if linked == shards {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {} did not link to its bridge\n{}",
            server.addr,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A signed REST publish request for one event (`keep_alive` false: `Connection: close`).
pub fn publish_request(
    channel: &str,
    name: &str,
    socket_id: Option<&str>,
    keep_alive: bool,
) -> String {
    let mut body = json!({"name": name, "channel": channel, "data": name});
    if let Some(socket_id) = socket_id {
        body["socket_id"] = json!(socket_id);
    }
    let body = body.to_string();
    let path = format!("/apps/{APP_ID}/events");
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let query = ringcast_core::pusher::rest::sign_query(
        "POST",
        &path,
        &[],
        body.as_bytes(),
        APP_KEY,
        APP_SECRET,
        now_s,
    );
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "POST {path}?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
        body.len()
    )
}

// ------------------------------------------------------------------------------ TLS material

/// A throwaway CA and a server certificate for 127.0.0.1 it signed (`server.crt`,
/// `server.key`), made with the `openssl` command (scripts/test.sh installs it when missing) in
/// a fresh temporary directory. Returns (dir, ca.crt path).
pub fn tls_material(test: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("ringcast-tls-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    issue_server_cert(&dir, "server", "127.0.0.1");
    let ca = dir.join("ca.crt").display().to_string();
    (dir, ca)
}

/// One more certificate for 127.0.0.1 and localhost signed by the CA in `dir` (made by
/// [`tls_material`]), with its own new key and subject `/CN={cn}`: `{name}.crt`, `{name}.key`.
pub fn issue_server_cert(dir: &std::path::Path, name: &str, cn: &str) {
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let subject = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", &subject, "-keyout", &key, "-out",
            &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            &crt,
        ],
    );
}

/// Runs `openssl args` in `dir`; panics with the command when it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run openssl ({e}): install it (Debian: openssl)"));
    assert!(status.success(), "openssl {args:?} failed");
}
