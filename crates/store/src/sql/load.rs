//! Reading rooms, members and messages into domain types, inside whatever
//! transaction or pooled connection the operation holds. Every operation
//! starts here: [`room`] (optionally locking the row), then the caller's
//! [`role`], then the [`message`] it acts on.

use std::collections::BTreeMap;

use roomcast_core::{Message, MessageId, Role, Room, RoomId, RoomKind, UserId, rfc3339_ms};

use super::Dialect;
use super::query::{Rec, Sql, placeholders};
use crate::StoreError;
use crate::domain::{self, RoomState};

/// A message's columns, each read from `table.` and named `prefix…`.
pub(super) fn message_columns(table: &str, prefix: &str) -> String {
    [
        "id",
        "room_id",
        "seq",
        "sender_id",
        "body",
        "client_msg_id",
        "created_at",
        "reply_to",
        "edited_at",
        "deleted_at",
    ]
    .iter()
    .map(|c| format!("{table}.{c} AS {prefix}{c}"))
    .collect::<Vec<_>>()
    .join(", ")
}

/// The message in `row`'s columns named `prefix…` (see [`message_columns`]);
/// `None` where they are null (an outer join that found nothing).
pub(super) fn message_from<D: Dialect>(
    row: &Rec<D>,
    prefix: &str,
) -> Result<Option<Message>, StoreError> {
    let col = |c: &str| format!("{prefix}{c}");
    let Some(id) = row.opt_id::<MessageId>(&col("id"))? else {
        return Ok(None);
    };
    Ok(Some(Message {
        id,
        room_id: row.id(&col("room_id"))?,
        seq: row.int(&col("seq"))?,
        sender_id: row.id(&col("sender_id"))?,
        body: row.text(&col("body"))?,
        client_msg_id: row.text(&col("client_msg_id"))?,
        created_at: row.time(&col("created_at"))?,
        reply_to: row.opt_id(&col("reply_to"))?,
        edited_at: row.opt_time(&col("edited_at"))?,
        deleted_at: row.opt_time(&col("deleted_at"))?,
        reactions: Vec::new(),
    }))
}

/// `SELECT` of a room `r` with its latest message `m` (`m_…` columns); the
/// caller adds `WHERE`, and may add columns of its own after `extra`.
pub(super) fn room_select(extra: &str) -> String {
    format!(
        "SELECT {ROOM_COLUMNS}, {}{extra}
         FROM rooms r LEFT JOIN messages m ON m.room_id = r.id AND m.seq = r.last_seq",
        message_columns("m", "m_")
    )
}

/// The columns of room `r` that [`room_from`] reads.
const ROOM_COLUMNS: &str = "r.id, r.kind, r.name, r.last_seq, r.created_at, r.last_activity_at";

/// [`room_select`] without the latest message (its `m_id` is null, so
/// [`room_from`] reads none): for writers that replace it anyway. Besides
/// saving the look-up, this keeps a post's cost flat in the room's size
/// however the planner costs the join (with no statistics yet, PostgreSQL
/// planned it as a scan of all the room's messages).
pub(super) fn room_head_select(extra: &str) -> String {
    format!(
        "SELECT {ROOM_COLUMNS}, NULL AS m_id{extra}
         FROM rooms r"
    )
}

/// A [`RoomState`] from a [`room_select`] row, without members yet.
pub(super) fn room_from<D: Dialect>(row: &Rec<D>) -> Result<RoomState, StoreError> {
    let kind = row.text("kind")?;
    let activity_ms = row.int("last_activity_at")?;
    Ok(RoomState {
        room: Room {
            id: row.id("id")?,
            kind: RoomKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("room kind {kind:?}")))?,
            name: row.text("name")?,
            members: Vec::new(),
            roles: BTreeMap::new(),
            last_seq: row.int("last_seq")?,
            created_at: row.time("created_at")?,
            last_activity_at: rfc3339_ms(activity_ms),
        },
        activity_ms,
        read: BTreeMap::new(),
        last_message: message_from(row, "m_")?,
    })
}

/// Fill in the members, roles and read markers of `rooms`.
pub(super) async fn with_members<D: Dialect>(
    conn: &mut D::Conn,
    mut rooms: Vec<RoomState>,
) -> Result<Vec<RoomState>, StoreError> {
    if rooms.is_empty() {
        return Ok(rooms);
    }
    let rows = Sql::new(format!(
        "SELECT room_id, user_id, role, read_seq FROM room_members
         WHERE room_id IN ({}) ORDER BY room_id, position",
        placeholders(1, rooms.len())
    ))
    .texts(rooms.iter().map(|r| r.room.id))
    .all::<D>(conn)
    .await?;
    let index: BTreeMap<RoomId, usize> = rooms
        .iter()
        .enumerate()
        .map(|(i, r)| (r.room.id, i))
        .collect();
    for row in rows {
        let Some(&i) = index.get(&row.id::<RoomId>("room_id")?) else {
            continue;
        };
        add_member(&mut rooms[i], &row)?;
    }
    Ok(rooms)
}

/// Add the member in `row` (`user_id`, `role`, `read_seq`) after the
/// others; a row of nulls (an outer join that found none) adds nothing.
pub(super) fn add_member<D: Dialect>(
    state: &mut RoomState,
    row: &Rec<D>,
) -> Result<(), StoreError> {
    let Some(user) = row.opt_id::<UserId>("user_id")? else {
        return Ok(());
    };
    let role = role_from(&row.text("role")?)?;
    state.room.members.push(user);
    state.room.roles.insert(user, role);
    state.read.insert(user, row.int("read_seq")?);
    Ok(())
}

/// The whole room: its row (locked until commit when `lock`), members and
/// latest message. `None` if there is no such room.
pub(super) async fn room<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    lock: bool,
) -> Result<Option<RoomState>, StoreError> {
    let lock = if lock {
        D::for_update("r")
    } else {
        String::new()
    };
    let row = Sql::new(format!("{} WHERE r.id = $1{lock}", room_select("")))
        .text(room)
        .opt::<D>(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let rooms = with_members::<D>(conn, vec![room_from(&row)?]).await?;
    Ok(rooms.into_iter().next())
}

/// [`room`], or [`StoreError::NotFound`].
pub(super) async fn existing_room<D: Dialect>(
    conn: &mut D::Conn,
    id: RoomId,
    lock: bool,
) -> Result<RoomState, StoreError> {
    room::<D>(conn, id, lock).await?.ok_or_else(domain::no_room)
}

/// Whether the room exists.
pub(super) async fn room_exists<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
) -> Result<bool, StoreError> {
    let row = Sql::new("SELECT id FROM rooms WHERE id = $1")
        .text(room)
        .opt::<D>(conn)
        .await?;
    Ok(row.is_some())
}

/// `user`'s role in `room`, if a member.
pub(super) async fn role<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    user: UserId,
) -> Result<Option<Role>, StoreError> {
    let row = Sql::new("SELECT role FROM room_members WHERE room_id = $1 AND user_id = $2")
        .text(room)
        .text(user)
        .opt::<D>(conn)
        .await?;
    row.map(|r| role_from(&r.text("role")?)).transpose()
}

fn role_from(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("member role {s:?}")))
}

/// The caller's role in an existing room: [`StoreError::NotFound`] without
/// the room, [`StoreError::Forbidden`] for a non-member.
pub(super) async fn member_role<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    user: UserId,
) -> Result<Role, StoreError> {
    if !room_exists::<D>(conn, room).await? {
        return Err(domain::no_room());
    }
    role::<D>(conn, room, user)
        .await?
        .ok_or_else(domain::not_member)
}

/// Message `id` of `room` (its row locked until commit when `lock`).
pub(super) async fn message<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    id: MessageId,
    lock: bool,
) -> Result<Option<Message>, StoreError> {
    let lock = if lock {
        D::for_update("m")
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {} FROM messages m WHERE m.id = $1 AND m.room_id = $2{lock}",
        message_columns("m", "")
    );
    let row = Sql::new(sql).text(id).text(room).opt::<D>(conn).await?;
    Ok(match row {
        Some(row) => message_from(&row, "")?,
        None => None,
    })
}

/// What a member acts on: the caller's role and message `id` of `room`,
/// locked until commit. NotFound (room, message) / Forbidden (non-member).
pub(super) async fn member_message<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    actor: UserId,
    id: MessageId,
) -> Result<(Role, Message), StoreError> {
    let role = member_role::<D>(conn, room, actor).await?;
    let msg = message::<D>(conn, room, id, true)
        .await?
        .ok_or_else(domain::no_message)?;
    Ok((role, msg))
}
