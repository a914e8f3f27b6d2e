//! Presence: whether a user has a socket on any realtime node.
//!
//! One row per (user, node) says whether the user's sockets on that node are
//! online, as of the node's clock (`changed_at`: an older change is
//! ignored). A user is online while some row of theirs is. `nodes` holds each
//! node's latest sign of life (heartbeat or presence change); sweeping a
//! silent node takes its rows offline. Each change locks the user's row
//! first, so the before/after comparison that decides a flip (and its
//! `presence` events) sees every other change to that user.
//!
//! Lock order, everywhere: the node's row, then the user's, then the
//! presence row.

use roomcast_core::{Presence, RoomId, UserId, rfc3339_ms};

use super::query::Sql;
use super::{Dialect, SqlStore, load, outbox};
use crate::domain;
use crate::{PRESENCE_FANOUT_MAX, StoreError};

pub(super) async fn changed<D: Dialect>(
    s: &SqlStore<D>,
    user: UserId,
    node: &str,
    online: bool,
    at: i64,
) -> Result<(), StoreError> {
    let node = node.to_owned();
    s.write(move |tx| Box::pin(changed_in::<D>(tx, user, node, online, at)))
        .await
}

async fn changed_in<D: Dialect>(
    tx: &mut D::Conn,
    user: UserId,
    node: String,
    online: bool,
    at: i64,
) -> Result<(), StoreError> {
    seen::<D>(tx, &node, at).await?;
    let before = lock_user::<D>(tx, user).await?;
    let stored = Sql::new(
        "INSERT INTO presence (user_id, node_id, online, changed_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, node_id) DO UPDATE
         SET online = excluded.online, changed_at = excluded.changed_at
         WHERE presence.changed_at < excluded.changed_at",
    )
    .text(user)
    .text(&node)
    .flag(online)
    .int(at)
    .run::<D>(tx)
    .await?;
    if stored > 0 {
        announce_flip::<D>(tx, user, before, at).await?;
    }
    Ok(())
}

pub(super) async fn heartbeat<D: Dialect>(
    s: &SqlStore<D>,
    node: &str,
    at: i64,
) -> Result<(), StoreError> {
    let node = node.to_owned();
    s.write(move |tx| Box::pin(async move { seen::<D>(tx, &node, at).await }))
        .await
}

pub(super) async fn sweep<D: Dialect>(
    s: &SqlStore<D>,
    stale_before: i64,
) -> Result<usize, StoreError> {
    s.write(move |tx| Box::pin(sweep_in::<D>(tx, stale_before)))
        .await
}

async fn sweep_in<D: Dialect>(tx: &mut D::Conn, stale_before: i64) -> Result<usize, StoreError> {
    let rows = Sql::new("DELETE FROM nodes WHERE seen_at < $1 RETURNING node_id, seen_at")
        .int(stale_before)
        .all::<D>(tx)
        .await?;
    let mut nodes = rows
        .iter()
        .map(|r| Ok((r.text("node_id")?, r.int("seen_at")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    nodes.sort();
    for (node, seen_at) in &nodes {
        let users =
            Sql::new("SELECT user_id FROM presence WHERE node_id = $1 AND online ORDER BY user_id")
                .text(node)
                .all::<D>(tx)
                .await?;
        for row in users {
            let user: UserId = row.id("user_id")?;
            let before = lock_user::<D>(tx, user).await?;
            Sql::new("UPDATE presence SET online = $1 WHERE user_id = $2 AND node_id = $3")
                .flag(false)
                .text(user)
                .text(node)
                .run::<D>(tx)
                .await?;
            announce_flip::<D>(tx, user, before, *seen_at).await?;
        }
    }
    Ok(nodes.len())
}

pub(super) async fn of_room<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    viewer: UserId,
) -> Result<Vec<Presence>, StoreError> {
    s.read(move |c| Box::pin(of_room_in::<D>(c, room, viewer)))
        .await
}

async fn of_room_in<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    viewer: UserId,
) -> Result<Vec<Presence>, StoreError> {
    load::member_role::<D>(conn, room, viewer).await?;
    let rows = Sql::new(
        "SELECT m.user_id, u.last_seen_at,
                EXISTS(SELECT 1 FROM presence p WHERE p.user_id = m.user_id AND p.online) AS online
         FROM room_members m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = $1 ORDER BY m.position",
    )
    .text(room)
    .all::<D>(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let online = r.flag("online")?;
            Ok(Presence {
                user_id: r.id("user_id")?,
                online,
                last_seen_at: if online {
                    None
                } else {
                    r.opt_time("last_seen_at")?
                },
            })
        })
        .collect()
}

/// Record a sign of life of `node` at `at` (never moving backwards).
async fn seen<D: Dialect>(conn: &mut D::Conn, node: &str, at: i64) -> Result<(), StoreError> {
    Sql::new(
        "INSERT INTO nodes (node_id, seen_at) VALUES ($1, $2)
         ON CONFLICT (node_id) DO UPDATE SET seen_at = excluded.seen_at
         WHERE nodes.seen_at < excluded.seen_at",
    )
    .text(node)
    .int(at)
    .run::<D>(conn)
    .await?;
    Ok(())
}

/// Lock `user`'s row until commit; whether they are online now.
async fn lock_user<D: Dialect>(conn: &mut D::Conn, user: UserId) -> Result<bool, StoreError> {
    let sql = format!(
        "SELECT id FROM users WHERE id = $1{}",
        D::for_update("users")
    );
    if Sql::new(sql).text(user).opt::<D>(conn).await?.is_none() {
        return Err(StoreError::UnknownUser(user));
    }
    is_online::<D>(conn, user).await
}

async fn is_online<D: Dialect>(conn: &mut D::Conn, user: UserId) -> Result<bool, StoreError> {
    Sql::new("SELECT EXISTS(SELECT 1 FROM presence WHERE user_id = $1 AND online) AS online")
        .text(user)
        .one::<D>(conn)
        .await?
        .flag("online")
}

/// If `user`'s status is no longer `before`, store `lastSeenAt` (`at`, going
/// offline) and queue `presence` to their co-members.
async fn announce_flip<D: Dialect>(
    conn: &mut D::Conn,
    user: UserId,
    before: bool,
    at: i64,
) -> Result<(), StoreError> {
    let online = is_online::<D>(conn, user).await?;
    if online == before {
        return Ok(());
    }
    if !online {
        Sql::new("UPDATE users SET last_seen_at = $1 WHERE id = $2")
            .int(at)
            .text(user)
            .run::<D>(conn)
            .await?;
    }
    let status = Presence {
        user_id: user,
        online,
        last_seen_at: (!online).then(|| rfc3339_ms(at)),
    };
    let peers = Sql::new(
        "SELECT DISTINCT o.user_id FROM room_members mine
         JOIN room_members o ON o.room_id = mine.room_id
         WHERE mine.user_id = $1 AND o.user_id <> $1
         ORDER BY o.user_id LIMIT $2",
    )
    .text(user)
    .int(PRESENCE_FANOUT_MAX)
    .all::<D>(conn)
    .await?;
    let events = peers
        .iter()
        .map(|r| Ok(domain::presence(r.id("user_id")?, &status)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    outbox::queue::<D>(conn, events).await
}
