//! The bus envelope: the one JSON shape that crosses `chat.out` and `chat.in`.
//!
//! ```json
//! {"v":1,"id":"0190…","type":"receiveMessage","roomId":"0190…","payload":{…},"ts":1732760000000}
//! ```
//!
//! - `id` is unique per logical event. Delivery is at-least-once, so every
//!   consumer drops an envelope whose `id` it has already handled.
//! - `type` names the Socket.IO event to emit (on `chat.out`) or the command to
//!   run (on `chat.in`); it is parsed into a [`Kind`].
//! - `roomId` targets the Socket.IO room `room:<roomId>`; `userId` targets
//!   `user:<userId>`. An envelope with neither is not emitted.
//! - `payload` is the event's argument, emitted unchanged: a consumer keeps
//!   it as the JSON text it arrived as ([`RawValue`]).
//! - `ts` is the producer's clock in Unix milliseconds (informational only).
//! - `v` is the contract version (see [`crate::contract`]): a consumer skips
//!   a newer one, and a `type` it does not know, with one log line per kind.
//!
//! An envelope is encoded once, where it is made (the store, in the
//! transaction that keeps it); [`Encoded`] is those bytes with what the buses
//! route by, and every bus carries them unchanged.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::ids::{EnvelopeId, RoomId, UserId};
use crate::kind::Kind;

/// Topic names (defaults; the config can rename them).
pub mod topics {
    /// Backend → realtime: events to emit to sockets.
    pub const CHAT_OUT: &str = "chat.out";
    /// Realtime → backend: commands sent by sockets.
    pub const CHAT_IN: &str = "chat.in";
}

/// One event or command on the bus, as a consumer reads it: the routing
/// fields parsed, the payload kept as the JSON text it arrived as (it is
/// passed through to clients without being parsed or encoded again).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The contract version it was written for (absent: 1); see
    /// [`crate::contract`].
    #[serde(default = "first_version")]
    pub v: u32,
    /// Unique id, for dropping duplicates.
    pub id: EnvelopeId,
    /// Event or command.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Target room, if room-scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
    /// Target user, if user-scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The event's argument, as JSON text.
    pub payload: Box<RawValue>,
    /// Producer time, Unix milliseconds.
    pub ts: i64,
    /// The event's position in its room's event log (see
    /// [`Kind::is_logged`]): per room, gap-free, assigned in the transaction
    /// that stored the event. Also in the payload, as `eventSeq`, for
    /// clients. `None` for events that are not logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<i64>,
}

impl PartialEq for Envelope {
    fn eq(&self, other: &Self) -> bool {
        self.v == other.v
            && self.id == other.id
            && self.kind == other.kind
            && self.room_id == other.room_id
            && self.user_id == other.user_id
            && self.payload.get() == other.payload.get()
            && self.ts == other.ts
            && self.event_seq == other.event_seq
    }
}

impl Envelope {
    /// An envelope of `kind` to `room_id` and/or `user_id` whose payload is
    /// already JSON text.
    pub fn new(
        kind: Kind,
        room_id: Option<RoomId>,
        user_id: Option<UserId>,
        payload: Box<RawValue>,
    ) -> Self {
        Self {
            v: crate::contract::ENVELOPE_VERSION,
            id: EnvelopeId::new(),
            kind,
            room_id,
            user_id,
            payload,
            ts: crate::now_ms(),
            event_seq: None,
        }
    }

    /// An envelope for a room-scoped event (tests and tools; the tiers
    /// build theirs from [`crate::ChatOut`] and [`crate::ChatIn`]).
    pub fn to_room(kind: Kind, room_id: RoomId, payload: impl Serialize) -> Self {
        Self::new(kind, Some(room_id), None, raw(&payload))
    }

    /// An envelope for a user-scoped event (tests and tools).
    pub fn to_user(kind: Kind, user_id: UserId, payload: impl Serialize) -> Self {
        Self::new(kind, None, Some(user_id), raw(&payload))
    }

    /// The payload parsed into a JSON value: for inspection (tests, tools);
    /// the delivery path never parses a payload it passes through.
    pub fn payload_value(&self) -> Value {
        serde_json::from_str(self.payload.get()).unwrap_or(Value::Null)
    }

    /// Whether this event goes into its room's event log (and so has an
    /// `eventSeq`).
    pub fn is_logged(&self) -> bool {
        self.room_id.is_some() && self.kind.is_logged()
    }

    /// What the bus keeps this envelope in order with: its room if it has
    /// one, else its user (`None`: neither, never emitted). Envelopes with
    /// the same key reach consumers in the order they were stored; nothing
    /// holds across keys.
    pub fn ordering_key(&self) -> Option<uuid::Uuid> {
        ordering_key(self.room_id, self.user_id)
    }

    /// A stable 31-bit hash of [`Envelope::ordering_key`] (0 without one):
    /// the outbox partition of the envelope is this modulo the partition
    /// count. FNV-1a over the key's 16 bytes, so it is the same in every
    /// process and version.
    pub fn ordering_hash(&self) -> i64 {
        key_hash(self.ordering_key())
    }

    /// Encode as JSON bytes (what goes on the wire of every bus backend),
    /// with what the buses route by. The payload's text is copied in as it
    /// is, not encoded again.
    pub fn encode(&self) -> Encoded {
        Encoded {
            id: self.id,
            kind: self.kind.clone(),
            key: self.ordering_key(),
            bytes: Bytes::from(serde_json::to_vec(self).expect("an envelope always serializes")),
        }
    }

    /// Decode from JSON bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// `value` as JSON text (wire types always serialize).
pub(crate) fn raw(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("wire types serialize")
}

fn first_version() -> u32 {
    1
}

fn ordering_key(room: Option<RoomId>, user: Option<UserId>) -> Option<uuid::Uuid> {
    room.map(|r| r.0).or_else(|| user.map(|u| u.0))
}

fn key_hash(key: Option<uuid::Uuid>) -> i64 {
    key.map_or(0, |k| ordering_hash(k.as_bytes()))
}

/// An envelope encoded once, as the outbox stores it and the buses carry
/// it: its bytes, and the two things a bus routes by, read off them
/// without touching the payload. Cloning shares the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The envelope's id (message ids for engine-side duplicate dropping).
    pub id: EnvelopeId,
    /// Its `type` (for engines that label messages).
    pub kind: Kind,
    /// Its [`Envelope::ordering_key`].
    pub key: Option<uuid::Uuid>,
    /// The envelope's JSON.
    pub bytes: Bytes,
}

/// The routing fields of an encoded envelope (serde skips the rest,
/// payload included, without building anything).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    id: EnvelopeId,
    #[serde(rename = "type")]
    kind: Kind,
    #[serde(default)]
    room_id: Option<RoomId>,
    #[serde(default)]
    user_id: Option<UserId>,
}

impl Encoded {
    /// Stored bytes of an envelope, with their routing fields read off them.
    pub fn peek(bytes: impl Into<Bytes>) -> Result<Self, serde_json::Error> {
        let bytes = bytes.into();
        let head: Head = serde_json::from_slice(&bytes)?;
        Ok(Self {
            id: head.id,
            kind: head.kind,
            key: ordering_key(head.room_id, head.user_id),
            bytes,
        })
    }

    /// [`Envelope::ordering_hash`] of this envelope.
    pub fn ordering_hash(&self) -> i64 {
        key_hash(self.key)
    }

    /// The envelope itself.
    pub fn decode(&self) -> Result<Envelope, serde_json::Error> {
        Envelope::from_bytes(&self.bytes)
    }
}

/// FNV-1a (32-bit) of `bytes`, masked to 31 bits so that it fits a signed
/// 32-bit column on every database.
pub fn ordering_hash(bytes: &[u8]) -> i64 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i64::from(h & 0x7fff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_wire_shape_is_the_documented_one() {
        let room = RoomId::new();
        let env = Envelope::to_room(Kind::ReceiveMessage, room, json!({"body": "hi"}));
        let enc = env.encode();
        let v: Value = serde_json::from_slice(&enc.bytes).unwrap();
        assert_eq!(v["type"], "receiveMessage");
        assert_eq!(v["roomId"], room.to_string());
        assert!(v.get("userId").is_none());
        assert_eq!(v["payload"]["body"], "hi");
        assert!(v["ts"].as_i64().unwrap() > 0);
        assert_eq!(Envelope::from_bytes(&enc.bytes).unwrap(), env);
        assert_eq!(enc.decode().unwrap(), env);
    }

    #[test]
    fn the_payload_passes_through_as_the_text_it_was() {
        // Spacing and key order a serializer would not write survive a round trip.
        let text = br#"{"v":1,"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","type":"typing","roomId":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c","payload":{ "z": 1,  "a": [2] },"ts":5}"#;
        let env = Envelope::from_bytes(text).unwrap();
        assert_eq!(env.payload.get(), r#"{ "z": 1,  "a": [2] }"#);
        assert_eq!(env.payload_value()["a"][0], 2);
        let again = Envelope::from_bytes(&env.encode().bytes).unwrap();
        assert_eq!(again.payload.get(), env.payload.get());
    }

    #[test]
    fn peeking_reads_the_routing_fields_only() {
        let (room, user) = (RoomId::new(), UserId::new());
        let env = Envelope::to_room(Kind::ReceiveMessage, room, json!({"deep": {"x": [1, 2]}}));
        let peeked = Encoded::peek(env.encode().bytes).unwrap();
        assert_eq!(peeked, env.encode());
        assert_eq!(peeked.key, Some(room.0));
        assert_eq!(peeked.ordering_hash(), env.ordering_hash());
        let to_user = Envelope::to_user(Kind::Presence, user, json!({}));
        assert_eq!(
            Encoded::peek(to_user.encode().bytes).unwrap().key,
            Some(user.0)
        );
        assert!(Encoded::peek(&b"{\"id\":1}"[..]).is_err());
    }

    #[test]
    fn every_envelope_gets_its_own_id() {
        let u = UserId::new();
        let a = Envelope::to_user(Kind::RoomUpdated, u, Value::Null);
        let b = Envelope::to_user(Kind::RoomUpdated, u, Value::Null);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn the_ordering_key_is_the_room_then_the_user() {
        let (room, user) = (RoomId::new(), UserId::new());
        let to_room = Envelope::to_room(Kind::ReceiveMessage, room, json!({}));
        assert_eq!(to_room.ordering_key(), Some(room.0));
        let mut both = Envelope::to_user(Kind::RoomRemoved, user, json!({}));
        both.room_id = Some(room);
        assert_eq!(both.ordering_key(), Some(room.0));
        assert_eq!(both.ordering_hash(), to_room.ordering_hash());
        let to_user = Envelope::to_user(Kind::Presence, user, json!({}));
        assert_eq!(to_user.ordering_key(), Some(user.0));
        assert!((0..=i64::from(i32::MAX)).contains(&to_user.ordering_hash()));
        // Fixed forever: rows stored by one version are partitioned the same by the next.
        assert_eq!(ordering_hash(b""), 0x811c_9dc5 & 0x7fff_ffff);
        assert_eq!(ordering_hash(b"a"), 0xe40c_292c & 0x7fff_ffff);
    }

    #[test]
    fn malformed_envelopes_are_errors_not_panics() {
        assert!(Envelope::from_bytes(b"").is_err());
        assert!(Envelope::from_bytes(b"{\"type\":1}").is_err());
        assert!(Envelope::from_bytes(&[0xff, 0x00]).is_err());
        assert!(Encoded::peek(&[0xff, 0x00][..]).is_err());
    }
}
