//! JSON string literals: [`push_json_string`] and [`json_string`], the escaping every string
//! from a client or an app goes through before it is put into JSON text, so no input can break
//! out of its string. Both message directions use it (relaying client values, building server
//! events), so it sits below both.

use core::fmt::Write as _;

/// Appends `s` as a JSON string literal (quotes included) to `out`: `"` and `\` escaped,
/// control characters as `\n`, `\t`, … or `\u00XX`. Everything else, including non-ASCII, is
/// copied as UTF-8.
pub fn push_json_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, which is always a char boundary.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            // Writing into a String cannot fail.
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `s` as a JSON string literal, e.g. for the `data` string of a REST publish.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}
