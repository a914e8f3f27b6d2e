//! Fuzz target: `roomcast_sio::codec::fuzz::polling_payload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_sio::codec::fuzz::polling_payload(data));
