//! Objects as clients see them (camelCase JSON), over HTTP and Socket.IO alike,
//! and the payloads of the events and commands that carry them.

use std::collections::BTreeMap;

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

/// A member's role in a room.
///
/// - `owner`: the creator of a group room. Everything an admin may do, plus
///   making and unmaking admins. Cannot be removed, and cannot leave while
///   other members remain.
/// - `admin`: adds and removes members (not the owner, not other admins),
///   renames the room, deletes anyone's message.
/// - `member`: posts, reacts, edits and deletes their own messages, leaves.
///
/// Both members of a DM are `member`s; a DM's membership cannot change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Plain member.
    Member,
    /// Manages members and messages.
    Admin,
    /// The room's creator.
    Owner,
}

impl Role {
    /// The wire name, e.g. `"admin"` (also the stored form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Parse the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    /// Owner or admin.
    pub fn manages(self) -> bool {
        self >= Self::Admin
    }
}

/// What kind of room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// A named room with any number of members and roles.
    Group,
    /// A direct conversation between exactly two users; one per pair.
    Dm,
}

impl RoomKind {
    /// The wire name (also the stored form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Dm => "dm",
        }
    }

    /// Parse the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "group" => Some(Self::Group),
            "dm" => Some(Self::Dm),
            _ => None,
        }
    }
}

/// A room with its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// Id.
    pub id: RoomId,
    /// `group` or `dm`.
    pub kind: RoomKind,
    /// Display name (for a DM: the two usernames, `"alice, bob"`).
    pub name: String,
    /// Member ids, the creator included, in joining order.
    pub members: Vec<UserId>,
    /// Every member's role, by user id.
    pub roles: BTreeMap<UserId, Role>,
    /// Sequence number of the room's latest message (0 when empty).
    pub last_seq: i64,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Latest message time, else creation time, RFC 3339.
    pub last_activity_at: String,
}

/// A room as one member sees it: the room, their read marker and unread
/// count, and the latest message. `GET /v1/rooms` lists these, and
/// `roomUpdated` carries one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    /// The room.
    #[serde(flatten)]
    pub room: Room,
    /// The highest seq this member has read (0: nothing).
    pub read_seq: i64,
    /// `lastSeq - readSeq`: messages after the read marker. Posting a message
    /// moves the sender's read marker to it.
    pub unread_count: i64,
    /// The latest message (possibly deleted), or `null` in an empty room.
    pub last_message: Option<Message>,
}

impl RoomView {
    /// `room` as a member whose read marker is `read_seq` sees it; the unread
    /// count is derived (`lastSeq - readSeq`, never below 0).
    pub fn new(room: Room, read_seq: i64, last_message: Option<Message>) -> Self {
        Self {
            unread_count: (room.last_seq - read_seq).max(0),
            room,
            read_seq,
            last_message,
        }
    }
}

/// One page of a user's room list, latest activity first: the body of
/// `GET /v1/rooms`, of the internal `GET /internal/v1/rooms`, and of a
/// `joinUser {rooms: true}` ACK (with `ok`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    /// The rooms, as the user sees them (read marker, unread count).
    pub rooms: Vec<RoomView>,
    /// Cursor of the next page (`GET /v1/rooms?before=`), `null` on the last.
    pub next: Option<String>,
}

/// Payload of the internal `roomUpdatedMany` envelope: one room change told
/// to many members, each of whom sees it with their own read marker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomUpdates {
    /// The room.
    pub room: Room,
    /// The latest message (possibly deleted), or `null` in an empty room.
    pub last_message: Option<Message>,
    /// The members to tell, each with their read marker.
    pub reads: BTreeMap<UserId, i64>,
}

impl RoomUpdates {
    /// The room as `user` sees it, if `user` is to be told.
    pub fn view_for(&self, user: UserId) -> Option<RoomView> {
        let read_seq = *self.reads.get(&user)?;
        Some(RoomView::new(
            self.room.clone(),
            read_seq,
            self.last_message.clone(),
        ))
    }

    /// Each member to tell, with the room as they see it, in user-id order.
    pub fn views(&self) -> impl Iterator<Item = (UserId, RoomView)> + '_ {
        self.reads
            .keys()
            .filter_map(|u| Some((*u, self.view_for(*u)?)))
    }
}

/// One emoji's reactions on a message, as the reader sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionCount {
    /// The emoji (see [`crate::validate::emoji`]).
    pub emoji: String,
    /// How many users reacted with it.
    pub count: i64,
    /// Whether the reader is one of them.
    pub me: bool,
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
    /// Text; `""` once deleted.
    pub body: String,
    /// The sender's idempotency key for this message.
    pub client_msg_id: String,
    /// Creation time, RFC 3339 with milliseconds, UTC.
    pub created_at: String,
    /// The message this one answers (same room), if any.
    #[serde(default)]
    pub reply_to: Option<MessageId>,
    /// Time of the latest edit, if edited.
    #[serde(default)]
    pub edited_at: Option<String>,
    /// Time of deletion, if deleted (the seq stays; the body is gone).
    #[serde(default)]
    pub deleted_at: Option<String>,
    /// Reactions, by emoji in first-reacted order; filled in reads (history),
    /// empty in `receiveMessage`.
    #[serde(default)]
    pub reactions: Vec<ReactionCount>,
}

/// Payload of `reactionAdded` / `reactionRemoved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionEvent {
    /// Room of the message.
    pub room_id: RoomId,
    /// The message.
    pub message_id: MessageId,
    /// Its seq.
    pub seq: i64,
    /// Who reacted.
    pub user_id: UserId,
    /// The emoji.
    pub emoji: String,
}

/// Payload of `messageReadUpdate`: `userId` has read `roomId` up to `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadUpdate {
    /// The room.
    pub room_id: RoomId,
    /// The reader.
    pub user_id: UserId,
    /// Their new read marker.
    pub seq: i64,
}

/// Payload of `roomRemoved`: the recipient is no longer a member of `roomId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomRemoved {
    /// The room.
    pub room_id: RoomId,
    /// The user removed (also the recipient).
    pub user_id: UserId,
}

/// May a token's user connect a socket: the realtime tier's question to the
/// API tier (`GET /internal/v1/admit`) before a CONNECT is accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Admitted {
    /// The user exists, and the token's session (if any) is live.
    Yes,
    /// No such user.
    UnknownUser,
    /// The user exists, but the token's session has ended.
    SessionEnded,
}

/// Payload of `sessionRevoked`: the login session `sessionId` of `userId`
/// (also the recipient) ended; its sockets are disconnected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRevoked {
    /// The user.
    pub user_id: UserId,
    /// The session that ended.
    pub session_id: crate::ids::SessionId,
}

/// Payload of `presence` and an entry of `GET /v1/rooms/{id}/presence`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// The user.
    pub user_id: UserId,
    /// Whether at least one of their sockets is connected, on any node.
    pub online: bool,
    /// When their last socket disconnected (RFC 3339), or `null` if never,
    /// or while online.
    pub last_seen_at: Option<String>,
}

/// Payload of `typing`, both ways: from a client `{roomId, typing}`, to the
/// room's other sockets `{roomId, userId, typing}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    /// The room.
    pub room_id: RoomId,
    /// Who types (set by the server from the token).
    pub user_id: UserId,
    /// Started (`true`) or stopped (`false`).
    pub typing: bool,
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
        /// The room's latest logged position (`eventSeq`).
        #[serde(rename = "lastEventSeq")]
        last_event_seq: i64,
    },
}

/// Payload of the `sendMessage` socket command, and of the `chat.in`
/// envelope it becomes (unknown fields are dropped on the way).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessage {
    /// Target room.
    pub room_id: RoomId,
    /// The sender's idempotency key.
    pub client_msg_id: String,
    /// Text.
    pub body: String,
    /// The message answered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<MessageId>,
}

/// Payload of the `markMessageRead` socket command, and of its `chat.in`
/// envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarkMessageRead {
    /// The room.
    pub room_id: RoomId,
    /// Read up to this seq.
    pub seq: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_names() {
        assert!(Role::Owner.manages() && Role::Admin.manages() && !Role::Member.manages());
        for r in [Role::Member, Role::Admin, Role::Owner] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for k in [RoomKind::Group, RoomKind::Dm] {
            assert_eq!(RoomKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn a_room_view_is_the_room_flattened_with_the_readers_counts() {
        let u = UserId::new();
        let view = RoomView {
            room: Room {
                id: RoomId::new(),
                kind: RoomKind::Group,
                name: "general".into(),
                members: vec![u],
                roles: [(u, Role::Owner)].into(),
                last_seq: 3,
                created_at: "2026-11-28T00:00:00.000Z".into(),
                last_activity_at: "2026-11-28T00:00:01.000Z".into(),
            },
            read_seq: 1,
            unread_count: 2,
            last_message: None,
        };
        let v = serde_json::to_value(&view).unwrap();
        assert_eq!(v["kind"], "group");
        assert_eq!(v["roles"][u.to_string()], "owner");
        assert_eq!(v["unreadCount"], 2);
        assert_eq!(v["lastSeq"], 3);
        assert!(v["lastMessage"].is_null());
        assert_eq!(serde_json::from_value::<RoomView>(v).unwrap(), view);
    }
}
