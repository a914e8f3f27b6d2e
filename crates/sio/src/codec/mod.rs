//! Wire codecs, free of I/O: Engine.IO v4 packets and the long-polling
//! payload, Socket.IO v5 packets with their binary attachments, and the
//! websocket frame format. Every decoder takes untrusted bytes and answers
//! with a [`DecodeError`] rather than panicking.

pub mod binary;
pub mod engine;
#[doc(hidden)]
pub mod fuzz;
pub mod payload;
pub mod socket;
pub mod ws;

/// Why bytes from a client could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input was empty where a packet was expected.
    #[error("empty packet")]
    Empty,
    /// The packet type is not one the protocol defines.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A `b`-prefixed polling record was not valid base64.
    #[error("invalid base64 in a binary record")]
    Base64,
    /// The JSON part of a Socket.IO packet did not parse.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A number (attachment count, ack id) was malformed or too large.
    #[error("invalid number in packet")]
    Number,
    /// The attachment count marker `<n>-` was missing or malformed.
    #[error("invalid attachment count")]
    Attachments,
    /// The payload has a shape the packet type does not allow.
    #[error("invalid payload for a {0} packet")]
    Payload(&'static str),
    /// A binary placeholder points past the announced attachments.
    #[error("binary placeholder {0} out of range")]
    Placeholder(u64),
    /// A binary attachment arrived with no binary packet waiting for it.
    #[error("unexpected binary attachment")]
    UnexpectedBinary,
    /// A text packet arrived while binary attachments were still expected.
    #[error("text packet while attachments are pending")]
    PendingAttachments,
    /// The websocket frame broke RFC 6455 (reserved bits, opcode, masking, length).
    #[error("websocket protocol error: {0}")]
    WebSocket(&'static str),
    /// A packet or message exceeded `maxPayload`.
    #[error("payload too large")]
    TooLarge,
}
