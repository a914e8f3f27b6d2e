//! Objects as clients see them (camelCase JSON), over HTTP and Socket.IO alike.

use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, RoomId, UserId};

/// A user, as anyone may see it. The password hash never leaves the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique login name.
    pub username: String,
}

/// A room with its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// Id.
    pub id: RoomId,
    /// Display name.
    pub name: String,
    /// Member ids, the creator included, in joining order.
    pub members: Vec<UserId>,
    /// Sequence number of the room's latest message (0 when empty).
    pub last_seq: i64,
    /// Creation time, RFC 3339.
    pub created_at: String,
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// The room it belongs to.
    pub room_id: RoomId,
    /// Per-room sequence number: 1, 2, 3, … with no gaps.
    pub seq: i64,
    /// Author (always taken from the author's token).
    pub sender_id: UserId,
    /// Text.
    pub body: String,
    /// The sender's idempotency key for this message.
    pub client_msg_id: String,
    /// Creation time, RFC 3339 with milliseconds, UTC.
    pub created_at: String,
}

/// What a user is to a room, as the API tells the realtime tier on its
/// internal route (`GET /internal/v1/access`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "access", rename_all = "snake_case")]
pub enum RoomAccess {
    /// No such room.
    NoRoom,
    /// Not a member.
    NotMember,
    /// A member; the room's latest message seq.
    Member {
        /// Latest seq in the room.
        #[serde(rename = "lastSeq")]
        last_seq: i64,
    },
}
