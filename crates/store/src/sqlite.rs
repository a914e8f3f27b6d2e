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
//! The outbox is relayed by the default [`Store::outbox_relay`]: one relay
//! per database file, and no transaction held while publishing (it would hold
//! the one write connection).

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::sql::{Dialect, SqlStore};
use crate::{OutboxSink, RelayPass, Store, StoreError};

/// Connections in the read pool.
pub const READ_CONNECTIONS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite [`Store`].
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Open (creating if missing) the database at `url` and run migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
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
        Ok(Self { write, read })
    }
}

impl Dialect for Sqlite {
    /// `users.username` is `COLLATE NOCASE`, so its unique index serves this.
    const USERNAME_EQ: &'static str = "username = $1";

    fn for_update(_of: &str) -> String {
        String::new()
    }

    fn relay<'a>(
        store: &'a SqlStore<Self>,
        limit: i64,
        sink: &'a dyn OutboxSink,
    ) -> impl Future<Output = Result<RelayPass, StoreError>> + Send + 'a {
        crate::relay_in_turn(store as &dyn Store, limit, sink)
    }
}
