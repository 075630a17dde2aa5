//! The engine ⇄ bridge link codec (`ringcast_core::link::{decode, encode}`) on random bytes:
//! a stream of frames decoded one after the other. Checks: no panic and no allocation beyond
//! the frame bound; a frame that is not all there yet is `Ok(None)` and consumes nothing; every
//! message that decodes encodes again (nothing decoded is over the bounds encode enforces),
//! to bytes that decode to the same message with nothing left over, and that re-encoding is
//! stable (the encoding of a decoded message is canonical).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringcast_core::link::{decode, encode, LinkMessage, FRAME_BYTES_MAX};

fn round_trip(message: &LinkMessage) {
    let mut encoded = BytesMut::new();
    encode(message, &mut encoded)
        .unwrap_or_else(|err| panic!("a decoded message does not encode ({err}): {message:?}"));
    assert!(encoded.len() <= FRAME_BYTES_MAX);
    let first = encoded.clone();
    let again = decode(&mut encoded)
        .expect("an encoded message decodes")
        .expect("a whole frame");
    assert!(encoded.is_empty(), "bytes left after one frame");
    assert_eq!(&again, message);
    let mut twice = BytesMut::new();
    encode(&again, &mut twice).expect("encodes again");
    assert_eq!(twice, first, "encoding is not stable");
}

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    for _ in 0..64 {
        let before = buf.clone();
        match decode(&mut buf) {
            Ok(Some(message)) => {
                let consumed = before.len() - buf.len();
                assert!(consumed >= 5, "a frame is a length and a kind at least");
                // Every strict prefix of the frame is incomplete and consumes nothing.
                for cut in [0, 1, 3, 4, consumed / 2, consumed - 1] {
                    let mut prefix = BytesMut::from(&before[..cut]);
                    assert!(matches!(decode(&mut prefix), Ok(None)), "prefix of {cut}");
                    assert_eq!(prefix.len(), cut, "a partial frame consumed bytes");
                }
                round_trip(&message);
            }
            Ok(None) => {
                assert_eq!(buf, before, "Ok(None) consumed bytes");
                return;
            }
            Err(_) => return,
        }
    }
});
