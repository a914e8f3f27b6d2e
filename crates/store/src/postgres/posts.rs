//! The post queue: posts wait here for a writer, which takes every post
//! queued by then (up to [`BATCH_MAX`]) and writes them in one transaction
//! ([`crate::sql::post_batch`]).
//!
//! # Writers and batches
//! Writer tasks ([`DEFAULT_WRITERS`] unless the URL sets `post_writers`)
//! take turns at the queue, one at a time: the writer holding the queue
//! takes the oldest post and every post queued behind it, so a lone post
//! waits for no other and never for a timer, and keeps the queue until
//! its batch is written; it lets the queue go before its `COMMIT`, so the
//! next writer forms and writes the next batch while this one commits
//! (waiting only for rooms the two share, whose locks the committing one
//! still holds). Under load each transaction carries as many posts as
//! arrived while the last one was written. Each writer holds one pooled
//! connection while it writes; the rest of the pool serves reads, the
//! other writes and the relay.
//!
//! # Overflow
//! The queue holds [`QUEUE_DEPTH`] posts. When it is full a post waits for
//! room (its HTTP request or ACK waits with it): nothing is dropped, and
//! the wait is the API tier's backpressure. Writers end when the last
//! handle to the store is dropped; a post whose writer is gone (its runtime
//! shut down) fails with [`StoreError::Stopped`].
//!
//! [`PostQueue::stats`] counts batches and the posts in them, for
//! `/healthz` ([`crate::Store::write_stats`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::sql::messages::Post;
use crate::sql::post_batch::{self, Job};
use crate::{Posted, StoreError, WriteStats};

/// Posts per transaction, at most.
pub const BATCH_MAX: usize = 64;

/// Posts the queue holds before a post waits for room.
pub const QUEUE_DEPTH: usize = 1024;

/// Writer tasks per store when the URL does not say (`post_writers`, see
/// [`crate::postgres`]). Two: one writes while the other commits. Measured
/// on two cores (BENCHMARKS.md): with writers taking the queue side by side
/// (before the hand-over at `COMMIT`), 1 writer cost PostgreSQL a fifth
/// less CPU per post than 2, and 2 a third less than 4; with the hand-over,
/// 2 writers took more posts/s than 1 in four rounds of five (median
/// 2,049 against 1,533).
pub const DEFAULT_WRITERS: usize = 2;

/// The queue's sending side, shared by every handle to the store.
#[derive(Clone, Debug)]
pub struct PostQueue {
    tx: mpsc::Sender<Job>,
    counts: Arc<Counts>,
}

/// Batches written and the posts in them.
#[derive(Debug, Default)]
struct Counts {
    batches: AtomicU64,
    posts: AtomicU64,
}

impl PostQueue {
    /// The queue, with `writers` writer tasks on `pool`.
    pub fn start(pool: &PgPool, writers: usize) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let rx = Arc::new(Mutex::new(rx));
        let counts = Arc::new(Counts::default());
        for _ in 0..writers.max(1) {
            tokio::spawn(write_batches(pool.clone(), rx.clone(), counts.clone()));
        }
        Self { tx, counts }
    }

    /// Posts waiting for a writer now.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Batches written since the store opened, and the posts in them.
    pub fn stats(&self) -> WriteStats {
        WriteStats {
            batches: self.counts.batches.load(Ordering::Relaxed),
            writes: self.counts.posts.load(Ordering::Relaxed),
        }
    }

    /// Queue `post` and wait for its outcome (after its commit).
    pub(crate) async fn post(&self, post: Post) -> Result<Posted, StoreError> {
        let (answer, outcome) = oneshot::channel();
        self.tx
            .send(Job { post, answer })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Stopped("the post writers stopped".into())
}

/// One writer: take the oldest post and those queued behind it, write them,
/// again, until the queue closes.
async fn write_batches(pool: PgPool, rx: Arc<Mutex<mpsc::Receiver<Job>>>, counts: Arc<Counts>) {
    loop {
        let mut jobs = Vec::new();
        let mut intake = rx.clone().lock_owned().await;
        if intake.recv_many(&mut jobs, BATCH_MAX).await == 0 {
            return;
        }
        counts.batches.fetch_add(1, Ordering::Relaxed);
        counts.posts.fetch_add(jobs.len() as u64, Ordering::Relaxed);
        post_batch::post_all(&pool, jobs, Some(intake)).await;
    }
}
