//! Request heads: parsing one HTTP/1.x request head out of a read buffer (with httparse), the
//! owned [`RequestHead`] it produces, and the [`HttpError`] every rejection is expressed as.
//!
//! Only the head is handled here; the body (if any) is whatever follows `head_len` bytes.

use std::fmt;

use crate::limits::HTTP_HEADERS_MAX;

/// An HTTP-level rejection: the status to answer with and a short reason for the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// Status code of the error response (400, 405, 426, 431, …).
    pub status: u16,
    /// Short human-readable cause, sent as the plain-text body of the error response.
    pub reason: &'static str,
}

impl HttpError {
    /// An error with the given status and reason.
    pub const fn new(status: u16, reason: &'static str) -> Self {
        Self { status, reason }
    }

    /// 400 with the given reason.
    pub const fn bad_request(reason: &'static str) -> Self {
        Self::new(400, reason)
    }

    /// 431: the head (or its number of fields) is over the limit.
    pub const HEADERS_TOO_LARGE: Self = Self::new(431, "Request Header Fields Too Large");
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

impl std::error::Error for HttpError {}

/// One parsed request head, owned so that the read buffer can be reused right away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Request method as sent (`GET`, `POST`, …; case-sensitive per RFC 9110).
    pub method: String,
    /// Path of the request target, without the query; not percent-decoded. `*` for
    /// `OPTIONS *`; for an absolute-form target, the path part of the URI.
    pub path: String,
    /// Raw text after `?` (not decoded), `""` if there is none.
    pub query: String,
    /// Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// Header fields in arrival order: name lower-cased, value trimmed of spaces and tabs.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// Value of the first header field named `name_lowercase` (which must be lower-case).
    pub fn header(&self, name_lowercase: &str) -> Option<&str> {
        debug_assert!(
            !name_lowercase.bytes().any(|b| b.is_ascii_uppercase()),
            "header names are stored lower-cased"
        );
        self.headers
            .iter()
            .find(|(n, _)| n == name_lowercase)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of the header fields named `name_lowercase`, in arrival order.
    pub fn headers_named<'a>(&'a self, name_lowercase: &'a str) -> impl Iterator<Item = &'a str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name_lowercase)
            .map(|(_, v)| v.as_str())
    }

    /// True if any field named `name_lowercase` holds `token` in its comma-separated list
    /// (compared case-insensitively), as `Connection: keep-alive, Upgrade` holds `upgrade`.
    pub fn header_has_token(&self, name_lowercase: &str, token: &str) -> bool {
        self.headers_named(name_lowercase)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(token))
    }

    /// Percent-decoded value (`+` read as a space) of the first query parameter whose
    /// decoded name is `name`. A parameter without `=` has the empty value.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(k, _)| percent_decode(k) == name)
            .map(|(_, v)| percent_decode(v))
    }

    /// The declared body length: 0 when there is no `Content-Length`; 400 when it is not a
    /// decimal number or when several values disagree (a request-smuggling vector).
    pub fn content_length(&self) -> Result<usize, HttpError> {
        const INVALID: HttpError = HttpError::bad_request("invalid Content-Length");
        let mut found: Option<usize> = None;
        // RFC 9110 §8.6 lets a recipient accept a list of identical values ("5, 5"), which
        // some proxies produce when they merge fields; anything else is rejected.
        for item in self
            .headers_named("content-length")
            .flat_map(|v| v.split(','))
        {
            let item = item.trim_matches([' ', '\t']);
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(INVALID);
            }
            let n: usize = item.parse().map_err(|_| INVALID)?;
            match found {
                Some(prev) if prev != n => return Err(INVALID),
                _ => found = Some(n),
            }
        }
        Ok(found.unwrap_or(0))
    }

    /// True if the request names any transfer coding (RFC 9112 §6.1): the server refuses such
    /// requests rather than frame a body that a proxy in front may frame otherwise.
    pub fn has_transfer_encoding(&self) -> bool {
        self.header("transfer-encoding").is_some()
    }

    /// Whether the client asked to keep the connection open after this request: HTTP/1.1
    /// unless `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        if self.header_has_token("connection", "close") {
            false
        } else {
            self.version_minor >= 1 || self.header_has_token("connection", "keep-alive")
        }
    }
}

/// What [`parse_head`] found at the front of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseOutcome {
    /// A whole head: `head_len` bytes (including the blank line) were parsed; the body, if
    /// any, starts right after them.
    Complete {
        /// The parsed head.
        head: RequestHead,
        /// Length in bytes of the head, terminating blank line included.
        head_len: usize,
    },
    /// The head is not finished yet; read more and call again with the longer buffer.
    Partial,
}

/// Parses one request head with httparse.
///
/// Returns `Partial` if more bytes are needed and `buf.len() < head_bytes_max`; 431 if the
/// head is longer than `head_bytes_max` bytes or has more than [`HTTP_HEADERS_MAX`] fields; 400
/// if it is malformed. Only the first `head_bytes_max` bytes are looked at, so a peer that
/// streams an endless head costs at most that much parsing per call.
pub fn parse_head(buf: &[u8], head_bytes_max: usize) -> Result<ParseOutcome, HttpError> {
    let window = &buf[..buf.len().min(head_bytes_max)];
    let mut fields = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= head_bytes_max {
                Err(HttpError::HEADERS_TOO_LARGE)
            } else {
                Ok(ParseOutcome::Partial)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HEADERS_TOO_LARGE),
        Err(httparse::Error::Version) => {
            return Err(HttpError::bad_request("invalid HTTP version"))
        }
        Err(_) => return Err(HttpError::bad_request("malformed request head")),
    };

    // httparse fills every field on Complete; a missing one would be a bug in it, but it is
    // still answered as a bad request rather than a panic.
    let (Some(method), Some(target), Some(version_minor)) = (req.method, req.path, req.version)
    else {
        return Err(HttpError::bad_request("malformed request head"));
    };
    let (path, query) = split_target(target)?;

    let headers = req
        .headers
        .iter()
        .map(|h| {
            // Values may carry obs-text (bytes ≥ 0x80); lossy decoding keeps the head usable
            // and no header this server interprets is legitimately non-ASCII.
            let value = String::from_utf8_lossy(h.value);
            (
                h.name.to_ascii_lowercase(),
                value.trim_matches([' ', '\t']).to_owned(),
            )
        })
        .collect();

    Ok(ParseOutcome::Complete {
        head: RequestHead {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            version_minor,
            headers,
        },
        head_len,
    })
}

/// Splits a request target into (path, query), accepting origin-form (`/p?q`), absolute-form
/// (`http://host/p?q`, which proxies send) and asterisk-form (`*`).
fn split_target(target: &str) -> Result<(&str, &str), HttpError> {
    let rest = if target.starts_with('/') || target == "*" {
        target
    } else if let Some((scheme, after)) = target.split_once("://") {
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        {
            return Err(HttpError::bad_request("invalid request target"));
        }
        // Drop the authority; an absolute URI with no path means "/".
        match after.find(['/', '?']) {
            Some(i) if after.as_bytes()[i] == b'/' => &after[i..],
            Some(i) => return Ok(("/", &after[i + 1..])),
            None => "/",
        }
    } else {
        return Err(HttpError::bad_request("invalid request target"));
    };
    Ok(match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    })
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space and `%XX` a byte. A `%`
/// not followed by two hex digits is kept as is; bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> String {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn complete(buf: &[u8]) -> (RequestHead, usize) {
        match parse_head(buf, 8192).unwrap() {
            ParseOutcome::Complete { head, head_len } => (head, head_len),
            ParseOutcome::Partial => panic!("expected a complete head"),
        }
    }

    #[test]
    fn parses_a_simple_head() {
        let raw = b"GET /app/key?protocol=7&client=js HTTP/1.1\r\nHost: example.com\r\nX-Thing:  spaced value \t\r\n\r\nBODY";
        let (head, len) = complete(raw);
        assert_eq!(len, raw.len() - 4);
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/app/key");
        assert_eq!(head.query, "protocol=7&client=js");
        assert_eq!(head.version_minor, 1);
        assert_eq!(head.header("host"), Some("example.com"));
        assert_eq!(head.header("x-thing"), Some("spaced value"));
        assert_eq!(head.header("missing"), None);
        assert_eq!(head.query_param("protocol").as_deref(), Some("7"));
        assert_eq!(head.query_param("client").as_deref(), Some("js"));
        assert_eq!(head.query_param("nope"), None);
    }

    #[test]
    fn header_returns_first_match() {
        let (head, _) = complete(b"GET / HTTP/1.1\r\nA: 1\r\nA: 2\r\n\r\n");
        assert_eq!(head.header("a"), Some("1"));
        assert_eq!(head.headers_named("a").collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn no_query_is_empty() {
        let (head, _) = complete(b"GET /x HTTP/1.0\r\n\r\n");
        assert_eq!(head.path, "/x");
        assert_eq!(head.query, "");
        assert_eq!(head.version_minor, 0);
        assert_eq!(head.query_param("a"), None);
    }

    #[test]
    fn absolute_and_asterisk_targets() {
        let (head, _) = complete(b"GET http://h:80/a/b?c=d HTTP/1.1\r\n\r\n");
        assert_eq!((head.path.as_str(), head.query.as_str()), ("/a/b", "c=d"));
        let (head, _) = complete(b"GET http://h HTTP/1.1\r\n\r\n");
        assert_eq!((head.path.as_str(), head.query.as_str()), ("/", ""));
        let (head, _) = complete(b"GET http://h?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!((head.path.as_str(), head.query.as_str()), ("/", "x=1"));
        let (head, _) = complete(b"OPTIONS * HTTP/1.1\r\n\r\n");
        assert_eq!(head.path, "*");
        let err = parse_head(b"GET host:443 HTTP/1.1\r\n\r\n", 8192).unwrap_err();
        assert_eq!(err.status, 400);
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let (head, _) = complete(
            b"GET /?a=hello+world&b=%E2%9C%93&c&d=50%25&e=%zz&f%20g=1&a=second HTTP/1.1\r\n\r\n",
        );
        assert_eq!(head.query_param("a").as_deref(), Some("hello world"));
        assert_eq!(head.query_param("b").as_deref(), Some("\u{2713}"));
        assert_eq!(head.query_param("c").as_deref(), Some(""));
        assert_eq!(head.query_param("d").as_deref(), Some("50%"));
        assert_eq!(head.query_param("e").as_deref(), Some("%zz"));
        assert_eq!(head.query_param("f g").as_deref(), Some("1"));
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn partial_heads() {
        let full = b"GET /chat HTTP/1.1\r\nHost: a\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(
                parse_head(&full[..cut], 8192).unwrap(),
                ParseOutcome::Partial,
                "cut at {cut}"
            );
        }
        assert!(matches!(
            parse_head(full, 8192).unwrap(),
            ParseOutcome::Complete { head_len, .. } if head_len == full.len()
        ));
    }

    #[test]
    fn head_bytes_limit() {
        let full = b"GET /chat HTTP/1.1\r\nHost: a\r\n\r\n";
        // Exactly at the limit is fine, even with more bytes (a body) behind it.
        let mut with_body = full.to_vec();
        with_body.extend_from_slice(b"body bytes");
        assert!(matches!(
            parse_head(&with_body, full.len()).unwrap(),
            ParseOutcome::Complete { head_len, .. } if head_len == full.len()
        ));
        // One byte over: 431 as soon as the limit is reached without a complete head.
        let limit = full.len() - 1;
        assert_eq!(
            parse_head(&full[..limit - 1], limit).unwrap(),
            ParseOutcome::Partial
        );
        assert_eq!(
            parse_head(&full[..limit], limit).unwrap_err(),
            HttpError::HEADERS_TOO_LARGE
        );
        assert_eq!(parse_head(full, limit).unwrap_err().status, 431);
        // An endless header line.
        let mut endless = b"GET / HTTP/1.1\r\nX: ".to_vec();
        endless.resize(10_000, b'a');
        assert_eq!(parse_head(&endless, 4096).unwrap_err().status, 431);
    }

    #[test]
    fn header_count_limit() {
        let mut ok = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..HTTP_HEADERS_MAX {
            ok.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        let mut over = ok.clone();
        ok.extend_from_slice(b"\r\n");
        assert_eq!(complete(&ok).0.headers.len(), HTTP_HEADERS_MAX);
        over.extend_from_slice(b"one-more: v\r\n\r\n");
        assert_eq!(parse_head(&over, 1 << 20).unwrap_err().status, 431);
    }

    #[test]
    fn malformed_heads_are_400() {
        for raw in [
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            b"GET / FOO/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            b"\x00\x01\x02\x03\r\n\r\n",
        ] {
            let err = parse_head(raw, 8192).unwrap_err();
            assert_eq!(err.status, 400, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn header_names_are_lowercased_values_kept() {
        let (head, _) = complete(b"GET / HTTP/1.1\r\nSec-WebSocket-Key: AbC==\r\n\r\n");
        assert_eq!(head.headers, [("sec-websocket-key".into(), "AbC==".into())]);
    }

    #[test]
    fn content_length() {
        let cl = |raw: &[u8]| complete(raw).0.content_length();
        assert_eq!(cl(b"POST / HTTP/1.1\r\n\r\n"), Ok(0));
        assert_eq!(cl(b"POST / HTTP/1.1\r\nContent-Length: 42\r\n\r\n"), Ok(42));
        assert_eq!(
            cl(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Ok(5)
        );
        assert_eq!(
            cl(b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"),
            Ok(5)
        );
        for bad in [
            &b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
        ] {
            assert_eq!(cl(bad).unwrap_err().status, 400);
        }
    }

    #[test]
    fn keep_alive_and_chunked() {
        assert!(complete(b"GET / HTTP/1.1\r\n\r\n").0.keep_alive());
        assert!(!complete(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .0
            .keep_alive());
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive());
        assert!(
            complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .0
                .keep_alive()
        );
        assert!(
            complete(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n")
                .0
                .has_transfer_encoding()
        );
        assert!(complete(b"POST / HTTP/1.1\r\nTransfer-Encoding: x\r\n\r\n")
            .0
            .has_transfer_encoding());
        assert!(!complete(b"POST / HTTP/1.1\r\n\r\n")
            .0
            .has_transfer_encoding());
    }
}
