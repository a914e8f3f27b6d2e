//! The SQLite store (the embedded default): opening the database, its
//! threads, and the SQLite side of [`Dialect`].
//!
//! One WAL-mode database file, reached through rusqlite on the store's own
//! threads (see [`threads`]):
//! - **one writer thread** on one connection: SQLite has a single writer
//!   anyway, and queueing writes for one thread (instead of racing for the
//!   file lock) keeps every write transaction free of `SQLITE_BUSY`, makes
//!   `seq` assignment trivially serial, and makes every read-check-write
//!   transaction (membership, roles, DMs, read markers, reactions) atomic
//!   without row locks, so [`Dialect::for_update`] is empty here. It runs
//!   each write whole (every statement of it, prepared once and cached) and
//!   commits the writes queued together in one transaction (group commit),
//!   answering each only after that commit;
//! - **[`READ_CONNECTIONS`] reader threads** on read-only connections for
//!   queries (room views, the room list, history, presence, the relay's
//!   batches).
//!
//! - **a checkpoint thread** that copies the write-ahead log into the
//!   database file every [`threads::CHECKPOINT_EVERY`] (a passive
//!   checkpoint: it never blocks the writer or a reader), instead of the
//!   writer doing it inside a commit every 1,000 pages.
//!
//! An in-memory URL (`sqlite::memory:`) has the writer only, which runs the
//! reads too.
//!
//! Migrations (under `migrations/sqlite`) run through sqlx when the file is
//! opened, so a database keeps the one migration history it has always had.
//!
//! One process owns the file, so its relay holds every outbox partition
//! ([`LocalLease`]).

pub mod files;
mod io;
pub mod threads;

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::OpenFlags;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use io::{Conn, Row};

use crate::outbox::{LocalLease, OutboxLease};
use crate::sql::{Dialect, SqlStore, Work};
use roomcast_core::{Encoded, topics};

use crate::held::{HELD_MAX, HeldOutbox, Pending};
use crate::{OutboxStorage, StoreError, StoreOptions, WriteStats};
use threads::{Checkpointer, Readers, Writer};

/// Reader threads (each with its own connection).
pub const READ_CONNECTIONS: usize = 4;

/// How long a statement waits for a lock held by another process.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite, as the store's [`Dialect`] (never constructed).
#[derive(Debug)]
pub enum Sqlite {}

/// The SQLite store's threads.
#[derive(Clone, Debug)]
pub struct Threads {
    writer: Writer,
    /// `None` in memory: the writer reads too.
    readers: Option<Readers>,
    /// `None` in memory (no WAL).
    _checkpoints: Option<Checkpointer>,
}

/// The SQLite [`Store`](crate::Store).
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Open (creating if missing) the database at `url` and run migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &StoreOptions::default()).await
    }

    /// [`SqlStore::open`] with `options`.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let held = (options.outbox == OutboxStorage::Memory).then(|| HeldOutbox::new(HELD_MAX));
        let pending = held.clone().map(Pending::new);
        let threads = if in_memory {
            let conn = rusqlite::Connection::open_in_memory()?;
            configure(&conn)?;
            for m in MIGRATOR
                .iter()
                .filter(|m| !m.migration_type.is_down_migration())
            {
                conn.execute_batch(&m.sql)?;
            }
            Threads {
                writer: Writer::spawn(Conn(conn, pending)).map_err(thread_error)?,
                readers: None,
                _checkpoints: None,
            }
        } else {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(BUSY_TIMEOUT)
                .foreign_keys(true);
            let path = opts.get_filename().to_path_buf();
            files::create(&path)?;
            let migrating = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.clone())
                .await?;
            MIGRATOR.run(&migrating).await?;
            migrating.close().await;
            files::restrict(&path)?;
            let path = path.as_path();
            let writer = rusqlite::Connection::open(path)?;
            configure(&writer)?;
            // Checkpoints run on their own thread, not inside the writer's commits.
            writer.pragma_update(None, "wal_autocheckpoint", 0)?;
            let checkpoints = rusqlite::Connection::open(path)?;
            checkpoints.busy_timeout(BUSY_TIMEOUT)?;
            let readers = (0..READ_CONNECTIONS)
                .map(|_| reader(path))
                .collect::<Result<Vec<_>, _>>()?;
            Threads {
                writer: Writer::spawn(Conn(writer, pending)).map_err(thread_error)?,
                readers: Some(Readers::spawn(readers).map_err(thread_error)?),
                _checkpoints: Some(Checkpointer::spawn(checkpoints).map_err(thread_error)?),
            }
        };
        let mut store = Self::new(threads, options).await?;
        if let Some(held) = held {
            // Rows a version with the outbox in its table left: moved over.
            let left = store
                .write(|tx| Box::pin(crate::sql::outbox::take_all::<Sqlite>(tx)))
                .await?;
            if !left.is_empty() {
                tracing::info!(
                    rows = left.len(),
                    "outbox rows from the table moved to memory"
                );
            }
            held.append(left);
            store.held = Some(held);
        }
        Ok(store)
    }
}

fn thread_error(e: std::io::Error) -> StoreError {
    StoreError::Stopped(format!("starting the SQLite threads: {e}"))
}

/// The writer's settings (the file is in WAL mode from its first opening).
fn configure(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(io::STATEMENT_CACHE);
    Ok(())
}

fn reader(path: &Path) -> Result<Conn, StoreError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(io::STATEMENT_CACHE);
    Ok(Conn(conn, None))
}

impl Dialect for Sqlite {
    /// `users.username` is `COLLATE NOCASE`, so its unique index serves this.
    const USERNAME_EQ: &'static str = "username = $1";

    const GREATEST: &'static str = "max";

    const WRITING_CTE: bool = false;

    type Db = Threads;

    fn for_update(_of: &str) -> String {
        String::new()
    }

    async fn write<T: Send + 'static>(db: &Threads, work: Work<Self, T>) -> Result<T, StoreError> {
        db.writer.write(work).await
    }

    async fn read<T: Send + 'static>(
        db: &Threads,
        snapshot: bool,
        work: Work<Self, T>,
    ) -> Result<T, StoreError> {
        match &db.readers {
            Some(readers) => readers.read(snapshot, work).await,
            // In memory: inside the writer's transaction, one snapshot anyway.
            None => db.writer.write(work).await,
        }
    }

    fn hold(conn: &mut Conn, envs: Vec<Encoded>) -> Option<Vec<Encoded>> {
        let Some(pending) = conn.1.as_mut() else {
            return Some(envs);
        };
        for env in envs {
            pending.push(topics::CHAT_OUT, env);
        }
        None
    }

    fn write_stats(db: &Threads) -> Option<WriteStats> {
        let stats = db.writer.stats();
        Some(WriteStats {
            batches: stats.batches.load(Ordering::Relaxed),
            writes: stats.writes.load(Ordering::Relaxed),
        })
    }

    fn lease<'a>(
        store: &'a SqlStore<Self>,
        _node: &'a str,
    ) -> impl std::future::Future<Output = Result<Box<dyn OutboxLease>, StoreError>> + Send + 'a
    {
        let lease: Box<dyn OutboxLease> = Box::new(LocalLease::new(store.partitions));
        std::future::ready(Ok(lease))
    }
}
