//! HTTP request heads (`ringcast_core::http::request::parse_head`) and what is read from them:
//! `content_length`, `has_transfer_encoding`, `keep_alive`, `query_param`, `percent_decode`.
//! Checks: no panic; a head found in a prefix of the bytes is the head found in the whole (a
//! socket may deliver the bytes in any split) and a longer buffer never turns a complete head
//! into something else; names are lower-cased and values trimmed; the target's path is `*` or
//! starts with `/`; `Content-Length` is accepted exactly when every value is the same decimal
//! number; `query_param` and `percent_decode` agree with the `form_urlencoded` and
//! `percent-encoding` crates (WHATWG form decoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_core::http::request::{parse_head, percent_decode, ParseOutcome, RequestHead};

fn reference_content_length(head: &RequestHead) -> Option<usize> {
    let mut found: Option<usize> = None;
    for value in head
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v)
    {
        for item in value.split(',') {
            let item = item.trim_matches([' ', '\t']);
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: usize = item.parse().ok()?;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
    }
    Some(found.unwrap_or(0))
}

fn has_token(head: &RequestHead, token: &str) -> bool {
    head.headers
        .iter()
        .filter(|(n, _)| n == "connection")
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(token))
}

fn reference_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn check_head(head: &RequestHead, names: &[&str]) {
    assert!(head.path == "*" || head.path.starts_with('/'), "{head:?}");
    assert!(!head.path.contains('?'));
    assert!(head.version_minor <= 1);
    for (name, value) in &head.headers {
        assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));
        assert_eq!(value.trim_matches([' ', '\t']), value);
    }
    match (head.content_length(), reference_content_length(head)) {
        (Ok(n), Some(m)) => assert_eq!(n, m),
        (Err(e), None) => assert_eq!(e.status, 400),
        (got, want) => panic!("content_length {got:?}, expected {want:?}: {head:?}"),
    }
    assert_eq!(
        head.has_transfer_encoding(),
        head.headers.iter().any(|(n, _)| n == "transfer-encoding")
    );
    let keep_alive =
        !has_token(head, "close") && (head.version_minor >= 1 || has_token(head, "keep-alive"));
    assert_eq!(head.keep_alive(), keep_alive);

    // Query parameters: every name the query holds, plus a few the server asks for.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(head.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut asked: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    asked.extend(names.iter().map(|n| (*n).to_owned()));
    for name in asked.iter().take(16) {
        let want = pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        assert_eq!(
            head.query_param(name),
            want,
            "query_param({name:?}) of {:?}",
            head.query
        );
    }
    for text in [head.path.as_str(), head.query.as_str()]
        .into_iter()
        .chain(head.headers.iter().map(|(_, v)| v.as_str()).take(8))
    {
        let decoded = percent_decode(text);
        assert_eq!(decoded, reference_decode(text), "percent_decode({text:?})");
        if !text.contains(['%', '+']) {
            assert_eq!(decoded, text);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (config, buf) = data.split_at(3);
    let max = match config[0] % 4 {
        0 => 8 * 1024,
        1 => usize::from(config[1]) + 1,
        2 => 64,
        _ => usize::MAX,
    };
    let whole = parse_head(buf, max);
    // A prefix, as a socket may deliver it.
    let cut = usize::from(u16::from_le_bytes([config[1], config[2]])) % (buf.len() + 1);
    let prefix = parse_head(&buf[..cut], max);
    match (&prefix, &whole) {
        (Ok(ParseOutcome::Complete { .. }), _) => {
            assert_eq!(prefix, whole, "more bytes changed a complete head")
        }
        (_, Ok(ParseOutcome::Partial)) => {
            assert!(
                matches!(prefix, Ok(ParseOutcome::Partial)),
                "a prefix of a partial head is {prefix:?}"
            )
        }
        _ => {}
    }
    match whole {
        Ok(ParseOutcome::Complete { head, head_len }) => {
            assert!(head_len <= buf.len() && head_len <= max);
            assert_eq!(buf[head_len - 1], b'\n');
            // The head is all there is to it: the exact head parses the same, and so does
            // anything after it.
            assert_eq!(
                parse_head(&buf[..head_len], max),
                Ok(ParseOutcome::Complete {
                    head: head.clone(),
                    head_len
                })
            );
            if head_len > 0 {
                assert_eq!(
                    parse_head(&buf[..head_len - 1], max),
                    Ok(ParseOutcome::Partial),
                    "one byte short is partial"
                );
            }
            check_head(&head, &["protocol", "auth_key", "info", "filter_by_prefix"]);
        }
        Ok(ParseOutcome::Partial) => assert!(buf.len() < max),
        Err(err) => assert!(matches!(err.status, 400 | 431), "{err:?}"),
    }
    // percent_decode on arbitrary text, not only what a head can hold.
    if let Ok(text) = std::str::from_utf8(buf) {
        assert_eq!(percent_decode(text), reference_decode(text));
    }
});
