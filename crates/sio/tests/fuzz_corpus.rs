//! Replays the fuzz corpus (`crates/sio/fuzz/corpus/<target>/`) through the
//! same entry points the `cargo fuzz` targets call, on stable Rust, so CI
//! catches a regression on any input the fuzzer ever kept. Then runs a
//! bounded, deterministic mutation pass over the corpus as a property test.

use std::path::Path;

use roomcast_sio::codec::fuzz;

type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 5] = [
    ("engine_packet", fuzz::engine_packet),
    ("polling_payload", fuzz::polling_payload),
    ("socket_packet", fuzz::socket_packet),
    ("ws_frames", fuzz::ws_frames),
    ("reassembly", fuzz::reassembly),
];

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn corpus_replays_cleanly() {
    for (name, run) in TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "{name}: empty corpus");
        for input in &inputs {
            run(input);
        }
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to these formats, favoured by the mutator.
const INTERESTING: &[u8] = b"0123456789-/,[]{}\"_:\x1eb\x00\xff\x7e\x7f\x80\x81\x82\x88\x89";

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let byte = if rng.below(2) == 0 {
            INTERESTING[rng.below(INTERESTING.len())]
        } else {
            rng.next() as u8
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

#[test]
fn mutated_corpus_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (name, run) in TARGETS {
        let inputs = corpus(name);
        for _ in 0..20_000 {
            let mut input = inputs[rng.below(inputs.len())].clone();
            mutate(&mut rng, &mut input);
            run(&input);
        }
    }
}
