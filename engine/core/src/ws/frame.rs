//! RFC 6455 framing over byte buffers: the client→server [`Decoder`] (masked frames in,
//! whole messages out) and the server→client encoders (unmasked, FIN set).
//!
//! The decoder is built for many idle connections: at rest it is a few words with no heap
//! allocation. A single-frame message is unmasked in place in the read buffer and split off it,
//! so the returned `Bytes` shares the read buffer's allocation; only a fragmented message gets
//! its own buffer, and only while it is being assembled. Every violation is reported as a
//! [`ProtocolError`] carrying the close code to fail the connection with; the decoder must not
//! be used again after an error.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::utf8::Utf8Validator;
use crate::limits::{WS_CLOSE_REASON_BYTES_MAX, WS_CONTROL_PAYLOAD_BYTES_MAX};

/// Frame opcodes (RFC 6455 §5.2).
pub mod opcode {
    /// Continuation of a fragmented data message.
    pub const CONTINUATION: u8 = 0;
    /// First (or only) frame of a text message.
    pub const TEXT: u8 = 1;
    /// First (or only) frame of a binary message.
    pub const BINARY: u8 = 2;
    /// Connection close.
    pub const CLOSE: u8 = 8;
    /// Ping.
    pub const PING: u8 = 9;
    /// Pong.
    pub const PONG: u8 = 10;
}

/// One complete message (or control frame) received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; the bytes are valid UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping; the server should answer with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong (unsolicited or answering our ping).
    Pong(Bytes),
    /// A close frame: `code` is `None` when the frame had no payload; `reason` is valid UTF-8.
    Close {
        /// Close code sent by the client, already checked with [`is_valid_close_code`].
        code: Option<u16>,
        /// Close reason (UTF-8, possibly empty).
        reason: Bytes,
    },
}

/// A violation of RFC 6455 by the client: fail the connection with `close_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError {
    /// 1002 (protocol error), 1007 (invalid payload data) or 1009 (message too big).
    pub close_code: u16,
    /// Short description, suitable as the close reason and for logs.
    pub reason: &'static str,
}

impl ProtocolError {
    /// 1002: the framing rules were broken.
    pub const fn protocol(reason: &'static str) -> Self {
        Self {
            close_code: 1002,
            reason,
        }
    }

    /// 1007: text or a close reason that is not UTF-8.
    pub const INVALID_UTF8: Self = Self {
        close_code: 1007,
        reason: "invalid UTF-8",
    };

    /// 1009: a frame or message over the size limit.
    pub const TOO_BIG: Self = Self {
        close_code: 1009,
        reason: "message too big",
    };
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.close_code, self.reason)
    }
}

impl std::error::Error for ProtocolError {}

/// Close code 1008, policy violation (RFC 6455 §7.4.1): the server's own limits were broken,
/// such as a plain WebSocket that does not read what it asked for.
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
/// Close code 1000: normal closure (the session ended as the protocol says it may).
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code: the endpoint cannot take this kind of data (a binary message where only text is
/// spoken).
pub const CLOSE_UNSUPPORTED_DATA: u16 = 1003;
/// Close code: the server met a condition that kept it from serving the connection (its
/// backend failed).
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;
/// Close code: try again later (the server is overloaded).
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// True for the close codes a peer may send on the wire (RFC 6455 §7.4): 1000–1003,
/// 1007–1011 and 3000–4999. 1004–1006 and 1015 are reserved for local use, the rest of
/// 0–2999 is unassigned.
pub const fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// Per-connection decoder of client frames into messages.
#[derive(Debug)]
pub struct Decoder {
    /// Largest message (sum of its fragments' payloads) accepted.
    max_message_size: usize,
    /// Payload of the fragmented message being assembled. `BytesMut::new()` (no allocation)
    /// whenever no fragmented message is open.
    assembly: BytesMut,
    /// `opcode::TEXT` or `opcode::BINARY` while a fragmented message is open, else
    /// `opcode::CONTINUATION`.
    open: u8,
    /// UTF-8 state of an open fragmented text message.
    utf8: Utf8Validator,
}

/// The parts of one frame that the message logic needs.
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Bytes,
}

impl Decoder {
    /// A decoder for a new connection, refusing messages longer than `max_message_size`.
    pub fn new(max_message_size: usize) -> Self {
        Self {
            max_message_size,
            assembly: BytesMut::new(),
            open: opcode::CONTINUATION,
            utf8: Utf8Validator::new(),
        }
    }

    /// Consumes complete frames from the front of `input` (client→server, so frames must be
    /// masked) and returns a message as soon as one is finished.
    ///
    /// `Ok(None)` means more bytes are needed: whatever partial frame there is stays in
    /// `input`. Frames of a fragmented message are consumed until the message completes or
    /// the input runs dry, so `Ok(None)` always means "no complete frame left"; a control
    /// frame between fragments is returned at once. Call again after every `Some`.
    ///
    /// Errors: RSV bits, unknown opcodes, unmasked frames, fragmented or oversized (> 125)
    /// control frames, a continuation with no message open, a new data frame while one is
    /// open, a 64-bit length with the top bit set, a 1-byte close payload, a close code not
    /// allowed on the wire → 1002; text or a close reason that is not UTF-8 → 1007 (checked
    /// fragment by fragment, so a bad sequence fails before the message completes); a frame
    /// or message longer than `max_message_size` → 1009, decided from the frame header
    /// before any of the payload is buffered.
    pub fn poll_message(&mut self, input: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        let result = self.poll_inner(input);
        if result.is_err() {
            // The connection is being failed; free a half-assembled message right away.
            self.abandon();
        }
        result
    }

    /// True while a fragmented message is being assembled.
    pub fn is_mid_message(&self) -> bool {
        self.open != opcode::CONTINUATION
    }

    fn poll_inner(&mut self, input: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        while let Some(frame) = self.take_frame(input)? {
            if let Some(message) = self.handle_frame(frame)? {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }

    /// Validates the header at the front of `input` and, once the whole frame is there,
    /// unmasks it in place and splits it off.
    fn take_frame(&self, input: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if input.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (input[0], input[1]);
        let fin = b0 & 0x80 != 0;
        let op = b0 & 0x0F;
        // Everything decidable from the first two bytes is decided before waiting for more.
        self.check_first_bytes(b0, b1)?;
        let Some((ext_len, payload_len)) = payload_length(input, b1 & 0x7F)? else {
            return Ok(None);
        };

        // The size limit is applied to the whole message, fragments so far included.
        let so_far = if op == opcode::CONTINUATION {
            self.assembly.len() as u64
        } else {
            0
        };
        if so_far.saturating_add(payload_len) > self.max_message_size as u64 {
            return Err(ProtocolError::TOO_BIG);
        }
        // payload_len ≤ max_message_size (a usize) now, so the conversion cannot fail; the
        // checked forms keep a pathological max_message_size from overflowing.
        let header_len = 2 + ext_len + 4;
        let frame_len = usize::try_from(payload_len)
            .ok()
            .and_then(|n| n.checked_add(header_len))
            .ok_or(ProtocolError::TOO_BIG)?;
        if input.len() < frame_len {
            return Ok(None);
        }

        let mut key = [0u8; 4];
        key.copy_from_slice(&input[header_len - 4..header_len]);
        apply_mask(&mut input[header_len..frame_len], key);
        input.advance(header_len);
        let payload = input.split_to(frame_len - header_len).freeze();
        Ok(Some(Frame {
            fin,
            opcode: op,
            payload,
        }))
    }

    /// The checks the first two header bytes decide (RSV bits, opcode against the message in
    /// progress, control frame rules, the mask bit), so a bad frame fails before its length
    /// is even read.
    #[inline]
    fn check_first_bytes(&self, b0: u8, b1: u8) -> Result<(), ProtocolError> {
        let fin = b0 & 0x80 != 0;
        let op = b0 & 0x0F;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if b0 & 0x70 != 0 {
            return Err(ProtocolError::protocol("reserved bits set"));
        }
        match op {
            opcode::CLOSE | opcode::PING | opcode::PONG => {
                if !fin {
                    return Err(ProtocolError::protocol("fragmented control frame"));
                }
                if usize::from(len7) > WS_CONTROL_PAYLOAD_BYTES_MAX {
                    return Err(ProtocolError::protocol("control frame payload over 125"));
                }
            }
            opcode::CONTINUATION => {
                if !self.is_mid_message() {
                    return Err(ProtocolError::protocol("continuation without a message"));
                }
            }
            opcode::TEXT | opcode::BINARY => {
                if self.is_mid_message() {
                    return Err(ProtocolError::protocol(
                        "new message inside a fragmented one",
                    ));
                }
            }
            _ => return Err(ProtocolError::protocol("unknown opcode")),
        }
        if !masked {
            return Err(ProtocolError::protocol("client frame not masked"));
        }
        Ok(())
    }

    fn handle_frame(&mut self, frame: Frame) -> Result<Option<Message>, ProtocolError> {
        let Frame {
            fin,
            opcode: op,
            payload,
        } = frame;
        match op {
            opcode::PING => Ok(Some(Message::Ping(payload))),
            opcode::PONG => Ok(Some(Message::Pong(payload))),
            opcode::CLOSE => close_message(payload).map(Some),
            opcode::TEXT | opcode::BINARY if fin => {
                if op == opcode::TEXT {
                    if std::str::from_utf8(&payload).is_err() {
                        return Err(ProtocolError::INVALID_UTF8);
                    }
                    Ok(Some(Message::Text(payload)))
                } else {
                    Ok(Some(Message::Binary(payload)))
                }
            }
            opcode::TEXT | opcode::BINARY => {
                if op == opcode::TEXT {
                    self.utf8.reset();
                    self.utf8
                        .feed(&payload)
                        .map_err(|()| ProtocolError::INVALID_UTF8)?;
                }
                self.open = op;
                self.assembly = BytesMut::with_capacity(payload.len());
                self.assembly.put_slice(&payload);
                Ok(None)
            }
            _ => {
                // CONTINUATION: take_frame has checked that a message is open.
                debug_assert_eq!(op, opcode::CONTINUATION);
                let text = self.open == opcode::TEXT;
                if text {
                    self.utf8
                        .feed(&payload)
                        .map_err(|()| ProtocolError::INVALID_UTF8)?;
                    if fin {
                        self.utf8
                            .finish()
                            .map_err(|()| ProtocolError::INVALID_UTF8)?;
                    }
                }
                self.assembly.put_slice(&payload);
                if !fin {
                    return Ok(None);
                }
                self.open = opcode::CONTINUATION;
                // `take` leaves an unallocated BytesMut behind: nothing is held at rest.
                let data = std::mem::take(&mut self.assembly).freeze();
                Ok(Some(if text {
                    Message::Text(data)
                } else {
                    Message::Binary(data)
                }))
            }
        }
    }

    fn abandon(&mut self) {
        self.assembly = BytesMut::new();
        self.open = opcode::CONTINUATION;
        self.utf8.reset();
    }
}

/// The bytes of extended length after the first two (0, 2 or 8) and the payload length, from
/// the 7-bit length `len7` and what follows it; `Ok(None)` while the extended length has not
/// all arrived. A 64-bit length with the top bit set → 1002.
#[inline]
fn payload_length(input: &[u8], len7: u8) -> Result<Option<(usize, u64)>, ProtocolError> {
    let lengths = match len7 {
        126 => match input.get(2..4) {
            Some(&[a, b]) => (2, u64::from(u16::from_be_bytes([a, b]))),
            _ => return Ok(None),
        },
        127 => match input.get(2..10) {
            Some(ext) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(ext);
                let n = u64::from_be_bytes(be);
                if n >> 63 != 0 {
                    return Err(ProtocolError::protocol("64-bit length with top bit set"));
                }
                (8, n)
            }
            None => return Ok(None),
        },
        n => (0, u64::from(n)),
    };
    Ok(Some(lengths))
}

fn close_message(payload: Bytes) -> Result<Message, ProtocolError> {
    match payload.len() {
        0 => Ok(Message::Close {
            code: None,
            reason: payload,
        }),
        1 => Err(ProtocolError::protocol("close payload of one byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::protocol("invalid close code"));
            }
            if std::str::from_utf8(&payload[2..]).is_err() {
                return Err(ProtocolError::INVALID_UTF8);
            }
            Ok(Message::Close {
                code: Some(code),
                reason: payload.slice(2..),
            })
        }
    }
}

/// XORs `payload` with the 4-byte masking `key` (RFC 6455 §5.3), starting at key offset 0.
/// Masking and unmasking are the same operation.
pub fn apply_mask(payload: &mut [u8], key: [u8; 4]) {
    // Eight bytes at a time; 8 is a multiple of 4, so every word starts at key offset 0.
    let key8 = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = payload.chunks_exact_mut(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(w) ^ key8).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

/// Length of a server frame header (no mask) for a payload of `payload_len` bytes: 2, 4 or 10.
pub const fn frame_header_len(payload_len: usize) -> usize {
    if payload_len < 126 {
        2
    } else if payload_len <= 0xFFFF {
        4
    } else {
        10
    }
}

/// Writes a server frame header (FIN + opcode, unmasked, 7/16/64-bit length) into `out`.
pub fn put_frame_header(out: &mut BytesMut, opcode: u8, payload_len: usize) {
    debug_assert!(opcode <= 0x0F, "opcode is a nibble");
    out.put_u8(0x80 | (opcode & 0x0F));
    // Each cast below is guarded by the range it is in, so none truncates.
    if payload_len < 126 {
        out.put_u8(payload_len as u8);
    } else if payload_len <= 0xFFFF {
        out.put_u8(126);
        out.put_u16(payload_len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(payload_len as u64);
    }
}

/// A whole server frame (FIN set, unmasked) with the given opcode and payload.
pub fn encode_frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(frame_header_len(payload.len()) + payload.len());
    put_frame_header(&mut out, opcode, payload.len());
    out.put_slice(payload);
    out.freeze()
}

/// A text frame (FIN set, unmasked). The caller guarantees `payload` is UTF-8.
pub fn encode_text(payload: &[u8]) -> Bytes {
    encode_frame(opcode::TEXT, payload)
}

/// A binary frame (FIN set, unmasked).
pub fn encode_binary(payload: &[u8]) -> Bytes {
    encode_frame(opcode::BINARY, payload)
}

/// A ping frame (FIN set, unmasked); a payload over 125 bytes is cut to 125.
pub fn encode_ping(payload: &[u8]) -> Bytes {
    encode_frame(opcode::PING, control_payload(payload))
}

/// A pong frame (FIN set, unmasked); a payload over 125 bytes is cut to 125 (a pong echoes a
/// ping the decoder has already limited to 125).
pub fn encode_pong(payload: &[u8]) -> Bytes {
    encode_frame(opcode::PONG, control_payload(payload))
}

/// Close frame with a code and a UTF-8 reason truncated (on a char boundary) to fit 123 bytes.
pub fn encode_close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(WS_CLOSE_REASON_BYTES_MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut out = BytesMut::with_capacity(2 + 2 + reason.len());
    put_frame_header(&mut out, opcode::CLOSE, 2 + reason.len());
    out.put_u16(code);
    out.put_slice(reason);
    out.freeze()
}

/// An empty close frame (reply to a close without a code).
pub fn encode_close_empty() -> Bytes {
    Bytes::from_static(&[0x80 | opcode::CLOSE, 0])
}

fn control_payload(payload: &[u8]) -> &[u8] {
    debug_assert!(
        payload.len() <= WS_CONTROL_PAYLOAD_BYTES_MAX,
        "control payload over 125"
    );
    &payload[..payload.len().min(WS_CONTROL_PAYLOAD_BYTES_MAX)]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    const MAX: usize = 1 << 20;

    /// A masked client frame; `b0_extra` ORs RSV bits into the first byte.
    fn client_frame_with(fin: bool, op: u8, payload: &[u8], b0_extra: u8, masked: bool) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(if fin { 0x80 } else { 0 } | op | b0_extra);
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xFFFF => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mut body = payload.to_vec();
        if masked {
            out.extend_from_slice(&KEY);
            apply_mask(&mut body, KEY);
        }
        out.extend_from_slice(&body);
        out
    }

    fn client_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        client_frame_with(fin, op, payload, 0, true)
    }

    fn buf(parts: &[&[u8]]) -> BytesMut {
        let mut b = BytesMut::new();
        for p in parts {
            b.extend_from_slice(p);
        }
        b
    }

    fn decode_one(bytes: &[u8]) -> Result<Option<Message>, ProtocolError> {
        Decoder::new(MAX).poll_message(&mut buf(&[bytes]))
    }

    fn code_of(r: Result<Option<Message>, ProtocolError>) -> u16 {
        r.expect_err("expected a protocol error").close_code
    }

    #[test]
    fn decoder_is_small_and_unallocated_at_rest() {
        assert!(
            std::mem::size_of::<Decoder>() <= 64,
            "{}",
            std::mem::size_of::<Decoder>()
        );
        let mut d = Decoder::new(MAX);
        let mut input = buf(&[
            &client_frame(false, opcode::TEXT, b"ab"),
            &client_frame(true, opcode::CONTINUATION, b"cd"),
        ]);
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Text(Bytes::from_static(b"abcd")))
        );
        assert_eq!(d.assembly.capacity(), 0);
        assert!(!d.is_mid_message());
    }

    #[test]
    fn single_masked_text_is_zero_copy() {
        let mut input = buf(&[&client_frame(true, opcode::TEXT, b"Hello")]);
        let base = input.as_ptr() as usize;
        let msg = Decoder::new(MAX).poll_message(&mut input).unwrap().unwrap();
        let Message::Text(text) = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(&text[..], b"Hello");
        // The payload is a view of the read buffer, just past the 6-byte header.
        assert_eq!(text.as_ptr() as usize, base + 6);
        assert!(input.is_empty());
    }

    #[test]
    fn rfc_masked_example() {
        // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
        let rfc = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            decode_one(&rfc).unwrap(),
            Some(Message::Text(Bytes::from_static(b"Hello")))
        );
    }

    #[test]
    fn lengths_16_and_64_bit() {
        for n in [125usize, 126, 300, 65535, 65536, 70_000] {
            let payload: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let frame = client_frame(true, opcode::BINARY, &payload);
            let header = frame.len() - n;
            assert_eq!(header, 2 + frame_header_len(n) - 2 + 4, "n = {n}");
            assert_eq!(
                decode_one(&frame).unwrap(),
                Some(Message::Binary(Bytes::from(payload)))
            );
        }
        // A 64-bit length used for a small payload is accepted (minimal encoding not enforced).
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&3u64.to_be_bytes());
        frame.extend_from_slice(&KEY);
        let mut body = b"abc".to_vec();
        apply_mask(&mut body, KEY);
        frame.extend_from_slice(&body);
        assert_eq!(
            decode_one(&frame).unwrap(),
            Some(Message::Binary(Bytes::from_static(b"abc")))
        );
    }

    #[test]
    fn partial_frames_wait_and_stay_in_input() {
        let frame = client_frame(true, opcode::TEXT, &[b'x'; 300]);
        let mut d = Decoder::new(MAX);
        let mut input = BytesMut::new();
        for (i, &b) in frame.iter().enumerate() {
            input.put_u8(b);
            let r = d.poll_message(&mut input).unwrap();
            if i + 1 < frame.len() {
                assert_eq!(r, None, "byte {i}");
                assert_eq!(input.len(), i + 1);
            } else {
                assert_eq!(r, Some(Message::Text(Bytes::from(vec![b'x'; 300]))));
                assert!(input.is_empty());
            }
        }
    }

    #[test]
    fn several_frames_one_at_a_time() {
        let mut d = Decoder::new(MAX);
        let mut input = buf(&[
            &client_frame(true, opcode::TEXT, b"one"),
            &client_frame(true, opcode::PING, b"p"),
            &client_frame(true, opcode::BINARY, b"two"),
            &client_frame(true, opcode::PONG, b""),
            &client_frame(true, opcode::TEXT, b"")[..3], // a partial frame left behind
        ]);
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Text("one".into()))
        );
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Ping("p".into()))
        );
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Binary("two".into()))
        );
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Pong("".into()))
        );
        assert_eq!(d.poll_message(&mut input).unwrap(), None);
        assert_eq!(input.len(), 3);
    }

    #[test]
    fn unmasked_frames_are_1002() {
        let frame = client_frame_with(true, opcode::TEXT, b"hi", 0, false);
        assert_eq!(code_of(decode_one(&frame)), 1002);
        // Decided from the first two bytes alone.
        assert_eq!(code_of(decode_one(&frame[..2])), 1002);
    }

    #[test]
    fn reserved_bits_are_1002() {
        for rsv in [0x40, 0x20, 0x10, 0x70] {
            let frame = client_frame_with(true, opcode::TEXT, b"hi", rsv, true);
            assert_eq!(code_of(decode_one(&frame)), 1002, "rsv {rsv:#x}");
        }
    }

    #[test]
    fn unknown_opcodes_are_1002() {
        for op in [3, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
            assert_eq!(
                code_of(decode_one(&client_frame(true, op, b""))),
                1002,
                "op {op}"
            );
        }
    }

    #[test]
    fn bad_control_frames_are_1002() {
        for op in [opcode::PING, opcode::PONG, opcode::CLOSE] {
            // Fragmented.
            assert_eq!(code_of(decode_one(&client_frame(false, op, b""))), 1002);
            // Payload over 125, decided from the header alone.
            let frame = client_frame(true, op, &[b'a'; 126]);
            assert_eq!(code_of(decode_one(&frame[..2])), 1002);
            // Exactly 125 is fine for ping/pong.
            if op != opcode::CLOSE {
                assert!(decode_one(&client_frame(true, op, &[b'a'; 125])).is_ok());
            }
        }
    }

    #[test]
    fn continuation_without_message_is_1002() {
        assert_eq!(
            code_of(decode_one(&client_frame(true, opcode::CONTINUATION, b"x"))),
            1002
        );
        assert_eq!(
            code_of(decode_one(&client_frame(false, opcode::CONTINUATION, b"x"))),
            1002
        );
    }

    #[test]
    fn new_data_frame_inside_fragmented_message_is_1002() {
        for op in [opcode::TEXT, opcode::BINARY] {
            let mut d = Decoder::new(MAX);
            let mut input = buf(&[
                &client_frame(false, opcode::BINARY, b"a"),
                &client_frame(true, op, b"b"),
            ]);
            assert_eq!(code_of(d.poll_message(&mut input)), 1002);
            // The half-built message was dropped.
            assert_eq!(d.assembly.capacity(), 0);
            assert!(!d.is_mid_message());
        }
    }

    #[test]
    fn length_with_top_bit_is_1002() {
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(code_of(decode_one(&frame)), 1002);
        // With a huge limit too: the top bit is a protocol error, not a size question.
        assert_eq!(
            code_of(Decoder::new(usize::MAX).poll_message(&mut buf(&[&frame]))),
            1002
        );
    }

    #[test]
    fn close_frames() {
        assert_eq!(
            decode_one(&client_frame(true, opcode::CLOSE, b"")).unwrap(),
            Some(Message::Close {
                code: None,
                reason: Bytes::new()
            })
        );
        assert_eq!(
            decode_one(&client_frame(true, opcode::CLOSE, &[0x03, 0xe8])).unwrap(),
            Some(Message::Close {
                code: Some(1000),
                reason: Bytes::new()
            })
        );
        let mut p = 4001u16.to_be_bytes().to_vec();
        p.extend_from_slice("bye ✓".as_bytes());
        assert_eq!(
            decode_one(&client_frame(true, opcode::CLOSE, &p)).unwrap(),
            Some(Message::Close {
                code: Some(4001),
                reason: Bytes::from("bye ✓")
            })
        );
        // One byte of payload.
        assert_eq!(
            code_of(decode_one(&client_frame(true, opcode::CLOSE, &[0x03]))),
            1002
        );
        // Reason not UTF-8.
        let mut p = 1000u16.to_be_bytes().to_vec();
        p.extend_from_slice(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80");
        assert_eq!(
            code_of(decode_one(&client_frame(true, opcode::CLOSE, &p))),
            1007
        );
    }

    #[test]
    fn close_code_validity_table() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ];
        let invalid = [
            0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000,
            65535,
        ];
        for code in valid {
            assert!(is_valid_close_code(code), "{code}");
            let r = decode_one(&client_frame(true, opcode::CLOSE, &code.to_be_bytes()));
            assert_eq!(
                r.unwrap(),
                Some(Message::Close {
                    code: Some(code),
                    reason: Bytes::new()
                })
            );
        }
        for code in invalid {
            assert!(!is_valid_close_code(code), "{code}");
            let r = decode_one(&client_frame(true, opcode::CLOSE, &code.to_be_bytes()));
            assert_eq!(code_of(r), 1002, "{code}");
        }
    }

    #[test]
    fn invalid_utf8_single_frame_is_1007() {
        assert_eq!(
            code_of(decode_one(&client_frame(true, opcode::TEXT, b"\xc0\xaf"))),
            1007
        );
        assert_eq!(
            code_of(decode_one(&client_frame(true, opcode::TEXT, b"ok\xe2\x82"))),
            1007
        );
        // Binary is not checked.
        assert!(decode_one(&client_frame(true, opcode::BINARY, b"\xc0\xaf")).is_ok());
    }

    #[test]
    fn fragmented_with_ping_in_between() {
        let mut d = Decoder::new(MAX);
        let mut input = buf(&[
            &client_frame(false, opcode::TEXT, b"Hel"),
            &client_frame(true, opcode::PING, b"ping!"),
            &client_frame(false, opcode::CONTINUATION, b"lo "),
            &client_frame(true, opcode::PONG, b""),
            &client_frame(false, opcode::CONTINUATION, b""),
            &client_frame(true, opcode::CONTINUATION, b"world"),
        ]);
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Ping("ping!".into()))
        );
        assert!(d.is_mid_message());
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Pong("".into()))
        );
        assert!(d.is_mid_message());
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Text("Hello world".into()))
        );
        assert!(!d.is_mid_message());
        assert!(input.is_empty());
        assert_eq!(d.poll_message(&mut input).unwrap(), None);
    }

    #[test]
    fn fragments_arriving_one_by_one() {
        let mut d = Decoder::new(MAX);
        let mut input = buf(&[&client_frame(false, opcode::BINARY, b"ab")]);
        assert_eq!(d.poll_message(&mut input).unwrap(), None);
        assert!(input.is_empty());
        assert!(d.is_mid_message());
        input.extend_from_slice(&client_frame(true, opcode::CONTINUATION, b"cd"));
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Binary("abcd".into()))
        );
    }

    #[test]
    fn utf8_split_over_fragments_is_valid() {
        // "κόσμε" with every code point boundary misaligned with the fragments.
        let text = "κόσμε".as_bytes();
        for cut in 0..=text.len() {
            let mut d = Decoder::new(MAX);
            let mut input = buf(&[
                &client_frame(false, opcode::TEXT, &text[..cut]),
                &client_frame(true, opcode::CONTINUATION, &text[cut..]),
            ]);
            assert_eq!(
                d.poll_message(&mut input).unwrap(),
                Some(Message::Text(Bytes::from_static(text))),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn invalid_utf8_fails_in_its_fragment() {
        // Autobahn 6.4.1: valid, then a fragment with U+110000, then more that never arrives.
        let mut d = Decoder::new(MAX);
        let mut input = buf(&[&client_frame(false, opcode::TEXT, "κόσμε".as_bytes())]);
        assert_eq!(d.poll_message(&mut input).unwrap(), None);
        input.extend_from_slice(&client_frame(
            false,
            opcode::CONTINUATION,
            b"\xf4\x90\x80\x80",
        ));
        assert_eq!(code_of(d.poll_message(&mut input)), 1007);

        // Autobahn 6.4.2: the bad code point starts in one fragment and ends in the next; it
        // is rejected as soon as its second byte arrives.
        let mut d = Decoder::new(MAX);
        let mut input = buf(&[&client_frame(false, opcode::TEXT, b"ok\xf4")]);
        assert_eq!(d.poll_message(&mut input).unwrap(), None);
        input.extend_from_slice(&client_frame(false, opcode::CONTINUATION, b"\x90"));
        assert_eq!(code_of(d.poll_message(&mut input)), 1007);

        // Bad in the very first fragment.
        let mut d = Decoder::new(MAX);
        let mut input = buf(&[&client_frame(false, opcode::TEXT, b"\xed\xa0\x80")]);
        assert_eq!(code_of(d.poll_message(&mut input)), 1007);

        // Truncated at the end of the message.
        let mut d = Decoder::new(MAX);
        let mut input = buf(&[
            &client_frame(false, opcode::TEXT, b"ok"),
            &client_frame(true, opcode::CONTINUATION, b"\xe2\x82"),
        ]);
        assert_eq!(code_of(d.poll_message(&mut input)), 1007);
    }

    #[test]
    fn too_big_from_header_alone() {
        let mut d = Decoder::new(100);
        // Single frame, 16-bit length, no payload bytes present.
        let frame = client_frame(true, opcode::BINARY, &[0; 200]);
        assert_eq!(code_of(d.poll_message(&mut buf(&[&frame[..4]]))), 1009);
        // 64-bit length, only the header.
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(
            code_of(Decoder::new(100).poll_message(&mut buf(&[&header]))),
            1009
        );
        // 7-bit length over a tiny limit.
        let frame = client_frame(true, opcode::TEXT, &[b'a'; 11]);
        assert_eq!(
            code_of(Decoder::new(10).poll_message(&mut buf(&[&frame[..2]]))),
            1009
        );
        // Exactly at the limit is fine.
        let frame = client_frame(true, opcode::TEXT, &[b'a'; 100]);
        assert!(Decoder::new(100)
            .poll_message(&mut buf(&[&frame]))
            .unwrap()
            .is_some());
    }

    #[test]
    fn too_big_across_fragments() {
        let mut d = Decoder::new(100);
        let mut input = buf(&[
            &client_frame(false, opcode::BINARY, &[0; 60]),
            &client_frame(false, opcode::CONTINUATION, &[0; 40]),
        ]);
        assert_eq!(d.poll_message(&mut input).unwrap(), None);
        // 100 so far; the next header alone announcing one more byte is over the limit.
        let next = client_frame(true, opcode::CONTINUATION, &[0; 1]);
        input.extend_from_slice(&next[..2]);
        assert_eq!(code_of(d.poll_message(&mut input)), 1009);
        assert_eq!(d.assembly.capacity(), 0);

        // An empty final fragment at exactly the limit completes.
        let mut d = Decoder::new(100);
        let mut input = buf(&[
            &client_frame(false, opcode::BINARY, &[0; 100]),
            &client_frame(true, opcode::CONTINUATION, &[]),
        ]);
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Binary(Bytes::from(vec![0; 100])))
        );
    }

    #[test]
    fn empty_messages() {
        assert_eq!(
            decode_one(&client_frame(true, opcode::TEXT, b"")).unwrap(),
            Some(Message::Text(Bytes::new()))
        );
        let mut d = Decoder::new(MAX);
        let mut input = buf(&[
            &client_frame(false, opcode::TEXT, b""),
            &client_frame(true, opcode::CONTINUATION, b""),
        ]);
        assert_eq!(
            d.poll_message(&mut input).unwrap(),
            Some(Message::Text(Bytes::new()))
        );
    }

    #[test]
    fn mask_matches_bytewise_reference() {
        for n in 0..40 {
            let original: Vec<u8> = (0..n).map(|i| (i * 31 + 5) as u8).collect();
            let mut fast = original.clone();
            apply_mask(&mut fast, KEY);
            let slow: Vec<u8> = original
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ KEY[i % 4])
                .collect();
            assert_eq!(fast, slow, "n = {n}");
            apply_mask(&mut fast, KEY);
            assert_eq!(fast, original);
        }
    }

    #[test]
    fn encode_length_boundaries() {
        for (n, header) in [
            (0usize, vec![0x82, 0]),
            (125, vec![0x82, 125]),
            (126, vec![0x82, 126, 0, 126]),
            (65535, vec![0x82, 126, 0xff, 0xff]),
            (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let payload = vec![b'z'; n];
            let frame = encode_binary(&payload);
            assert_eq!(&frame[..header.len()], &header[..], "n = {n}");
            assert_eq!(frame.len(), header.len() + n);
            assert_eq!(frame_header_len(n), header.len());
            assert_eq!(&frame[header.len()..], &payload[..]);
        }
        assert_eq!(&encode_text(b"hi")[..], b"\x81\x02hi");
        assert_eq!(&encode_ping(b"p")[..], b"\x89\x01p");
        assert_eq!(&encode_pong(b"")[..], b"\x8a\x00");
        let mut out = BytesMut::new();
        put_frame_header(&mut out, opcode::TEXT, 70_000);
        assert_eq!(&out[..], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn encode_close_frames() {
        assert_eq!(&encode_close_empty()[..], &[0x88, 0x00]);
        assert_eq!(&encode_close(1000, "")[..], &[0x88, 0x02, 0x03, 0xe8]);
        assert_eq!(&encode_close(4100, "slow")[..], b"\x88\x06\x10\x04slow");
        // 200 two-byte characters: cut to 61 of them (122 bytes), never mid-character.
        let long = "é".repeat(200);
        let frame = encode_close(1001, &long);
        assert_eq!(frame[1] as usize, 2 + 122);
        assert!(std::str::from_utf8(&frame[4..]).is_ok());
        // Exactly 123 ASCII bytes fit.
        let frame = encode_close(1000, &"a".repeat(130));
        assert_eq!(frame[1] as usize, 125);
        assert_eq!(frame.len(), 127);
    }
}
