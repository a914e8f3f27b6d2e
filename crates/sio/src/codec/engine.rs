//! Engine.IO v4 packets.
//!
//! A text packet is one digit for its type followed by its data
//! (`4hello` is a message, `2probe` a probe ping). Over websocket a text
//! packet is one text frame and a binary frame is a binary message with no
//! type prefix; over long-polling a binary message is the record `b<base64>`
//! (see [`super::payload`]).
//!
//! | type | digit |
//! | --- | --- |
//! | open | 0 |
//! | close | 1 |
//! | ping | 2 |
//! | pong | 3 |
//! | message | 4 |
//! | upgrade | 5 |
//! | noop | 6 |

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use super::DecodeError;

/// One decoded Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` + the handshake JSON (server to client only).
    Open(String),
    /// `1`: the peer closes the session.
    Close,
    /// `2`, or `2probe` during the websocket upgrade (`true`).
    Ping(bool),
    /// `3`, or `3probe` (`true`).
    Pong(bool),
    /// `4` + text.
    Message(String),
    /// A binary message.
    Binary(Bytes),
    /// `5`: the client switches to the probed websocket.
    Upgrade,
    /// `6`: nothing (used to end a pending poll during an upgrade).
    Noop,
}

impl Packet {
    /// Decode a text packet (a websocket text frame or a polling record
    /// that does not start with `b`).
    pub fn decode_text(text: &str) -> Result<Self, DecodeError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(DecodeError::Empty)?;
        let data = chars.as_str();
        Ok(match kind {
            '0' => Self::Open(data.to_owned()),
            '1' => Self::Close,
            '2' => Self::Ping(data == "probe"),
            '3' => Self::Pong(data == "probe"),
            '4' => Self::Message(data.to_owned()),
            '5' => Self::Upgrade,
            '6' => Self::Noop,
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    /// Decode one long-polling record: `b<base64>` is a binary message,
    /// anything else a text packet.
    pub fn decode_record(record: &str) -> Result<Self, DecodeError> {
        match record.strip_prefix('b') {
            Some(b64) => STANDARD
                .decode(b64)
                .map(|v| Self::Binary(Bytes::from(v)))
                .map_err(|_| DecodeError::Base64),
            None => Self::decode_text(record),
        }
    }

    /// The type digit of a text packet (`None` for binary).
    pub fn type_char(&self) -> Option<char> {
        Some(match self {
            Self::Open(_) => '0',
            Self::Close => '1',
            Self::Ping(_) => '2',
            Self::Pong(_) => '3',
            Self::Message(_) => '4',
            Self::Upgrade => '5',
            Self::Noop => '6',
            Self::Binary(_) => return None,
        })
    }

    /// Encode as a text packet; a binary message becomes `b<base64>` (the
    /// polling form).
    pub fn encode_text(&self) -> String {
        match self {
            Self::Open(d) => format!("0{d}"),
            Self::Message(d) => format!("4{d}"),
            Self::Ping(true) => "2probe".to_owned(),
            Self::Pong(true) => "3probe".to_owned(),
            Self::Binary(b) => encode_binary_record(b),
            other => other.type_char().map(String::from).unwrap_or_default(),
        }
    }
}

/// `b<base64>`: a binary message as a long-polling record.
pub fn encode_binary_record(data: &[u8]) -> String {
    let mut out = String::with_capacity(1 + data.len().div_ceil(3) * 4);
    out.push('b');
    STANDARD.encode_string(data, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Examples from the Engine.IO v4 protocol description.
    #[test]
    fn decodes_the_protocol_examples() {
        assert_eq!(
            Packet::decode_text("4hello"),
            Ok(Packet::Message("hello".into()))
        );
        assert_eq!(Packet::decode_text("2probe"), Ok(Packet::Ping(true)));
        assert_eq!(Packet::decode_text("3probe"), Ok(Packet::Pong(true)));
        assert_eq!(Packet::decode_text("2"), Ok(Packet::Ping(false)));
        assert_eq!(Packet::decode_text("3"), Ok(Packet::Pong(false)));
        assert_eq!(Packet::decode_text("5"), Ok(Packet::Upgrade));
        assert_eq!(Packet::decode_text("6"), Ok(Packet::Noop));
        assert_eq!(Packet::decode_text("1"), Ok(Packet::Close));
        assert_eq!(
            Packet::decode_record("bAQIDBA=="),
            Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])))
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Packet::decode_text(""), Err(DecodeError::Empty));
        assert_eq!(Packet::decode_text("9"), Err(DecodeError::UnknownType('9')));
        assert_eq!(Packet::decode_text("é"), Err(DecodeError::UnknownType('é')));
        assert_eq!(Packet::decode_record("b!!"), Err(DecodeError::Base64));
    }

    #[test]
    fn encodes_round_trip() {
        for p in [
            Packet::Open(r#"{"sid":"x"}"#.into()),
            Packet::Close,
            Packet::Ping(false),
            Packet::Ping(true),
            Packet::Pong(false),
            Packet::Pong(true),
            Packet::Message("héllo €".into()),
            Packet::Upgrade,
            Packet::Noop,
            Packet::Binary(Bytes::from_static(b"\x00\xff\x10")),
        ] {
            assert_eq!(Packet::decode_record(&p.encode_text()), Ok(p));
        }
        assert_eq!(encode_binary_record(&[1, 2, 3, 4]), "bAQIDBA==");
    }
}
