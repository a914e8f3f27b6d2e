//! The PostgreSQL store, for several API processes sharing one database.
//!
//! # Connections
//! One pool per [`PostgresStore`] (so one per process). Its size is
//! [`POOL_CONNECTIONS`] unless the URL says otherwise with a
//! `max_connections` query parameter, e.g.
//! `postgres://roomcast@db/roomcast?max_connections=32`, and the number of
//! post writers ([`posts`]) is [`posts::DEFAULT_WRITERS`] unless a
//! `post_writers` parameter says otherwise (at most the pool size); these
//! two are taken out before the rest of the URL goes to sqlx, and every
//! other parameter (`sslmode`, `application_name`, …) means what it means
//! to sqlx.
//! Migrations (under `migrations/postgres`) run at [`PostgresStore::open`];
//! sqlx holds an advisory lock while migrating, so processes starting together
//! do not race.
//!
//! All transactions use PostgreSQL's default isolation, READ COMMITTED: each
//! statement sees every transaction committed before it started, which the
//! two mechanisms below rely on.
//!
//! # Posting: group commit, gap-free `seq`, idempotency across processes
//! [`Store::post_message`](crate::Store::post_message) queues the post
//! ([`posts`]); a writer task takes it with every post queued behind it
//! (writers take the queue in turn, handing it on before their `COMMIT`)
//! and writes them in one transaction of two statements
//! ([`crate::sql::post_batch`]): the first locks every room among them
//! (`SELECT … FOR UPDATE`, in room id order) and reads their heads and
//! members, the second (a data-modifying `WITH` over arrays) inserts the
//! messages and moves the rooms, the senders' read markers, the event log
//! and the outbox on. A lone post is four round trips (`BEGIN`, the lock,
//! the write, `COMMIT`); a batch of 30 is the same four. Each caller is
//! answered after the commit that holds its post.
//!
//! A post the batch cannot decide alone is posted on its own, after it, in
//! a transaction that locks the room's row, then inserts the message with
//! `seq = last_seq + 1` (`ON CONFLICT (room, sender, clientMsgId) DO
//! NOTHING`), moving the room row and the sender's read marker only if it
//! was inserted, then writes its event-log and outbox rows: a `clientMsgId`
//! repeated within the batch, and every post of a batch whose write
//! inserted fewer messages than it decided (a stored `clientMsgId`, a
//! `replyTo` not in the room) or failed; that batch is rolled back whole.
//! Either way the room locks are held until commit, so posts to one room
//! are serial whichever process makes them: `seq` is gap-free (a
//! rolled-back post never moved the room row), and the room's outbox rows
//! get ids — and become visible — in `seq` order.
//!
//! Two processes posting the same `(room, sender, clientMsgId)` at once
//! queue on the lock; the second's insert runs after the first committed
//! (READ COMMITTED: a new snapshot per statement), inserts nothing, and
//! the second post is retried alone, which reads the stored message back
//! and returns it as [`Posted::Existing`](crate::Posted::Existing), with
//! nothing written. Never an error, never a duplicate.
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
pub mod posts;

use std::future::Future;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::outbox::OutboxLease;
use crate::sql::{Dialect, SqlStore, Work};
use crate::{NewMessage, Posted, StoreError, StoreOptions, WriteStats};

use posts::PostQueue;

pub use lease::LEASE_LOCK_SPACE;

/// Pool size when the URL has no `max_connections` parameter.
pub const POOL_CONNECTIONS: u32 = 10;

/// The URL query parameter that sets the pool size.
pub const POOL_SIZE_PARAM: &str = "max_connections";

/// The URL query parameter that sets how many post writers run
/// ([`posts`]; default [`posts::DEFAULT_WRITERS`], at most the pool size).
pub const POST_WRITERS_PARAM: &str = "post_writers";

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
        let params = split_params(url)?;
        let opts = PgConnectOptions::from_str(&params.url)?;
        let pool = PgPoolOptions::new()
            .max_connections(params.pool_size)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        let writers = params.post_writers.min(params.pool_size as usize);
        let posts = PostQueue::start(&pool, writers);
        Self::new(PgDb { pool, posts }, options).await
    }

    /// Posts waiting for a writer now (see [`posts`]).
    pub fn posts_queued(&self) -> usize {
        self.db.posts.queued()
    }

    /// Close the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.db.pool.close().await;
    }
}

/// The PostgreSQL store's connections: the pool, and the queue of posts
/// waiting to be written in batches ([`posts`]).
#[derive(Clone, Debug)]
pub struct PgDb {
    /// The pool.
    pub pool: PgPool,
    /// The post queue.
    pub posts: PostQueue,
}

impl Dialect for Postgres {
    /// Unique through the index on `lower(username)`, which this uses.
    const USERNAME_EQ: &'static str = "lower(username) = lower($1)";

    const GREATEST: &'static str = "GREATEST";

    const WRITING_CTE: bool = true;

    type Db = PgDb;

    fn for_update(of: &str) -> String {
        format!(" FOR UPDATE OF {of}")
    }

    async fn write<T: Send + 'static>(db: &PgDb, work: Work<Self, T>) -> Result<T, StoreError> {
        let mut tx = db.pool.begin().await?;
        // An error drops `tx`, which rolls it back.
        let value = work(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    async fn read<T: Send + 'static>(
        db: &PgDb,
        snapshot: bool,
        work: Work<Self, T>,
    ) -> Result<T, StoreError> {
        if snapshot {
            let mut tx = db.pool.begin().await?;
            let value = work(&mut tx).await?;
            tx.commit().await?;
            Ok(value)
        } else {
            let mut conn = db.pool.acquire().await?;
            work(&mut conn).await
        }
    }

    /// `DELETE … WHERE id = ANY($1)`: one statement (so one cached plan
    /// whatever the count), its own transaction.
    async fn delete_outbox(db: &PgDb, ids: Vec<i64>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(ids)
            .execute(&db.pool)
            .await?;
        Ok(())
    }

    /// `VACUUM` the outbox (its owner may; `SKIP_LOCKED`: if another
    /// process vacuums it now, this one need not). Deleted rows otherwise
    /// stay until autovacuum, which may run seldom or not at all, and every
    /// claim, which reads the oldest rows first, walks their index entries.
    async fn reclaim(db: &PgDb) -> Result<(), StoreError> {
        sqlx::query("VACUUM (SKIP_LOCKED) outbox")
            .execute(&db.pool)
            .await?;
        Ok(())
    }

    /// Through the post queue: many posts per transaction.
    fn post<'a>(
        s: &'a SqlStore<Self>,
        msg: NewMessage<'_>,
    ) -> impl Future<Output = Result<Posted, StoreError>> + Send + 'a {
        let post: crate::sql::messages::Post = msg.into();
        s.db.posts.post(post)
    }

    /// Batches of posts and the posts in them (other writes are not counted).
    fn write_stats(db: &PgDb) -> Option<WriteStats> {
        Some(db.posts.stats())
    }

    async fn lease(store: &SqlStore<Self>, node: &str) -> Result<Box<dyn OutboxLease>, StoreError> {
        let lease = lease::PgLease::join(&store.db.pool, store.partitions, node).await?;
        Ok(Box::new(lease))
    }
}

/// What the URL's own parameters set.
#[derive(Debug, PartialEq, Eq)]
struct UrlParams {
    /// The URL for sqlx, without them.
    url: String,
    /// [`POOL_SIZE_PARAM`].
    pool_size: u32,
    /// [`POST_WRITERS_PARAM`].
    post_writers: usize,
}

/// Take the `max_connections` and `post_writers` parameters out of `url`.
fn split_params(url: &str) -> Result<UrlParams, StoreError> {
    let mut params = UrlParams {
        url: url.to_owned(),
        pool_size: POOL_CONNECTIONS,
        post_writers: posts::DEFAULT_WRITERS,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok(params);
    };
    let positive = |name: &str, value: &str| {
        value.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            sqlx::Error::Configuration(
                format!("{name} must be a positive integer, not {value:?}").into(),
            )
        })
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((POOL_SIZE_PARAM, value)) => params.pool_size = positive(POOL_SIZE_PARAM, value)?,
            Some((POST_WRITERS_PARAM, value)) => {
                params.post_writers = positive(POST_WRITERS_PARAM, value)? as usize;
            }
            _ => kept.push(pair),
        }
    }
    params.url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_size_and_the_post_writers_come_out_of_the_url() {
        let p = |url| split_params(url).unwrap();
        assert_eq!(
            p("postgres://u@h/db"),
            UrlParams {
                url: "postgres://u@h/db".into(),
                pool_size: POOL_CONNECTIONS,
                post_writers: posts::DEFAULT_WRITERS
            }
        );
        let got = p("postgres://u@h/db?sslmode=disable&max_connections=3");
        assert_eq!(
            (got.url.as_str(), got.pool_size),
            ("postgres://u@h/db?sslmode=disable", 3)
        );
        let got = p("postgres://u@h/db?max_connections=7&post_writers=2");
        assert_eq!(
            (got.url.as_str(), got.pool_size, got.post_writers),
            ("postgres://u@h/db", 7, 2)
        );
        for bad in [
            "max_connections=0",
            "max_connections=x",
            "post_writers=0",
            "post_writers=-1",
        ] {
            let err = split_params(&format!("postgres://u@h/db?{bad}")).unwrap_err();
            assert!(
                err.to_string().contains(bad.split('=').next().unwrap()),
                "{err}"
            );
        }
    }
}
