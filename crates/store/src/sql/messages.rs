//! Messages: posting (gap-free `seq`, idempotent `clientMsgId`), editing,
//! deleting, and reading history.

use roomcast_core::{Message, MessageId, RoomId, UserId, events, now_ms, rfc3339_ms};

use super::query::Sql;
use super::{Dialect, SqlStore, load, members, outbox, reactions};
use crate::domain;
use crate::{HistoryPage, NewMessage, Posted, StoreError, UNREAD_FANOUT_MAX_MEMBERS};

/// Post in one transaction. Locking the room's row first serialises every
/// post to the room (and its membership changes), whichever process makes
/// it, so `seq` is gap-free and a `clientMsgId` seen by the lookup stays
/// seen. Should the insert still hit the `(room, sender, clientMsgId)`
/// unique key, the transaction is rolled back and the stored message returned.
pub(super) async fn post<D: Dialect>(
    s: &SqlStore<D>,
    msg: NewMessage<'_>,
) -> Result<Posted, StoreError> {
    let room = msg.room_id;
    let mut tx = s.write.begin().await?;
    if !load::lock_room::<D>(&mut tx, room).await? {
        return Ok(Posted::NoRoom);
    }
    if load::role::<D>(&mut tx, room, msg.sender_id)
        .await?
        .is_none()
    {
        return Ok(Posted::NotMember);
    }
    if let Some(existing) = find::<D>(&mut tx, &msg).await? {
        return Ok(Posted::Existing(existing));
    }
    if let Some(reply_to) = msg.reply_to {
        load::message::<D>(&mut tx, room, reply_to, false)
            .await?
            .ok_or_else(domain::bad_reply)?;
    }
    let now = now_ms();
    let seq = Sql::new(
        "UPDATE rooms SET last_seq = last_seq + 1,
                last_activity_at = CASE WHEN last_activity_at < $1 THEN $1 ELSE last_activity_at END
         WHERE id = $2 RETURNING last_seq",
    )
    .int(now)
    .text(room)
    .one::<D>(&mut tx)
    .await?
    .int("last_seq")?;
    let message = Message {
        id: MessageId::new(),
        room_id: room,
        seq,
        sender_id: msg.sender_id,
        body: msg.body.to_owned(),
        client_msg_id: msg.client_msg_id.to_owned(),
        created_at: rfc3339_ms(now),
        reply_to: msg.reply_to,
        edited_at: None,
        deleted_at: None,
        reactions: Vec::new(),
    };
    let inserted = Sql::new(
        "INSERT INTO messages (id, room_id, seq, sender_id, body, client_msg_id, created_at, reply_to)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .text(message.id)
    .text(room)
    .int(seq)
    .text(msg.sender_id)
    .text(msg.body)
    .text(msg.client_msg_id)
    .int(now)
    .opt_text(msg.reply_to)
    .run::<D>(&mut tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(StoreError::Db(sqlx::Error::Database(e))) if e.is_unique_violation() => {
            tx.rollback().await?;
            let mut conn = s.write.acquire().await?;
            return match find::<D>(&mut conn, &msg).await? {
                Some(existing) => Ok(Posted::Existing(existing)),
                None => Err(sqlx::Error::Database(e).into()),
            };
        }
        Err(e) => return Err(e),
    }
    members::advance_read::<D>(&mut tx, room, msg.sender_id, seq).await?;
    let mut events = vec![domain::message_event(events::RECEIVE_MESSAGE, &message)];
    if member_count::<D>(&mut tx, room).await? <= UNREAD_FANOUT_MAX_MEMBERS {
        let state = load::existing_room::<D>(&mut tx, room, false).await?;
        events.push(state.updated_to_all());
    }
    outbox::queue::<D>(&mut tx, &events).await?;
    tx.commit().await?;
    Ok(Posted::Created(message))
}

/// The stored message with `msg`'s `(room, sender, clientMsgId)`.
async fn find<D: Dialect>(
    conn: &mut D::Connection,
    msg: &NewMessage<'_>,
) -> Result<Option<Message>, StoreError> {
    let sql = format!(
        "SELECT {} FROM messages m
         WHERE m.room_id = $1 AND m.sender_id = $2 AND m.client_msg_id = $3",
        load::message_columns("m", "")
    );
    let row = Sql::new(sql)
        .text(msg.room_id)
        .text(msg.sender_id)
        .text(msg.client_msg_id)
        .opt::<D>(conn)
        .await?;
    Ok(match row {
        Some(row) => load::message_from(&row, "")?,
        None => None,
    })
}

async fn member_count<D: Dialect>(
    conn: &mut D::Connection,
    room: RoomId,
) -> Result<i64, StoreError> {
    Sql::new("SELECT count(*) AS n FROM room_members WHERE room_id = $1")
        .text(room)
        .one::<D>(conn)
        .await?
        .int("n")
}

pub(super) async fn edit<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    actor: UserId,
    id: MessageId,
    body: &str,
) -> Result<Message, StoreError> {
    let mut tx = s.write.begin().await?;
    let (_, mut msg) = load::member_message::<D>(&mut tx, room, actor, id).await?;
    domain::may_edit(actor, &msg)?;
    if msg.body == body {
        return Ok(msg);
    }
    let now = now_ms();
    Sql::new("UPDATE messages SET body = $1, edited_at = $2 WHERE id = $3")
        .text(body)
        .int(now)
        .text(id)
        .run::<D>(&mut tx)
        .await?;
    msg.body = body.to_owned();
    msg.edited_at = Some(rfc3339_ms(now));
    let event = domain::message_event(events::MESSAGE_UPDATED, &msg);
    outbox::queue::<D>(&mut tx, &[event]).await?;
    tx.commit().await?;
    Ok(msg)
}

pub(super) async fn delete<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    actor: UserId,
    id: MessageId,
) -> Result<Message, StoreError> {
    let mut tx = s.write.begin().await?;
    let (role, mut msg) = load::member_message::<D>(&mut tx, room, actor, id).await?;
    domain::may_delete(actor, role, &msg)?;
    if msg.deleted_at.is_some() {
        return Ok(msg);
    }
    let now = now_ms();
    Sql::new("UPDATE messages SET body = '', deleted_at = $1 WHERE id = $2")
        .int(now)
        .text(id)
        .run::<D>(&mut tx)
        .await?;
    Sql::new("DELETE FROM reactions WHERE message_id = $1")
        .text(id)
        .run::<D>(&mut tx)
        .await?;
    msg.body = String::new();
    msg.deleted_at = Some(rfc3339_ms(now));
    let event = domain::message_event(events::MESSAGE_DELETED, &msg);
    outbox::queue::<D>(&mut tx, &[event]).await?;
    tx.commit().await?;
    Ok(msg)
}

pub(super) async fn history<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    viewer: UserId,
    page: HistoryPage,
    limit: i64,
) -> Result<Vec<Message>, StoreError> {
    let mut conn = s.read.acquire().await?;
    load::member_role::<D>(&mut conn, room, viewer).await?;
    let (cond, order, from) = match page {
        HistoryPage::After(n) => (">", "ASC", n),
        HistoryPage::Before(n) => ("<", "DESC", n),
    };
    let sql = format!(
        "SELECT {} FROM messages m WHERE m.room_id = $1 AND m.seq {cond} $2
         ORDER BY m.seq {order} LIMIT $3",
        load::message_columns("m", "")
    );
    let rows = Sql::new(sql)
        .text(room)
        .int(from)
        .int(limit.max(0))
        .all::<D>(&mut conn)
        .await?;
    let mut messages = rows
        .iter()
        .filter_map(|r| load::message_from(r, "").transpose())
        .collect::<Result<Vec<_>, _>>()?;
    messages.sort_by_key(|m| m.seq);
    reactions::fill::<D>(&mut conn, &mut messages, viewer).await?;
    Ok(messages)
}
