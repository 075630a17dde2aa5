//! The server side of the RFC 6455 opening handshake: recognising an upgrade request,
//! checking it (§4.2.1), and writing the `101 Switching Protocols` answer (§4.2.2).
//!
//! The accept key is derived with tungstenite's `derive_accept_key` (SHA-1 + base64); nothing
//! else of tungstenite is used, so no per-connection buffers come with it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::http::{HttpError, RequestHead};

/// True if the request asks for a WebSocket: an `Upgrade` header containing the token
/// `websocket` (case-insensitive). Such a request goes to [`validate_upgrade`]; anything else
/// is an ordinary HTTP request.
pub fn is_upgrade_request(head: &RequestHead) -> bool {
    head.header_has_token("upgrade", "websocket")
}

/// Checks an upgrade request against RFC 6455 §4.2.1 and returns the `Sec-WebSocket-Accept`
/// value to answer with.
///
/// Rejections: method not GET, HTTP/1.0, no `Upgrade: websocket`, no `upgrade` token in
/// `Connection`, a `Sec-WebSocket-Key` that is missing, repeated or not the base64 of exactly
/// 16 bytes → 400; `Sec-WebSocket-Version` other than `13` → 426 (whose response advertises
/// version 13, see [`crate::http::error_response`]). The version is checked before the key so
/// that a client of an older draft, which sends no `Sec-WebSocket-Key`, learns which version
/// to speak.
pub fn validate_upgrade(head: &RequestHead) -> Result<String, HttpError> {
    if head.method != "GET" {
        return Err(HttpError::bad_request("WebSocket upgrade requires GET"));
    }
    if head.version_minor < 1 {
        return Err(HttpError::bad_request(
            "WebSocket upgrade requires HTTP/1.1",
        ));
    }
    if !is_upgrade_request(head) {
        return Err(HttpError::bad_request("missing Upgrade: websocket"));
    }
    if !head.header_has_token("connection", "upgrade") {
        return Err(HttpError::bad_request("missing Connection: Upgrade"));
    }
    if head.header("sec-websocket-version") != Some("13") {
        return Err(HttpError::new(
            426,
            "unsupported Sec-WebSocket-Version (want 13)",
        ));
    }
    let mut keys = head.headers_named("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key,
        (None, _) => return Err(HttpError::bad_request("missing Sec-WebSocket-Key")),
        (Some(_), Some(_)) => return Err(HttpError::bad_request("repeated Sec-WebSocket-Key")),
    };
    if !is_base64_of_16_bytes(key) {
        return Err(HttpError::bad_request("invalid Sec-WebSocket-Key"));
    }
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// The `HTTP/1.1 101 Switching Protocols` response with `Upgrade`, `Connection` and
/// `Sec-WebSocket-Accept`.
pub fn accept_response(accept_key: &str) -> Bytes {
    const HEAD: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
    let mut out = BytesMut::with_capacity(HEAD.len() + accept_key.len() + 4);
    out.put_slice(HEAD);
    out.put_slice(accept_key.as_bytes());
    out.put_slice(b"\r\n\r\n");
    out.freeze()
}

/// True if `key` is the canonical base64 of exactly 16 bytes: 22 alphabet characters (the
/// last of which carries only 2 data bits, so its low 4 bits are zero) followed by `==`.
fn is_base64_of_16_bytes(key: &str) -> bool {
    let b = key.as_bytes();
    if b.len() != 24 || &b[22..] != b"==" {
        return false;
    }
    let mut last = 0;
    for &c in &b[..22] {
        match base64_value(c) {
            Some(v) => last = v,
            None => return false,
        }
    }
    last & 0x0F == 0
}

fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::http::{parse_head, ParseOutcome};

    const RFC_REQUEST: &str =
        "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn head(raw: &str) -> RequestHead {
        match parse_head(raw.as_bytes(), 8192).unwrap() {
            ParseOutcome::Complete { head, .. } => head,
            ParseOutcome::Partial => panic!("partial"),
        }
    }

    /// The RFC example with one header line replaced (or removed when `with` is empty).
    fn variant(line_prefix: &str, with: &str) -> RequestHead {
        let raw: String = RFC_REQUEST
            .split_inclusive("\r\n")
            .map(|l| if l.starts_with(line_prefix) { with } else { l })
            .collect();
        head(&raw)
    }

    #[test]
    fn rfc_example_accept_key() {
        let h = head(RFC_REQUEST);
        assert!(is_upgrade_request(&h));
        assert_eq!(
            validate_upgrade(&h).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn accept_response_bytes() {
        let r = accept_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(
            &r[..],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn lenient_token_matching() {
        let h = variant("Connection:", "connection: keep-alive, UPGRADE\r\n");
        assert!(validate_upgrade(&h).is_ok());
        let h = variant("Upgrade:", "Upgrade: WebSocket\r\n");
        assert!(validate_upgrade(&h).is_ok());
    }

    #[test]
    fn not_an_upgrade() {
        assert!(!is_upgrade_request(&head(
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
        )));
        assert!(!is_upgrade_request(&variant(
            "Upgrade:",
            "Upgrade: h2c\r\n"
        )));
        assert!(is_upgrade_request(&variant(
            "Upgrade:",
            "Upgrade: foo, websocket\r\n"
        )));
    }

    #[test]
    fn rejections() {
        let status = |h: &RequestHead| validate_upgrade(h).unwrap_err().status;
        assert_eq!(status(&variant("GET", "POST /chat HTTP/1.1\r\n")), 400);
        assert_eq!(status(&variant("GET", "GET /chat HTTP/1.0\r\n")), 400);
        assert_eq!(status(&variant("Upgrade:", "")), 400);
        assert_eq!(status(&variant("Upgrade:", "Upgrade: h2c\r\n")), 400);
        assert_eq!(status(&variant("Connection:", "")), 400);
        assert_eq!(
            status(&variant("Connection:", "Connection: keep-alive\r\n")),
            400
        );
        assert_eq!(status(&variant("Sec-WebSocket-Key:", "")), 400);
        assert_eq!(status(&variant("Sec-WebSocket-Version:", "")), 426);
        assert_eq!(
            status(&variant(
                "Sec-WebSocket-Version:",
                "Sec-WebSocket-Version: 8\r\n"
            )),
            426
        );
        assert_eq!(
            status(&variant(
                "Sec-WebSocket-Version:",
                "Sec-WebSocket-Version: 13, 8\r\n"
            )),
            426
        );
        let repeated = RFC_REQUEST.replace(
            "Origin:",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin:",
        );
        assert_eq!(status(&head(&repeated)), 400);
    }

    #[test]
    fn key_must_be_base64_of_16_bytes() {
        for bad in [
            "dGhlIHNhbXBsZSBub25jZQ",       // no padding
            "dGhlIHNhbXBsZSBub25jZQ=",      // short padding
            "dGhlIHNhbXBsZSBub25jZR==",     // non-zero trailing bits
            "dGhlIHNhbXBsZSBub25j*Q==",     // not in the alphabet
            "dGhlIHNhbXBsZSBub25jZXg=",     // 17 bytes
            "dGhlIHNhbXBsZSBub25jZQ==AAAA", // too long
            "",
        ] {
            let h = variant(
                "Sec-WebSocket-Key:",
                &format!("Sec-WebSocket-Key: {bad}\r\n"),
            );
            assert_eq!(validate_upgrade(&h).unwrap_err().status, 400, "{bad}");
        }
        assert!(is_base64_of_16_bytes(&format!("{}==", "A".repeat(22))));
        assert!(is_base64_of_16_bytes(&format!("{}w==", "/".repeat(21))));
        assert!(is_base64_of_16_bytes(&format!("{}g==", "+".repeat(21))));
        assert!(!is_base64_of_16_bytes(&format!("{}/==", "+".repeat(21))));
    }
}
