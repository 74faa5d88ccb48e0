//! The message decode path as connections use it: arbitrary bytes through the frame
//! decoder (size and envelope checks, then the codec), message after message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = tessera::server::frame::codec(64 * 1024);
    let mut buf = BytesMut::from(data);
    // Each Ok(Some) consumed a message; stop at the first error or incomplete frame.
    for _ in 0..1024 {
        match codec.decode(&mut buf) {
            Ok(Some(_)) => continue,
            _ => break,
        }
    }
});
