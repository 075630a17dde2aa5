//! Response writing: whole HTTP/1.1 responses (status line, headers, body) as one `Bytes`,
//! ready for a single write. The APIs' bodies are small, so nothing here streams.

use bytes::{BufMut, Bytes, BytesMut};

use super::request::HttpError;

/// A complete HTTP/1.1 response with `Content-Length` (and `Connection: close` when
/// `keep_alive` is false).
///
/// `Content-Type` is omitted when `content_type` is empty; `Content-Length` and the body are
/// omitted for 1xx, 204 and 304, which cannot carry one. An extra header whose name or value
/// contains CR or LF is dropped, so a value echoed from a request cannot split the response.
pub fn response(
    status: u16,
    content_type: &str,
    body: &[u8],
    extra_headers: &[(&str, &str)],
    keep_alive: bool,
) -> Bytes {
    let bodyless = (100..200).contains(&status) || status == 204 || status == 304;
    debug_assert!(
        !bodyless || body.is_empty(),
        "status {status} cannot carry a body"
    );
    let reason = reason_phrase(status);
    let extra_len: usize = extra_headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum();
    let mut out =
        BytesMut::with_capacity(96 + reason.len() + content_type.len() + extra_len + body.len());

    out.put_slice(b"HTTP/1.1 ");
    put_decimal(&mut out, usize::from(status));
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(b"\r\n");
    if !content_type.is_empty() {
        put_header(&mut out, "Content-Type", content_type);
    }
    if !bodyless {
        out.put_slice(b"Content-Length: ");
        put_decimal(&mut out, body.len());
        out.put_slice(b"\r\n");
    }
    if !keep_alive {
        out.put_slice(b"Connection: close\r\n");
    }
    for (name, value) in extra_headers {
        put_header(&mut out, name, value);
    }
    out.put_slice(b"\r\n");
    if !bodyless {
        out.put_slice(body);
    }
    out.freeze()
}

/// The status text for a code (`200` → `OK`, `426` → `Upgrade Required`, …); codes without
/// an entry get their class name (`Client Error`, …).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => class_phrase(status),
    }
}

/// The name of a status code's class, for codes without their own phrase.
fn class_phrase(status: u16) -> &'static str {
    match status / 100 {
        1 => "Informational",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        5 => "Server Error",
        _ => "Unknown",
    }
}

/// A plain-text error response (`Connection: close`) whose body is the reason plus `"\n"`.
///
/// 426 also carries `Sec-WebSocket-Version: 13` (RFC 6455 §4.4, so a client can retry with a
/// version we speak) and `Upgrade: websocket` (RFC 9110 §15.5.22 requires `Upgrade` on 426).
pub fn error_response(err: &HttpError) -> Bytes {
    let mut body = Vec::with_capacity(err.reason.len() + 1);
    body.extend_from_slice(err.reason.as_bytes());
    body.push(b'\n');
    let extra: &[(&str, &str)] = if err.status == 426 {
        &[("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")]
    } else {
        &[]
    };
    response(err.status, "text/plain; charset=utf-8", &body, extra, false)
}

fn put_header(out: &mut BytesMut, name: &str, value: &str) {
    let splits = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
    if splits(name) || splits(value) {
        return;
    }
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// Writes `n` in decimal without going through `fmt` (no intermediate allocation).
fn put_decimal(out: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn ok_response_keep_alive() {
        let r = response(200, "application/json", b"{}", &[], true);
        assert_eq!(
            text(&r),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn close_and_extra_headers() {
        let r = response(
            404,
            "text/plain",
            b"nope",
            &[("X-A", "1"), ("X-Bad", "a\r\nInjected: yes")],
            false,
        );
        assert_eq!(
            text(&r),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\
             Connection: close\r\nX-A: 1\r\n\r\nnope"
        );
    }

    #[test]
    fn bodyless_statuses() {
        let r = response(204, "", b"", &[("Access-Control-Allow-Origin", "*")], true);
        assert_eq!(
            text(&r),
            "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Origin: *\r\n\r\n"
        );
        let r = response(200, "", b"", &[], true);
        assert_eq!(text(&r), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn large_content_length() {
        let body = vec![b'x'; 1_234_567];
        let r = response(200, "text/plain", &body, &[], true);
        assert!(text(&r[..80]).contains("Content-Length: 1234567\r\n"));
        assert_eq!(
            r.len() - body.len(),
            r.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4
        );
    }

    #[test]
    fn reason_phrases() {
        for (code, reason) in [
            (200, "OK"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (413, "Payload Too Large"),
            (426, "Upgrade Required"),
            (429, "Too Many Requests"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (503, "Service Unavailable"),
            (418, "Client Error"),
            (999, "Unknown"),
        ] {
            assert_eq!(reason_phrase(code), reason);
        }
    }

    #[test]
    fn error_responses() {
        let r = error_response(&HttpError::bad_request("missing Sec-WebSocket-Key"));
        assert_eq!(
            text(&r),
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 26\r\nConnection: close\r\n\r\nmissing Sec-WebSocket-Key\n"
        );
        let r = error_response(&HttpError::new(426, "Upgrade Required"));
        let t = text(&r);
        assert!(t.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(t.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(t.contains("\r\nConnection: close\r\n"));
        assert!(t.ends_with("\r\n\r\nUpgrade Required\n"));
    }
}
