//! Incremental UTF-8 validation for text messages that arrive in fragments.
//!
//! A code point may be split across fragments, so the validator carries the (at most three)
//! bytes of an unfinished sequence from one fragment to the next. Invalid input is reported
//! as soon as the offending bytes are seen — including an impossible *prefix* such as `ED A0`
//! (a surrogate) or `F4 90` (above U+10FFFF) — so a connection can be failed with 1007
//! before the rest of the message arrives. The work is done by `std::str::from_utf8`, which
//! is fast and exact; this type only stitches the fragments together.

/// Incremental UTF-8 validator for text split across fragments (keeps ≤ 3 pending bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The start of a code point whose remaining bytes have not arrived yet.
    pending: [u8; 3],
    /// How many bytes of `pending` are in use (0..=3).
    pending_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Self {
        Self {
            pending: [0; 3],
            pending_len: 0,
        }
    }

    /// Validates the next piece of the text. `Err(())` as soon as the bytes seen so far can
    /// no longer be the start of valid UTF-8; the validator is then spent until [`reset`].
    ///
    /// [`reset`]: Self::reset
    #[allow(clippy::result_unit_err)] // the only failure is "not UTF-8"; the caller maps it to 1007
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), ()> {
        let held = usize::from(self.pending_len);
        if held > 0 {
            // Complete the held code point first, taking only the bytes that belong to it.
            let width = sequence_width(self.pending[0]);
            debug_assert!(width > held, "a held prefix is always incomplete");
            let take = (width - held).min(bytes.len());
            let mut seq = [0u8; 4];
            seq[..held].copy_from_slice(&self.pending[..held]);
            seq[held..held + take].copy_from_slice(&bytes[..take]);
            match std::str::from_utf8(&seq[..held + take]) {
                Ok(_) => {
                    self.pending_len = 0;
                    bytes = &bytes[take..];
                }
                Err(e) if e.error_len().is_none() => {
                    // Still a valid but unfinished prefix: this piece was too short.
                    self.hold(&seq[..held + take]);
                    return Ok(());
                }
                Err(_) => return Err(()),
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            // `error_len() == None` means the input ended inside a sequence that is valid so
            // far: keep it for the next piece.
            Err(e) if e.error_len().is_none() => {
                self.hold(&bytes[e.valid_up_to()..]);
                Ok(())
            }
            Err(_) => Err(()),
        }
    }

    /// Ends the message: an unfinished sequence at the end is an error. Resets the validator.
    #[allow(clippy::result_unit_err)] // see `feed`
    pub fn finish(&mut self) -> Result<(), ()> {
        let complete = self.pending_len == 0;
        self.reset();
        if complete {
            Ok(())
        } else {
            Err(())
        }
    }

    /// Forgets any held bytes, ready for a new message.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    fn hold(&mut self, prefix: &[u8]) {
        // An incomplete sequence is at most 3 bytes (the longest sequence is 4).
        debug_assert!(!prefix.is_empty() && prefix.len() <= 3);
        let n = prefix.len().min(3);
        self.pending[..n].copy_from_slice(&prefix[..n]);
        // n ≤ 3, so the cast cannot truncate.
        self.pending_len = n as u8;
    }
}

/// Total length of the sequence that starts with `lead` (only called on leads that
/// `from_utf8` accepted as the start of an unfinished sequence: 0xC2..=0xF4).
fn sequence_width(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// Feeds `bytes` in pieces cut at every `cuts` position and returns the overall verdict.
    fn check_split(bytes: &[u8], cuts: &[usize]) -> Result<(), ()> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
            v.feed(&bytes[start..c])?;
            start = c;
        }
        v.finish()
    }

    /// Checks that every way of cutting `bytes` in two and in single bytes agrees with std.
    fn agrees_with_std(bytes: &[u8]) {
        let expected = std::str::from_utf8(bytes).is_ok();
        for cut in 0..=bytes.len() {
            assert_eq!(
                check_split(bytes, &[cut]).is_ok(),
                expected,
                "{bytes:x?} cut {cut}"
            );
        }
        let singles: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(
            check_split(bytes, &singles).is_ok(),
            expected,
            "{bytes:x?} bytewise"
        );
    }

    #[test]
    fn valid_text_in_any_split() {
        agrees_with_std("κόσμε".as_bytes());
        agrees_with_std("a\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}z".as_bytes());
        agrees_with_std("\u{d7ff}\u{e000}\u{fffd}".as_bytes());
        agrees_with_std(b"");
    }

    #[test]
    fn invalid_sequences() {
        for bad in [
            &b"\xc0\xaf"[..],            // overlong '/'
            b"\xc1\xbf",                 // overlong
            b"\xe0\x80\xaf",             // overlong 3-byte
            b"\xe0\x9f\xbf",             // overlong 3-byte (max)
            b"\xf0\x80\x80\xaf",         // overlong 4-byte
            b"\xf0\x8f\xbf\xbf",         // overlong 4-byte (max)
            b"\xed\xa0\x80",             // U+D800 high surrogate
            b"\xed\xbf\xbf",             // U+DFFF low surrogate
            b"\xed\xa0\x80\xed\xb0\x80", // surrogate pair
            b"\xf4\x90\x80\x80",         // U+110000
            b"\xf5\x80\x80\x80",         // lead above F4
            b"\xff",                     // never valid
            b"\x80",                     // lone continuation
            b"\xce\xba\xe1\xbd",         // truncated at the end
            b"\xe2\x82",                 // truncated
            b"\xf0\x9f\x98",             // truncated 4-byte
            b"\xe2\x28\xa1",             // bad continuation
            b"a\xf0\x9f\x98\x80\x80",    // extra continuation after a 4-byte char
        ] {
            agrees_with_std(bad);
            assert!(std::str::from_utf8(bad).is_err());
        }
    }

    #[test]
    fn fails_fast_on_an_impossible_prefix() {
        // Each of these is rejected by `feed` itself, before the sequence could be finished.
        for prefix in [
            &b"\xed\xa0"[..],
            b"\xf4\x90",
            b"\xe0\x80",
            b"\xf0\x80",
            b"\xc0",
        ] {
            let mut v = Utf8Validator::new();
            assert_eq!(v.feed(b"ok"), Ok(()));
            assert_eq!(v.feed(prefix), Err(()), "{prefix:x?}");
        }
        // Split across fragments: the first byte is a fine prefix, the second makes it bad.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(()));
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0\x80"), Err(()));
    }

    #[test]
    fn truncated_at_finish_and_reset() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"abc\xe2\x82"), Ok(()));
        assert_eq!(v.finish(), Err(()));
        // finish resets, so the next message starts clean.
        assert_eq!(v.feed(b"\xe2\x82\xac"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
        assert_eq!(v.feed(b"\xf0\x9f"), Ok(()));
        v.reset();
        assert_eq!(v.feed(b"plain"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn empty_feeds_keep_pending() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf0"), Ok(()));
        assert_eq!(v.feed(b""), Ok(()));
        assert_eq!(v.feed(b"\x9f"), Ok(()));
        assert_eq!(v.feed(b""), Ok(()));
        assert_eq!(v.feed(b"\x98\x80tail"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }
}
