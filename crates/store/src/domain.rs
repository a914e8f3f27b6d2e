//! The chat rules that do not depend on SQL: who may do what to a room or a
//! message, the `chat.out` events ([`ChatOut`]) each change queues, a room as one member
//! sees it ([`RoomState::view`]), the room-list cursor and DM keys.
//!
//! Everything here is pure; [`crate::sql`] reads rows into these types, asks
//! these functions, and writes what they return.

use std::collections::BTreeMap;

use roomcast_core::{
    ChatOut, Message, Presence, ReactionEvent, ReadUpdate, Role, Room, RoomId, RoomKind,
    RoomRemoved, RoomUpdates, RoomView, UserId,
};

use crate::StoreError;

/// A room with every member's read marker and its latest message: enough
/// to build [`RoomView`] for any member.
#[derive(Clone, Debug)]
pub(crate) struct RoomState {
    /// The room (members in joining order, roles).
    pub room: Room,
    /// `last_activity_at` in Unix ms (for the room-list cursor).
    pub activity_ms: i64,
    /// Each member's read marker.
    pub read: BTreeMap<UserId, i64>,
    /// The message with seq `last_seq`, if any.
    pub last_message: Option<Message>,
}

impl RoomState {
    /// `user`'s role, if a member.
    pub fn role(&self, user: UserId) -> Option<Role> {
        self.room.roles.get(&user).copied()
    }

    /// `user`'s role; [`StoreError::Forbidden`] if not a member.
    pub fn member(&self, user: UserId) -> Result<Role, StoreError> {
        self.role(user).ok_or_else(not_member)
    }

    /// The room as `user` sees it.
    pub fn view(&self, user: UserId) -> RoomView {
        let read_seq = self.read.get(&user).copied().unwrap_or(0);
        RoomView::new(self.room.clone(), read_seq, self.last_message.clone())
    }

    /// `roomUpdated` to every member, each with their own view: one
    /// `roomUpdatedMany` event (to the room) that the realtime tier turns
    /// into each member's `roomUpdated`.
    pub fn updated_to_all(&self) -> ChatOut {
        let updates = RoomUpdates {
            room: self.room.clone(),
            last_message: self.last_message.clone(),
            reads: self
                .room
                .members
                .iter()
                .map(|m| (*m, self.read.get(m).copied().unwrap_or(0)))
                .collect(),
        };
        ChatOut::RoomUpdatedMany(Box::new(updates))
    }
}

// ---- Refusals -------------------------------------------------------------

/// Unknown room (or one the caller cannot know of).
pub(crate) fn no_room() -> StoreError {
    StoreError::NotFound("no such room".into())
}

/// Unknown message, or not in this room.
pub(crate) fn no_message() -> StoreError {
    StoreError::NotFound("no such message in this room".into())
}

/// The caller is not (or no longer) a member.
pub(crate) fn not_member() -> StoreError {
    StoreError::Forbidden("you are not a member of this room".into())
}

/// Membership, names and roles of a DM do not change.
pub(crate) fn require_group(room: &Room) -> Result<(), StoreError> {
    match room.kind {
        RoomKind::Group => Ok(()),
        RoomKind::Dm => Err(StoreError::Invalid(
            "a direct message room's members, name and roles cannot change".into(),
        )),
    }
}

/// Owner or admin.
pub(crate) fn require_manager(role: Role) -> Result<(), StoreError> {
    if role.manages() {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "only the room's owner or an admin may do this".into(),
        ))
    }
}

/// Whether `actor` (with `actor_role`) may take `user` (with `user_role`)
/// out of a room of `members` members; `actor == user` is leaving.
pub(crate) fn may_remove(
    actor: UserId,
    actor_role: Role,
    user: UserId,
    user_role: Role,
    members: usize,
) -> Result<(), StoreError> {
    if actor == user {
        if user_role == Role::Owner && members > 1 {
            return Err(StoreError::Conflict(
                "the owner cannot leave while other members remain".into(),
            ));
        }
        return Ok(());
    }
    match (actor_role, user_role) {
        (_, Role::Owner) => Err(StoreError::Forbidden(
            "the room's owner cannot be removed".into(),
        )),
        (Role::Owner, _) | (Role::Admin, Role::Member) => Ok(()),
        (Role::Admin, Role::Admin) => Err(StoreError::Forbidden(
            "only the owner may remove an admin".into(),
        )),
        (Role::Member, _) => Err(StoreError::Forbidden(
            "only the room's owner or an admin may remove members".into(),
        )),
    }
}

/// Whether `actor_role` may give `user_role` the role `to`.
pub(crate) fn may_set_role(actor_role: Role, user_role: Role, to: Role) -> Result<(), StoreError> {
    if actor_role != Role::Owner {
        return Err(StoreError::Forbidden(
            "only the room's owner may change roles".into(),
        ));
    }
    if to == Role::Owner {
        return Err(StoreError::Invalid("a role is admin or member".into()));
    }
    if user_role == Role::Owner {
        return Err(StoreError::Invalid("the owner's role cannot change".into()));
    }
    Ok(())
}

/// Whether `actor` may edit `msg`: its sender, while not deleted.
pub(crate) fn may_edit(actor: UserId, msg: &Message) -> Result<(), StoreError> {
    if msg.sender_id != actor {
        return Err(StoreError::Forbidden(
            "only its sender may edit a message".into(),
        ));
    }
    if msg.deleted_at.is_some() {
        return Err(deleted());
    }
    Ok(())
}

/// Whether `actor` (with `role`) may delete `msg`: its sender, an owner or an admin.
pub(crate) fn may_delete(actor: UserId, role: Role, msg: &Message) -> Result<(), StoreError> {
    if msg.sender_id == actor || role.manages() {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "only its sender, the owner or an admin may delete a message".into(),
        ))
    }
}

/// The message is deleted (no edits, no reactions).
pub(crate) fn deleted() -> StoreError {
    StoreError::Conflict("the message is deleted".into())
}

/// `replyTo` names no message of this room.
pub(crate) fn bad_reply() -> StoreError {
    StoreError::Invalid("replyTo must be a message of this room".into())
}

// ---- Events ---------------------------------------------------------------

/// `roomUpdated` to `to`, carrying the room as `to` sees it.
pub(crate) fn room_updated(to: UserId, view: RoomView) -> ChatOut {
    ChatOut::RoomUpdated {
        to,
        view: Box::new(view),
    }
}

/// `roomRemoved`: targets both `room:<room>` and `user:<user>` (the realtime
/// tier takes the user's sockets out of the room, then tells the user).
pub(crate) fn room_removed(room: RoomId, user: UserId) -> ChatOut {
    ChatOut::RoomRemoved(RoomRemoved {
        room_id: room,
        user_id: user,
    })
}

/// `reactionAdded` (`added`) or `reactionRemoved` to the message's room.
pub(crate) fn reaction_event(added: bool, msg: &Message, user: UserId, emoji: &str) -> ChatOut {
    let event = ReactionEvent {
        room_id: msg.room_id,
        message_id: msg.id,
        seq: msg.seq,
        user_id: user,
        emoji: emoji.to_owned(),
    };
    if added {
        ChatOut::ReactionAdded(event)
    } else {
        ChatOut::ReactionRemoved(event)
    }
}

/// `messageReadUpdate`: `user` has read `room` up to `seq`.
pub(crate) fn read_update(room: RoomId, user: UserId, seq: i64) -> ChatOut {
    ChatOut::MessageReadUpdate(ReadUpdate {
        room_id: room,
        user_id: user,
        seq,
    })
}

/// `presence` to `to` about `p.user_id`.
pub(crate) fn presence(to: UserId, p: &Presence) -> ChatOut {
    ChatOut::Presence {
        to,
        presence: p.clone(),
    }
}

// ---- Rooms: members, DMs, the list cursor -----------------------------------

/// `creator` then `members` without repeats, in order.
pub(crate) fn members_in_order(creator: UserId, members: &[UserId]) -> Vec<UserId> {
    let mut all = vec![creator];
    for m in members {
        if !all.contains(m) {
            all.push(*m);
        }
    }
    all
}

/// The key that makes a DM unique per pair: the two ids sorted, joined.
pub(crate) fn dm_key(a: UserId, b: UserId) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// A DM's name: the two usernames in alphabetical order, `"alice, bob"`.
pub(crate) fn dm_name(a: &str, b: &str) -> String {
    let mut names = [a, b];
    names.sort_by_key(|n| (n.to_lowercase(), n.to_string()));
    names.join(", ")
}

/// The room-list cursor after a room with this activity time and id.
pub(crate) fn encode_cursor(activity_ms: i64, room: RoomId) -> String {
    format!("{activity_ms}.{room}")
}

/// Parse a room-list cursor; a malformed one is [`StoreError::Invalid`].
pub(crate) fn decode_cursor(cursor: &str) -> Result<(i64, RoomId), StoreError> {
    let bad = || StoreError::Invalid("malformed room-list cursor".into());
    let (ms, room) = cursor.split_once('.').ok_or_else(bad)?;
    Ok((
        ms.parse().map_err(|_| bad())?,
        room.parse().map_err(|_| bad())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_round_trips_and_garbage_is_invalid() {
        let room = RoomId::new();
        let c = encode_cursor(1_700_000_000_123, room);
        assert_eq!(decode_cursor(&c).unwrap(), (1_700_000_000_123, room));
        for bad in ["", "12", "x.y", "12.not-a-uuid", &format!("x.{room}")] {
            assert!(
                matches!(decode_cursor(bad), Err(StoreError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn dm_keys_ignore_order_and_names_sort() {
        let (a, b) = (UserId::new(), UserId::new());
        assert_eq!(dm_key(a, b), dm_key(b, a));
        assert_ne!(dm_key(a, b), dm_key(a, UserId::new()));
        assert_eq!(dm_name("bob", "Alice"), "Alice, bob");
    }

    #[test]
    fn who_may_remove_whom() {
        use Role::*;
        let (a, b) = (UserId::new(), UserId::new());
        let ok = |ar, ur| may_remove(a, ar, b, ur, 3).is_ok();
        assert!(ok(Owner, Admin) && ok(Owner, Member) && ok(Admin, Member));
        assert!(!ok(Admin, Admin) && !ok(Admin, Owner) && !ok(Member, Member));
        assert!(may_remove(a, Member, a, Member, 3).is_ok(), "anyone leaves");
        assert!(matches!(
            may_remove(a, Owner, a, Owner, 2),
            Err(StoreError::Conflict(_))
        ));
        assert!(
            may_remove(a, Owner, a, Owner, 1).is_ok(),
            "alone, the owner leaves"
        );
    }

    #[test]
    fn only_the_owner_sets_roles_and_never_owner() {
        use Role::*;
        assert!(may_set_role(Owner, Member, Admin).is_ok());
        assert!(matches!(
            may_set_role(Admin, Member, Admin),
            Err(StoreError::Forbidden(_))
        ));
        assert!(matches!(
            may_set_role(Owner, Member, Owner),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            may_set_role(Owner, Owner, Admin),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn room_removed_targets_room_and_user() {
        let (room, user) = (RoomId::new(), UserId::new());
        let env = room_removed(room, user).envelope(None);
        assert_eq!((env.room_id, env.user_id), (Some(room), Some(user)));
        assert_eq!(env.payload_value()["userId"], user.to_string());
    }
}
