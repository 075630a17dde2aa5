//! The WebSocket wire pieces both the connect side ([`crate::ws_client`]) and the receive loop
//! ([`crate::rx`]) use: the server-frame header parser (server frames are unmasked), masked
//! client frames, the load-event markers, the stamp parser and the stamp clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Largest WebSocket message accepted from the server, bytes.
pub const MESSAGE_MAX: usize = 16 * 1024 * 1024;

/// The marker of a measured load event inside the wire text: `\"lt\":\"`.
pub const MEASURED_MARKER: &[u8] = br#"\"lt\":\""#;
/// The marker of a warm-up load event: `\"lw\":\"`.
pub const WARMUP_MARKER: &[u8] = br#"\"lw\":\""#;

/// Result of looking for one frame in the read buffer.
pub enum FrameParse {
    /// Not all of the frame is there yet.
    Incomplete,
    /// A whole frame.
    Frame {
        /// Last frame of its message.
        fin: bool,
        /// WebSocket opcode.
        opcode: u8,
        /// Bytes of the header (no masking key: server frames are unmasked).
        header_len: usize,
        /// Bytes of the payload.
        payload_len: usize,
    },
}

/// One masked client frame; advances the masking-key generator `seed`.
pub fn masked_frame(opcode: u8, payload: &[u8], seed: &mut u32) -> Vec<u8> {
    // xorshift32: masking keys need not be secret here, only present.
    let mut x = *seed;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *seed = x;
    let key = x.to_be_bytes();
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&key);
    let start = frame.len();
    frame.extend_from_slice(payload);
    ringcast_core::ws::frame::apply_mask(&mut frame[start..], key);
    frame
}

/// Parses a server frame header at the start of `buf`.
pub fn parse_frame_header(buf: &[u8]) -> Result<FrameParse, String> {
    if buf.len() < 2 {
        return Ok(FrameParse::Incomplete);
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    if buf[1] & 0x80 != 0 {
        return Err("masked server frame".into());
    }
    let (header_len, payload_len) = match buf[1] & 0x7F {
        126 if buf.len() >= 4 => (4, u64::from(u16::from_be_bytes([buf[2], buf[3]]))),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (10, u64::from_be_bytes(b))
        }
        126 | 127 => return Ok(FrameParse::Incomplete),
        n => (2, u64::from(n)),
    };
    if payload_len > MESSAGE_MAX as u64 {
        return Err("frame too large".into());
    }
    let payload_len = payload_len as usize;
    if buf.len() < header_len + payload_len {
        return Ok(FrameParse::Incomplete);
    }
    Ok(FrameParse::Frame {
        fin,
        opcode,
        header_len,
        payload_len,
    })
}

/// Parses `STREAM.SEQ.SENT_US` followed by `\"` (the escaped closing quote).
pub fn parse_stamp(tail: &[u8]) -> Option<(u32, u64, u64)> {
    let end = tail.iter().position(|&b| b == b'\\')?;
    let text = std::str::from_utf8(&tail[..end]).ok()?;
    let mut parts = text.splitn(3, '.');
    let stream = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let sent = parts.next()?.parse().ok()?;
    Some((stream, seq, sent))
}

/// Microseconds since the UNIX epoch (the clock the publisher stamps intended send times with).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_is_read_from_wire_text() {
        let wire = br#"{"event":"lt","channel":"b","data":"{\"lt\":\"3.17.1732550000123456\",\"pad\":\"xx\"}"}"#;
        let pos = memchr::memmem::find(wire, MEASURED_MARKER).unwrap_or(usize::MAX);
        assert!(pos < wire.len());
        let stamp = parse_stamp(&wire[pos + MEASURED_MARKER.len()..]);
        assert_eq!(stamp, Some((3, 17, 1_732_550_000_123_456)));
    }

    #[test]
    fn frame_header_lengths() {
        assert!(matches!(
            parse_frame_header(&[0x81, 0x02, b'h', b'i']),
            Ok(FrameParse::Frame {
                fin: true,
                opcode: 1,
                header_len: 2,
                payload_len: 2
            })
        ));
        assert!(matches!(
            parse_frame_header(&[0x81, 126, 0x01]),
            Ok(FrameParse::Incomplete)
        ));
        assert!(parse_frame_header(&[0x81, 0x82, 0, 0, 0, 0]).is_err());
    }
}
