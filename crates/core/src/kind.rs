//! [`Kind`]: the `type` of an envelope, parsed once into an enum.
//!
//! Every event and command name of the contract is one variant; a name this
//! build does not know is kept as [`Kind::Unknown`] (so it can be logged and
//! skipped, see [`crate::contract`]), never an error. The tiers `match` on
//! the variants; the name itself is only written (to the wire, to a
//! Socket.IO frame) through [`Kind::as_str`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `type` of an envelope.
///
/// `chat.out` events (API → realtime → sockets) name the Socket.IO event the
/// realtime tier emits; `chat.in` commands (realtime → API) carry the
/// socket's user id in the envelope's `userId`, set by the realtime tier from
/// the verified token, never from a payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `chat.out`, room: a new message. Payload: a [`crate::Message`].
    ReceiveMessage,
    /// `chat.out`, room: a message was edited. Payload: the [`crate::Message`].
    MessageUpdated,
    /// `chat.out`, room: a message was deleted. Payload: the
    /// [`crate::Message`], body `""`, `deletedAt` set, seq kept.
    MessageDeleted,
    /// `chat.out`, room. Payload: a [`crate::ReactionEvent`].
    ReactionAdded,
    /// `chat.out`, room. Payload: a [`crate::ReactionEvent`].
    ReactionRemoved,
    /// `chat.out`, room: a member's read marker moved. Payload: a
    /// [`crate::ReadUpdate`].
    MessageReadUpdate,
    /// `chat.out`, user: a room of the user was created or changed (members,
    /// name, roles, a new message, their unread count). Payload: a
    /// [`crate::RoomView`] as that user sees it.
    RoomUpdated,
    /// `chat.out`, room: internal, never emitted as is. One envelope stands
    /// for a `roomUpdated` to each member named in its payload (a
    /// [`crate::RoomUpdates`]): the realtime tier builds each member's
    /// [`crate::RoomView`] and emits it to that member's `user:<id>`
    /// sockets on this node. A message to a room of 100 is then two
    /// envelopes on `chat.out`, not 101.
    RoomUpdatedMany,
    /// `chat.out`, room **and** user: `userId` left or was removed from
    /// `roomId`. The realtime tier first takes every socket of the user out
    /// of the room, then emits to `user:<id>` only. Payload: a
    /// [`crate::RoomRemoved`].
    RoomRemoved,
    /// `chat.out`, room: published by the realtime tier itself (not stored);
    /// emitted to the room's sockets except the typer's. Payload: a
    /// [`crate::Typing`].
    Typing,
    /// `chat.out`, user: a co-member went online or offline. Payload: a
    /// [`crate::Presence`].
    Presence,
    /// `chat.out`, user: the user was invited to a room (they chose
    /// `addPolicy: "invite"`). Payload: a [`crate::Invitation`].
    InvitationReceived,
    /// `chat.out`, user: the user's invitation was accepted or declined (by
    /// them, on any device). Payload: a [`crate::InvitationRemoved`].
    InvitationRemoved,
    /// `chat.out`, user: one of the user's login sessions ended (logout,
    /// log out everywhere, a password change, a reused refresh token). The
    /// realtime tier emits it to `user:<id>`, then disconnects the sockets
    /// of that session. Payload: a [`crate::SessionRevoked`].
    SessionRevoked,
    /// `chat.in`: post a message. Payload: a [`crate::SendMessage`].
    SendMessage,
    /// `chat.in`: move the user's read marker. Payload: a
    /// [`crate::MarkMessageRead`].
    MarkMessageRead,
    /// `chat.in`: the user's first socket on a node connected (`online:
    /// true`) or its last one disconnected (`false`). Payload: a
    /// [`crate::contract::PresenceChanged`] (`at`: the node's clock; a
    /// change older than the stored one for that user and node is ignored,
    /// so reordering is harmless).
    PresenceChanged,
    /// `chat.in`: a realtime node is alive. Payload: a
    /// [`crate::contract::NodeHeartbeat`]. Sent every few seconds; a node
    /// silent for longer than the API's `presence.node_timeout_secs` is
    /// taken as gone, its users offline.
    NodeHeartbeat,
    /// A name this build does not know (from a newer node).
    Unknown(Box<str>),
}

/// Every known kind with its name, in one table.
const NAMES: &[(Kind, &str)] = &[
    (Kind::ReceiveMessage, "receiveMessage"),
    (Kind::MessageUpdated, "messageUpdated"),
    (Kind::MessageDeleted, "messageDeleted"),
    (Kind::ReactionAdded, "reactionAdded"),
    (Kind::ReactionRemoved, "reactionRemoved"),
    (Kind::MessageReadUpdate, "messageReadUpdate"),
    (Kind::RoomUpdated, "roomUpdated"),
    (Kind::RoomUpdatedMany, "roomUpdatedMany"),
    (Kind::RoomRemoved, "roomRemoved"),
    (Kind::Typing, "typing"),
    (Kind::Presence, "presence"),
    (Kind::InvitationReceived, "invitationReceived"),
    (Kind::InvitationRemoved, "invitationRemoved"),
    (Kind::SessionRevoked, "sessionRevoked"),
    (Kind::SendMessage, "sendMessage"),
    (Kind::MarkMessageRead, "markMessageRead"),
    (Kind::PresenceChanged, "presenceChanged"),
    (Kind::NodeHeartbeat, "nodeHeartbeat"),
];

impl Kind {
    /// The kind named `name` ([`Kind::Unknown`] if none is).
    pub fn parse(name: &str) -> Self {
        NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map_or_else(|| Self::Unknown(name.into()), |(k, _)| k.clone())
    }

    /// The name on the wire (and of the Socket.IO event emitted).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unknown(name) => name,
            known => NAMES
                .iter()
                .find(|(k, _)| k == known)
                .map_or("", |(_, n)| n),
        }
    }

    /// Whether events of this kind go into their room's event log with an
    /// `eventSeq`, and are replayed to a client that rejoins with
    /// `sinceEventSeq` (issue #7). `typing` (ephemeral) and the per-user
    /// events are not.
    pub fn is_logged(&self) -> bool {
        matches!(
            self,
            Self::ReceiveMessage
                | Self::MessageUpdated
                | Self::MessageDeleted
                | Self::ReactionAdded
                | Self::ReactionRemoved
                | Self::MessageReadUpdate
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Kind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event or command name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Kind, E> {
                Ok(Kind::parse(v))
            }
        }
        d.deserialize_str(Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_unknown_ones_are_kept() {
        for (kind, name) in NAMES {
            assert_eq!(Kind::parse(name), *kind);
            assert_eq!(kind.as_str(), *name);
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), *kind);
        }
        let other = Kind::parse("teleport");
        assert_eq!(other, Kind::Unknown("teleport".into()));
        assert_eq!(other.as_str(), "teleport");
        assert!(!other.is_logged());
        assert!(serde_json::from_str::<Kind>("1").is_err());
    }

    #[test]
    fn the_logged_kinds_are_the_room_events_that_are_replayed() {
        let logged: Vec<&str> = NAMES
            .iter()
            .filter(|(k, _)| k.is_logged())
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(
            logged,
            [
                "receiveMessage",
                "messageUpdated",
                "messageDeleted",
                "reactionAdded",
                "reactionRemoved",
                "messageReadUpdate"
            ]
        );
    }
}
