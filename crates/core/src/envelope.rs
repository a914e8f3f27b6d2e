//! The bus envelope: the one JSON shape that crosses `chat.out` and `chat.in`.
//!
//! ```json
//! {"id":"0190…","type":"receiveMessage","roomId":"0190…","payload":{…},"ts":1732760000000}
//! ```
//!
//! - `id` is unique per logical event. Delivery is at-least-once, so every
//!   consumer drops an envelope whose `id` it has already handled.
//! - `type` names the Socket.IO event to emit (on `chat.out`) or the command to
//!   run (on `chat.in`).
//! - `roomId` targets the Socket.IO room `room:<roomId>`; `userId` targets
//!   `user:<userId>`. An envelope with neither is not emitted.
//! - `payload` is the event's argument, emitted unchanged.
//! - `ts` is the producer's clock in Unix milliseconds (informational only).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{EnvelopeId, RoomId, UserId};

/// Topic names (defaults; the config can rename them).
pub mod topics {
    /// Backend → realtime: events to emit to sockets.
    pub const CHAT_OUT: &str = "chat.out";
    /// Realtime → backend: commands sent by sockets.
    pub const CHAT_IN: &str = "chat.in";
}

/// Event and command names carried in [`Envelope::kind`].
pub mod events {
    /// A new message in a room. Payload: a [`crate::Message`].
    pub const RECEIVE_MESSAGE: &str = "receiveMessage";
    /// A room the user belongs to was created or changed. Payload: a [`crate::Room`].
    pub const ROOM_UPDATED: &str = "roomUpdated";
}

/// One event or command on the bus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Unique id, for dropping duplicates.
    pub id: EnvelopeId,
    /// Event or command name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Target room, if room-scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
    /// Target user, if user-scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The event's argument.
    pub payload: Value,
    /// Producer time, Unix milliseconds.
    pub ts: i64,
}

impl Envelope {
    /// An envelope for a room-scoped event.
    pub fn to_room(kind: &str, room_id: RoomId, payload: Value) -> Self {
        Self::new(kind, Some(room_id), None, payload)
    }

    /// An envelope for a user-scoped event.
    pub fn to_user(kind: &str, user_id: UserId, payload: Value) -> Self {
        Self::new(kind, None, Some(user_id), payload)
    }

    fn new(kind: &str, room_id: Option<RoomId>, user_id: Option<UserId>, payload: Value) -> Self {
        Self {
            id: EnvelopeId::new(),
            kind: kind.to_owned(),
            room_id,
            user_id,
            payload,
            ts: crate::now_ms(),
        }
    }

    /// Encode as JSON bytes (what goes on the wire of every bus backend).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// Decode from JSON bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_wire_shape_is_the_documented_one() {
        let room = RoomId::new();
        let env = Envelope::to_room(events::RECEIVE_MESSAGE, room, json!({"body": "hi"}));
        let v: Value = serde_json::from_slice(&env.to_bytes()).unwrap();
        assert_eq!(v["type"], "receiveMessage");
        assert_eq!(v["roomId"], room.to_string());
        assert!(v.get("userId").is_none());
        assert_eq!(v["payload"]["body"], "hi");
        assert!(v["ts"].as_i64().unwrap() > 0);
        assert_eq!(Envelope::from_bytes(&env.to_bytes()).unwrap(), env);
    }

    #[test]
    fn every_envelope_gets_its_own_id() {
        let u = UserId::new();
        let a = Envelope::to_user(events::ROOM_UPDATED, u, Value::Null);
        let b = Envelope::to_user(events::ROOM_UPDATED, u, Value::Null);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn malformed_envelopes_are_errors_not_panics() {
        assert!(Envelope::from_bytes(b"").is_err());
        assert!(Envelope::from_bytes(b"{\"type\":1}").is_err());
        assert!(Envelope::from_bytes(&[0xff, 0x00]).is_err());
    }
}
