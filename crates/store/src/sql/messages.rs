//! Messages: posting (gap-free `seq`, idempotent `clientMsgId`), editing,
//! deleting, and reading history.

use roomcast_core::{ChatOut, Message, MessageId, RoomId, UserId, now_ms, rfc3339_ms};

use super::events::Queued;
use super::query::{Rec, Sql};
use super::{Dialect, SqlStore, load, members, outbox, reactions};
use crate::domain;
use crate::{HistoryPage, NewMessage, Posted, StoreError, UNREAD_FANOUT_MAX_MEMBERS};

/// A post's arguments, owned (the work runs on whichever thread or task
/// holds the connection).
#[derive(Debug)]
pub(crate) struct Post {
    pub room: RoomId,
    pub sender: UserId,
    pub client_msg_id: String,
    pub body: String,
    pub reply_to: Option<MessageId>,
}

/// Post (the room's write path is the API tier's hottest), as
/// [`Dialect::post`] does: on SQLite [`post_in`] on the writer thread, whose
/// transactions hold many writes; on PostgreSQL in batches of many posts
/// per transaction ([`super::post_batch`]), with [`post_in`] for the posts
/// a batch leaves alone.
///
/// [`post_in`] is one post in one transaction: on PostgreSQL three
/// statements besides `BEGIN`/`COMMIT` (the lock, the write, the events),
/// each a round trip; on SQLite seven, none a round trip. Locking the
/// room's row first
/// serialises every post to the room (and its membership changes),
/// whichever process makes it, so the next `seq` is the locked row's
/// `last_seq + 1`, gap-free; the same statement reads the sender's role and
/// the member count. The message is inserted before the room row moves on:
/// a `clientMsgId` already stored makes the insert a no-op (`ON CONFLICT DO
/// NOTHING` on the `(room, sender, clientMsgId)` unique key), nothing has
/// been written, no `seq` is used, and the stored message is returned.
pub(super) async fn post<D: Dialect>(
    s: &SqlStore<D>,
    msg: NewMessage<'_>,
) -> Result<Posted, StoreError> {
    D::post(s, msg).await
}

impl From<NewMessage<'_>> for Post {
    fn from(msg: NewMessage<'_>) -> Self {
        Self {
            room: msg.room_id,
            sender: msg.sender_id,
            client_msg_id: msg.client_msg_id.to_owned(),
            body: msg.body.to_owned(),
            reply_to: msg.reply_to,
        }
    }
}

/// Post `msg` in the transaction on `tx` (see [`post`]): what
/// [`Dialect::post`] does by default, in a transaction of its own.
pub(crate) async fn post_in<D: Dialect>(tx: &mut D::Conn, msg: Post) -> Result<Posted, StoreError> {
    let room = msg.room;
    let row = Sql::new(format!(
        "{} WHERE r.id = $1{}",
        load::room_head_select(
            ", (SELECT role FROM room_members WHERE room_id = r.id AND user_id = $2) AS my_role,
               (SELECT count(*) FROM room_members WHERE room_id = r.id) AS member_count"
        ),
        D::for_update("r")
    ))
    .text(room)
    .text(msg.sender)
    .opt::<D>(tx)
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
        load::message::<D>(tx, room, reply_to, false)
            .await?
            .ok_or_else(domain::bad_reply)?;
    }
    let now = now_ms();
    let seq = state.room.last_seq + 1;
    let message = Message {
        id: MessageId::new(),
        room_id: room,
        seq,
        sender_id: msg.sender,
        body: msg.body,
        client_msg_id: msg.client_msg_id,
        created_at: rfc3339_ms(now),
        reply_to: msg.reply_to,
        edited_at: None,
        deleted_at: None,
        reactions: Vec::new(),
    };
    let wanted = member_count <= UNREAD_FANOUT_MAX_MEMBERS;
    let written = if D::WRITING_CTE {
        write_in_one::<D>(tx, &message, now, wanted).await?
    } else {
        write_in_steps::<D>(tx, &message, now, wanted).await?
    };
    let Some(written) = written else {
        return find::<D>(tx, room, message.sender_id, &message.client_msg_id)
            .await?
            .map(Posted::Existing)
            .ok_or_else(|| StoreError::Corrupt("clientMsgId conflict without a message".into()));
    };
    let mut events = vec![Queued {
        event: ChatOut::ReceiveMessage(message.clone()),
        event_seq: Some(written.last_event_seq),
    }];
    if let Some(members) = written.members {
        state.room.last_seq = seq;
        state.room.last_activity_at = rfc3339_ms(written.activity_ms);
        state.activity_ms = written.activity_ms;
        state.last_message = Some(message.clone());
        for row in &members {
            load::add_member(&mut state, row)?;
        }
        // Posting moved the sender's read marker (in the same statement as
        // the rows above, on PostgreSQL, which do not see it).
        let read = state.read.entry(message.sender_id).or_default();
        *read = (*read).max(seq);
        events.push(state.updated_to_all().into());
    }
    outbox::queue::<D>(tx, events).await?;
    Ok(Posted::Created(message))
}

/// Insert a new message, bound by [`bind_message`]; nothing if its
/// `(room, sender, clientMsgId)` is stored.
const INSERT_MESSAGE: &str = "INSERT INTO messages
    (id, room_id, seq, sender_id, body, client_msg_id, created_at, reply_to)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (room_id, sender_id, client_msg_id) DO NOTHING";

/// Bind `message` (created at `now`) as `$1`…`$8` of [`INSERT_MESSAGE`].
fn bind_message(sql: Sql, message: &Message, now: i64) -> Sql {
    sql.text(message.id)
        .text(message.room_id)
        .int(message.seq)
        .text(message.sender_id)
        .text(&message.body)
        .text(&message.client_msg_id)
        .int(now)
        .opt_text(message.reply_to)
}

/// What storing a new message returned.
struct Written<D: Dialect> {
    last_event_seq: i64,
    activity_ms: i64,
    /// The room's member rows (`user_id`, `role`, `read_seq`, in joining
    /// order), when wanted.
    members: Option<Vec<Rec<D>>>,
}

/// Store `message` and move the room and the sender's read marker on, in
/// one statement (data-modifying `WITH`, PostgreSQL): one round trip where
/// [`write_in_steps`] takes four. `None` if its `clientMsgId` is stored.
async fn write_in_one<D: Dialect>(
    tx: &mut D::Conn,
    message: &Message,
    now: i64,
    members: bool,
) -> Result<Option<Written<D>>, StoreError> {
    let sql = Sql::new(format!(
        "WITH ins AS ({INSERT_MESSAGE} RETURNING seq), moved AS (
            UPDATE rooms SET last_seq = $3, last_event_seq = last_event_seq + 1,
                last_activity_at = CASE WHEN last_activity_at < $7 THEN $7 ELSE last_activity_at END
            WHERE id = $2 AND EXISTS (SELECT 1 FROM ins)
            RETURNING last_event_seq, last_activity_at
         ), marked AS (
            UPDATE room_members SET read_seq = $3
            WHERE room_id = $2 AND user_id = $4 AND read_seq < $3 AND EXISTS (SELECT 1 FROM ins)
         )
         SELECT moved.last_event_seq, moved.last_activity_at, m.user_id, m.role, m.read_seq
         FROM moved LEFT JOIN room_members m ON m.room_id = $2 AND $9
         ORDER BY m.position"
    ));
    let rows = bind_message(sql, message, now)
        .flag(members)
        .all::<D>(tx)
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(Written {
        last_event_seq: first.int("last_event_seq")?,
        activity_ms: first.int("last_activity_at")?,
        members: members.then_some(rows),
    }))
}

/// [`write_in_one`] as four statements (SQLite, whose statements cost no
/// round trip).
async fn write_in_steps<D: Dialect>(
    tx: &mut D::Conn,
    message: &Message,
    now: i64,
    members: bool,
) -> Result<Option<Written<D>>, StoreError> {
    let inserted = bind_message(Sql::new(INSERT_MESSAGE), message, now)
        .run::<D>(tx)
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    let moved = Sql::new(
        "UPDATE rooms SET last_seq = $1, last_event_seq = last_event_seq + 1,
                last_activity_at = CASE WHEN last_activity_at < $2 THEN $2 ELSE last_activity_at END
         WHERE id = $3 RETURNING last_event_seq, last_activity_at",
    )
    .int(message.seq)
    .int(now)
    .text(message.room_id)
    .one::<D>(tx)
    .await?;
    members::advance_read::<D>(tx, message.room_id, message.sender_id, message.seq).await?;
    let members = if members {
        let rows = Sql::new(
            "SELECT user_id, role, read_seq FROM room_members WHERE room_id = $1 ORDER BY position",
        )
        .text(message.room_id)
        .all::<D>(tx)
        .await?;
        Some(rows)
    } else {
        None
    };
    Ok(Some(Written {
        last_event_seq: moved.int("last_event_seq")?,
        activity_ms: moved.int("last_activity_at")?,
        members,
    }))
}

/// The stored message with this `(room, sender, clientMsgId)`.
async fn find<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    sender: UserId,
    client_msg_id: &str,
) -> Result<Option<Message>, StoreError> {
    let sql = format!(
        "SELECT {} FROM messages m
         WHERE m.room_id = $1 AND m.sender_id = $2 AND m.client_msg_id = $3",
        load::message_columns("m", "")
    );
    let row = Sql::new(sql)
        .text(room)
        .text(sender)
        .text(client_msg_id)
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
    let body = body.to_owned();
    s.write(move |tx| {
        Box::pin(async move {
            let (_, mut msg) = load::member_message::<D>(tx, room, actor, id).await?;
            domain::may_edit(actor, &msg)?;
            if msg.body == body {
                return Ok(msg);
            }
            let now = now_ms();
            Sql::new("UPDATE messages SET body = $1, edited_at = $2 WHERE id = $3")
                .text(&body)
                .int(now)
                .text(id)
                .run::<D>(tx)
                .await?;
            msg.body = body;
            msg.edited_at = Some(rfc3339_ms(now));
            outbox::queue::<D>(tx, [ChatOut::MessageUpdated(msg.clone())]).await?;
            Ok(msg)
        })
    })
    .await
}

pub(super) async fn delete<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    actor: UserId,
    id: MessageId,
) -> Result<Message, StoreError> {
    s.write(move |tx| {
        Box::pin(async move {
            let (role, mut msg) = load::member_message::<D>(tx, room, actor, id).await?;
            domain::may_delete(actor, role, &msg)?;
            if msg.deleted_at.is_some() {
                return Ok(msg);
            }
            let now = now_ms();
            Sql::new("UPDATE messages SET body = '', deleted_at = $1 WHERE id = $2")
                .int(now)
                .text(id)
                .run::<D>(tx)
                .await?;
            Sql::new("DELETE FROM reactions WHERE message_id = $1")
                .text(id)
                .run::<D>(tx)
                .await?;
            msg.body = String::new();
            msg.deleted_at = Some(rfc3339_ms(now));
            outbox::queue::<D>(tx, [ChatOut::MessageDeleted(msg.clone())]).await?;
            Ok(msg)
        })
    })
    .await
}

pub(super) async fn history<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    viewer: UserId,
    page: HistoryPage,
    limit: i64,
) -> Result<Vec<Message>, StoreError> {
    s.read(move |c| Box::pin(history_in::<D>(c, room, viewer, page, limit)))
        .await
}

async fn history_in<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    viewer: UserId,
    page: HistoryPage,
    limit: i64,
) -> Result<Vec<Message>, StoreError> {
    load::member_role::<D>(conn, room, viewer).await?;
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
        .all::<D>(conn)
        .await?;
    let mut messages = rows
        .iter()
        .filter_map(|r| load::message_from(r, "").transpose())
        .collect::<Result<Vec<_>, _>>()?;
    messages.sort_by_key(|m| m.seq);
    reactions::fill::<D>(conn, &mut messages, viewer).await?;
    Ok(messages)
}
