//! The bus envelope: the one JSON shape that crosses `chat.out` and `chat.in`.
//!
//! ```json
//! {"v":1,"id":"0190…","type":"receiveMessage","roomId":"0190…","payload":{…},"ts":1732760000000}
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
//! - `v` is the contract version (see [`crate::contract`]): a consumer skips
//!   a newer one, and a `type` it does not know, with one log line per kind.

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
///
/// `chat.out` events (API → realtime → sockets) name the Socket.IO event the
/// realtime tier emits; `chat.in` commands (realtime → API) carry the socket's
/// user id in [`Envelope::user_id`], set by the realtime tier from the verified
/// token, never from a payload.
pub mod events {
    /// `chat.out`, room: a new message. Payload: a [`crate::Message`].
    pub const RECEIVE_MESSAGE: &str = "receiveMessage";
    /// `chat.out`, room: a message was edited. Payload: the [`crate::Message`].
    pub const MESSAGE_UPDATED: &str = "messageUpdated";
    /// `chat.out`, room: a message was deleted. Payload: the
    /// [`crate::Message`], body `""`, `deletedAt` set, seq kept.
    pub const MESSAGE_DELETED: &str = "messageDeleted";
    /// `chat.out`, room. Payload: a [`crate::wire::ReactionEvent`].
    pub const REACTION_ADDED: &str = "reactionAdded";
    /// `chat.out`, room. Payload: a [`crate::wire::ReactionEvent`].
    pub const REACTION_REMOVED: &str = "reactionRemoved";
    /// `chat.out`, room: a member's read marker moved. Payload: a
    /// [`crate::wire::ReadUpdate`].
    pub const MESSAGE_READ_UPDATE: &str = "messageReadUpdate";
    /// `chat.out`, user: a room of the user was created or changed (members,
    /// name, roles, a new message, their unread count). Payload: a
    /// [`crate::wire::RoomView`] as that user sees it.
    pub const ROOM_UPDATED: &str = "roomUpdated";
    /// `chat.out`, room: internal, never emitted as is. One envelope stands
    /// for a `roomUpdated` to each member named in its payload (a
    /// [`crate::wire::RoomUpdates`]): the realtime tier builds each member's
    /// [`crate::wire::RoomView`] and emits it to that member's `user:<id>`
    /// sockets on this node. A message to a room of 100 is then two
    /// envelopes on `chat.out`, not 101.
    pub const ROOM_UPDATED_MANY: &str = "roomUpdatedMany";
    /// `chat.out`, room **and** user: `userId` left or was removed from
    /// `roomId`. The realtime tier first takes every socket of the user out of
    /// the room, then emits to `user:<id>` only. Payload: a
    /// [`crate::wire::RoomRemoved`].
    pub const ROOM_REMOVED: &str = "roomRemoved";
    /// `chat.out`, room: published by the realtime tier itself (not stored);
    /// emitted to the room's sockets except the typer's. Payload: a
    /// [`crate::wire::Typing`].
    pub const TYPING: &str = "typing";
    /// `chat.out`, user: a co-member went online or offline. Payload: a
    /// [`crate::wire::Presence`].
    pub const PRESENCE: &str = "presence";

    /// The room-scoped events that are stored in the room's event log with
    /// an `eventSeq`, and replayed to a client that rejoins with
    /// `sinceEventSeq` (issue #7). `typing` (ephemeral) and the per-user
    /// events are not.
    pub const LOGGED: &[&str] = &[
        RECEIVE_MESSAGE,
        MESSAGE_UPDATED,
        MESSAGE_DELETED,
        REACTION_ADDED,
        REACTION_REMOVED,
        MESSAGE_READ_UPDATE,
    ];

    /// `chat.in`: post a message. Payload `{roomId, clientMsgId, body, replyTo?}`.
    pub const SEND_MESSAGE: &str = "sendMessage";
    /// `chat.in`: move the user's read marker. Payload `{roomId, seq}`.
    pub const MARK_MESSAGE_READ: &str = "markMessageRead";
    /// `chat.in`: the user's first socket on a node connected (`online:
    /// true`) or its last one disconnected (`false`). Payload `{node, online,
    /// at}` (`at`: the node's clock, Unix ms; a change older than the stored
    /// one for that user and node is ignored, so reordering is harmless).
    pub const PRESENCE_CHANGED: &str = "presenceChanged";
    /// `chat.in`: a realtime node is alive. Payload `{node, at}`. Sent every
    /// few seconds; a node silent for longer than the API's
    /// `presence.node_timeout_secs` is taken as gone, its users offline.
    pub const NODE_HEARTBEAT: &str = "nodeHeartbeat";
}

/// One event or command on the bus.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// The contract version it was written for (absent: 1); see
    /// [`crate::contract`].
    #[serde(default = "first_version")]
    pub v: u32,
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
    /// The event's position in its room's event log (see
    /// [`events::LOGGED`]): per room, gap-free, assigned in the transaction
    /// that stored the event. Also in the payload, as `eventSeq`, for
    /// clients. `None` for events that are not logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<i64>,
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
            v: crate::contract::ENVELOPE_VERSION,
            id: EnvelopeId::new(),
            kind: kind.to_owned(),
            room_id,
            user_id,
            payload,
            ts: crate::now_ms(),
            event_seq: None,
        }
    }

    /// Whether this event goes into its room's event log (and so gets an
    /// `eventSeq`).
    pub fn is_logged(&self) -> bool {
        self.room_id.is_some() && events::LOGGED.contains(&self.kind.as_str())
    }

    /// Give the event its log position: on the envelope and, for clients,
    /// as `eventSeq` in an object payload.
    pub fn set_event_seq(&mut self, seq: i64) {
        self.event_seq = Some(seq);
        if let Value::Object(map) = &mut self.payload {
            map.insert("eventSeq".into(), Value::from(seq));
        }
    }

    /// What the bus keeps this envelope in order with: its room if it has
    /// one, else its user (`None`: neither, never emitted). Envelopes with
    /// the same key reach consumers in the order they were stored; nothing
    /// holds across keys.
    pub fn ordering_key(&self) -> Option<uuid::Uuid> {
        self.room_id
            .map(|r| r.0)
            .or_else(|| self.user_id.map(|u| u.0))
    }

    /// A stable 31-bit hash of [`Envelope::ordering_key`] (0 without one):
    /// the outbox partition of the envelope is this modulo the partition
    /// count. FNV-1a over the key's 16 bytes, so it is the same in every
    /// process and version.
    pub fn ordering_hash(&self) -> i64 {
        self.ordering_key()
            .map_or(0, |k| ordering_hash(k.as_bytes()))
    }

    /// Encode as JSON bytes (what goes on the wire of every bus backend).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// Decode from JSON bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The events this envelope stands for, as users receive them: a
    /// `roomUpdatedMany` becomes one `roomUpdated` (user target) per member it
    /// names, in user-id order (a malformed one becomes nothing); any other
    /// envelope is itself.
    pub fn expand(self) -> Vec<Envelope> {
        if self.kind != events::ROOM_UPDATED_MANY {
            return vec![self];
        }
        let Ok(updates) = serde_json::from_value::<crate::RoomUpdates>(self.payload) else {
            return Vec::new();
        };
        updates
            .views()
            .map(|(user, view)| {
                let payload = serde_json::to_value(view).expect("wire types serialize");
                Envelope::to_user(events::ROOM_UPDATED, user, payload)
            })
            .collect()
    }
}

fn first_version() -> u32 {
    1
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
    fn room_updated_many_expands_to_each_members_own_view() {
        use crate::{Role, Room, RoomKind, RoomUpdates};
        let (a, b, room) = (UserId::new(), UserId::new(), RoomId::new());
        let updates = RoomUpdates {
            room: Room {
                id: room,
                kind: RoomKind::Dm,
                name: "a, b".into(),
                members: vec![a, b],
                roles: [(a, Role::Member), (b, Role::Member)].into(),
                last_seq: 5,
                created_at: "t0".into(),
                last_activity_at: "t1".into(),
            },
            last_message: None,
            reads: [(a, 5), (b, 2)].into(),
        };
        let payload = serde_json::to_value(&updates).unwrap();
        let told = Envelope::to_room(events::ROOM_UPDATED_MANY, room, payload).expand();
        assert_eq!(told.len(), 2);
        for e in &told {
            assert_eq!(e.kind, events::ROOM_UPDATED);
            assert_eq!(e.room_id, None);
            let user = e.user_id.unwrap();
            let read = if user == a { 5 } else { 2 };
            assert_eq!(e.payload["readSeq"], read);
            assert_eq!(e.payload["unreadCount"], 5 - read);
        }
        let other = Envelope::to_room(events::RECEIVE_MESSAGE, room, json!({}));
        assert_eq!(other.clone().expand(), vec![other]);
        let garbled = Envelope::to_room(events::ROOM_UPDATED_MANY, room, json!([]));
        assert!(garbled.expand().is_empty());
    }

    #[test]
    fn the_ordering_key_is_the_room_then_the_user() {
        let (room, user) = (RoomId::new(), UserId::new());
        let to_room = Envelope::to_room(events::RECEIVE_MESSAGE, room, json!({}));
        assert_eq!(to_room.ordering_key(), Some(room.0));
        let mut both = Envelope::to_user(events::ROOM_REMOVED, user, json!({}));
        both.room_id = Some(room);
        assert_eq!(both.ordering_key(), Some(room.0));
        assert_eq!(both.ordering_hash(), to_room.ordering_hash());
        let to_user = Envelope::to_user(events::PRESENCE, user, json!({}));
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
    }
}
