//! `parse_client_message` on the frames pusher-js really sends: subscribes (public, private,
//! presence with its string-encoded `channel_data`), a client event, and the keep-alive ping.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast_benches::fixtures::pusher_js;
use ringcast_core::pusher::parse_client_message;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_client_message");
    let frames = [
        ("subscribe_public", pusher_js::SUBSCRIBE_PUBLIC),
        ("subscribe_private", pusher_js::SUBSCRIBE_PRIVATE),
        ("subscribe_presence", pusher_js::SUBSCRIBE_PRESENCE),
        ("client_event", pusher_js::CLIENT_EVENT),
        ("ping", pusher_js::PING),
    ];
    for (name, text) in frames {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                parse_client_message(std::hint::black_box(text.as_bytes()))
                    .expect("fixture frames are valid")
            })
        });
    }
    group.finish();
}

// criterion_group! defines an undocumented `pub fn`; a private module keeps it out of the
// crate's public surface (and so out of the missing_docs lint).
mod group {
    use super::*;
    criterion_group!(benches, parse);
}
criterion_main!(group::benches);
