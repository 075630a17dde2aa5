//! The WebSocket frame decoder (`ringcast_core::ws::frame::Decoder::poll_message`) on random
//! bytes, fed in random splits: it never panics, the messages and the error it reports do not
//! depend on how the bytes were split, and every message keeps the decoder's promises (text
//! and close reasons UTF-8, control payloads within 125 bytes, close codes allowed on the
//! wire, nothing longer than the limit). After an error the decoder is not used again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringcast_core::ws::frame::{is_valid_close_code, Decoder, Message, ProtocolError};

/// What one run of the decoder over the stream gave: the messages, then the error (if any),
/// and the bytes left undecoded when there was no error.
#[derive(Debug, PartialEq)]
struct Run {
    messages: Vec<Message>,
    error: Option<ProtocolError>,
    left: usize,
    mid_message: bool,
}

fn run(max: usize, pieces: &[&[u8]]) -> Run {
    let mut decoder = Decoder::new(max);
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.poll_message(&mut buf) {
                Ok(Some(message)) => {
                    check(&message, max);
                    messages.push(message);
                }
                Ok(None) => break,
                Err(error) => {
                    assert!(
                        matches!(error.close_code, 1002 | 1007 | 1009),
                        "close code of a violation: {error:?}"
                    );
                    assert!(!decoder.is_mid_message(), "an error frees the assembly");
                    return Run {
                        messages,
                        error: Some(error),
                        left: 0,
                        mid_message: false,
                    };
                }
            }
        }
    }
    Run {
        messages,
        error: None,
        left: buf.len(),
        mid_message: decoder.is_mid_message(),
    }
}

fn check(message: &Message, max: usize) {
    match message {
        Message::Text(payload) => {
            assert!(payload.len() <= max);
            std::str::from_utf8(payload).expect("text is UTF-8");
        }
        Message::Binary(payload) => assert!(payload.len() <= max),
        Message::Ping(payload) | Message::Pong(payload) => {
            assert!(payload.len() <= 125 && payload.len() <= max)
        }
        Message::Close { code, reason } => {
            match code {
                Some(code) => assert!(is_valid_close_code(*code)),
                None => assert!(reason.is_empty()),
            }
            assert!(reason.len() <= 123);
            std::str::from_utf8(reason).expect("close reason is UTF-8");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, stream) = data.split_at(4);
    // The limit: tiny ones exercise 1009 on every path, 65536 is the default.
    let max = match head[0] % 6 {
        0 => 0,
        1 => 125,
        2 => 126,
        3 => usize::from(head[1]) * 4,
        4 => 65_536,
        _ => usize::MAX,
    };
    let whole = run(max, &[stream]);
    let seed = u64::from(u16::from_le_bytes([head[2], head[3]]));
    let pieces = ringcast_fuzz::chunks_seeded(stream, seed);
    let split = run(max, &pieces);
    assert_eq!(whole, split, "the result depends on the split");
    // One byte at a time too, for short inputs (the slowest path of the header checks).
    if stream.len() <= 64 {
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(whole, run(max, &bytes), "byte-by-byte differs");
    }
});
