//! Shared vocabulary of roomcast. It does no I/O.
//!
//! # Layout
//! - [`ids`]: typed identifiers for users, rooms, messages and envelopes.
//! - [`envelope`]: the JSON envelope that travels on the bus (`chat.out`,
//!   `chat.in`), and [`Encoded`], its bytes as stored and carried.
//! - [`kind`]: [`Kind`], an envelope's `type`, one variant per event and command.
//! - [`contract`]: the contract version, what a consumer skips, the checks
//!   each command passes, and [`ChatIn`], the commands typed.
//! - [`chat_out`]: [`ChatOut`], the events typed as producers build them, and
//!   [`Route`], how the realtime tier routes one without parsing its payload.
//! - [`consent`]: who may add a user to rooms ([`AddPolicy`]) and the
//!   [`Invitation`]s adding creates otherwise.
//! - [`wire`]: the objects clients see over HTTP and Socket.IO (`User`, `Room`, `Message`).
//! - [`error`]: the machine-readable error codes shared by HTTP answers and Socket.IO ACKs.
//! - [`replay`]: the room event log read back (`RoomEvents`), for replay.
//! - [`validate`]: input rules (lengths, characters) shared by every tier.
//! - [`fuzz`]: the envelope decoder's fuzzing entry point.

pub mod chat_out;
pub mod consent;
pub mod contract;
pub mod envelope;
pub mod error;
pub mod fuzz;
pub mod ids;
pub mod kind;
pub mod replay;
pub mod validate;
pub mod wire;

pub use chat_out::{ChatOut, Route};
pub use consent::{AddPolicy, Invitation, InvitationEnd, InvitationRemoved, Settings};
pub use contract::{
    ChatIn, Check, ENVELOPE_VERSION, NodeHeartbeat, PresenceChanged, Skip, SkipLog,
};
pub use envelope::{Encoded, Envelope, topics};
pub use error::{ErrorBody, ErrorCode};
pub use ids::{EnvelopeId, MessageId, RoomId, SessionId, UserId};
pub use kind::Kind;
pub use replay::{RoomEvent, RoomEvents};
pub use wire::{
    Admitted, MarkMessageRead, Message, Presence, ReactionCount, ReactionEvent, ReadUpdate, Role,
    Room, RoomAccess, RoomKind, RoomList, RoomRemoved, RoomUpdates, RoomView, SendMessage,
    SessionRevoked, Typing, User,
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
