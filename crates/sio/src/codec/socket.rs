//! Socket.IO v5 packets, carried in Engine.IO messages:
//!
//! ```text
//! <type>[<attachments>-][<namespace>,][<ack id>][JSON]
//! ```
//!
//! `2["hello",1]` is an event on `/`, `2/admin,13["x"]` an event on
//! `/admin` asking for ack 13, `51-["up",{"_placeholder":true,"num":0}]` a
//! binary event whose one attachment follows as a binary message.
//! The namespace part is left out for `/`.

use serde_json::Value;

use super::DecodeError;

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// `0`: join a namespace (client: with auth; server: with `{"sid"}`).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event, `[name, ...args]`.
    Event,
    /// `3`: the answer to an event, `[...args]`.
    Ack,
    /// `4`: the namespace refused the client, `{"message", "data"?}`.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an ack with binary attachments.
    BinaryAck,
}

impl PacketType {
    fn from_char(c: char) -> Result<Self, DecodeError> {
        Ok(match c {
            '0' => Self::Connect,
            '1' => Self::Disconnect,
            '2' => Self::Event,
            '3' => Self::Ack,
            '4' => Self::ConnectError,
            '5' => Self::BinaryEvent,
            '6' => Self::BinaryAck,
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    /// The type digit.
    pub fn as_char(self) -> char {
        match self {
            Self::Connect => '0',
            Self::Disconnect => '1',
            Self::Event => '2',
            Self::Ack => '3',
            Self::ConnectError => '4',
            Self::BinaryEvent => '5',
            Self::BinaryAck => '6',
        }
    }

    /// Whether attachments follow this packet.
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Disconnect => "DISCONNECT",
            Self::Event => "EVENT",
            Self::Ack => "ACK",
            Self::ConnectError => "CONNECT_ERROR",
            Self::BinaryEvent => "BINARY_EVENT",
            Self::BinaryAck => "BINARY_ACK",
        }
    }
}

/// Event names a client may not send (socket.io-parser's reserved list).
const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// One decoded Socket.IO packet (attachments not yet joined).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The packet type.
    pub kind: PacketType,
    /// The namespace, `/` when the packet names none.
    pub nsp: String,
    /// The ack id, for an event that wants an answer or an ack.
    pub id: Option<u64>,
    /// How many binary attachments follow (binary types only).
    pub attachments: usize,
    /// The JSON payload.
    pub data: Option<Value>,
}

impl Packet {
    /// Decode the text of an Engine.IO message.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        let mut chars = text.chars();
        let kind = PacketType::from_char(chars.next().ok_or(DecodeError::Empty)?)?;
        let mut rest = chars.as_str();

        let mut attachments = 0;
        if kind.is_binary() {
            let dash = rest.find('-').ok_or(DecodeError::Attachments)?;
            attachments = parse_digits(&rest[..dash]).ok_or(DecodeError::Attachments)? as usize;
            rest = &rest[dash + 1..];
        }

        let mut nsp = "/";
        if rest.starts_with('/') {
            match rest.find(',') {
                Some(comma) => {
                    nsp = &rest[..comma];
                    rest = &rest[comma + 1..];
                }
                None => {
                    nsp = rest;
                    rest = "";
                }
            }
        }

        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = match digits {
            0 => None,
            _ => Some(parse_digits(&rest[..digits]).ok_or(DecodeError::Number)?),
        };
        rest = &rest[digits..];

        let data = match rest {
            "" => None,
            json => Some(serde_json::from_str(json).map_err(|e| DecodeError::Json(e.to_string()))?),
        };
        let packet = Self {
            kind,
            nsp: nsp.to_owned(),
            id,
            attachments,
            data,
        };
        packet.validate()?;
        Ok(packet)
    }

    fn validate(&self) -> Result<(), DecodeError> {
        let ok = match (self.kind, &self.data) {
            (PacketType::Connect, None | Some(Value::Object(_))) => true,
            (PacketType::Disconnect, None) => true,
            (PacketType::ConnectError, Some(Value::String(_) | Value::Object(_))) => true,
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(a))) => {
                matches!(a.first(), Some(Value::String(name)) if !RESERVED_EVENTS.contains(&name.as_str()))
            }
            (PacketType::Ack | PacketType::BinaryAck, Some(Value::Array(_))) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(DecodeError::Payload(self.kind.name()))
        }
    }

    /// Encode back to text (the JSON serialised here).
    pub fn encode(&self) -> String {
        let json = self.data.as_ref().map(Value::to_string);
        encode(
            self.kind,
            &self.nsp,
            self.id,
            self.attachments,
            json.as_deref(),
        )
    }
}

/// Encode a packet whose JSON is already serialised, so a broadcast
/// serialises its arguments once.
pub fn encode(
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    attachments: usize,
    json: Option<&str>,
) -> String {
    let mut out = String::with_capacity(8 + nsp.len() + json.map_or(0, str::len));
    encode_into(&mut out, kind, nsp, id, attachments, json);
    out
}

/// [`encode`], appending to `out` (after an Engine.IO `4`, say).
pub fn encode_into(
    out: &mut String,
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    attachments: usize,
    json: Option<&str>,
) {
    use std::fmt::Write as _;
    out.push(kind.as_char());
    if kind.is_binary() {
        let _ = write!(out, "{attachments}-");
    }
    if nsp != "/" && !nsp.is_empty() {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
    if let Some(json) = json {
        out.push_str(json);
    }
}

/// Parse an unsigned decimal that fits a u64; `None` for empty or overflow.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn p(
        kind: PacketType,
        nsp: &str,
        id: Option<u64>,
        attachments: usize,
        data: Option<Value>,
    ) -> Packet {
        Packet {
            kind,
            nsp: nsp.into(),
            id,
            attachments,
            data,
        }
    }

    // The examples of the Socket.IO v5 protocol description.
    #[test]
    fn decodes_the_protocol_examples() {
        use PacketType::*;
        let cases = [
            ("0", p(Connect, "/", None, 0, None)),
            ("0/admin,", p(Connect, "/admin", None, 0, None)),
            (
                r#"0/admin,{"token":"123"}"#,
                p(Connect, "/admin", None, 0, Some(json!({"token":"123"}))),
            ),
            (
                r#"0{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
                p(
                    Connect,
                    "/",
                    None,
                    0,
                    Some(json!({"sid":"oSO0OpakMV_3jnilAAAA"})),
                ),
            ),
            (
                r#"4{"message":"Not authorized"}"#,
                p(
                    ConnectError,
                    "/",
                    None,
                    0,
                    Some(json!({"message":"Not authorized"})),
                ),
            ),
            ("1/admin,", p(Disconnect, "/admin", None, 0, None)),
            (r#"2["foo"]"#, p(Event, "/", None, 0, Some(json!(["foo"])))),
            (
                r#"2/admin,["bar"]"#,
                p(Event, "/admin", None, 0, Some(json!(["bar"]))),
            ),
            (
                r#"212["foo"]"#,
                p(Event, "/", Some(12), 0, Some(json!(["foo"]))),
            ),
            (
                r#"3/admin,13["bar"]"#,
                p(Ack, "/admin", Some(13), 0, Some(json!(["bar"]))),
            ),
            (
                r#"51-["baz",{"_placeholder":true,"num":0}]"#,
                p(
                    BinaryEvent,
                    "/",
                    None,
                    1,
                    Some(json!(["baz", {"_placeholder":true,"num":0}])),
                ),
            ),
            (
                r#"61-/admin,15[{"_placeholder":true,"num":0}]"#,
                p(
                    BinaryAck,
                    "/admin",
                    Some(15),
                    1,
                    Some(json!([{"_placeholder":true,"num":0}])),
                ),
            ),
            ("1/admin", p(Disconnect, "/admin", None, 0, None)),
        ];
        for (text, want) in cases {
            assert_eq!(Packet::decode(text).as_ref(), Ok(&want), "{text}");
        }
    }

    #[test]
    fn encodes_round_trip() {
        for text in [
            "0",
            "0/admin,",
            r#"0/admin,{"token":"123"}"#,
            r#"212["foo"]"#,
            r#"3/admin,13["bar"]"#,
            r#"51-["baz",{"_placeholder":true,"num":0}]"#,
            r#"61-/admin,15[{"_placeholder":true,"num":0}]"#,
            r#"4{"message":"Invalid namespace"}"#,
        ] {
            assert_eq!(
                Packet::decode(text).map(|p| p.encode()),
                Ok(text.to_owned())
            );
        }
    }

    #[test]
    fn rejects_malformed_packets() {
        for text in [
            "",
            "7",
            "a",
            "2",
            "2{}",
            "2[]",
            "2[1]",
            r#"2["connect"]"#,
            r#"2["disconnect"]"#,
            "3{}",
            "0[]",
            "1{}",
            "2[",
            "5[\"a\"]",
            "5x-[\"a\"]",
            "599999999999999999999999-[\"a\"]",
            "299999999999999999999999[\"a\"]",
            "4",
        ] {
            assert!(Packet::decode(text).is_err(), "{text:?} should not decode");
        }
    }

    #[test]
    fn long_numbers_round_trip_exactly() {
        // Found by the fuzzer: without serde_json's `float_roundtrip` a
        // 130-digit number re-encoded to a different float (Node, like
        // `float_roundtrip`, parses JSON numbers correctly rounded).
        let text = include_str!("../../fuzz/corpus/socket_packet/regression-float-roundtrip");
        let packet = Packet::decode(text).unwrap();
        assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
    }

    #[test]
    fn deep_json_is_an_error_not_a_crash() {
        let deep = format!("2[\"a\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(Packet::decode(&deep), Err(DecodeError::Json(_))));
    }
}
