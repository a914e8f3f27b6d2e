//! Login sessions: created at login, renewed by rotating their refresh
//! token, ended by logout, by "log out everywhere", by a password change,
//! or by the reuse of a rotated refresh token (see [`crate::Rotated`]).
//!
//! Every session that ends queues `sessionRevoked` to its user in the same
//! transaction: the realtime tier then disconnects that session's sockets.
//!
//! The store never sees a refresh token, only the hash of its secret (the
//! API hashes it) and its generation: generation `g` is current while the
//! session's row says `g`; rotating stores `g + 1` and the new hash.

use roomcast_core::{ChatOut, SessionId, SessionRevoked, UserId};

use super::query::Sql;
use super::{Dialect, SqlStore, outbox};
use crate::{Rotated, StoreError};

/// A new session of `user` whose generation-0 refresh secret hashes to
/// `hash`, valid until `expires_at` (Unix ms).
pub(super) async fn create<D: Dialect>(
    s: &SqlStore<D>,
    user: UserId,
    hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<SessionId, StoreError> {
    let id = SessionId::new();
    let insert = Sql::new(
        "INSERT INTO sessions (id, user_id, refresh_hash, generation, created_at, last_used_at, expires_at)
         VALUES ($1, $2, $3, 0, $4, $4, $5)",
    )
    .text(id)
    .text(user)
    .text(hash)
    .int(now)
    .int(expires_at);
    s.write(move |tx| Box::pin(async move { insert.run::<D>(tx).await }))
        .await?;
    Ok(id)
}

/// Rotate `session`'s refresh token: generation `generation` with secret
/// hash `hash` becomes generation `generation + 1` with `next`, the session
/// extended to `expires_at`.
pub(super) async fn rotate<D: Dialect>(
    s: &SqlStore<D>,
    session: SessionId,
    generation: i64,
    hash: String,
    next: String,
    now: i64,
    expires_at: i64,
) -> Result<Rotated, StoreError> {
    let find = Sql::new(format!(
        "SELECT user_id, refresh_hash, generation, expires_at, revoked_at
         FROM sessions WHERE id = $1{}",
        D::for_update("sessions")
    ))
    .text(session);
    s.write(move |tx| {
        Box::pin(async move {
            let Some(row) = find.opt::<D>(tx).await? else {
                return Ok(Rotated::Invalid);
            };
            let user: UserId = row.id("user_id")?;
            let live = row.opt_int("revoked_at")?.is_none() && row.int("expires_at")? > now;
            let current = row.int("generation")?;
            if !live || generation > current {
                return Ok(Rotated::Invalid);
            }
            if generation < current {
                // A token that was rotated away is being used: whoever holds
                // it, the session is no longer the user's alone.
                revoke_where::<D>(tx, "id = $2", |q| q.text(session), now).await?;
                return Ok(Rotated::Reused { user, session });
            }
            if row.text("refresh_hash")? != hash {
                return Ok(Rotated::Invalid);
            }
            Sql::new(
                "UPDATE sessions SET refresh_hash = $1, generation = $2, last_used_at = $3,
                        expires_at = $4
                 WHERE id = $5",
            )
            .text(&next)
            .int(current + 1)
            .int(now)
            .int(expires_at)
            .text(session)
            .run::<D>(tx)
            .await?;
            Ok(Rotated::Rotated {
                user,
                generation: current + 1,
            })
        })
    })
    .await
}

/// End `session` of `user`; whether it was live.
pub(super) async fn revoke<D: Dialect>(
    s: &SqlStore<D>,
    session: SessionId,
    user: UserId,
    now: i64,
) -> Result<bool, StoreError> {
    s.write(move |tx| {
        Box::pin(async move {
            let bind = |q: Sql| q.text(session).text(user);
            let ended = revoke_where::<D>(tx, "id = $2 AND user_id = $3", bind, now).await?;
            Ok(!ended.is_empty())
        })
    })
    .await
}

/// End every live session of `user` but `except`; the ones ended.
pub(super) async fn revoke_all<D: Dialect>(
    s: &SqlStore<D>,
    user: UserId,
    except: Option<SessionId>,
    now: i64,
) -> Result<Vec<SessionId>, StoreError> {
    s.write(move |tx| {
        Box::pin(async move {
            // A nil id matches no session: "all of them".
            let keep = except.unwrap_or(SessionId(uuid::Uuid::nil()));
            let bind = |q: Sql| q.text(user).text(keep);
            revoke_where::<D>(tx, "user_id = $2 AND id <> $3", bind, now).await
        })
    })
    .await
}

/// Set `revoked_at = now` ($1) on the live sessions matching `filter`, whose
/// arguments ($2, …) `bind` adds, and queue `sessionRevoked` for each (its
/// sockets are disconnected); the sessions ended.
async fn revoke_where<D: Dialect>(
    conn: &mut D::Conn,
    filter: &str,
    bind: impl FnOnce(Sql) -> Sql,
    now: i64,
) -> Result<Vec<SessionId>, StoreError> {
    let update = bind(
        Sql::new(format!(
            "UPDATE sessions SET revoked_at = $1
             WHERE revoked_at IS NULL AND {filter}
             RETURNING id, user_id"
        ))
        .int(now),
    );
    let rows = update.all::<D>(conn).await?;
    let mut ended = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for r in &rows {
        let (session_id, user_id) = (r.id("id")?, r.id("user_id")?);
        ended.push(session_id);
        events.push(ChatOut::SessionRevoked(SessionRevoked {
            user_id,
            session_id,
        }));
    }
    outbox::queue::<D>(conn, events).await?;
    Ok(ended)
}

/// Whether `session` is live at `now`, and whose it is.
pub(super) async fn live<D: Dialect>(
    s: &SqlStore<D>,
    session: SessionId,
    now: i64,
) -> Result<Option<UserId>, StoreError> {
    let find = Sql::new(
        "SELECT user_id FROM sessions
         WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .text(session)
    .int(now);
    let row = s
        .read(move |c| Box::pin(async move { find.opt::<D>(c).await }))
        .await?;
    row.map(|r| r.id("user_id")).transpose()
}
