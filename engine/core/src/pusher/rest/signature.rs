//! REST request signing (`docs/protocol-notes.md`, REST signing): checking the `auth_*` query
//! parameters and `body_md5` of an incoming request, and building a signed query string for a
//! client.
//!
//! The signature is `hex(HMAC_SHA256(secret, "METHOD\nPATH\nQUERY"))` where QUERY is every
//! query parameter but `auth_signature`, keys lower-cased, sorted by key, joined `k=v&…` with
//! the values **not** URL-escaped. The SDKs disagree on how the sent query relates to the
//! signed one, so the server rebuilds QUERY from the *decoded* values:
//!
//! - `pusher` (Node, 5.x) signs `k=v` with the raw values and sends that very text
//!   (`info=user_count,subscription_count`, `filter_by_prefix=presence-`); only characters the
//!   WHATWG URL parser escapes (space, `"`, `<`, `>`, …) arrive percent-encoded.
//! - `pusher` (Python, 3.x) does the same (raw `k=v`, `requests` re-quotes only unsafe
//!   characters) and also sends `body_md5` on a GET: the MD5 of the empty body.
//! - Form-encoding clients (Go's `url.Values`, Ruby, PHP/Guzzle) send
//!   `info=user_count%2Csubscription_count` and a space as `+` or `%20`, and sign the decoded
//!   text.
//!
//! A raw `+` is therefore ambiguous (a space for the form encoders, a plus for Node and
//! Python) and a raw `%` can be literal (Node, Python). Verification tries the form-decoded
//! query first and, only when the query holds a `+` or a `%`, the `+`-preserving and the
//! undecoded readings too (likewise the raw and the decoded path); each is one constant-time
//! HMAC check. None of the SDKs' own values (keys, timestamps, hex, channel names, attribute
//! lists) contain `+`, `%` or a space, so in practice the first reading is the one that
//! matches. Accepting several readings of the same bytes does not help a forger: every
//! reading still needs the secret.

use md5::{Digest, Md5};

use super::error::RestError;
use crate::http::request::percent_decode;
use crate::pusher::auth::{hmac_sha256_hex, verify_hmac_sha256_hex};

/// Most seconds `auth_timestamp` may be away from the server's clock, either way.
pub use crate::limits::REST_TIMESTAMP_TOLERANCE_S as TIMESTAMP_TOLERANCE_S;

/// The only `auth_version` there is.
pub const AUTH_VERSION: &str = "1.0";

/// Hex MD5 of the empty body; the Python SDK sends it as `body_md5` on every GET.
pub const EMPTY_BODY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// Lower-case hex MD5 of `body`, as `body_md5` carries it.
pub fn body_md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// The string a REST request signs: `"METHOD\nPATH\nQUERY"`, QUERY built from `params` (keys
/// lower-cased, `auth_signature` left out, sorted by key, `k=v` joined with `&`, values as
/// given, i.e. decoded).
pub fn string_to_sign(method: &str, path: &str, params: &[(&str, &str)]) -> String {
    let pairs = params
        .iter()
        .map(|(k, v)| (k.to_lowercase(), (*v).to_owned()))
        .collect();
    signed_text(method, path, pairs)
}

/// `"METHOD\nPATH\n" + sorted k=v&…` of already lower-cased, decoded pairs (`auth_signature`
/// is dropped here).
fn signed_text(method: &str, path: &str, mut pairs: Vec<(String, String)>) -> String {
    pairs.retain(|(k, _)| k != "auth_signature");
    // Keys are unique in a verified request; the value breaks ties only to keep the output
    // deterministic for [`string_to_sign`] callers that pass a key twice.
    pairs.sort_unstable();
    let len = pairs
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = String::with_capacity(method.len() + path.len() + 2 + len);
    out.push_str(method);
    out.push('\n');
    out.push_str(path);
    out.push('\n');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// One query parameter as it arrived, plus its form-decoded, lower-cased key.
struct Param<'a> {
    raw_key: &'a str,
    raw_value: &'a str,
    key: String,
}

/// How the raw text of a parameter or the path is turned into the text that was signed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// `%XX` decoded and `+` read as a space (form encoding: Go, Ruby, PHP).
    Form,
    /// `%XX` decoded, `+` kept (Node and Python send a literal `+` unescaped).
    KeepPlus,
    /// Not decoded at all (Node and Python sign a literal `%` as is).
    Raw,
}

fn read(text: &str, reading: Reading) -> String {
    match reading {
        Reading::Form => percent_decode(text),
        // Escaping the plus first makes the form decoder give it back unchanged.
        Reading::KeepPlus => percent_decode(&text.replace('+', "%2B")),
        Reading::Raw => text.to_owned(),
    }
}

/// Splits the raw query into parameters (empty `&&` segments skipped; no `=` means an empty
/// value), sorted by decoded key; a key given twice (after lower-casing) → 400. The query is
/// part of the request head, so its size is bounded by the head limit.
fn parse_query(raw_query: &str) -> Result<Vec<Param<'_>>, RestError> {
    let mut params: Vec<Param<'_>> = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            Param {
                raw_key,
                raw_value,
                key: percent_decode(raw_key).to_lowercase(),
            }
        })
        .collect();
    params.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(pair) = params.windows(2).find(|w| w[0].key == w[1].key) {
        let mut message = String::from("duplicate query parameter ");
        crate::pusher::json_escape::push_json_string(&mut message, &pair[0].key);
        return Err(RestError::bad_request(message));
    }
    Ok(params)
}

/// The form-decoded value of parameter `key` (lower-case), if present.
fn param(params: &[Param<'_>], key: &str) -> Option<String> {
    params
        .binary_search_by(|p| p.key.as_str().cmp(key))
        .ok()
        .map(|i| percent_decode(params[i].raw_value))
}

fn required(params: &[Param<'_>], key: &str) -> Result<String, RestError> {
    param(params, key).ok_or_else(|| RestError::unauthorized(format!("missing {key}")))
}

/// Verifies a signed REST request (`docs/protocol-notes.md`, REST signing). `path` and
/// `raw_query` are the request target as received (not decoded), `body` the raw body,
/// `now_unix_s` the server's clock.
///
/// Checks, in order: no parameter given twice (400 `duplicate query parameter`);
/// `auth_key`, `auth_timestamp`, `auth_signature` present (401 `missing auth_…`);
/// `auth_version`, if present, is `1.0`; `auth_key == app_key` (401 `unknown key`);
/// `auth_timestamp` a whole number of seconds within [`TIMESTAMP_TOLERANCE_S`] of
/// `now_unix_s`; `body_md5` (hex MD5 of the body, any case) present when the body is non-empty
/// and, when present, equal to the body's MD5 (so a GET may carry [`EMPTY_BODY_MD5`], as the
/// Python SDK does); the signature (constant-time; see the module doc for the readings
/// tried). Every authentication failure is 401.
pub fn verify_request(
    method: &str,
    path: &str,
    raw_query: &str,
    body: &[u8],
    app_key: &str,
    app_secret: &str,
    now_unix_s: u64,
) -> Result<(), RestError> {
    let params = parse_query(raw_query)?;
    let key = required(&params, "auth_key")?;
    let timestamp = required(&params, "auth_timestamp")?;
    let signature = required(&params, "auth_signature")?;

    check_auth_version(&params)?;
    // The key is public (it is in every client's connect URL): a plain comparison is fine.
    if key != app_key {
        return Err(RestError::unauthorized("unknown key"));
    }
    check_timestamp(&timestamp, now_unix_s)?;
    check_body_md5(&params, body)?;
    if signature_matches(method, path, &params, app_secret, &signature) {
        Ok(())
    } else {
        Err(RestError::unauthorized("invalid signature"))
    }
}

/// `auth_version`, when given, must be [`AUTH_VERSION`] (401).
fn check_auth_version(params: &[Param<'_>]) -> Result<(), RestError> {
    if let Some(version) = param(params, "auth_version") {
        if version != AUTH_VERSION {
            return Err(RestError::unauthorized(format!(
                "unsupported auth_version (only {AUTH_VERSION})"
            )));
        }
    }
    Ok(())
}

/// `auth_timestamp` must be whole unix seconds within [`TIMESTAMP_TOLERANCE_S`] of the
/// server's clock, either way (401).
fn check_timestamp(timestamp: &str, now_unix_s: u64) -> Result<(), RestError> {
    let timestamp: u64 = timestamp
        .parse()
        .map_err(|_| RestError::unauthorized("invalid auth_timestamp (unix seconds)"))?;
    if timestamp.abs_diff(now_unix_s) > TIMESTAMP_TOLERANCE_S {
        return Err(RestError::unauthorized(format!(
            "timestamp expired: auth_timestamp {timestamp} is not within \
             {TIMESTAMP_TOLERANCE_S} s of the server time {now_unix_s}"
        )));
    }
    Ok(())
}

/// `body_md5` is required with a non-empty body and, when given, must be the body's MD5 in
/// hex, any case (401).
fn check_body_md5(params: &[Param<'_>], body: &[u8]) -> Result<(), RestError> {
    match param(params, "body_md5") {
        None if !body.is_empty() => Err(RestError::unauthorized("missing body_md5")),
        Some(md5) if !md5.eq_ignore_ascii_case(&body_md5_hex(body)) => {
            Err(RestError::unauthorized("body_md5 does not match the body"))
        }
        _ => Ok(()),
    }
}

/// True when `signature` is the HMAC of the request under one of the readings of its query
/// and path (see the module doc); each try is a constant-time comparison.
fn signature_matches(
    method: &str,
    path: &str,
    params: &[Param<'_>],
    app_secret: &str,
    signature: &str,
) -> bool {
    let paths = path_readings(path);
    let secret = app_secret.as_bytes();
    for reading in query_readings(params) {
        let pairs: Vec<(String, String)> = params
            .iter()
            .map(|p| {
                (
                    read(p.raw_key, reading).to_lowercase(),
                    read(p.raw_value, reading),
                )
            })
            .collect();
        for path in &paths {
            let text = signed_text(method, path, pairs.clone());
            if verify_hmac_sha256_hex(secret, text.as_bytes(), signature) {
                return true;
            }
        }
    }
    false
}

/// The readings of the query to try, in order: form-decoded always; `+` kept when a `+` is
/// in the query; undecoded when a `+` or a `%` is.
fn query_readings(params: &[Param<'_>]) -> Vec<Reading> {
    let needs = |pred: fn(char) -> bool| {
        params
            .iter()
            .any(|p| p.raw_key.contains(pred) || p.raw_value.contains(pred))
    };
    let mut readings = vec![Reading::Form];
    if needs(|c| c == '+') {
        readings.push(Reading::KeepPlus);
    }
    if needs(|c| c == '+' || c == '%') {
        readings.push(Reading::Raw);
    }
    readings
}

/// The readings of the path to try: as received, then percent-decoded when it holds a `%`.
fn path_readings(path: &str) -> Vec<String> {
    let mut paths = vec![path.to_owned()];
    if path.contains('%') {
        // Paths carry a literal `+`, never a form-encoded space.
        paths.push(read(path, Reading::KeepPlus));
    }
    paths
}

/// Appends `text` percent-encoded: everything but the RFC 3986 unreserved characters
/// `A-Z a-z 0-9 - . _ ~` becomes `%XX`, so any server decoding reads it back exactly.
fn push_encoded(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// The full signed query string (without the leading `?`) for a request: `params` plus
/// `auth_key`, `auth_timestamp`, `auth_version=1.0`, `body_md5` (only when `body` is
/// non-empty, as the Node SDK does) and `auth_signature` last. Keys and values are
/// percent-encoded in the output and signed decoded, so [`verify_request`] accepts the
/// result. Entries of `params` named like one of the `auth_*` parameters or `body_md5` are
/// skipped: this function sets those itself.
pub fn sign_query(
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    body: &[u8],
    app_key: &str,
    app_secret: &str,
    timestamp: u64,
) -> String {
    const RESERVED: [&str; 5] = [
        "auth_key",
        "auth_timestamp",
        "auth_version",
        "auth_signature",
        "body_md5",
    ];
    let timestamp = timestamp.to_string();
    let md5 = (!body.is_empty()).then(|| body_md5_hex(body));
    let mut all: Vec<(&str, &str)> = vec![
        ("auth_key", app_key),
        ("auth_timestamp", &timestamp),
        ("auth_version", AUTH_VERSION),
    ];
    if let Some(md5) = &md5 {
        all.push(("body_md5", md5));
    }
    all.extend(
        params
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.to_lowercase().as_str())),
    );
    let signature = hmac_sha256_hex(
        app_secret.as_bytes(),
        string_to_sign(method, path, &all).as_bytes(),
    );
    all.sort_by_key(|(k, _)| k.to_lowercase());
    let mut out = String::new();
    for (k, v) in &all {
        push_encoded(&mut out, k);
        out.push('=');
        push_encoded(&mut out, v);
        out.push('&');
    }
    out.push_str("auth_signature=");
    out.push_str(&signature);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";
    const TS: u64 = 1_353_088_179;
    /// The body of the spec's vector (its MD5 is the vector's `body_md5`).
    const BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    const SIGNATURE: &str = "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

    fn verify(
        method: &str,
        path: &str,
        query: &str,
        body: &str,
        now: u64,
    ) -> Result<(), RestError> {
        verify_request(method, path, query, body.as_bytes(), KEY, SECRET, now)
    }

    fn status(r: Result<(), RestError>) -> u16 {
        r.err().map_or(200, |e| e.status)
    }

    /// What the Node SDK (`createSignedQueryString`) sends: raw `k=v`, sorted, signed as is.
    fn node_query(method: &str, path: &str, params: &[(&str, &str)], body: &str) -> String {
        let ts = TS.to_string();
        let md5 = body_md5_hex(body.as_bytes());
        let mut all = vec![
            ("auth_key", KEY),
            ("auth_timestamp", ts.as_str()),
            ("auth_version", "1.0"),
        ];
        if !body.is_empty() {
            all.push(("body_md5", md5.as_str()));
        }
        all.extend_from_slice(params);
        all.sort();
        let query = all
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let signature = hmac_sha256_hex(
            SECRET.as_bytes(),
            format!("{method}\n{path}\n{query}").as_bytes(),
        );
        format!("{query}&auth_signature={signature}")
    }

    #[test]
    fn spec_vector() {
        assert_eq!(
            body_md5_hex(BODY.as_bytes()),
            "ec365a775a4cd0599faeb73354201b6f"
        );
        let text = string_to_sign(
            "POST",
            "/apps/3/events",
            &[
                ("auth_version", "1.0"),
                ("body_md5", "ec365a775a4cd0599faeb73354201b6f"),
                ("auth_timestamp", "1353088179"),
                ("auth_key", KEY),
            ],
        );
        assert_eq!(
            text,
            "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
        );
        assert_eq!(
            hmac_sha256_hex(SECRET.as_bytes(), text.as_bytes()),
            SIGNATURE
        );

        let query = format!(
            "auth_key={KEY}&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature={SIGNATURE}"
        );
        assert_eq!(verify("POST", "/apps/3/events", &query, BODY, TS), Ok(()));
        // Parameter order in the URL does not matter; signature hex case does not either.
        let shuffled = format!(
            "auth_signature={}&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_version=1.0&auth_timestamp=1353088179&auth_key={KEY}",
            SIGNATURE.to_uppercase()
        );
        assert_eq!(
            verify("POST", "/apps/3/events", &shuffled, BODY, TS),
            Ok(())
        );
        // Same query as sign_query produces.
        assert_eq!(
            sign_query(
                "POST",
                "/apps/3/events",
                &[],
                BODY.as_bytes(),
                KEY,
                SECRET,
                TS
            ),
            query
        );
        // Another path, method or body is refused.
        assert_eq!(
            status(verify("POST", "/apps/4/events", &query, BODY, TS)),
            401
        );
        assert_eq!(
            status(verify("PUT", "/apps/3/events", &query, BODY, TS)),
            401
        );
        assert_eq!(
            status(verify("POST", "/apps/3/events", &query, "{}", TS)),
            401
        );
    }

    /// (method, path, extra params, body).
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn sign_query_round_trips() {
        let cases: [Case<'_>; 6] = [
            ("POST", "/apps/1/events", &[], r#"{"name":"e"}"#),
            ("GET", "/apps/1/channels", &[], ""),
            (
                "GET",
                "/apps/1/channels",
                &[("filter_by_prefix", "presence-"), ("info", "user_count")],
                "",
            ),
            (
                "GET",
                "/apps/1/channels/presence-a;b@c",
                &[("info", "user_count,subscription_count,cache")],
                "",
            ),
            ("GET", "/apps/1/channels", &[("weird", "a b+c%d&e=f é")], ""),
            ("POST", "/apps/1/users/u1/terminate_connections", &[], "{}"),
        ];
        for (method, path, params, body) in cases {
            let query = sign_query(method, path, params, body.as_bytes(), KEY, SECRET, TS);
            assert_eq!(
                verify(method, path, &query, body, TS + 30),
                Ok(()),
                "{query}"
            );
            assert_eq!(body.is_empty(), !query.contains("body_md5="), "{query}");
            assert!(query.contains("auth_version=1.0"));
            // Changing any value breaks it.
            let tampered = query.replacen(
                &format!("auth_timestamp={TS}"),
                &format!("auth_timestamp={}", TS + 1),
                1,
            );
            assert_eq!(status(verify(method, path, &tampered, body, TS)), 401);
        }
        // Reserved names in params are ignored (the helper sets them itself).
        let query = sign_query(
            "GET",
            "/p",
            &[("auth_key", "evil"), ("AUTH_TIMESTAMP", "1")],
            b"",
            KEY,
            SECRET,
            TS,
        );
        assert!(
            !query.contains("evil") && !query.contains("AUTH"),
            "{query}"
        );
        assert_eq!(verify("GET", "/p", &query, "", TS), Ok(()));
    }

    #[test]
    fn node_sdk_raw_values_verify() {
        // Node sends and signs `info=user_count,subscription_count` unescaped.
        let params = [
            ("filter_by_prefix", "presence-"),
            ("info", "user_count,subscription_count"),
        ];
        let query = node_query("GET", "/apps/1/channels", &params, "");
        assert!(
            query.contains("info=user_count,subscription_count"),
            "{query}"
        );
        assert_eq!(verify("GET", "/apps/1/channels", &query, "", TS), Ok(()));
        // The same request after a proxy or URL parser escaped the comma.
        let escaped = query.replace(
            "user_count,subscription_count",
            "user_count%2Csubscription_count",
        );
        assert_eq!(verify("GET", "/apps/1/channels", &escaped, "", TS), Ok(()));
        // Lower-case hex escapes too.
        let escaped = query.replace(
            "user_count,subscription_count",
            "user_count%2csubscription_count",
        );
        assert_eq!(verify("GET", "/apps/1/channels", &escaped, "", TS), Ok(()));
        // POST with a body: Node sends body_md5.
        let body = r#"{"name":"e","data":"{\"a\":1}","channels":["c"]}"#;
        let query = node_query("POST", "/apps/1/events", &[], body);
        assert_eq!(verify("POST", "/apps/1/events", &query, body, TS), Ok(()));
    }

    #[test]
    fn node_sdk_special_characters_verify() {
        // A literal plus and a literal percent, signed raw and sent raw.
        let params = [("filter_by_prefix", "a+b"), ("x", "100%"), ("y", "%41")];
        let query = node_query("GET", "/apps/1/channels", &params, "");
        assert_eq!(verify("GET", "/apps/1/channels", &query, "", TS), Ok(()));
        // A space, signed raw, sent as %20 by the URL parser.
        let query = node_query("GET", "/apps/1/channels", &[("x", "a b")], "");
        let sent = query.replace("x=a b", "x=a%20b");
        assert_eq!(verify("GET", "/apps/1/channels", &sent, "", TS), Ok(()));
        // A form encoder sends the space as '+' and signs "a b".
        let form = sent.replace("x=a%20b", "x=a+b");
        assert_eq!(verify("GET", "/apps/1/channels", &form, "", TS), Ok(()));
        // A path signed raw but sent escaped (user id with a space).
        let query = node_query("POST", "/apps/1/users/a b/terminate_connections", &[], "{}");
        assert_eq!(
            verify(
                "POST",
                "/apps/1/users/a%20b/terminate_connections",
                &query,
                "{}",
                TS
            ),
            Ok(())
        );
    }

    #[test]
    fn python_sdk_get_with_empty_body_md5_verifies() {
        // Python signs and sends body_md5 = MD5("") on a GET.
        let params = [("body_md5", EMPTY_BODY_MD5), ("info", "user_count")];
        let query = node_query("GET", "/apps/1/channels/presence-x", &params, "");
        assert!(query.contains(EMPTY_BODY_MD5));
        assert_eq!(
            verify("GET", "/apps/1/channels/presence-x", &query, "", TS),
            Ok(())
        );
        // Upper-case md5 hex is fine.
        let upper = node_query(
            "GET",
            "/p",
            &[("body_md5", &EMPTY_BODY_MD5.to_uppercase())],
            "",
        );
        assert_eq!(verify("GET", "/p", &upper, "", TS), Ok(()));
        // A GET whose body_md5 is not the empty body's is refused.
        let wrong = node_query(
            "GET",
            "/p",
            &[("body_md5", "ec365a775a4cd0599faeb73354201b6f")],
            "",
        );
        let err = verify("GET", "/p", &wrong, "", TS).unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (401, "body_md5 does not match the body")
        );
    }

    #[test]
    fn timestamps() {
        let query = sign_query("GET", "/p", &[], b"", KEY, SECRET, TS);
        assert_eq!(verify("GET", "/p", &query, "", TS + 600), Ok(()));
        assert_eq!(verify("GET", "/p", &query, "", TS - 600), Ok(()));
        let stale = verify("GET", "/p", &query, "", TS + 601).unwrap_err();
        assert_eq!(stale.status, 401);
        assert!(
            stale.message.contains("timestamp expired"),
            "{}",
            stale.message
        );
        assert_eq!(status(verify("GET", "/p", &query, "", TS - 601)), 401);
        assert_eq!(status(verify("GET", "/p", &query, "", 0)), 401);
        assert_eq!(status(verify("GET", "/p", &query, "", u64::MAX)), 401);
        for bad in ["abc", "-5", "1.5", "", "99999999999999999999999"] {
            let q = node_query("GET", "/p", &[], "").replace(
                &format!("auth_timestamp={TS}"),
                &format!("auth_timestamp={bad}"),
            );
            let err = verify("GET", "/p", &q, "", TS).unwrap_err();
            assert_eq!(err.status, 401, "{bad}");
        }
    }

    #[test]
    fn wrong_key_version_and_md5() {
        let query = sign_query("GET", "/p", &[], b"", "other-key", SECRET, TS);
        let err = verify("GET", "/p", &query, "", TS).unwrap_err();
        assert_eq!((err.status, err.message.as_str()), (401, "unknown key"));

        let wrong_secret = sign_query("GET", "/p", &[], b"", KEY, "nope", TS);
        let err = verify("GET", "/p", &wrong_secret, "", TS).unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (401, "invalid signature")
        );

        let v2 = node_query("GET", "/p", &[], "").replace("auth_version=1.0", "auth_version=2.0");
        assert_eq!(status(verify("GET", "/p", &v2, "", TS)), 401);
        // auth_version may be left out (it is still part of the signed text when present).
        let no_version = sign_query("GET", "/p", &[], b"", KEY, SECRET, TS);
        assert_eq!(verify("GET", "/p", &no_version, "", TS), Ok(()));

        // Body changed after signing.
        let body = r#"{"name":"e"}"#;
        let query = sign_query("POST", "/p", &[], body.as_bytes(), KEY, SECRET, TS);
        let err = verify("POST", "/p", &query, r#"{"name":"f"}"#, TS).unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (401, "body_md5 does not match the body")
        );
        // A body but no body_md5.
        let query = sign_query("POST", "/p", &[], b"", KEY, SECRET, TS);
        let err = verify("POST", "/p", &query, body, TS).unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (401, "missing body_md5")
        );
        // Malformed signatures.
        let good = sign_query("GET", "/p", &[], b"", KEY, SECRET, TS);
        let (head, _) = good.split_once("auth_signature=").unwrap();
        for bad in ["", "zz", "é", &"0".repeat(64), &"0".repeat(65)] {
            let q = format!("{head}auth_signature={bad}");
            assert_eq!(status(verify("GET", "/p", &q, "", TS)), 401, "{bad}");
        }
    }

    #[test]
    fn missing_and_duplicate_params() {
        let full = node_query("GET", "/p", &[], "");
        for name in ["auth_key", "auth_timestamp", "auth_signature"] {
            let query: Vec<&str> = full.split('&').filter(|p| !p.starts_with(name)).collect();
            let err = verify("GET", "/p", &query.join("&"), "", TS).unwrap_err();
            assert_eq!(err.status, 401);
            assert_eq!(err.message, format!("missing {name}"));
        }
        let err = verify("GET", "/p", "", "", TS).unwrap_err();
        assert_eq!(
            (err.status, err.message.as_str()),
            (401, "missing auth_key")
        );

        let dup = format!("{full}&auth_key={KEY}");
        let err = verify("GET", "/p", &dup, "", TS).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("auth_key"), "{}", err.message);
        // Duplicates by case or by escaping count too.
        assert_eq!(
            status(verify("GET", "/p", &format!("{full}&AUTH_KEY=x"), "", TS)),
            400
        );
        assert_eq!(
            status(verify(
                "GET",
                "/p",
                &format!("{full}&info=a&%69nfo=b"),
                "",
                TS
            )),
            400
        );
        // Empty segments are ignored.
        let sparse = format!("&&{}&", full.replace('&', "&&"));
        assert_eq!(verify("GET", "/p", &sparse, "", TS), Ok(()));
    }

    #[test]
    fn upper_case_keys_sign_lower_case() {
        let text = string_to_sign("GET", "/p", &[("Info", "x"), ("auth_signature", "zz")]);
        assert_eq!(text, "GET\n/p\ninfo=x");
        let query = node_query("GET", "/p", &[("info", "x")], "").replace("info=x", "INFO=x");
        assert_eq!(verify("GET", "/p", &query, "", TS), Ok(()));
    }

    #[test]
    fn garbage_queries_never_panic() {
        let inputs = [
            "",
            "&",
            "=",
            "==&==",
            "%",
            "%%",
            "%zz",
            "%e9",
            "a=%ff%fe",
            "+",
            "auth_key",
            "auth_key=",
            "auth_signature=%00",
            "é=é&ü",
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_signature=",
        ];
        for q in inputs {
            for path in ["/p", "/%", "/%zz", ""] {
                let r = verify("GET", path, q, "", TS);
                assert!(r.is_err(), "{q}");
                let _ = verify("POST", path, q, "\u{0}\u{ff}", TS);
            }
        }
    }
}
