//! Fuzz target: `roomcast_api::fuzz::bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| roomcast_api::fuzz::bodies(data));
