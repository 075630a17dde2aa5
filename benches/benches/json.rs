//! `parse_client_message` on the frames pusher-js really sends: subscribes (public, private,
//! presence with its string-encoded `channel_data`), a client event, and the keep-alive ping;
//! and `parse_publish` on the body the pusher SDK sends for `trigger` (its `data` a string).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringcast_benches::fixtures::pusher_js;
use ringcast_core::app::AppConfig;
use ringcast_core::pusher::parse_client_message;
use ringcast_core::pusher::rest::parse_publish;

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

    let app = AppConfig::with_credentials("1", "key", "secret");
    let body = r#"{"name":"my-event","data":"{\"message\":\"hello world\",\"n\":42}","channels":["my-channel"]}"#;
    let mut group = c.benchmark_group("parse_publish");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("trigger_one_channel", |b| {
        b.iter(|| parse_publish(std::hint::black_box(body.as_bytes()), &app).expect("valid body"))
    });
    group.finish();
}

// criterion_group! defines an undocumented `pub fn`; a private module keeps it out of the
// crate's public surface (and so out of the missing_docs lint).
mod group {
    use super::*;
    criterion_group!(benches, parse);
}
criterion_main!(group::benches);
