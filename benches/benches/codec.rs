//! WebSocket framing costs per message size (100 B, 1 KiB, 16 KiB): encoding a server frame
//! (done once per publish, shared by every subscriber), decoding and unmasking a client frame
//! (done for every frame a client sends), and the unmask XOR alone.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ringcast_benches::fixtures::{masked_client_frame, text_payload, MASK_KEY};
use ringcast_core::ws::frame::{self, apply_mask};
use ringcast_core::ws::{Decoder, Message};

/// Payload sizes: a typical Pusher event, a large one, and the 16 KiB the engine reads at once.
const SIZES: [(usize, &str); 3] = [(100, "100B"), (1024, "1KiB"), (16 * 1024, "16KiB")];

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_server_frame");
    for (size, label) in SIZES {
        let payload = text_payload(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(label, |b| {
            b.iter(|| frame::encode_text(std::hint::black_box(&payload)))
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_client_frame");
    for (size, label) in SIZES {
        let wire = masked_client_frame(frame::opcode::TEXT, &text_payload(size));
        let mut decoder = Decoder::new(1 << 20);
        group.throughput(Throughput::Bytes(size as u64));
        // The decoder unmasks in place, so every iteration needs a fresh copy of the masked
        // bytes; the copy happens in the untimed setup, as the socket read would put it there.
        group.bench_function(label, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&wire[..]),
                |input| match decoder.poll_message(input) {
                    Ok(Some(Message::Text(text))) => text,
                    other => panic!("expected one text message, got {other:?}"),
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    for (size, label) in SIZES {
        // XOR is its own inverse, so unmasking the same buffer over and over is the same work
        // as unmasking fresh frames, without a copy in the loop.
        let mut payload = text_payload(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(label, |b| {
            b.iter(|| apply_mask(std::hint::black_box(&mut payload), MASK_KEY))
        });
    }
    group.finish();
}

// criterion_group! defines an undocumented `pub fn`; a private module keeps it out of the
// crate's public surface (and so out of the missing_docs lint).
mod group {
    use super::*;
    criterion_group!(benches, encode, decode, unmask);
}
criterion_main!(group::benches);
