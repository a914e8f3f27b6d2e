//! The SQLite store's threads: one **writer** that group-commits, a few
//! **readers**, and one that checkpoints the write-ahead log.
//!
//! A piece of work ([`Work`]) is sent whole to a thread, which runs all of
//! its statements there, synchronously (the futures of [`super::io`] are
//! ready at once, so `block_on` never parks). A write costs the caller one
//! hand-off there and one back, however many statements it has.
//!
//! # Group commit
//! The writer takes the work queued when it is free, up to [`MAX_BATCH`],
//! and runs it in one transaction, then commits once, and only then answers
//! every caller: an answer is never given for a write that is not yet
//! durable, and a failed commit fails every piece of the batch. Nothing
//! waits to fill a batch: under light load a batch is one write; under
//! heavy load many writes share one commit.
//!
//! A piece that fails *before changing a row* (every refusal: not a member,
//! a bad reply, a taken username, which SQLite undoes statement by
//! statement) is answered with its error and the others stand. A piece that
//! fails after changing rows (an I/O error, a bug) cannot be undone alone
//! without a savepoint per piece, which copies every page a piece touches
//! (measured: 15% of the writer's time): the whole batch is rolled back and
//! every piece in it is refused, stored nowhere and published never, so its
//! callers see an error and may retry (every write is idempotent).
//!
//! # Queues and overflow
//! Both queues are bounded ([`WRITE_QUEUE`], [`READ_QUEUE`]); a caller that
//! finds one full waits (its request is slowed, never dropped). A panic in a
//! piece of work fails that piece (and, being a bug, rolls back its batch)
//! without stopping the thread.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;

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
    let mut broken = statement(conn, "BEGIN IMMEDIATE")
        .err()
        .map(|e| e.to_string());
    let mut ran = Vec::with_capacity(batch.len());
    for job in batch {
        if broken.is_some() {
            ran.push(job(None));
            continue;
        }
        let before = conn.0.total_changes();
        let mark = conn.1.as_ref().map(|p| p.mark());
        let r = job(Some(conn));
        if r.failed
            && let (Some(pending), Some(mark)) = (conn.1.as_mut(), mark)
        {
            pending.undo(mark);
        }
        if conn.0.is_autocommit() {
            // SQLite ended the transaction itself (an I/O error, a full
            // disk): nothing of the batch stands.
            broken = Some("SQLite rolled the transaction back".into());
        } else if r.failed && conn.0.total_changes() != before {
            // Refusals come before a write's first change; this one failed
            // after changing rows, which cannot be undone alone.
            broken = Some("a write in the batch failed after changing rows".into());
        }
        ran.push(r);
    }
    let outcome = match broken {
        Some(e) => Err(e),
        None => statement(conn, "COMMIT").map_err(|e| e.to_string()),
    };
    if let Some(pending) = conn.1.as_mut() {
        // Before any answer: a caller that is answered finds its events queued.
        pending.settle(outcome.is_ok());
    }
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

/// How often the checkpoint thread checkpoints the write-ahead log.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The checkpoint thread; it makes a last checkpoint and stops when the
/// last clone of this is dropped.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    /// Held only to be dropped: the thread stops when every clone is gone.
    _alive: std_mpsc::Sender<()>,
}

impl Checkpointer {
    /// Start checkpointing through `conn` (a read-write connection).
    pub fn spawn(conn: rusqlite::Connection) -> std::io::Result<Self> {
        let (tx, rx) = std_mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                loop {
                    let last = matches!(
                        rx.recv_timeout(CHECKPOINT_EVERY),
                        Err(std_mpsc::RecvTimeoutError::Disconnected)
                    );
                    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        r.get::<_, i64>(0)
                    });
                    if let Err(e) = done {
                        tracing::warn!(error = %e, "sqlite: checkpoint failed; retried in a second");
                    }
                    if last {
                        return;
                    }
                }
            })?;
        Ok(Self { _alive: tx })
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
    use super::*;
    use crate::sql::query::Sql;

    fn writer() -> Writer {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        Writer::spawn(Conn(conn, None)).unwrap()
    }

    /// Insert `n`; refuse before writing if `refuse`, fail after writing if `fail`.
    fn insert(n: i64, refuse: bool, fail: bool) -> Work<Sqlite, i64> {
        Box::new(move |c| {
            Box::pin(async move {
                if refuse {
                    return Err(StoreError::Invalid(format!("{n} refused")));
                }
                Sql::new("INSERT INTO t (n) VALUES ($1)")
                    .int(n)
                    .run::<Sqlite>(c)
                    .await?;
                if fail {
                    return Err(StoreError::Corrupt(format!("{n} failed after writing")));
                }
                Ok(n)
            })
        })
    }

    /// Hold the writer until the returned sender is dropped or sent to;
    /// returns once it is held.
    async fn hold(w: &Writer) -> (std_mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, held) = std_mpsc::channel::<()>();
        let (started_tx, started) = oneshot::channel::<()>();
        let hold = w.clone().write_owned(Box::new(move |_| {
            Box::pin(async move {
                let _ = started_tx.send(());
                held.recv().ok();
                Ok(())
            })
        }));
        let hold = tokio::spawn(async move { hold.await.unwrap() });
        started.await.unwrap();
        (release, hold)
    }

    /// Wait until `n` writes are queued behind the held writer.
    async fn queued(w: &Writer, n: usize) {
        while w.0.capacity() > WRITE_QUEUE - n {
            tokio::task::yield_now().await;
        }
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

    /// Writes queued together share one commit, and one refused (before it
    /// changes a row) is answered with its error while the others in its
    /// batch are stored and answered `Ok`.
    #[tokio::test]
    async fn a_refused_write_leaves_the_rest_of_its_batch_standing() {
        let w = writer();
        let (release, hold) = hold(&w).await;
        let writes: Vec<_> = (0..100)
            .map(|n| tokio::spawn(w.clone().write_owned(insert(n, n % 3 == 0, false))))
            .collect();
        queued(&w, 100).await;
        let batches = w.stats().batches.load(Ordering::Relaxed);
        release.send(()).unwrap();
        hold.await.unwrap();
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
        assert_eq!(count(&w).await, 66, "the 66 writes that were not refused");
    }

    /// A write that fails after changing rows takes its batch down with it:
    /// every write in the batch is answered with an error and none is
    /// stored; the writer goes on with the next batch.
    #[tokio::test]
    async fn a_write_failing_after_changes_refuses_its_whole_batch() {
        let w = writer();
        let (release, hold) = hold(&w).await;
        let writes: Vec<_> = (0..10)
            .map(|n| tokio::spawn(w.clone().write_owned(insert(n, false, n == 4))))
            .collect();
        queued(&w, 10).await;
        release.send(()).unwrap();
        hold.await.unwrap();
        for (n, write) in writes.into_iter().enumerate() {
            let got = write.await.unwrap();
            match n {
                4 => assert!(matches!(got, Err(StoreError::Corrupt(_))), "{n}: {got:?}"),
                _ => assert!(matches!(got, Err(StoreError::Stopped(_))), "{n}: {got:?}"),
            }
        }
        assert_eq!(count(&w).await, 0, "nothing of the batch is stored");
        assert_eq!(w.write(insert(99, false, false)).await.unwrap(), 99);
        assert_eq!(count(&w).await, 1);
    }
}
