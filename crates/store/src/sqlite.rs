//! The SQLite store (the embedded default): opening the database, and the
//! SQLite side of [`Dialect`].
//!
//! Two pools over one WAL-mode database file:
//! - a **write pool of one connection**: SQLite has a single writer anyway, and
//!   queueing writers in the pool (instead of racing for the file lock) keeps
//!   every write transaction free of `SQLITE_BUSY`, makes `seq` assignment
//!   trivially serial, and makes every read-check-write transaction
//!   (membership, roles, DMs, read markers, reactions) atomic without row
//!   locks, so [`Dialect::for_update`] is empty here;
//! - a **read pool** of [`READ_CONNECTIONS`] read-only connections for
//!   queries (room views, the room list, history, presence).
//!
//! An in-memory URL (`sqlite::memory:`) uses the one write connection for reads too.
//!
//! One process owns the file, so its relay holds every outbox partition
//! ([`LocalLease`]); it holds no transaction while publishing (that would
//! hold the one write connection).

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::outbox::{LocalLease, OutboxLease};
use crate::sql::{Dialect, SqlStore};
use crate::{StoreError, StoreOptions};

/// Connections in the read pool.
pub const READ_CONNECTIONS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite [`Store`].
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Open (creating if missing) the database at `url` and run migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// [`SqlStore::open`] with `options`.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&write).await?;
        let read = if in_memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .connect_with(opts.read_only(true))
                .await?
        };
        Self::new(write, read, options).await
    }
}

impl Dialect for Sqlite {
    /// `users.username` is `COLLATE NOCASE`, so its unique index serves this.
    const USERNAME_EQ: &'static str = "username = $1";

    fn for_update(_of: &str) -> String {
        String::new()
    }

    fn lease<'a>(
        store: &'a SqlStore<Self>,
        _node: &'a str,
    ) -> impl Future<Output = Result<Box<dyn OutboxLease>, StoreError>> + Send + 'a {
        let lease: Box<dyn OutboxLease> = Box::new(LocalLease::new(store.partitions));
        std::future::ready(Ok(lease))
    }
}
