//! Reactions: one row per (message, user, emoji). Adding or removing is a
//! single `INSERT … ON CONFLICT DO NOTHING` / `DELETE` whose row count says
//! whether anything changed, under the message's row lock (so a concurrent
//! delete or a second emoji cannot slip past the checks).

use std::collections::HashMap;

use roomcast_core::{Message, MessageId, ReactionCount, RoomId, UserId, now_ms, validate};

use super::query::{Sql, placeholders};
use super::{Dialect, SqlStore, load, outbox};
use crate::StoreError;
use crate::domain;

pub(super) async fn react<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    user: UserId,
    id: MessageId,
    emoji: &str,
    add: bool,
) -> Result<bool, StoreError> {
    validate::emoji(emoji).map_err(StoreError::Invalid)?;
    let emoji = emoji.to_owned();
    s.write(move |tx| Box::pin(react_in::<D>(tx, room, user, id, emoji, add)))
        .await
}

async fn react_in<D: Dialect>(
    tx: &mut D::Conn,
    room: RoomId,
    user: UserId,
    id: MessageId,
    emoji: String,
    add: bool,
) -> Result<bool, StoreError> {
    let emoji = emoji.as_str();
    let (_, msg) = load::member_message::<D>(tx, room, user, id).await?;
    if msg.deleted_at.is_some() {
        return Err(domain::deleted());
    }
    let changed = if add {
        let mine = Sql::new(
            "SELECT count(*) AS n, CAST(COALESCE(max(CASE WHEN emoji = $3 THEN 1 ELSE 0 END), 0) AS BIGINT) AS has
             FROM reactions WHERE message_id = $1 AND user_id = $2",
        )
        .text(id)
        .text(user)
        .text(emoji)
        .one::<D>(tx)
        .await?;
        if mine.int("has")? == 0 && mine.int("n")? >= validate::MAX_REACTIONS_PER_USER {
            return Err(StoreError::Invalid(format!(
                "at most {} different reactions per message",
                validate::MAX_REACTIONS_PER_USER
            )));
        }
        Sql::new(
            "INSERT INTO reactions (message_id, user_id, emoji, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (message_id, user_id, emoji) DO NOTHING",
        )
        .text(id)
        .text(user)
        .text(emoji)
        .int(now_ms())
        .run::<D>(tx)
        .await?
    } else {
        Sql::new("DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3")
            .text(id)
            .text(user)
            .text(emoji)
            .run::<D>(tx)
            .await?
    };
    if changed == 0 {
        return Ok(false);
    }
    let event = domain::reaction_event(add, &msg, user, emoji);
    outbox::queue::<D>(tx, [event]).await?;
    Ok(true)
}

/// Fill each message's reactions as `viewer` sees them: per emoji, in the
/// order each emoji was first used on the message.
pub(super) async fn fill<D: Dialect>(
    conn: &mut D::Conn,
    messages: &mut [Message],
    viewer: UserId,
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT message_id, emoji, count(*) AS n, min(created_at) AS first_at,
                CAST(max(CASE WHEN user_id = $1 THEN 1 ELSE 0 END) AS BIGINT) AS me
         FROM reactions WHERE message_id IN ({})
         GROUP BY message_id, emoji
         ORDER BY message_id, first_at, emoji",
        placeholders(2, messages.len())
    );
    let rows = Sql::new(sql)
        .text(viewer)
        .texts(messages.iter().map(|m| m.id))
        .all::<D>(conn)
        .await?;
    let mut by_message: HashMap<MessageId, Vec<ReactionCount>> = HashMap::new();
    for r in rows {
        by_message
            .entry(r.id("message_id")?)
            .or_default()
            .push(ReactionCount {
                emoji: r.text("emoji")?,
                count: r.int("n")?,
                me: r.int("me")? != 0,
            });
    }
    for m in messages {
        m.reactions = by_message.remove(&m.id).unwrap_or_default();
    }
    Ok(())
}
