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
