//! Outbox rows: queued by every write inside its transaction with the
//! ordering hash of their envelope, claimed oldest first per partition,
//! deleted once published. (Who relays which partition is a
//! [`Dialect`](super::Dialect) hook; see [`crate::outbox`].)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use roomcast_core::{Encoded, Envelope, now_ms, topics};

use super::Dialect;
use super::events::{self, Queued};
use super::query::{Rec, Sql, placeholders, value_rows_from};
use crate::StoreError;
use crate::outbox::{MAX_PARTITIONS, OutboxBacklog, OutboxItem, Partitions};

/// Rows per `INSERT` / `DELETE` statement (four arguments a row).
const CHUNK: usize = 200;

/// Deletions after which the outbox's space is reclaimed
/// ([`Dialect::reclaim`](super::Dialect::reclaim)).
pub const RECLAIM_EVERY: u64 = 5_000;

/// Counts outbox deletions, and starts one reclaim at a time.
#[derive(Debug, Default)]
pub struct Reclaim {
    deleted: AtomicU64,
    running: AtomicBool,
}

impl Reclaim {
    /// Count `n` deletions. `true`: a reclaim is due and none runs; the
    /// caller starts one and calls [`Reclaim::finished`] after.
    pub fn deleted(&self, n: usize) -> bool {
        let total = self.deleted.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total < RECLAIM_EVERY || self.running.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.deleted.store(0, Ordering::Relaxed);
        true
    }

    /// The reclaim started by [`Reclaim::deleted`] is over.
    pub fn finished(&self) {
        self.running.store(false, Ordering::Release);
    }
}

/// The `settings` row holding the partition count.
const PARTITIONS_SETTING: &str = "outbox_partitions";

/// Queue `events` on `chat.out`, in order (their row ids increase in
/// order), the logged ones with their room event log positions (see
/// [`super::events::log`]). Each is encoded here, once: its envelope's
/// bytes are the outbox row, its payload's text the event log row.
pub(super) async fn queue<D: Dialect>(
    conn: &mut D::Conn,
    events: impl IntoIterator<Item = impl Into<Queued>>,
) -> Result<(), StoreError> {
    let mut events: Vec<Queued> = events.into_iter().map(Into::into).collect();
    events::log::<D>(conn, &mut events).await?;
    let envs: Vec<Envelope> = events
        .iter()
        .map(|q| q.event.envelope(q.event_seq))
        .collect();
    let mut logged = events::rows(&envs, 1);
    let envs: Vec<Encoded> = envs.iter().map(Envelope::encode).collect();
    let now = now_ms();
    // One statement for both where the database allows (PostgreSQL): the
    // event log's rows ride in a `WITH` of the outbox's `INSERT`.
    if D::WRITING_CTE && logged.len() == 1 && envs.len() <= CHUNK {
        let (values, args) = logged.remove(0);
        let first = args.len() + 1;
        let sql = Sql::new(format!(
            "WITH logged AS ({}) {}",
            events::insert(&values),
            insert(first, envs.len())
        ))
        .args_from(args);
        return bind_rows(sql, &envs, now).run::<D>(conn).await.map(drop);
    }
    for (values, args) in logged {
        Sql::new(events::insert(&values))
            .args_from(args)
            .run::<D>(conn)
            .await?;
    }
    let Some(envs) = D::hold(conn, envs) else {
        return Ok(());
    };
    for chunk in envs.chunks(CHUNK) {
        bind_rows(Sql::new(insert(1, chunk.len())), chunk, now)
            .run::<D>(conn)
            .await?;
    }
    Ok(())
}

/// Every row of the outbox table, in id order (topic, envelope), deleted:
/// for an outbox moving to memory ([`crate::OutboxStorage::Memory`]).
pub(crate) async fn take_all<D: Dialect>(
    conn: &mut D::Conn,
) -> Result<Vec<(String, Encoded)>, StoreError> {
    let rows = Sql::new("SELECT topic, envelope FROM outbox ORDER BY id")
        .all::<D>(conn)
        .await?;
    let taken = rows
        .iter()
        .map(|r| Ok((r.text("topic")?, envelope_of::<D>(r)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Sql::new("DELETE FROM outbox").run::<D>(conn).await?;
    Ok(taken)
}

/// The envelope of an outbox row: its stored bytes, as they are, with the
/// routing fields read off them.
fn envelope_of<D: Dialect>(row: &Rec<D>) -> Result<Encoded, StoreError> {
    Encoded::peek(row.text("envelope")?.into_bytes())
        .map_err(|e| StoreError::Corrupt(format!("outbox envelope: {e}")))
}

/// The `INSERT` of `rows` outbox rows, arguments numbered from `$first`.
fn insert(first: usize, rows: usize) -> String {
    format!(
        "INSERT INTO outbox (topic, envelope, created_at, okey) VALUES {}",
        value_rows_from(first, rows, 4)
    )
}

/// The `envelope` column of `env`'s outbox row: its bytes as text.
pub(super) fn row_text(env: &Encoded) -> String {
    String::from_utf8_lossy(&env.bytes).into_owned()
}

/// Bind the outbox row of each of `envs` to `sql`.
fn bind_rows(sql: Sql, envs: &[Encoded], now: i64) -> Sql {
    envs.iter().fold(sql, |q, env| {
        q.text(topics::CHAT_OUT)
            .text(row_text(env))
            .int(now)
            .int(env.ordering_hash())
    })
}

/// The oldest `limit` rows of the partitions `parts`, in id order.
pub(crate) async fn oldest<D: Dialect>(
    conn: &mut D::Conn,
    parts: &Partitions,
    limit: i64,
) -> Result<Vec<OutboxItem>, StoreError> {
    if parts.owned.is_empty() {
        return Ok(Vec::new());
    }
    let sql = if parts.is_all() {
        Sql::new("SELECT id, topic, envelope FROM outbox ORDER BY id LIMIT $1").int(limit)
    } else {
        let text = format!(
            "SELECT id, topic, envelope FROM outbox WHERE okey % $1 IN ({}) ORDER BY id LIMIT ${}",
            placeholders(2, parts.owned.len()),
            parts.owned.len() + 2
        );
        parts
            .owned
            .iter()
            .fold(Sql::new(text).int(i64::from(parts.count)), |q, p| {
                q.int(i64::from(*p))
            })
            .int(limit)
    };
    let rows = sql.all::<D>(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxItem {
                id: r.int("id")?,
                topic: r.text("topic")?,
                envelope: envelope_of::<D>(r)?,
            })
        })
        .collect()
}

/// Delete the rows `ids`.
pub(crate) async fn delete<D: Dialect>(conn: &mut D::Conn, ids: &[i64]) -> Result<(), StoreError> {
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "DELETE FROM outbox WHERE id IN ({})",
            placeholders(1, chunk.len())
        );
        let sql = chunk.iter().fold(Sql::new(sql), |q, id| q.int(*id));
        sql.run::<D>(conn).await?;
    }
    Ok(())
}

/// Rows waiting, and the age of the oldest.
pub(super) async fn backlog<D: Dialect>(conn: &mut D::Conn) -> Result<OutboxBacklog, StoreError> {
    let row = Sql::new(
        "SELECT count(*) AS n, CAST(coalesce(min(created_at), 0) AS BIGINT) AS oldest FROM outbox",
    )
    .one::<D>(conn)
    .await?;
    let (rows, oldest) = (row.int("n")?, row.int("oldest")?);
    Ok(OutboxBacklog {
        rows,
        oldest_age_ms: if rows == 0 {
            0
        } else {
            (now_ms() - oldest).max(0)
        },
    })
}

/// At open: the database's partition count (`wanted`, clamped to
/// 1..=[`MAX_PARTITIONS`], is stored first if it has none), and the ordering
/// hash of rows queued by a version without partitions ([`backfill`]).
pub(super) async fn prepare<D: Dialect>(
    conn: &mut D::Conn,
    wanted: u32,
) -> Result<u32, StoreError> {
    let wanted = wanted.clamp(1, MAX_PARTITIONS);
    Sql::new("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .text(PARTITIONS_SETTING)
        .int(i64::from(wanted))
        .run::<D>(conn)
        .await?;
    let stored = Sql::new("SELECT value FROM settings WHERE name = $1")
        .text(PARTITIONS_SETTING)
        .one::<D>(conn)
        .await?
        .int("value")?;
    let count = u32::try_from(stored)
        .ok()
        .filter(|n| (1..=MAX_PARTITIONS).contains(n))
        .ok_or_else(|| StoreError::Corrupt(format!("settings.{PARTITIONS_SETTING} = {stored}")))?;
    if count != wanted {
        tracing::warn!(
            stored = count,
            configured = wanted,
            "the database's outbox partition count differs from the configured one; using the \
             database's (it is fixed when the database is created)"
        );
    }
    backfill::<D>(conn).await?;
    Ok(count)
}

/// Give rows queued by a version without partitions (`okey` < 0, as an
/// older API process still writes during a rolling upgrade) their ordering
/// hash, so their room's partition relays them. Returns how many.
pub(crate) async fn backfill<D: Dialect>(conn: &mut D::Conn) -> Result<u64, StoreError> {
    let mut done = 0;
    loop {
        let rows = Sql::new("SELECT id, envelope FROM outbox WHERE okey < 0 ORDER BY id LIMIT 500")
            .all::<D>(conn)
            .await?;
        if rows.is_empty() {
            return Ok(done);
        }
        done += rows.len() as u64;
        for r in &rows {
            let hash = Encoded::peek(r.text("envelope")?.into_bytes())
                .map(|e| e.ordering_hash())
                .unwrap_or(0);
            Sql::new("UPDATE outbox SET okey = $1 WHERE id = $2")
                .int(hash)
                .int(r.int("id")?)
                .run::<D>(conn)
                .await?;
        }
    }
}
