//! Fuzz target: `roomcast_sio::codec::fuzz::reassembly`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_sio::codec::fuzz::reassembly(data));
