//! Valid client traffic round-trips through the frame decoder: messages built by the fuzzer
//! (text split into fragments anywhere, even inside a code point; binary; pings and pongs
//! between fragments; close frames), masked with random keys, lengths in the short or the
//! 64-bit form, fed in random splits, come out of `Decoder::poll_message` exactly as sent.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ringcast_core::ws::frame::{is_valid_close_code, opcode, Decoder, Message};
use ringcast_fuzz::client_frame;

#[derive(Debug, Arbitrary)]
enum Item {
    Text { text: String, cuts: Vec<u8> },
    Binary { data: Vec<u8>, cuts: Vec<u8> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close { code: u16, reason: String },
    EmptyClose,
}

#[derive(Debug, Arbitrary)]
struct Input {
    items: Vec<Item>,
    /// A control frame to put between the fragments of each data message.
    interleave: Vec<u8>,
    keys: Vec<[u8; 4]>,
    long: Vec<bool>,
    split_seed: u64,
}

struct Builder<'a> {
    stream: Vec<u8>,
    keys: &'a [[u8; 4]],
    long: &'a [bool],
    n: usize,
}

impl Builder<'_> {
    fn frame(&mut self, fin: bool, op: u8, payload: &[u8]) {
        let key = self.keys.get(self.n % self.keys.len().max(1)).copied();
        let key = key.unwrap_or([0x12, 0x34, 0x56, 0x78]);
        // The 64-bit length form is for data frames only: a control frame's length must fit
        // the 7-bit field (RFC 6455 §5.5), and the decoder refuses anything else.
        let long = op < 8 && self.long.get(self.n).copied().unwrap_or(false);
        self.n += 1;
        self.stream
            .extend(client_frame(fin, 0, op, Some(key), payload, long));
    }
}

/// Cut points within `len` from the fuzzer's bytes, sorted, at most 8 fragments.
fn cut_points(len: usize, cuts: &[u8]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts
        .iter()
        .take(7)
        .map(|c| {
            if len == 0 {
                0
            } else {
                usize::from(*c) % (len + 1)
            }
        })
        .collect();
    points.sort_unstable();
    points
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let mut b = Builder {
        stream: Vec::new(),
        keys: &input.keys,
        long: &input.long,
        n: 0,
    };
    let mut expected = Vec::new();
    for (i, item) in input.items.iter().enumerate().take(64) {
        let control = input.interleave.get(i).copied();
        let (op, payload, cuts): (u8, &[u8], &[u8]) = match item {
            Item::Text { text, cuts } => (opcode::TEXT, text.as_bytes(), cuts),
            Item::Binary { data, cuts } => (opcode::BINARY, data, cuts),
            Item::Ping(p) => {
                let p = &p[..p.len().min(125)];
                b.frame(true, opcode::PING, p);
                expected.push(Message::Ping(Bytes::copy_from_slice(p)));
                continue;
            }
            Item::Pong(p) => {
                let p = &p[..p.len().min(125)];
                b.frame(true, opcode::PONG, p);
                expected.push(Message::Pong(Bytes::copy_from_slice(p)));
                continue;
            }
            Item::Close { code, reason } => {
                if !is_valid_close_code(*code) {
                    continue;
                }
                let mut end = reason.len().min(123);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                let reason = &reason.as_bytes()[..end];
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend_from_slice(reason);
                b.frame(true, opcode::CLOSE, &payload);
                expected.push(Message::Close {
                    code: Some(*code),
                    reason: Bytes::copy_from_slice(reason),
                });
                continue;
            }
            Item::EmptyClose => {
                b.frame(true, opcode::CLOSE, &[]);
                expected.push(Message::Close {
                    code: None,
                    reason: Bytes::new(),
                });
                continue;
            }
        };
        // A data message in fragments, with at most one control frame after the first.
        let points = cut_points(payload.len(), cuts);
        let mut start = 0;
        let mut pieces = Vec::new();
        for p in points {
            pieces.push(&payload[start..p]);
            start = p;
        }
        pieces.push(&payload[start..]);
        let last = pieces.len() - 1;
        for (k, piece) in pieces.iter().enumerate() {
            let frame_op = if k == 0 { op } else { opcode::CONTINUATION };
            b.frame(k == last, frame_op, piece);
            if k == 0 && k != last {
                if let Some(c) = control {
                    let ping = vec![c; usize::from(c % 126)];
                    b.frame(true, opcode::PING, &ping);
                    expected.push(Message::Ping(Bytes::from(ping)));
                }
            }
        }
        expected.push(if op == opcode::TEXT {
            Message::Text(Bytes::copy_from_slice(payload))
        } else {
            Message::Binary(Bytes::copy_from_slice(payload))
        });
    }
    let mut decoder = Decoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for piece in ringcast_fuzz::chunks_seeded(&b.stream, input.split_seed) {
        buf.extend_from_slice(piece);
        while let Some(message) = decoder
            .poll_message(&mut buf)
            .unwrap_or_else(|err| panic!("valid traffic refused: {err}"))
        {
            got.push(message);
        }
    }
    assert!(buf.is_empty(), "bytes left over");
    assert!(!decoder.is_mid_message());
    assert_eq!(got, expected);
});
