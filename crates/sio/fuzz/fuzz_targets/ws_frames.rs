//! Fuzz target: `roomcast_sio::codec::fuzz::ws_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_sio::codec::fuzz::ws_frames(data));
