//! The PostgreSQL store, for several API processes sharing one database.
//!
//! # Connections
//! One pool per [`PostgresStore`] (so one per process). Its size is
//! [`POOL_CONNECTIONS`] unless the URL says otherwise with a
//! `max_connections` query parameter, e.g.
//! `postgres://roomcast@db/roomcast?max_connections=32`; that parameter is
//! taken out before the rest of the URL goes to sqlx, and every other
//! parameter (`sslmode`, `application_name`, …) means what it means to sqlx.
//! Migrations (under `migrations/postgres`) run at [`PostgresStore::open`];
//! sqlx holds an advisory lock while migrating, so processes starting together
//! do not race.
//!
//! All transactions use PostgreSQL's default isolation, READ COMMITTED: each
//! statement sees every transaction committed before it started, which the
//! two mechanisms below rely on.
//!
//! # Posting: gap-free `seq` and idempotency across processes
//! [`Store::post_message`](crate::Store::post_message) runs one transaction
//! that starts by locking the room's row (`SELECT … FOR UPDATE`, which also
//! reads the sender's role and the room's `last_seq`). Then one statement (a
//! data-modifying `WITH`) inserts the message with `seq = last_seq + 1` (`ON
//! CONFLICT (room, sender, clientMsgId) DO NOTHING`), moves the room row and
//! the sender's read marker on only if it was inserted, and reads the
//! members back; a third statement writes its event-log and outbox rows
//! (again one `WITH`): three round trips besides `BEGIN` and `COMMIT`. The
//! lock is held until commit, so posts to one room are serial whichever
//! process makes them: `seq` is gap-free (a rolled-back post never moved the
//! room row), and the room's outbox rows get ids — and become visible — in
//! `seq` order.
//!
//! Two processes posting the same `(room, sender, clientMsgId)` at once
//! queue on the lock; the second's insert runs after the first committed
//! (READ COMMITTED: a new snapshot per statement), inserts nothing, and the
//! stored message is read back and returned as
//! [`Posted::Existing`](crate::Posted::Existing), with nothing written.
//! Never an error, never a duplicate.
//!
//! # The other writes
//! Membership changes, roles and renames take the same room lock; edits,
//! deletes and reactions lock the message's row; a read marker moves with one
//! `UPDATE … WHERE read_seq < $seq`, which a concurrent one waits for and
//! re-checks; a DM is inserted with `ON CONFLICT (dm_key) DO NOTHING`, so a
//! concurrent second call waits for the first and reads its room back;
//! presence changes lock the user's row. See [`crate::sql`] for each.
//!
//! # Relaying the outbox: partitions spread over processes
//! Each API process relays the outbox partitions its lease holds, and the
//! partitions are spread evenly over the live processes; see [`lease`] for
//! how they are held, moved and taken over when a process dies.
//!
//! # Usernames
//! Unique regardless of case through a unique index on `lower(username)`;
//! lookups compare `lower()` too. (PostgreSQL folds case by the database's
//! locale, so beyond ASCII it may fold more than SQLite's `NOCASE`.)

pub mod lease;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::outbox::OutboxLease;
use crate::sql::{Dialect, SqlStore, Work};
use crate::{StoreError, StoreOptions};

pub use lease::LEASE_LOCK_SPACE;

/// Pool size when the URL has no `max_connections` parameter.
pub const POOL_CONNECTIONS: u32 = 10;

/// The URL query parameter that sets the pool size.
pub const POOL_SIZE_PARAM: &str = "max_connections";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL [`Store`](crate::Store).
pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connect to the database at `url` (`postgres://` or `postgresql://`)
    /// and run migrations. See the module docs for `max_connections`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// [`SqlStore::open`] with `options`.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let (url, size) = split_pool_size(url)?;
        let opts = PgConnectOptions::from_str(&url)?;
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Self::new(pool, options).await
    }

    /// Close the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.db.close().await;
    }
}

impl Dialect for Postgres {
    /// Unique through the index on `lower(username)`, which this uses.
    const USERNAME_EQ: &'static str = "lower(username) = lower($1)";

    const WRITING_CTE: bool = true;

    type Db = PgPool;

    fn for_update(of: &str) -> String {
        format!(" FOR UPDATE OF {of}")
    }

    async fn write<T: Send + 'static>(db: &PgPool, work: Work<Self, T>) -> Result<T, StoreError> {
        let mut tx = db.begin().await?;
        // An error drops `tx`, which rolls it back.
        let value = work(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    async fn read<T: Send + 'static>(
        db: &PgPool,
        snapshot: bool,
        work: Work<Self, T>,
    ) -> Result<T, StoreError> {
        if snapshot {
            let mut tx = db.begin().await?;
            let value = work(&mut tx).await?;
            tx.commit().await?;
            Ok(value)
        } else {
            let mut conn = db.acquire().await?;
            work(&mut conn).await
        }
    }

    /// `VACUUM` the outbox (its owner may; `SKIP_LOCKED`: if another
    /// process vacuums it now, this one need not). Deleted rows otherwise
    /// stay until autovacuum, which may run seldom or not at all, and every
    /// claim, which reads the oldest rows first, walks their index entries.
    async fn reclaim(db: &PgPool) -> Result<(), StoreError> {
        sqlx::query("VACUUM (SKIP_LOCKED) outbox")
            .execute(db)
            .await?;
        Ok(())
    }

    async fn lease(store: &SqlStore<Self>, node: &str) -> Result<Box<dyn OutboxLease>, StoreError> {
        let lease = lease::PgLease::join(&store.db, store.partitions, node).await?;
        Ok(Box::new(lease))
    }
}

/// Take the `max_connections` parameter out of `url`: the URL for sqlx, and
/// the pool size.
fn split_pool_size(url: &str) -> Result<(String, u32), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), POOL_CONNECTIONS));
    };
    let mut size = POOL_CONNECTIONS;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((POOL_SIZE_PARAM, value)) => {
                size = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    sqlx::Error::Configuration(
                        format!("{POOL_SIZE_PARAM} must be a positive integer, not {value:?}")
                            .into(),
                    )
                })?;
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_size_comes_out_of_the_url() {
        let (url, size) = split_pool_size("postgres://u@h/db").unwrap();
        assert_eq!(
            (url.as_str(), size),
            ("postgres://u@h/db", POOL_CONNECTIONS)
        );
        let (url, size) =
            split_pool_size("postgres://u@h/db?sslmode=disable&max_connections=3").unwrap();
        assert_eq!(
            (url.as_str(), size),
            ("postgres://u@h/db?sslmode=disable", 3)
        );
        let (url, size) = split_pool_size("postgres://u@h/db?max_connections=7").unwrap();
        assert_eq!((url.as_str(), size), ("postgres://u@h/db", 7));
        assert!(split_pool_size("postgres://u@h/db?max_connections=0").is_err());
        assert!(split_pool_size("postgres://u@h/db?max_connections=x").is_err());
    }
}
