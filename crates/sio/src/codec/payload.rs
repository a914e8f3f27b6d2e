//! The HTTP long-polling payload of Engine.IO v4: packets joined by the
//! record separator `\x1e`, binary messages as `b<base64>` records.
//!
//! ```text
//! 4hello\x1e2\x1ebAQIDBA==
//! ```
//!
//! is the message `hello`, a ping, and the binary message `01 02 03 04`.

use super::DecodeError;
use super::engine::{Packet, encode_binary_record};

/// The record separator between packets of one payload.
pub const SEPARATOR: char = '\x1e';

/// Decode a whole payload (a POST body). An empty body is an error: a
/// client never posts zero packets.
pub fn decode(body: &str) -> Result<Vec<Packet>, DecodeError> {
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    body.split(SEPARATOR).map(Packet::decode_record).collect()
}

/// One queued outgoing item as the polling transport sees it: the text of
/// an Engine.IO packet (`4...`, `2`, ...), or a binary message.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// A text packet, type digit included.
    Text(&'a [u8]),
    /// A binary message.
    Binary(&'a [u8]),
}

impl Item<'_> {
    /// Bytes this item takes in a payload, not counting the separator.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Binary(b) => 1 + b.len().div_ceil(3) * 4,
        }
    }
}

/// Encode as many leading `items` as fit in `max_payload` bytes (always at
/// least one, so an oversized packet still leaves), returning the body and
/// how many items it holds.
pub fn encode<'a>(
    items: impl IntoIterator<Item = Item<'a>>,
    max_payload: usize,
) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut count = 0;
    for item in items {
        let extra = item.encoded_len() + usize::from(count > 0);
        if count > 0 && out.len() + extra > max_payload {
            break;
        }
        if count > 0 {
            out.push(SEPARATOR as u8);
        }
        match item {
            Item::Text(t) => out.extend_from_slice(t),
            Item::Binary(b) => out.extend_from_slice(encode_binary_record(b).as_bytes()),
        }
        count += 1;
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn decodes_the_protocol_example() {
        assert_eq!(
            decode("4hello\x1e2\x1ebAQIDBA=="),
            Ok(vec![
                Packet::Message("hello".into()),
                Packet::Ping(false),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            ])
        );
        assert_eq!(decode("4"), Ok(vec![Packet::Message(String::new())]));
    }

    #[test]
    fn rejects_empty_and_bad_records() {
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(decode("4a\x1e"), Err(DecodeError::Empty));
        assert_eq!(decode("4a\x1ex"), Err(DecodeError::UnknownType('x')));
    }

    #[test]
    fn encodes_with_separators_and_base64() {
        let items = [
            Item::Text(b"4hello"),
            Item::Text(b"2"),
            Item::Binary(&[1, 2, 3, 4]),
        ];
        let (body, n) = encode(items, 1_000_000);
        assert_eq!(n, 3);
        assert_eq!(body, b"4hello\x1e2\x1ebAQIDBA==");
    }

    #[test]
    fn encode_respects_max_payload_but_sends_at_least_one() {
        let items = [Item::Text(b"4aaaa"), Item::Text(b"4bbbb")];
        assert_eq!(encode(items, 10), (b"4aaaa".to_vec(), 1));
        assert_eq!(encode(items, 11), (b"4aaaa\x1e4bbbb".to_vec(), 2));
        assert_eq!(encode(items, 1), (b"4aaaa".to_vec(), 1));
        assert_eq!(encode([], 1), (Vec::new(), 0));
    }
}
