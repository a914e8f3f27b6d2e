//! A member's standing in a room: joining (added by a manager), leaving or
//! being removed, roles, and the read marker.

use roomcast_core::{AddPolicy, Role, Room, RoomId, UserId};

use super::query::Sql;
use super::rooms::{Change, announce, change_group, insert_member, lock_group};
use super::{Dialect, SqlStore, invitations, load, outbox};
use crate::domain;
use crate::{ReadMarked, StoreError};

/// Add `users` (owner/admin, group rooms): those who let anyone add them
/// become members, the others are invited. A new member's read marker
/// starts at the room's latest message: what was said before they joined is
/// not counted as unread.
pub(super) async fn add<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    actor: UserId,
    users: &[UserId],
) -> Result<Room, StoreError> {
    let users = users.to_vec();
    let default = s.add_policy;
    s.write(move |tx| {
        Box::pin(async move {
            let (state, role) = lock_group::<D>(tx, room, actor).await?;
            domain::require_manager(role)?;
            let policies = invitations::policies::<D>(tx, &users, default).await?;
            let mut added = 0;
            let mut invites = Vec::new();
            for (user, policy) in users.iter().zip(policies) {
                if state.role(*user).is_some() {
                    continue;
                }
                match policy {
                    AddPolicy::Anyone => {
                        let last = state.room.last_seq;
                        added += insert_member::<D>(tx, room, *user, Role::Member, last).await?;
                    }
                    AddPolicy::Invite => {
                        invites
                            .extend(invitations::invite::<D>(tx, &state.room, actor, *user).await?);
                    }
                }
            }
            outbox::queue::<D>(tx, invites).await?;
            if added == 0 {
                return Ok(state.room);
            }
            let state = announce::<D>(tx, room).await?;
            Ok(state.room)
        })
    })
    .await
}

pub(super) async fn remove<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    actor: UserId,
    user: UserId,
) -> Result<Room, StoreError> {
    change_group(s, room, actor, move |state, actor_role| {
        let user_role = state.role(user).ok_or_else(no_member)?;
        let members = state.room.members.len();
        domain::may_remove(actor, actor_role, user, user_role, members)?;
        let delete = Sql::new("DELETE FROM room_members WHERE room_id = $1 AND user_id = $2")
            .text(room)
            .text(user);
        Ok(Some(
            Change::new(delete).first(domain::room_removed(room, user)),
        ))
    })
    .await
}

pub(super) async fn set_role<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    actor: UserId,
    user: UserId,
    to: Role,
) -> Result<Room, StoreError> {
    change_group(s, room, actor, move |state, actor_role| {
        let Some(user_role) = state.role(user) else {
            // Refused as for any member first: only the owner learns "no such member".
            domain::may_set_role(actor_role, Role::Member, to)?;
            return Err(no_member());
        };
        domain::may_set_role(actor_role, user_role, to)?;
        let update =
            Sql::new("UPDATE room_members SET role = $1 WHERE room_id = $2 AND user_id = $3")
                .text(to.as_str())
                .text(room)
                .text(user);
        Ok((user_role != to).then(|| Change::new(update)))
    })
    .await
}

fn no_member() -> StoreError {
    StoreError::NotFound("no such member of this room".into())
}

/// Move `user`'s marker forward to `seq`, capped at the room's latest seq.
/// The room row is locked first (lock order: room, then member, as in
/// posting); the `UPDATE … WHERE read_seq < $seq` keeps the marker moving
/// forward only, each move announced once.
pub(super) async fn mark_read<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    user: UserId,
    seq: i64,
) -> Result<ReadMarked, StoreError> {
    s.write(move |tx| Box::pin(mark_read_in::<D>(tx, room, user, seq)))
        .await
}

async fn mark_read_in<D: Dialect>(
    tx: &mut D::Conn,
    room: RoomId,
    user: UserId,
    seq: i64,
) -> Result<ReadMarked, StoreError> {
    // The room row first, as posting takes it: a move is logged (which
    // updates the room row) after the member row is updated, and taking
    // them in the other order than a concurrent post deadlocked.
    let state = load::existing_room::<D>(tx, room, true).await?;
    state.member(user)?;
    let target = seq.min(state.room.last_seq);
    let moved = advance_read::<D>(tx, room, user, target).await?;
    // Read back in any case: a concurrent mark may have moved it further.
    let state = load::existing_room::<D>(tx, room, false).await?;
    if moved {
        let events = [
            domain::read_update(room, user, state.view(user).read_seq),
            domain::room_updated(user, state.view(user)),
        ];
        outbox::queue::<D>(tx, events).await?;
    }
    let view = state.view(user);
    Ok(ReadMarked {
        moved,
        read_seq: view.read_seq,
        unread_count: view.unread_count,
    })
}

/// Move `user`'s read marker in `room` to `seq` if it is behind; whether it moved.
pub(super) async fn advance_read<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    user: UserId,
    seq: i64,
) -> Result<bool, StoreError> {
    let moved = Sql::new(
        "UPDATE room_members SET read_seq = $1
         WHERE room_id = $2 AND user_id = $3 AND read_seq < $1",
    )
    .int(seq)
    .text(room)
    .text(user)
    .run::<D>(conn)
    .await?;
    Ok(moved > 0)
}
