//! Fuzz target: `roomcast_sio::codec::fuzz::engine_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_sio::codec::fuzz::engine_packet(data));
