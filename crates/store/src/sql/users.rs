//! Accounts: creating users and looking them up.

use roomcast_core::{User, UserId, now_ms};

use super::query::Sql;
use super::{Dialect, SqlStore};
use crate::{Credentials, StoreError};

pub(super) async fn create<D: Dialect>(
    s: &SqlStore<D>,
    username: &str,
    password_hash: &str,
) -> Result<User, StoreError> {
    let id = UserId::new();
    let insert = Sql::new(
        "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .text(id)
    .text(username)
    .text(password_hash)
    .int(now_ms());
    let res = s
        .write(move |tx| Box::pin(async move { insert.run::<D>(tx).await }))
        .await;
    match res {
        Ok(_) => Ok(User {
            id,
            username: username.to_owned(),
        }),
        Err(e) if D::unique_violation(&e) => Err(StoreError::UsernameTaken),
        Err(e) => Err(e),
    }
}

pub(super) async fn credentials<D: Dialect>(
    s: &SqlStore<D>,
    username: &str,
) -> Result<Option<Credentials>, StoreError> {
    let sql = format!(
        "SELECT id, username, password_hash FROM users WHERE {}",
        D::USERNAME_EQ
    );
    let find = Sql::new(sql).text(username);
    let row = s
        .read(move |c| Box::pin(async move { find.opt::<D>(c).await }))
        .await?;
    row.map(|r| {
        Ok(Credentials {
            user: User {
                id: r.id("id")?,
                username: r.text("username")?,
            },
            password_hash: r.text("password_hash")?,
        })
    })
    .transpose()
}

pub(super) async fn get<D: Dialect>(
    s: &SqlStore<D>,
    id: UserId,
) -> Result<Option<User>, StoreError> {
    s.read(move |c| Box::pin(username::<D>(c, id)))
        .await
        .map(|name| name.map(|username| User { id, username }))
}

/// Replace `user`'s password hash. [`StoreError::UnknownUser`] if none.
pub(super) async fn set_password<D: Dialect>(
    s: &SqlStore<D>,
    user: UserId,
    hash: &str,
) -> Result<(), StoreError> {
    let sql = Sql::new("UPDATE users SET password_hash = $1 WHERE id = $2")
        .text(hash)
        .text(user);
    update(s, user, sql).await
}

/// Run `update`, a statement changing `user`'s row. [`StoreError::UnknownUser`]
/// if it changed none.
pub(super) async fn update<D: Dialect>(
    s: &SqlStore<D>,
    user: UserId,
    update: Sql,
) -> Result<(), StoreError> {
    let changed = s
        .write(move |tx| Box::pin(async move { update.run::<D>(tx).await }))
        .await?;
    if changed == 0 {
        return Err(StoreError::UnknownUser(user));
    }
    Ok(())
}

/// `id`'s username, if the user exists.
pub(super) async fn username<D: Dialect>(
    conn: &mut D::Conn,
    id: UserId,
) -> Result<Option<String>, StoreError> {
    let row = Sql::new("SELECT username FROM users WHERE id = $1")
        .text(id)
        .opt::<D>(conn)
        .await?;
    row.map(|r| r.text("username")).transpose()
}

/// [`StoreError::UnknownUser`] unless every one of `ids` exists.
pub(super) async fn require<D: Dialect>(
    conn: &mut D::Conn,
    ids: &[UserId],
) -> Result<(), StoreError> {
    for id in ids {
        if username::<D>(conn, *id).await?.is_none() {
            return Err(StoreError::UnknownUser(*id));
        }
    }
    Ok(())
}
