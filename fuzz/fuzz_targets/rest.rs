//! The REST API's pure pieces (`ringcast_core::pusher::rest`): the publish bodies
//! (`parse_publish`, `parse_batch`, `event_json`), the `info` attributes
//! (`parse_info_attributes`) and request signing (`verify_request`, `sign_query`,
//! `string_to_sign`, `body_md5_hex`). Checks: no panic on any body or query; an accepted event
//! keeps every documented bound (name, channels, data as a JSON string literal, socket id
//! shape) and its frame text is JSON carrying exactly those fields; a request signed with
//! `sign_query` verifies (unless two parameters share a key, which is refused as 400) and
//! stops verifying when the secret, the body, the method or the clock is wrong.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use ringcast_core::app::AppConfig;
use ringcast_core::pusher::rest::{
    body_md5_hex, event_json, parse_batch, parse_info_attributes, parse_publish, sign_query,
    verify_request, PublishEvent, TIMESTAMP_TOLERANCE_S,
};

#[derive(Debug, Arbitrary)]
struct Limits {
    name: u8,
    channels: u8,
    channel_name: u8,
    payload_kb: u8,
    batch: u8,
}

#[derive(Debug, Arbitrary)]
struct Signed {
    method: String,
    path: String,
    params: Vec<(String, String)>,
    body: Vec<u8>,
    key: String,
    secret: String,
    timestamp: u32,
    skew: i16,
}

#[derive(Debug, Arbitrary)]
enum Input {
    Publish(Limits, Vec<u8>),
    Batch(Limits, Vec<u8>),
    Info(String),
    Verify {
        method: String,
        path: String,
        query: String,
        body: Vec<u8>,
        now: u64,
    },
    Signed(Signed),
}

fn app(limits: &Limits) -> AppConfig {
    let mut app = AppConfig::with_credentials("1", "key", "secret");
    // Small limits (1..) reach every 413; 0 keeps the default.
    let pick = |v: u8, default: u32| {
        if v == 0 {
            default
        } else {
            u32::from(v % 32) + 1
        }
    };
    app.max_event_name_length = pick(limits.name, app.max_event_name_length);
    app.max_event_channels_at_once = pick(limits.channels, app.max_event_channels_at_once);
    app.max_channel_name_length = pick(limits.channel_name, app.max_channel_name_length);
    app.max_event_payload_kb = u32::from(limits.payload_kb % 4);
    app.max_event_batch_size = pick(limits.batch, app.max_event_batch_size);
    app
}

fn check_event(event: &PublishEvent, app: &AppConfig) {
    assert!(!event.name.is_empty());
    assert!(event.name.len() <= app.max_event_name_length as usize);
    assert!(!event.name.starts_with("pusher_internal:"));
    assert!(!event.channels.is_empty());
    assert!(event.channels.len() <= app.max_event_channels_at_once as usize);
    for (i, c) in event.channels.iter().enumerate() {
        assert!(!event.channels[..i].contains(c), "channels repeat");
        assert!(!c.is_empty());
    }
    let data: serde_json::Value =
        serde_json::from_str(&event.data_json).expect("data_json is JSON");
    let data = data.as_str().expect("data_json is a JSON string literal");
    assert!(data.len() <= app.max_event_payload_kb as usize * 1024);
    if let Some(id) = &event.socket_id {
        let (a, b) = id.split_once('.').expect("socket id has a dot");
        assert!(!a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
        assert!(!b.is_empty() && b.bytes().all(|b| b.is_ascii_digit()));
    }
    for item in &event.info {
        assert!(!item.is_empty() && !item.contains(',') && item.trim_matches(' ') == item);
    }
    for channel in &event.channels {
        let frame: serde_json::Value =
            serde_json::from_str(&event_json(event, channel)).expect("event_json is JSON");
        assert_eq!(frame["event"], event.name.as_str());
        assert_eq!(frame["channel"], channel.as_str());
        assert_eq!(frame["data"], data);
    }
}

fn lower_keys_unique(params: &[(&str, &str)]) -> bool {
    let mut keys: Vec<String> = params.iter().map(|(k, _)| k.to_lowercase()).collect();
    keys.sort();
    keys.windows(2).all(|w| w[0] != w[1])
}

fn signed(s: &Signed) {
    const RESERVED: [&str; 5] = [
        "auth_key",
        "auth_timestamp",
        "auth_version",
        "auth_signature",
        "body_md5",
    ];
    let params: Vec<(&str, &str)> = s
        .params
        .iter()
        .take(12)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let timestamp = u64::from(s.timestamp);
    let query = sign_query(
        &s.method, &s.path, &params, &s.body, &s.key, &s.secret, timestamp,
    );
    let kept: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(k, _)| !RESERVED.contains(&k.to_lowercase().as_str()))
        .collect();
    let now = timestamp.saturating_add_signed(i64::from(s.skew));
    let result = verify_request(&s.method, &s.path, &query, &s.body, &s.key, &s.secret, now);
    if !lower_keys_unique(&kept) {
        assert_eq!(
            result.map_err(|e| e.status),
            Err(400),
            "duplicate keys: {query}"
        );
        return;
    }
    if timestamp.abs_diff(now) > TIMESTAMP_TOLERANCE_S {
        assert_eq!(result.map_err(|e| e.status), Err(401));
        return;
    }
    assert_eq!(result, Ok(()), "a signed request is refused: {query}");
    // What a forger without the secret, or a tampering proxy, would present.
    let refused = |method: &str, body: &[u8], secret: &str| {
        verify_request(method, &s.path, &query, body, &s.key, secret, now).is_err()
    };
    let wrong_secret = format!("{}x", s.secret);
    assert!(refused(&s.method, &s.body, &wrong_secret), "wrong secret");
    let mut other_body = s.body.clone();
    other_body.push(b'!');
    assert!(refused(&s.method, &other_body, &s.secret), "other body");
    let other_method = format!("{}X", s.method);
    assert!(refused(&other_method, &s.body, &s.secret), "other method");
    if !s.body.is_empty() {
        assert!(query.contains(&format!("body_md5={}", body_md5_hex(&s.body))));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    match input {
        Input::Publish(limits, body) => {
            let app = app(&limits);
            if let Ok(event) = parse_publish(&body, &app) {
                check_event(&event, &app);
            }
        }
        Input::Batch(limits, body) => {
            let app = app(&limits);
            match parse_batch(&body, &app) {
                Ok(events) => {
                    assert!(!events.is_empty());
                    assert!(events.len() <= app.max_event_batch_size as usize);
                    for event in &events {
                        check_event(event, &app);
                    }
                }
                Err(err) => assert!(matches!(err.status, 400 | 413), "{err:?}"),
            }
        }
        Input::Info(value) => {
            if let Ok(attributes) = parse_info_attributes(Some(&value)) {
                for (i, a) in attributes.iter().enumerate() {
                    assert!(!attributes[..i].contains(a), "attributes repeat");
                    assert!(value.contains(a.as_str()));
                }
            }
        }
        Input::Verify {
            method,
            path,
            query,
            body,
            now,
        } => {
            if let Err(err) = verify_request(&method, &path, &query, &body, "key", "secret", now) {
                assert!(matches!(err.status, 400 | 401), "{err:?}");
                serde_json::from_str::<serde_json::Value>(&err.body()).expect("error body is JSON");
            }
        }
        Input::Signed(s) => signed(&s),
    }
});
