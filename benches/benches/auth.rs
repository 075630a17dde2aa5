//! Signature checks: a private and a presence channel auth token (one HMAC-SHA256 each, per
//! subscribe), and a signed REST publish request (query parsing, body MD5, HMAC).

use criterion::{criterion_group, criterion_main, Criterion};
use ringcast_benches::fixtures::{APP_ID, APP_KEY, APP_SECRET};
use ringcast_core::pusher::auth::{channel_auth_token, verify_channel_auth};
use ringcast_core::pusher::rest::{sign_query, verify_request};

const SOCKET_ID: &str = "424200.17";
const PRESENCE_DATA: &str = r#"{"user_id":"1001","user_info":{"name":"Ada Lovelace","avatar":"https://example.com/a.png"}}"#;

fn channel_auth(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify_channel_auth");
    let private = channel_auth_token(APP_KEY, APP_SECRET, SOCKET_ID, "private-orders-42", None);
    group.bench_function("private", |b| {
        b.iter(|| {
            assert!(verify_channel_auth(
                APP_KEY,
                APP_SECRET,
                std::hint::black_box(SOCKET_ID),
                "private-orders-42",
                None,
                &private,
            ))
        })
    });
    let presence = channel_auth_token(
        APP_KEY,
        APP_SECRET,
        SOCKET_ID,
        "presence-room-7",
        Some(PRESENCE_DATA),
    );
    group.bench_function("presence", |b| {
        b.iter(|| {
            assert!(verify_channel_auth(
                APP_KEY,
                APP_SECRET,
                std::hint::black_box(SOCKET_ID),
                "presence-room-7",
                Some(PRESENCE_DATA),
                &presence,
            ))
        })
    });
    group.finish();
}

fn rest_request(c: &mut Criterion) {
    // What the `pusher` server SDKs send for `trigger('my-channel', 'my-event', {...})`.
    let path = format!("/apps/{APP_ID}/events");
    let body = br#"{"name":"my-event","data":"{\"message\":\"hello world\",\"n\":42}","channels":["my-channel"]}"#;
    let now = 1_732_550_000;
    let query = sign_query("POST", &path, &[], body, APP_KEY, APP_SECRET, now);
    c.bench_function("verify_request/publish", |b| {
        b.iter(|| {
            verify_request(
                "POST",
                &path,
                std::hint::black_box(&query),
                body,
                APP_KEY,
                APP_SECRET,
                now,
            )
            .expect("the fixture request is correctly signed")
        })
    });
}

// criterion_group! defines an undocumented `pub fn`; a private module keeps it out of the
// crate's public surface (and so out of the missing_docs lint).
mod group {
    use super::*;
    criterion_group!(benches, channel_auth, rest_request);
}
criterion_main!(group::benches);
