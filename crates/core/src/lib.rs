//! Shared vocabulary of roomcast. It does no I/O.
//!
//! # Layout
//! - [`ids`]: typed identifiers for users, rooms, messages and envelopes.
//! - [`envelope`]: the JSON envelope that travels on the bus (`chat.out`, `chat.in`)
//!   and the names of the events it carries.
//! - [`contract`]: the same, typed: [`ChatOut`] and [`ChatIn`] decoded from an
//!   envelope once, the contract version, and what a consumer skips.
//! - [`wire`]: the objects clients see over HTTP and Socket.IO (`User`, `Room`, `Message`).
//! - [`error`]: the machine-readable error codes shared by HTTP answers and Socket.IO ACKs.
//! - [`replay`]: the room event log read back (`RoomEvents`), for replay.
//! - [`validate`]: input rules (lengths, characters) shared by every tier.

pub mod contract;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod replay;
pub mod validate;
pub mod wire;

pub use contract::{ChatIn, ChatOut, Check, ENVELOPE_VERSION, Skip, SkipLog};
pub use envelope::{Envelope, events, topics};
pub use error::{ErrorBody, ErrorCode};
pub use ids::{EnvelopeId, MessageId, RoomId, UserId};
pub use replay::{RoomEvent, RoomEvents};
pub use wire::{
    MarkMessageRead, Message, Presence, ReactionCount, ReactionEvent, ReadUpdate, Role, Room,
    RoomAccess, RoomKind, RoomList, RoomRemoved, RoomUpdates, RoomView, SendMessage, Typing, User,
};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 text (UTC, millisecond precision) for a Unix-millisecond timestamp.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
