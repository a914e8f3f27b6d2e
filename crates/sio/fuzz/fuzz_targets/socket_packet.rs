//! Fuzz target: `roomcast_sio::codec::fuzz::socket_packet`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_sio::codec::fuzz::socket_packet(data));
