//! Consent to be added: users' add policies, and the invitations that adding
//! (or opening a DM with) a user who chose `invite` creates instead of a
//! membership (see `roomcast_core::consent`).
//!
//! An invitation is one row per (room, invitee); creating it queues
//! `invitationReceived` to the invitee, ending it (accept or decline) queues
//! `invitationRemoved` to them, each only when the row changed.

use roomcast_core::{
    AddPolicy, ChatOut, Invitation, InvitationEnd, InvitationRemoved, Role, Room, RoomId, RoomKind,
    Settings, UserId, now_ms, rfc3339_ms,
};

use super::query::Sql;
use super::rooms::{announce, insert_member};
use super::{Dialect, SqlStore, load, outbox, users};
use crate::StoreError;

/// The add policy of each of `ids`, in order: their own choice, or
/// `default`. [`StoreError::UnknownUser`] for the first that does not exist.
pub(super) async fn policies<D: Dialect>(
    conn: &mut D::Conn,
    ids: &[UserId],
    default: AddPolicy,
) -> Result<Vec<AddPolicy>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let row = Sql::new("SELECT add_policy FROM users WHERE id = $1")
            .text(id)
            .opt::<D>(conn)
            .await?
            .ok_or(StoreError::UnknownUser(*id))?;
        out.push(policy(row.opt_text("add_policy")?, default)?);
    }
    Ok(out)
}

/// A stored policy (`None`: not chosen, so `default`).
fn policy(stored: Option<String>, default: AddPolicy) -> Result<AddPolicy, StoreError> {
    match stored {
        None => Ok(default),
        Some(s) => AddPolicy::parse(&s)
            .ok_or_else(|| StoreError::Corrupt(format!("users.add_policy {s:?}"))),
    }
}

/// `user`'s settings, `None` if there is no such user.
pub(super) async fn settings<D: Dialect>(
    s: &SqlStore<D>,
    user: UserId,
) -> Result<Option<Settings>, StoreError> {
    let default = s.add_policy;
    let find = Sql::new("SELECT add_policy FROM users WHERE id = $1").text(user);
    let row = s
        .read(move |c| Box::pin(async move { find.opt::<D>(c).await }))
        .await?;
    row.map(|r| {
        Ok(Settings {
            add_policy: policy(r.opt_text("add_policy")?, default)?,
        })
    })
    .transpose()
}

/// Store `user`'s own choice of add policy; their settings after it.
pub(super) async fn set_add_policy<D: Dialect>(
    s: &SqlStore<D>,
    user: UserId,
    to: AddPolicy,
) -> Result<Settings, StoreError> {
    let update = Sql::new("UPDATE users SET add_policy = $1 WHERE id = $2")
        .text(to.as_str())
        .text(user);
    users::update(s, user, update).await?;
    Ok(Settings { add_policy: to })
}

/// Invite `user` to `room` on behalf of `inviter`: the event to queue if the
/// invitation is new, `None` if one was pending already.
pub(super) async fn invite<D: Dialect>(
    conn: &mut D::Conn,
    room: &Room,
    inviter: UserId,
    user: UserId,
) -> Result<Option<ChatOut>, StoreError> {
    let at = now_ms();
    let inserted = Sql::new(
        "INSERT INTO invitations (room_id, user_id, inviter_id, created_at)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .text(room.id)
    .text(user)
    .text(inviter)
    .int(at)
    .run::<D>(conn)
    .await?;
    Ok((inserted > 0).then(|| {
        ChatOut::InvitationReceived(Box::new(Invitation {
            room_id: room.id,
            kind: room.kind,
            name: room.name.clone(),
            inviter_id: inviter,
            user_id: user,
            created_at: rfc3339_ms(at),
        }))
    }))
}

/// Delete `user`'s invitation to `room`: the `invitationRemoved` to queue
/// if there was one.
async fn end<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    user: UserId,
    reason: InvitationEnd,
) -> Result<Option<ChatOut>, StoreError> {
    let deleted = Sql::new("DELETE FROM invitations WHERE room_id = $1 AND user_id = $2")
        .text(room)
        .text(user)
        .run::<D>(conn)
        .await?;
    Ok(
        (deleted > 0).then_some(ChatOut::InvitationRemoved(InvitationRemoved {
            room_id: room,
            user_id: user,
            reason,
        })),
    )
}

/// Make `user` a member of `room` by their own consent (accepting, or
/// opening a DM they were invited to): their invitation, if any, ends as
/// accepted, and every member hears `roomUpdated`. A DM's invitee starts
/// with nothing read (the opener's messages were the request); a group's
/// starts at its latest message, as any new member.
pub(super) async fn join<D: Dialect>(
    conn: &mut D::Conn,
    room: &Room,
    user: UserId,
) -> Result<Room, StoreError> {
    let removed = end::<D>(conn, room.id, user, InvitationEnd::Accepted).await?;
    let read_seq = match room.kind {
        RoomKind::Dm => 0,
        RoomKind::Group => room.last_seq,
    };
    insert_member::<D>(conn, room.id, user, Role::Member, read_seq).await?;
    outbox::queue::<D>(conn, removed).await?;
    Ok(announce::<D>(conn, room.id).await?.room)
}

/// Accept `user`'s invitation to `room`: they become a member. A member
/// already: the room, unchanged. No invitation: [`StoreError::NotFound`].
pub(super) async fn accept<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    user: UserId,
) -> Result<Room, StoreError> {
    s.write(move |tx| {
        Box::pin(async move {
            let state = load::room::<D>(tx, room, true)
                .await?
                .ok_or_else(no_invitation)?;
            if state.role(user).is_some() {
                return Ok(state.room);
            }
            if !pending::<D>(tx, room, user).await? {
                return Err(no_invitation());
            }
            join::<D>(tx, &state.room, user).await
        })
    })
    .await
}

/// Decline `user`'s invitation to `room`; whether there was one.
pub(super) async fn decline<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    s.write(move |tx| {
        Box::pin(async move {
            let removed = end::<D>(tx, room, user, InvitationEnd::Declined).await?;
            let declined = removed.is_some();
            outbox::queue::<D>(tx, removed).await?;
            Ok(declined)
        })
    })
    .await
}

/// Whether `user` has an invitation to `room`.
pub(super) async fn pending<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    user: UserId,
) -> Result<bool, StoreError> {
    let row = Sql::new("SELECT 1 AS one FROM invitations WHERE room_id = $1 AND user_id = $2")
        .text(room)
        .text(user)
        .opt::<D>(conn)
        .await?;
    Ok(row.is_some())
}

/// `user`'s pending invitations, newest first, at most `limit`.
pub(super) async fn of_user<D: Dialect>(
    s: &SqlStore<D>,
    user: UserId,
    limit: i64,
) -> Result<Vec<Invitation>, StoreError> {
    let find = Sql::new(
        "SELECT i.room_id, i.inviter_id, i.created_at, r.kind, r.name
         FROM invitations i JOIN rooms r ON r.id = i.room_id
         WHERE i.user_id = $1
         ORDER BY i.created_at DESC, i.room_id DESC
         LIMIT $2",
    )
    .text(user)
    .int(limit);
    let rows = s
        .read(move |c| Box::pin(async move { find.all::<D>(c).await }))
        .await?;
    rows.iter()
        .map(|r| {
            let kind = r.text("kind")?;
            Ok(Invitation {
                room_id: r.id("room_id")?,
                kind: RoomKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("rooms.kind {kind:?}")))?,
                name: r.text("name")?,
                inviter_id: r.id("inviter_id")?,
                user_id: user,
                created_at: r.time("created_at")?,
            })
        })
        .collect()
}

fn no_invitation() -> StoreError {
    StoreError::NotFound("no invitation to this room".into())
}
