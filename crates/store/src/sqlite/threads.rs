//! The SQLite store's threads: one **writer** that group-commits, and a few
//! **readers**.
//!
//! A piece of work ([`Work`]) is sent whole to a thread, which runs all of
//! its statements there, synchronously (the futures of [`super::io`] are
//! ready at once, so `block_on` never parks). A write costs the caller one
//! hand-off there and one back, however many statements it has.
//!
//! # Group commit
//! The writer takes the work queued when it is free, up to [`MAX_BATCH`],
//! and runs it in one transaction: each piece inside its own savepoint, so a
//! piece that fails (a refusal, a constraint) is rolled back alone and the
//! others stand. Then it commits once, and only then answers every caller:
//! an answer is never given for a write that is not yet durable, and a
//! failed commit fails every piece of the batch. One piece alone skips the
//! savepoint. Nothing waits to fill a batch: under light load a batch is one
//! write; under heavy load many writes share one commit.
//!
//! # Queues and overflow
//! Both queues are bounded ([`WRITE_QUEUE`], [`READ_QUEUE`]); a caller that
//! finds one full waits (its request is slowed, never dropped). A panic in a
//! piece of work fails that piece (and, being a bug, rolls back its batch)
//! without stopping the thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::Sqlite;
use super::io::Conn;
use crate::StoreError;
use crate::sql::Work;

/// Writes waiting for the writer at most; callers beyond wait to queue.
pub const WRITE_QUEUE: usize = 4096;

/// Reads waiting for a reader at most; callers beyond wait to queue.
pub const READ_QUEUE: usize = 4096;

/// Writes committed together at most.
pub const MAX_BATCH: usize = 256;

/// What a thread runs: the work, bound to its caller's answer. Given no
/// connection, it does not run (its batch failed first). Returns whether
/// the work failed, and how to answer once its fate is known (the commit's
/// error, if the commit failed).
type Job = Box<dyn FnOnce(Option<&mut Conn>) -> Ran + Send>;

/// Answers a caller, given the commit's error if the commit failed.
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

struct Ran {
    failed: bool,
    answer: Answer,
}

fn gone() -> StoreError {
    StoreError::Stopped("the SQLite store's threads have stopped".into())
}

/// Bind `work` to a channel for its answer.
fn job<T: Send + 'static>(
    work: Work<Sqlite, T>,
    snapshot: bool,
) -> (Job, oneshot::Receiver<Result<T, StoreError>>) {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        let result = match conn {
            Some(conn) => run(conn, work, snapshot),
            None => Err(StoreError::Stopped(
                "not run: its write batch failed first".into(),
            )),
        };
        let failed = result.is_err();
        let answer: Answer = Box::new(move |commit: Option<&str>| {
            let result = match (result, commit) {
                (Ok(_), Some(e)) => Err(StoreError::Stopped(format!("commit failed: {e}"))),
                (result, _) => result,
            };
            // The caller may have given up (its request was dropped).
            let _ = tx.send(result);
        });
        Ran { failed, answer }
    });
    (job, rx)
}

/// Run `work` on `conn`; with `snapshot`, inside `BEGIN` … `COMMIT`.
fn run<T>(conn: &mut Conn, work: Work<Sqlite, T>, snapshot: bool) -> Result<T, StoreError> {
    if snapshot {
        statement(conn, "BEGIN")?;
    }
    let result = catch_unwind(AssertUnwindSafe(|| futures::executor::block_on(work(conn))))
        .unwrap_or_else(|_| Err(StoreError::Stopped("a store operation panicked".into())));
    if snapshot {
        statement(conn, "COMMIT")?;
    }
    result
}

fn statement(conn: &mut Conn, sql: &str) -> Result<(), StoreError> {
    conn.0.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// The writer thread's queue, and its counts.
#[derive(Clone, Debug)]
pub struct Writer(mpsc::Sender<Job>, Arc<WriterStats>);

/// What the writer has done since it started.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions it ran.
    pub batches: AtomicU64,
    /// Writes it ran in them.
    pub writes: AtomicU64,
}

impl Writer {
    /// Start the writer on `conn`.
    pub fn spawn(conn: Conn) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let stats = Arc::new(WriterStats::default());
        let counts = stats.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, rx, &counts))?;
        Ok(Self(tx, stats))
    }

    /// Its counts so far.
    pub fn stats(&self) -> &WriterStats {
        &self.1
    }

    /// Run `work` in a write transaction (group-committed); answers after
    /// the commit.
    pub async fn write<T: Send + 'static>(&self, work: Work<Sqlite, T>) -> Result<T, StoreError> {
        let (job, answer) = job(work, false);
        self.0.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    #[cfg(test)]
    async fn write_owned<T: Send + 'static>(self, work: Work<Sqlite, T>) -> Result<T, StoreError> {
        self.write(work).await
    }
}

fn write_loop(mut conn: Conn, mut rx: mpsc::Receiver<Job>, stats: &WriterStats) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        commit_batch(&mut conn, batch);
    }
}

/// Run `batch` in one transaction, then answer each piece.
fn commit_batch(conn: &mut Conn, batch: Vec<Job>) {
    let alone = batch.len() == 1;
    let mut broken = statement(conn, "BEGIN IMMEDIATE")
        .err()
        .map(|e| e.to_string());
    let mut ran = Vec::with_capacity(batch.len());
    for job in batch {
        if broken.is_none()
            && !alone
            && let Err(e) = statement(conn, "SAVEPOINT piece")
        {
            broken = Some(e.to_string());
        }
        if broken.is_some() {
            ran.push(job(None));
            continue;
        }
        let r = job(Some(conn));
        if conn.0.is_autocommit() {
            // SQLite ended the transaction itself (an I/O error, a full
            // disk): nothing of the batch stands.
            broken = Some("SQLite rolled the transaction back".into());
        } else if !alone {
            let undo = if r.failed {
                statement(conn, "ROLLBACK TO piece").and_then(|()| statement(conn, "RELEASE piece"))
            } else {
                statement(conn, "RELEASE piece")
            };
            broken = undo.err().map(|e| e.to_string());
        }
        ran.push(r);
    }
    let rollback_alone = alone && ran.iter().all(|r| r.failed);
    let outcome = match broken {
        Some(e) => Err(e),
        None if rollback_alone => statement(conn, "ROLLBACK").map_err(|e| e.to_string()),
        None => statement(conn, "COMMIT").map_err(|e| e.to_string()),
    };
    if let Err(e) = &outcome {
        if !conn.0.is_autocommit() {
            let _ = statement(conn, "ROLLBACK");
        }
        tracing::error!(error = %e, writes = ran.len(), "sqlite: a write batch failed; every write in it was refused");
    }
    for r in ran {
        (r.answer)(outcome.as_ref().err().map(String::as_str));
    }
}

/// The reader threads' shared queue.
#[derive(Clone, Debug)]
pub struct Readers(mpsc::Sender<Job>);

impl Readers {
    /// Start one reader thread on each of `conns`.
    pub fn spawn(conns: Vec<Conn>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(READ_QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for (i, conn) in conns.into_iter().enumerate() {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{i}"))
                .spawn(move || read_loop(conn, &rx))?;
        }
        Ok(Self(tx))
    }

    /// Run `work` on a reader (with `snapshot`, in one read transaction).
    pub async fn read<T: Send + 'static>(
        &self,
        snapshot: bool,
        work: Work<Sqlite, T>,
    ) -> Result<T, StoreError> {
        let (job, answer) = job(work, snapshot);
        self.0.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn read_loop(mut conn: Conn, rx: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // One idle reader waits on the queue; the others wait for the lock.
        let next = rx
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .blocking_recv();
        let Some(job) = next else { return };
        let ran = job(Some(&mut conn));
        if !conn.0.is_autocommit() {
            // A snapshot whose work failed before its COMMIT.
            let _ = statement(&mut conn, "ROLLBACK");
        }
        (ran.answer)(None);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use super::*;
    use crate::sql::query::Sql;

    fn writer() -> Writer {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        Writer::spawn(Conn(conn)).unwrap()
    }

    fn insert(n: i64, fail: bool) -> Work<Sqlite, i64> {
        Box::new(move |c| {
            Box::pin(async move {
                Sql::new("INSERT INTO t (n) VALUES ($1)")
                    .int(n)
                    .run::<Sqlite>(c)
                    .await?;
                if fail {
                    return Err(StoreError::Invalid(format!("{n} refused after writing")));
                }
                Ok(n)
            })
        })
    }

    async fn count(w: &Writer) -> i64 {
        let rows = w
            .write(Box::new(|c| {
                Box::pin(async move {
                    Sql::new("SELECT count(*) AS n FROM t")
                        .one::<Sqlite>(c)
                        .await?
                        .int("n")
                })
            }))
            .await;
        rows.unwrap()
    }

    /// Writes queued together share one commit, and one that fails after
    /// writing is rolled back alone: the others in its batch are stored and
    /// answered `Ok`, it is answered with its own error.
    #[tokio::test]
    async fn a_failed_write_is_rolled_back_alone_in_its_batch() {
        let w = writer();
        // Hold the writer so the next writes queue up behind it.
        let (release, held) = std_mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel::<()>();
        let hold = w.clone().write_owned(Box::new(move |_| {
            Box::pin(async move {
                let _ = started_tx.send(());
                held.recv().ok();
                Ok(())
            })
        }));
        let hold = tokio::spawn(hold);
        started.await.unwrap();
        let writes: Vec<_> = (0..100)
            .map(|n| tokio::spawn(w.clone().write_owned(insert(n, n % 3 == 0))))
            .collect();
        // Every write is queued before the writer is let go.
        while w.0.capacity() > WRITE_QUEUE - 100 {
            tokio::task::yield_now().await;
        }
        let batches = w.stats().batches.load(Ordering::Relaxed);
        release.send(()).unwrap();
        hold.await.unwrap().unwrap();
        for (n, write) in writes.into_iter().enumerate() {
            let got = write.await.unwrap();
            if n % 3 == 0 {
                assert!(matches!(got, Err(StoreError::Invalid(_))), "{n}: {got:?}");
            } else {
                assert_eq!(got.unwrap(), n as i64);
            }
        }
        assert_eq!(
            w.stats().batches.load(Ordering::Relaxed),
            batches + 1,
            "the 100 queued writes ran in one transaction"
        );
        assert_eq!(count(&w).await, 66, "the 66 writes that succeeded, only");
    }
}
