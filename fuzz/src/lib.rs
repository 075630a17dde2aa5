//! Helpers shared by the fuzz targets in `fuzz_targets/`: a client-side WebSocket frame
//! encoder (masked, as a browser sends), an incremental parser of what the server sends (HTTP
//! responses, then unmasked frames) that checks every byte of it, chunking of a byte stream
//! into the splits a socket would deliver, and which bytes of JSON text lie outside its
//! strings (for the JSON oracles).

/// A client → server frame: FIN bit, RSV bits, opcode, mask key (`None`: unmasked, which the
/// server must refuse), payload. The length is encoded in the shortest form unless
/// `long_length` asks for the 64-bit form (legal, and a different decoder path).
pub fn client_frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
    long_length: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(u8::from(fin) << 7 | (rsv & 7) << 4 | (opcode & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if long_length {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    } else if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
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

/// A masked text frame with FIN set: what a well-behaved client sends.
pub fn text_frame(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    client_frame(true, 0, 1, Some(key), payload, false)
}

/// Splits `stream` into consecutive chunks of pseudo-random lengths (1 to 64 bytes, now and
/// then the rest) drawn from `seed`, so a few input bytes choose the whole split.
pub fn chunks_seeded(stream: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut state = seed | 1;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = match state % 67 {
            0 => rest.len(),
            n => (n as usize).min(rest.len()),
        };
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// For each byte of JSON text, whether it stands outside every string literal (the quotes
/// belong to their string; a `\` escapes the next byte inside one). Exact for valid JSON; for
/// other text it is what a scanner that only tracks quotes and escapes would see.
pub fn json_outside_strings(text: &[u8]) -> Vec<bool> {
    let (mut in_string, mut escaped) = (false, false);
    text.iter()
        .map(|&b| {
            let outside = !in_string && b != b'"';
            (in_string, escaped) = match (in_string, escaped, b) {
                (false, _, b'"') => (true, false),
                (true, false, b'\\') => (true, true),
                (true, false, b'"') => (false, false),
                (state, _, _) => (state, false),
            };
            outside
        })
        .collect()
}

/// One item the server sent, as the output checker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerItem {
    /// An HTTP response: status, whole length in bytes (head and body).
    Http {
        /// Status code.
        status: u16,
        /// Bytes of the response, head and body.
        len: usize,
    },
    /// A WebSocket frame: opcode, whole length in bytes (header and payload).
    Frame {
        /// Opcode.
        opcode: u8,
        /// Bytes of the frame, header and payload.
        len: usize,
    },
}

/// Checks, incrementally, the byte stream a server sends on one connection: HTTP/1.1
/// responses (each with a `Content-Length` matching its body) until a `101`, then WebSocket
/// frames, unmasked, FIN set, with text payloads that are UTF-8 (and, for a Pusher socket,
/// JSON objects with a string `event`), control payloads within 125 bytes and close codes a
/// server may send. Panics (which the fuzzer reports) on anything else.
#[derive(Debug, Default)]
pub struct OutputChecker {
    buf: Vec<u8>,
    /// The 101 was seen: frames follow.
    pub upgraded: bool,
    /// The upgrade sent was to the Pusher path: if the first frame after the `101` is the
    /// server's `pusher:connection_established` or `pusher:error`, every text frame after it
    /// is checked as Pusher JSON. (The first frame decides because raw bytes from the fuzzer
    /// may have upgraded the connection to the echo path instead.)
    pub expect_pusher: bool,
    /// Whether the socket speaks Pusher, once the first frame after the `101` decided it.
    pub pusher: Option<bool>,
    /// A close frame was sent.
    pub closed: bool,
    /// A second close frame was sent (see `take_frame`).
    pub closed_twice: bool,
    /// `socket_id` of `pusher:connection_established`, once seen.
    pub socket_id: Option<String>,
    /// Events the server sent (Pusher sockets), by name, in order, for the targets to look at.
    pub events: Vec<String>,
    /// HTTP responses seen, by status, in order.
    pub statuses: Vec<u16>,
}

impl OutputChecker {
    /// A checker for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes the server sent; returns the items completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<ServerItem> {
        self.buf.extend_from_slice(bytes);
        let mut items = Vec::new();
        loop {
            let item = if self.upgraded {
                self.take_frame()
            } else {
                self.take_response()
            };
            match item {
                Some(item) => items.push(item),
                None => return items,
            }
        }
    }

    /// Bytes received but not yet a complete item.
    pub fn partial_len(&self) -> usize {
        self.buf.len()
    }

    fn take_response(&mut self) -> Option<ServerItem> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                assert!(self.buf.len() < 16 * 1024, "response head never ends");
                return None;
            }
            Err(err) => panic!(
                "malformed HTTP response ({err}): {:?}",
                String::from_utf8_lossy(&self.buf[..self.buf.len().min(300)])
            ),
        };
        let status = response.code.expect("a complete response has a status");
        assert_eq!(response.version, Some(1), "responses are HTTP/1.1");
        let length = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| {
                std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .expect("Content-Length is a number")
            });
        assert!(
            response
                .headers
                .iter()
                .all(|h| !h.name.eq_ignore_ascii_case("transfer-encoding")),
            "responses are not chunked"
        );
        if status == 101 {
            assert!(length.is_none(), "a 101 has no body");
            let accept = response
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"));
            assert!(accept, "a 101 carries Sec-WebSocket-Accept");
            self.buf.drain(..head_len);
            self.upgraded = true;
            self.statuses.push(status);
            return Some(ServerItem::Http {
                status,
                len: head_len,
            });
        }
        let bodyless = (100..200).contains(&status) || status == 204 || status == 304;
        let length = if bodyless {
            assert!(length.is_none(), "a {status} has no body");
            0
        } else {
            length.expect("every response has a Content-Length")
        };
        if self.buf.len() < head_len + length {
            return None;
        }
        self.buf.drain(..head_len + length);
        self.statuses.push(status);
        Some(ServerItem::Http {
            status,
            len: head_len + length,
        })
    }

    fn take_frame(&mut self) -> Option<ServerItem> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[0] & 0x80, 0x80, "server frames have FIN set");
        assert_eq!(b[0] & 0x70, 0, "no RSV bits");
        assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
        let opcode = b[0] & 0x0f;
        let (len, header) = match b[1] & 0x7f {
            126 => {
                if b.len() < 4 {
                    return None;
                }
                let n = usize::from(u16::from_be_bytes([b[2], b[3]]));
                assert!(n >= 126, "shortest length form");
                (n, 4)
            }
            127 => {
                if b.len() < 10 {
                    return None;
                }
                let mut be = [0u8; 8];
                be.copy_from_slice(&b[2..10]);
                let n = u64::from_be_bytes(be);
                assert!(n > 0xffff, "shortest length form");
                (usize::try_from(n).expect("length fits"), 10)
            }
            n => (usize::from(n), 2),
        };
        if b.len() < header + len {
            return None;
        }
        let payload = b[header..header + len].to_vec();
        // Nothing after a close frame but, as the core does today, a second close frame when
        // the client breaks the protocol while the server waits for its close (reported in
        // `docs/fuzzing.md`: the violation's close is queued even in the closing phase).
        assert!(
            !self.closed || (opcode == 8 && !self.closed_twice),
            "nothing after a close frame (got opcode {opcode})"
        );
        if self.closed && opcode == 8 {
            self.closed_twice = true;
        }
        match opcode {
            1 => {
                let text = std::str::from_utf8(&payload).expect("text frames are UTF-8");
                if self.pusher.is_none() {
                    let first = serde_json::from_str::<serde_json::Value>(text)
                        .ok()
                        .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned));
                    let pusher = matches!(
                        first.as_deref(),
                        Some("pusher:connection_established" | "pusher:error")
                    );
                    self.pusher = Some(self.expect_pusher && pusher);
                }
                if self.pusher == Some(true) {
                    self.check_pusher(text);
                }
            }
            2 => {
                assert!(
                    self.pusher != Some(true),
                    "no binary frames on a Pusher socket"
                );
                self.pusher.get_or_insert(false);
            }
            8 => {
                assert!(len <= 125, "control payload within 125");
                assert!(len != 1, "no one-byte close payload");
                if len >= 2 {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    assert!(
                        matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999),
                        "close code {code} may not go on the wire"
                    );
                    std::str::from_utf8(&payload[2..]).expect("close reason is UTF-8");
                }
                self.closed = true;
                self.pusher.get_or_insert(false);
            }
            9 | 10 => {
                assert!(len <= 125, "control payload within 125");
                self.pusher.get_or_insert(false);
            }
            other => panic!("server sent opcode {other}"),
        }
        let total = header + len;
        self.buf.drain(..total);
        Some(ServerItem::Frame { opcode, len: total })
    }

    fn check_pusher(&mut self, text: &str) {
        let value: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|err| panic!("Pusher frame is not JSON ({err}): {text}"));
        let event = value
            .get("event")
            .and_then(|e| e.as_str())
            .unwrap_or_else(|| panic!("Pusher frame without a string event: {text}"))
            .to_owned();
        // The server's own events: `pusher_internal:*` (which no publisher may send) and the
        // connection-level `pusher:*` ones, which carry no channel. (A REST publish may name
        // its event `pusher:x` on a channel: its data is the publisher's, not checked here.)
        let own = event.starts_with("pusher_internal:")
            || (event.starts_with("pusher:") && value.get("channel").is_none());
        if own && event != "pusher:error" {
            // Their data is JSON text in a string (protocol 7).
            if let Some(s) = value.get("data").and_then(|d| d.as_str()) {
                serde_json::from_str::<serde_json::Value>(s)
                    .unwrap_or_else(|err| panic!("{event} data is not JSON text ({err}): {text}"));
            }
        }
        if own && event == "pusher:connection_established" {
            assert!(self.socket_id.is_none(), "connection_established twice");
            let data = value["data"].as_str().expect("data is a string");
            let data: serde_json::Value = serde_json::from_str(data).expect("data is JSON");
            let id = data["socket_id"].as_str().expect("socket_id").to_owned();
            self.socket_id = Some(id);
        }
        self.events.push(event);
    }
}
