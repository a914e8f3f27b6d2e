//! Outbox partition leases on PostgreSQL: which API process relays which
//! partition, spread evenly over the live processes.
//!
//! # How a lease is held
//! Each relaying process keeps one connection of its own (not pooled), the
//! *lease connection*, and holds on it:
//! - a **shared** session advisory lock `(`[`LEASE_LOCK_SPACE`]`,
//!   `[`MEMBER_KEY`]`)`: the live processes are the sessions holding it;
//! - an **exclusive** session advisory lock `(`[`LEASE_LOCK_SPACE`]`, p)`
//!   for each partition `p` it relays.
//!
//! A session lock lasts as long as the session: when the process exits or is
//! killed, the kernel closes its socket, the server ends the session and
//! the locks are free at once; when the whole host vanishes, when the
//! server's TCP keepalive gives up on the connection (set to about 11 s on
//! the lease connection: `tcp_keepalives_idle = 5`, `_interval = 2`,
//! `_count = 3`).
//!
//! It also holds the key older versions relayed under ([`SINGLE_RELAY_KEY`]),
//! shared, so that during a rolling upgrade the old processes stand down,
//! and each renewal gives the rows they still write their partition.
//!
//! # Renewing and rebalancing
//! Every [`RENEW_EVERY`] the relay calls [`OutboxLease::renew`], between
//! passes. It counts the live processes `L` (on this database only) and
//! aims at `ceil(n / L)` partitions: a process holding more gives the
//! highest ones up; one holding fewer takes free ones. So a new process gets
//! its share within two renewals, and a dead one's partitions are taken
//! within one renewal of its session ending. A renewal that fails drops the
//! lease connection (its session, and so its locks, end with it) and holds
//! nothing until a later renewal reconnects.
//!
//! # What overlapping relays could do
//! A lease connection that dies while its process goes on (the server
//! restarted, a network cut) leaves that process relaying for up to one
//! renewal while another takes its partitions. Both publish each room's rows
//! in id order, so the bus sees each event first in order and then perhaps
//! again: duplicates, which consumers drop (envelope id, `eventSeq`), never
//! a loss or a reordering of first deliveries.
//!
//! # Waking the other relays
//! A write wakes only its own process's relay. When other processes are
//! live, that relay sends `NOTIFY roomcast_outbox` ([`OutboxLease::announce`],
//! once per pass), and every relay `LISTEN`s on that channel
//! ([`OutboxLease::remote_write`]), so rows in another process's partitions
//! go out at once rather than at its next poll.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::{Connection, Executor, PgConnection, PgPool};

use crate::StoreError;
use crate::outbox::{OutboxLease, Partitions};

/// The first key of every lease lock (`"room"` in ASCII). Nothing else on
/// the same database may use it.
pub const LEASE_LOCK_SPACE: i32 = 0x726f_6f6d;

/// The key under which versions before partitions relayed the whole outbox
/// one process at a time (`pg_try_advisory_xact_lock`, exclusive). Every
/// live lease holds it shared, so such a process relays nothing while a
/// partitioned relay is live: during a rolling upgrade the old and the new
/// never publish at once, and a room's order holds.
pub const SINGLE_RELAY_KEY: i64 = 0x726f_6f6d_6361_7374;

/// The second key of the shared lock every live relay holds.
pub const MEMBER_KEY: i32 = i32::MAX;

/// How often a lease is renewed (and partitions rebalanced).
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// The `LISTEN` / `NOTIFY` channel for "rows were written".
pub const CHANNEL: &str = "roomcast_outbox";

/// Keepalive settings of the lease connection: a vanished host's locks are
/// freed after about idle + interval × count seconds.
const KEEPALIVE: &str = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
                         SET tcp_keepalives_count = 3";

/// Advisory locks of this database in the lease space (`pg_locks` shows
/// every database's).
const LEASE_LOCKS: &str = "FROM pg_locks WHERE locktype = 'advisory' AND granted \
     AND objsubid = 2 AND classid::bigint = $1 \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// One process's lease; see the module docs.
pub struct PgLease {
    pool: PgPool,
    options: PgConnectOptions,
    node: String,
    conn: Option<PgConnection>,
    listener: Option<PgListener>,
    partitions: Partitions,
    live: i64,
}

impl PgLease {
    /// Join the relays of the database behind `pool` as `node`, holding a
    /// fair share of its `count` partitions at once.
    pub async fn join(pool: &PgPool, count: u32, node: &str) -> Result<Self, StoreError> {
        let mut lease = Self {
            pool: pool.clone(),
            options: (*pool.connect_options()).clone(),
            node: node.to_owned(),
            conn: None,
            listener: None,
            partitions: Partitions::none(count),
            live: 1,
        };
        lease.renew().await?;
        Ok(lease)
    }

    /// How many relays are live, as of the latest renewal (this one included).
    pub fn live(&self) -> i64 {
        self.live
    }

    async fn connect(&mut self) -> Result<(), StoreError> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        conn.execute(KEEPALIVE).await?;
        sqlx::query("SELECT pg_advisory_lock_shared($1, $2)")
            .bind(LEASE_LOCK_SPACE)
            .bind(MEMBER_KEY)
            .execute(&mut conn)
            .await?;
        // Older API processes relay every row under an exclusive try-lock on
        // this key, one pass at a time: holding it shared waits for a pass
        // of theirs to end and makes them stand down from then on.
        sqlx::query("SELECT pg_advisory_lock_shared($1)")
            .bind(SINGLE_RELAY_KEY)
            .execute(&mut conn)
            .await?;
        self.conn = Some(conn);
        if self.listener.is_none() {
            let mut listener = PgListener::connect_with(&self.pool).await?;
            listener.listen(CHANNEL).await?;
            self.listener = Some(listener);
        }
        Ok(())
    }

    async fn rebalance(&mut self) -> Result<(), StoreError> {
        if self.conn.is_none() {
            self.connect().await?;
        }
        let conn = self.conn.as_mut().expect("connected above");
        let count = self.partitions.count;
        let live: i64 = sqlx::query_scalar(&format!(
            "SELECT count(DISTINCT pid) {LEASE_LOCKS} AND objid::bigint = $2"
        ))
        .bind(i64::from(LEASE_LOCK_SPACE))
        .bind(i64::from(MEMBER_KEY))
        .fetch_one(&mut *conn)
        .await?;
        let live = live.max(1);
        let target = (i64::from(count) + live - 1) / live;
        let owned = &mut self.partitions.owned;
        while owned.len() as i64 > target {
            let p = owned.pop().expect("more than target");
            sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(LEASE_LOCK_SPACE)
                .bind(p as i32)
                .execute(&mut *conn)
                .await?;
        }
        if (owned.len() as i64) < target {
            let taken: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT objid::bigint {LEASE_LOCKS} AND objid::bigint < $2"
            ))
            .bind(i64::from(LEASE_LOCK_SPACE))
            .bind(i64::from(count))
            .fetch_all(&mut *conn)
            .await?;
            for p in 0..count {
                if owned.len() as i64 >= target {
                    break;
                }
                if owned.contains(&p) || taken.contains(&i64::from(p)) {
                    continue;
                }
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                    .bind(LEASE_LOCK_SPACE)
                    .bind(p as i32)
                    .fetch_one(&mut *conn)
                    .await?;
                if got {
                    owned.push(p);
                }
            }
            owned.sort_unstable();
        }
        if live != self.live {
            tracing::info!(node = %self.node, live, partitions = ?self.partitions.owned,
                "outbox relays changed; partitions rebalanced");
        }
        self.live = live;
        Ok(())
    }

    /// Give rows an older API process wrote during a rolling upgrade their
    /// partition. On a pooled connection: its failure says nothing about
    /// the lease, which it leaves as it is.
    async fn backfill(&self) {
        let fixed = async {
            let mut pooled = self.pool.acquire().await?;
            crate::sql::outbox::backfill::<sqlx::Postgres>(&mut pooled).await
        };
        match fixed.await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(
                rows,
                "outbox: rows of an older version given their partition"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "outbox: could not give an older version's rows their partition; next renewal")
            }
        }
    }
}

#[async_trait]
impl OutboxLease for PgLease {
    fn partitions(&self) -> &Partitions {
        &self.partitions
    }

    fn renew_every(&self) -> Duration {
        RENEW_EVERY
    }

    async fn renew(&mut self) -> Result<(), StoreError> {
        let result = self.rebalance().await;
        if result.is_err() {
            // Its session's locks end with the connection.
            self.conn = None;
            self.partitions.owned.clear();
        }
        self.backfill().await;
        result
    }

    async fn remote_write(&mut self) {
        match self.listener.as_mut() {
            Some(listener) => {
                if let Err(e) = listener.recv().await {
                    tracing::debug!(error = %e, "outbox listener: reconnecting");
                    tokio::time::sleep(RENEW_EVERY).await;
                }
            }
            None => std::future::pending().await,
        }
    }

    async fn announce(&mut self) -> Result<(), StoreError> {
        if self.live > 1 {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn release(&mut self) {
        self.partitions.owned.clear();
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
        self.listener = None;
    }
}
