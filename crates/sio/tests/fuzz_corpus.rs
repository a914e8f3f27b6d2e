//! Replays the fuzz corpus (`crates/sio/fuzz/corpus/<target>/`) through the
//! same entry points the `cargo fuzz` targets call, on stable Rust, so CI
//! catches a regression on any input the fuzzer ever kept. Then runs a
//! bounded, deterministic mutation pass over the corpus as a property test.

use std::path::{Path, PathBuf};

use roomcast_sio::codec::fuzz::{self, Target};

const TARGETS: [Target; 5] = [
    ("engine_packet", fuzz::engine_packet),
    ("polling_payload", fuzz::polling_payload),
    ("socket_packet", fuzz::socket_packet),
    ("ws_frames", fuzz::ws_frames),
    ("reassembly", fuzz::reassembly),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

#[test]
fn corpus_replays_cleanly() {
    fuzz::replay(&root(), &TARGETS);
}

#[test]
fn mutated_corpus_never_panics() {
    fuzz::replay_mutated(&root(), &TARGETS, 0x9e37_79b9_7f4a_7c15, 20_000);
}
