//! Fuzzing entry point for the bus envelope decoder, shared by the `cargo
//! fuzz` target `envelope` (`crates/api/fuzz`) and the corpus replay test
//! (`crates/api/tests/fuzz_corpus.rs`), so CI replays the corpus on stable
//! Rust.
//!
//! It takes arbitrary bytes as a consumer receives them from a bus, must
//! never panic, and checks that whatever decodes re-encodes to the same.

use crate::{ChatIn, ChatOut, Encoded, Envelope, Route};

/// Bytes off `chat.out` or `chat.in`: the envelope, its routing head, its
/// route, and the typed event or command, each round-tripped when it
/// decodes.
pub fn envelope(data: &[u8]) {
    // The head a bus routes by, read without the payload.
    let head = Encoded::peek(data.to_vec());
    let Ok(env) = Envelope::from_bytes(data) else {
        return;
    };
    if let Ok(head) = &head {
        assert_eq!(head.id, env.id, "peeked id");
        assert_eq!(head.kind, env.kind, "peeked kind");
    }
    let again = Envelope::from_bytes(&env.encode().bytes).expect("an encoded envelope decodes");
    assert_eq!(again, env, "envelope round trip");
    let _ = Route::of(&env);
    let _ = env.ordering_hash();
    if let Ok(cmd) = ChatIn::decode(&env) {
        let back = ChatIn::decode(&cmd.envelope()).expect("a command's envelope decodes");
        assert_eq!(back, cmd, "chat.in round trip");
    }
    if let Ok(event) = ChatOut::decode(&env) {
        let back =
            ChatOut::decode(&event.envelope(env.event_seq)).expect("an event's envelope decodes");
        assert_eq!(back, event, "chat.out round trip");
    }
    let _ = env.expand();
}
