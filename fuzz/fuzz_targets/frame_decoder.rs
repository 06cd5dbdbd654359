//! Feeds arbitrary bytes to the frame decoder (and so to both header decoders): it must never panic
//! and never grow the buffer it was handed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rmq_protocol::frame::fuzz_decode_all(data);
});
