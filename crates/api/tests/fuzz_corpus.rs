//! Replays the fuzz corpus (`crates/api/fuzz/corpus/<target>/`: the HTTP
//! request bodies and the bus envelope decoder) through the same entry
//! points the `cargo fuzz` targets call, on stable Rust, so CI catches a
//! regression on any input the fuzzer ever kept; then a bounded,
//! deterministic mutation pass over it.

use std::path::{Path, PathBuf};

use roomcast_core::{ChatIn, ChatOut, Envelope};
use roomcast_sio::codec::fuzz::{self, Target};

const TARGETS: [Target; 2] = [
    ("http_bodies", roomcast_api::fuzz::bodies),
    ("envelope", roomcast_core::fuzz::envelope),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

#[test]
fn corpus_replays_cleanly() {
    fuzz::replay(&root(), &TARGETS);
}

#[test]
fn the_envelope_corpus_reaches_both_typed_decoders() {
    let envelopes: Vec<Envelope> = fuzz::corpus(&root().join("envelope"))
        .iter()
        .filter_map(|i| Envelope::from_bytes(i).ok())
        .collect();
    assert!(
        envelopes.iter().any(|e| ChatIn::decode(e).is_ok()),
        "a chat.in command"
    );
    assert!(
        envelopes.iter().any(|e| ChatOut::decode(e).is_ok()),
        "a chat.out event"
    );
}

#[test]
fn mutated_corpus_never_panics() {
    fuzz::replay_mutated(&root(), &TARGETS, 0x2545_f491_4f6c_dd1d, 20_000);
}
