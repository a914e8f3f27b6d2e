//! The outbox relay: moves outbox rows to the bus, store → relay → bus.
//!
//! # A pass
//! The relay holds an [`OutboxLease`] on some outbox partitions (all of them
//! on SQLite; a fair share of the live API processes' on PostgreSQL). A pass
//! claims the oldest rows of those partitions ([`Store::outbox_claim`]),
//! publishes them, and deletes the ones published
//! ([`Store::outbox_done`]), until a batch comes back short.
//!
//! # Publishing a batch
//! The rows of one ordering key (a room, else a user) are one run
//! ([`Bus::publish_run`]): published one after the other, each once the bus
//! accepted the one before (on Pub/Sub, the whole run in one request);
//! different keys are published at once, so a batch costs about as long as its
//! longest run of one key, not the sum of all. A room's events reach the bus
//! in `eventSeq` order; nothing holds across rooms. When the bus refuses a
//! row, that key's later rows in the batch are not tried; every row
//! published is deleted and the rest stay, in order, for the next pass.
//!
//! # When it runs
//! - At once after a write: the store signals its relay
//!   ([`Store::outbox_signal`]); the relay then tells the other processes'
//!   relays ([`OutboxLease::announce`]), which wake on
//!   [`OutboxLease::remote_write`].
//! - Every `poll_interval` anyway (rows left by a failed attempt, or a missed
//!   notice).
//! - After a failure, with exponential back-off (100 ms doubling to 5 s).
//!   Rows already published may be published again: consumers drop
//!   duplicates by envelope id.
//! - On shutdown it makes one last pass, then gives its partitions up.
//!
//! # The backlog
//! Every renewal it reads the backlog (rows waiting, age of the oldest) and
//! logs a warning while the oldest row is older than [`BACKLOG_WARN_AGE`];
//! `/healthz` reads it afresh. A bus that is down never blocks a write:
//! rows wait in the outbox and go out, in per-room order, once it is back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use roomcast_bus::{Bus, Topics};
use roomcast_store::{OutboxItem, OutboxLease, Partitions, Store};
use tokio_util::sync::CancellationToken;

/// Shortest wait after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait after repeated failures.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A backlog whose oldest row is older than this is logged (once per renewal).
pub const BACKLOG_WARN_AGE: Duration = Duration::from_secs(5);

/// Moves outbox rows to the bus.
pub struct OutboxRelay {
    /// Where rows come from.
    pub store: Arc<dyn Store>,
    /// Where they go.
    pub bus: Arc<dyn Bus>,
    /// Topic names.
    pub topics: Topics,
    /// This process's name among the relays (logs).
    pub node: String,
    /// Rows claimed per batch.
    pub batch: i64,
    /// Longest sleep between passes when nobody wakes the relay.
    pub poll_interval: Duration,
    /// Where the latest backlog reading is kept (for `/healthz`).
    pub status: Arc<RelayStatus>,
}

/// What the relay holds and did, for `/healthz`.
#[derive(Debug, Default)]
pub struct RelayStatus {
    inner: Mutex<StatusInner>,
}

#[derive(Clone, Debug, Default)]
struct StatusInner {
    partitions: Vec<u32>,
    published: u64,
}

impl RelayStatus {
    /// The partitions held, and the rows published since start.
    pub fn snapshot(&self) -> (Vec<u32>, u64) {
        let s = self.lock().clone();
        (s.partitions, s.published)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StatusInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The outcome of publishing one batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Ids of the rows the bus accepted.
    pub done: Vec<i64>,
    /// The first refusal, if any (those rows and their keys' later ones stay).
    pub failure: Option<String>,
}

/// Publish `items` (in id order): one key's rows in turn, different keys at
/// once; see the module docs.
pub async fn publish_batch(bus: &dyn Bus, topics: &Topics, items: Vec<OutboxItem>) -> Published {
    // Per key: its topic, its rows' ids and envelopes, in id order.
    let mut runs: Vec<(String, Vec<i64>, Vec<roomcast_core::Encoded>)> = Vec::new();
    let mut by_key: HashMap<(String, Option<uuid::Uuid>), usize> = HashMap::new();
    for item in items {
        let key = (item.topic.clone(), item.envelope.key);
        let i = *by_key.entry(key).or_insert_with(|| {
            runs.push((item.topic.clone(), Vec::new(), Vec::new()));
            runs.len() - 1
        });
        runs[i].1.push(item.id);
        runs[i].2.push(item.envelope);
    }
    let outcomes = join_all(runs.into_iter().map(|(topic, ids, envelopes)| async move {
        let topic = topics.resolve(&topic);
        let (accepted, failure) = bus.publish_run(topic, envelopes).await;
        let done: Vec<i64> = ids[..accepted.min(ids.len())].to_vec();
        (done, failure.map(|e| e.to_string()))
    }))
    .await;
    let mut out = Published::default();
    for (done, failure) in outcomes {
        out.done.extend(done);
        if out.failure.is_none() {
            out.failure = failure;
        }
    }
    out.done.sort_unstable();
    out
}

impl OutboxRelay {
    /// Publish every pending row of the partitions `parts`, once. Returns
    /// how many were published.
    pub async fn pass(&self, parts: &Partitions) -> Result<usize, String> {
        let mut total = 0;
        loop {
            let items = self
                .store
                .outbox_claim(parts, self.batch)
                .await
                .map_err(|e| e.to_string())?;
            if items.is_empty() {
                return Ok(total);
            }
            let claimed = items.len();
            let published = publish_batch(&*self.bus, &self.topics, items).await;
            if !published.done.is_empty() {
                self.store
                    .outbox_done(&published.done)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            total += published.done.len();
            self.status.lock().published += published.done.len() as u64;
            if let Some(e) = published.failure {
                return Err(e);
            }
            if claimed < self.batch as usize {
                return Ok(total);
            }
        }
    }

    /// Join the relays (retrying until it can, or until `shutdown`).
    async fn join(&self, shutdown: &CancellationToken) -> Option<Box<dyn OutboxLease>> {
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.store.outbox_lease(&self.node).await {
                Ok(lease) => return Some(lease),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "outbox relay: cannot join the relays");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Renew the lease and look at the backlog.
    async fn renew(&self, lease: &mut dyn OutboxLease) {
        if let Err(e) = lease.renew().await {
            tracing::warn!(error = %e, "outbox relay: lease lost; relaying nothing until renewed");
        }
        self.status.lock().partitions = lease.partitions().owned.clone();
        let backlog = match self.store.outbox_backlog().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay: cannot read the backlog");
                return;
            }
        };
        if backlog.oldest_age_ms > BACKLOG_WARN_AGE.as_millis() as i64 {
            tracing::warn!(
                rows = backlog.rows,
                oldest_age_ms = backlog.oldest_age_ms,
                "outbox backlog: rows wait to be published"
            );
        }
    }

    /// Run until `shutdown`, then make a last pass and give the partitions up.
    pub async fn run(self, shutdown: CancellationToken) {
        let Some(mut lease) = self.join(&shutdown).await else {
            return;
        };
        let signal = self.store.outbox_signal();
        let mut backoff = BACKOFF_MIN;
        let mut renew_at = Instant::now();
        // No pass before this (the back-off after a failure).
        let mut retry_at = Instant::now();
        let mut woken_here = false;
        loop {
            if Instant::now() >= renew_at {
                self.renew(&mut *lease).await;
                renew_at = Instant::now() + lease.renew_every();
            }
            if Instant::now() >= retry_at {
                if woken_here && let Err(e) = lease.announce().await {
                    tracing::debug!(error = %e, "outbox relay: could not wake the other relays");
                }
                let parts = lease.partitions().clone();
                match self.pass(&parts).await {
                    Ok(_) => backoff = BACKOFF_MIN,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "outbox relay: publish failed; rows kept");
                        retry_at = Instant::now() + backoff;
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
            // While backing off, only the back-off's end (or a renewal)
            // ends the wait; a wake-up meanwhile is kept for after.
            let failing = Instant::now() < retry_at;
            let until = if failing {
                retry_at
            } else {
                Instant::now() + self.poll_interval
            };
            woken_here = false;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = signal.wait(), if !failing => woken_here = true,
                _ = lease.remote_write(), if !failing => {}
                _ = tokio::time::sleep_until(until.min(renew_at).into()) => {}
            }
        }
        let parts = lease.partitions().clone();
        if let Err(e) = self.pass(&parts).await {
            tracing::warn!(error = %e, "outbox relay: final pass failed; rows stay for the next start");
        }
        lease.release().await;
    }
}
