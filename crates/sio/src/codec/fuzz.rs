//! Fuzzing entry points, shared by the `cargo fuzz` targets in
//! `crates/sio/fuzz` and the corpus replay test (`tests/fuzz_corpus.rs`),
//! so CI replays the corpus on stable Rust.
//!
//! Each takes arbitrary bytes, must never panic, and checks that whatever
//! decodes re-encodes to something that decodes to the same value.

use bytes::Bytes;

use super::binary::Reassembly;
use super::{engine, payload, socket, ws};

/// One Engine.IO packet (a polling record or a websocket text frame).
pub fn engine_packet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(packet) = engine::Packet::decode_record(text) {
        let again = engine::Packet::decode_record(&packet.encode_text());
        assert_eq!(
            again.as_ref(),
            Ok(&packet),
            "engine packet round trip of {text:?}"
        );
    }
}

/// A long-polling payload.
pub fn polling_payload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(packets) = payload::decode(text) else {
        return;
    };
    let texts: Vec<String> = packets.iter().map(engine::Packet::encode_text).collect();
    let items = texts.iter().map(|t| payload::Item::Text(t.as_bytes()));
    let (body, n) = payload::encode(items, usize::MAX);
    assert_eq!(n, packets.len());
    let body = String::from_utf8(body).unwrap_or_default();
    assert_eq!(
        payload::decode(&body).as_ref(),
        Ok(&packets),
        "payload round trip of {text:?}"
    );
}

/// One Socket.IO packet.
pub fn socket_packet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(packet) = socket::Packet::decode(text) {
        let encoded = packet.encode();
        assert_eq!(
            socket::Packet::decode(&encoded).as_ref(),
            Ok(&packet),
            "{text:?} -> {encoded:?}"
        );
    }
}

/// Websocket frames, parsed back to back as a connection would.
pub fn ws_frames(data: &[u8]) {
    let mut buf = data.to_vec();
    let mut off = 0;
    while let Ok(Some(frame)) = ws::parse_frame(&mut buf[off..], 1 << 16) {
        assert!(frame.len > 0 && frame.len <= buf.len() - off);
        assert!(frame.payload.end <= frame.len);
        off += frame.len;
    }
}

/// A sequence of Socket.IO text packets and binary attachments: the first
/// byte of each record says which (even: text, odd: binary), records are
/// separated by `\n`.
pub fn reassembly(data: &[u8]) {
    let mut r = Reassembly::default();
    for record in data.split(|b| *b == b'\n') {
        let Some((kind, body)) = record.split_first() else {
            continue;
        };
        let outcome = if kind % 2 == 0 {
            let Ok(text) = std::str::from_utf8(body) else {
                continue;
            };
            let Ok(packet) = socket::Packet::decode(text) else {
                continue;
            };
            r.on_packet(packet)
        } else {
            r.on_binary(Bytes::copy_from_slice(body), 1024)
        };
        if let Ok(Some((packet, attachments))) = outcome {
            assert_eq!(
                attachments.len(),
                if packet.kind.is_binary() {
                    packet.attachments
                } else {
                    0
                }
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Corpus replay on stable Rust (the crates' `tests/fuzz_corpus.rs`).

/// Every file of the corpus directory `dir`, sorted.
pub fn corpus(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
        .collect();
    inputs.sort();
    inputs
}

/// A fuzz target by name (its corpus directory) and entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Run each target of `targets` on every file of its corpus, `root/<name>`
/// (which must not be empty).
pub fn replay(root: &std::path::Path, targets: &[Target]) {
    for (name, run) in targets {
        let inputs = corpus(&root.join(name));
        assert!(!inputs.is_empty(), "{name}: empty corpus");
        for input in &inputs {
            run(input);
        }
    }
}

/// Run each target of `targets` on `rounds` mutations of its corpus
/// (`root/<name>`), from the seed `seed`.
pub fn replay_mutated(root: &std::path::Path, targets: &[Target], seed: u64, rounds: usize) {
    let mut rng = Rng(seed);
    for (name, run) in targets {
        mutated(&mut rng, &corpus(&root.join(name)), rounds, *run);
    }
}

/// Run `run` on `rounds` mutations of inputs drawn from `inputs`.
pub fn mutated(rng: &mut Rng, inputs: &[Vec<u8>], rounds: usize, run: fn(&[u8])) {
    for _ in 0..rounds {
        let mut input = inputs[rng.below(inputs.len())].clone();
        mutate(rng, &mut input);
        run(&input);
    }
}

/// xorshift64*: deterministic, no dependency (the mutation pass).
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to these formats (and to JSON), favoured by the mutator.
const INTERESTING: &[u8] = b"0123456789-/,[]{}\"_:\x1eb\x00\xff\x7e\x7f\x80\x81\x82\x88\x89";

/// Change `input` in one to five places.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let byte = if rng.below(2) == 0 {
            INTERESTING[rng.below(INTERESTING.len())]
        } else {
            rng.next_u64() as u8
        };
        match rng.below(4) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = byte;
            }
            1 => {
                let i = rng.below(input.len() + 1);
                input.insert(i, byte);
            }
            2 if !input.is_empty() => {
                let i = rng.below(input.len());
                input.remove(i);
            }
            _ => {
                let i = rng.below(input.len() + 1);
                input.truncate(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_accept_their_examples() {
        engine_packet(b"4hello");
        engine_packet(b"bAQIDBA==");
        polling_payload(b"4hello\x1e2\x1ebAQIDBA==");
        socket_packet(br#"61-/admin,15[{"_placeholder":true,"num":0}]"#);
        ws_frames(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        reassembly(b"\x0051-[\"a\",{\"_placeholder\":true,\"num\":0}]\n\x01xyz");
    }
}
