//! The incremental UTF-8 validator of fragmented text (`ringcast_core::ws::Utf8Validator`)
//! against `std::str::from_utf8` on the whole: for any bytes in any split, `feed` fails at
//! exactly the first piece after which the bytes seen can no longer begin valid UTF-8, and
//! `finish` fails exactly when the whole is a valid but unfinished prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringcast_core::ws::Utf8Validator;

/// True when `bytes` is valid UTF-8 or a valid UTF-8 text cut inside its last code point.
fn valid_prefix(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let seed = u64::from(u16::from_le_bytes([data[0], data[1]]));
    let text = &data[2..];
    let pieces = ringcast_fuzz::chunks_seeded(text, seed);
    let mut validator = Utf8Validator::new();
    let mut seen = 0;
    for piece in &pieces {
        seen += piece.len();
        let fed = validator.feed(piece);
        assert_eq!(
            fed.is_ok(),
            valid_prefix(&text[..seen]),
            "feed disagrees after {seen} bytes"
        );
        if fed.is_err() {
            return;
        }
    }
    let whole_valid = std::str::from_utf8(text).is_ok();
    assert_eq!(validator.finish().is_ok(), whole_valid);
    // `finish` resets: the validator takes a new message.
    assert!(validator.feed("é".as_bytes()).is_ok());
    assert!(validator.finish().is_ok());
});
