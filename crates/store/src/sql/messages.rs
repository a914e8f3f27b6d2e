//! Messages: posting (gap-free `seq`, idempotent `clientMsgId`), editing,
//! deleting, and reading history.

use roomcast_core::{Message, MessageId, RoomId, UserId, events, now_ms, rfc3339_ms};

use super::query::Sql;
use super::{Dialect, SqlStore, load, members, outbox, reactions};
use crate::domain;
use crate::{HistoryPage, NewMessage, Posted, StoreError, UNREAD_FANOUT_MAX_MEMBERS};

/// Post in one transaction of nine statements (the room's write path is
/// the API tier's hottest). Locking the room's row first serialises every
/// post to the room (and its membership changes), whichever process makes
/// it, so `seq` is gap-free; the same statement reads the sender's role and
/// the member count. A `clientMsgId` already stored makes the insert a no-op
/// (`ON CONFLICT DO NOTHING` on the `(room, sender, clientMsgId)` unique
/// key): the transaction is rolled back, so no `seq` is used, and the stored
/// message is returned.
pub(super) async fn post<D: Dialect>(
    s: &SqlStore<D>,
    msg: NewMessage<'_>,
) -> Result<Posted, StoreError> {
    let room = msg.room_id;
    let mut tx = s.write.begin().await?;
    let row = Sql::new(format!(
        "{} WHERE r.id = $1{}",
        load::room_select(
            ", (SELECT role FROM room_members WHERE room_id = r.id AND user_id = $2) AS my_role,
               (SELECT count(*) FROM room_members WHERE room_id = r.id) AS member_count"
        ),
        D::for_update("r")
    ))
    .text(room)
    .text(msg.sender_id)
    .opt::<D>(&mut tx)
    .await?;
    let Some(row) = row else {
        return Ok(Posted::NoRoom);
    };
    if row.opt_text("my_role")?.is_none() {
        return Ok(Posted::NotMember);
    }
    let member_count = row.int("member_count")?;
    let mut state = load::room_from(&row)?;
    if let Some(reply_to) = msg.reply_to {
        load::message::<D>(&mut tx, room, reply_to, false)
            .await?
            .ok_or_else(domain::bad_reply)?;
    }
    let now = now_ms();
    let updated = Sql::new(
        "UPDATE rooms SET last_seq = last_seq + 1, last_event_seq = last_event_seq + 1,
                last_activity_at = CASE WHEN last_activity_at < $1 THEN $1 ELSE last_activity_at END
         WHERE id = $2 RETURNING last_seq, last_event_seq, last_activity_at",
    )
    .int(now)
    .text(room)
    .one::<D>(&mut tx)
    .await?;
    let seq = updated.int("last_seq")?;
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (room_id, sender_id, client_msg_id) DO NOTHING",
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
    .await?;
    if inserted == 0 {
        let existing = find::<D>(&mut tx, &msg).await?;
        tx.rollback().await?;
        return existing
            .map(Posted::Existing)
            .ok_or_else(|| StoreError::Corrupt("clientMsgId conflict without a message".into()));
    }
    members::advance_read::<D>(&mut tx, room, msg.sender_id, seq).await?;
    let mut received = domain::message_event(events::RECEIVE_MESSAGE, &message);
    received.set_event_seq(updated.int("last_event_seq")?);
    let mut events = vec![received];
    if member_count <= UNREAD_FANOUT_MAX_MEMBERS {
        let activity_ms = updated.int("last_activity_at")?;
        state.room.last_seq = seq;
        state.room.last_activity_at = rfc3339_ms(activity_ms);
        state.activity_ms = activity_ms;
        state.last_message = Some(message.clone());
        let state = load::with_members::<D>(&mut tx, vec![state])
            .await?
            .pop()
            .ok_or_else(domain::no_room)?;
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
