//! The outbox relay: publishes outbox rows to the bus, in row order, and
//! deletes each batch once the bus has accepted it.
//!
//! - Woken at once by [`crate::AppState::outbox_wake`] after a write, and every
//!   `poll_interval` anyway (rows written by another process, or left by a
//!   failed attempt).
//! - If the bus refuses a publish, the batch stays in the outbox and the relay
//!   retries with exponential back-off (100 ms doubling to 5 s). Rows already
//!   published in that batch may be published again: consumers drop duplicates
//!   by envelope id.
//! - On shutdown it makes one last pass, so rows written just before the stop
//!   go out before the process exits (bounded by the bus answering).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roomcast_bus::{Bus, Topics};
use roomcast_store::{OutboxItem, OutboxSink, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Shortest wait after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait after repeated failures.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Moves outbox rows to the bus.
pub struct OutboxRelay {
    /// Where rows come from.
    pub store: Arc<dyn Store>,
    /// Where they go.
    pub bus: Arc<dyn Bus>,
    /// Topic names.
    pub topics: Topics,
    /// Wake-up signal from writers.
    pub wake: Arc<Notify>,
    /// Rows fetched per pass.
    pub batch: i64,
    /// Longest sleep between passes when nobody wakes the relay.
    pub poll_interval: Duration,
}

impl OutboxRelay {
    /// Publish all pending rows once. Returns how many were published.
    pub async fn pass(&self) -> Result<usize, String> {
        let sink = BusSink {
            bus: &*self.bus,
            topics: &self.topics,
        };
        let mut total = 0;
        loop {
            let pass = self
                .store
                .outbox_relay(self.batch, &sink)
                .await
                .map_err(|e| e.to_string())?;
            total += pass.published;
            if let Some(e) = pass.failure {
                return Err(e);
            }
            if pass.published < self.batch as usize {
                return Ok(total);
            }
        }
    }

    /// Run until `shutdown`, then make a last pass.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let wait = match self.pass().await {
                Ok(_) => {
                    backoff = BACKOFF_MIN;
                    self.poll_interval
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "outbox relay: publish failed; rows kept");
                    let w = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    w
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        if let Err(e) = self.pass().await {
            tracing::warn!(error = %e, "outbox relay: final pass failed; rows stay for the next start");
        }
    }
}

/// Publishes outbox rows to the bus under their configured topic names.
struct BusSink<'a> {
    bus: &'a dyn Bus,
    topics: &'a Topics,
}

#[async_trait]
impl OutboxSink for BusSink<'_> {
    async fn publish(&self, item: &OutboxItem) -> Result<(), String> {
        self.bus
            .publish(self.topics.resolve(&item.topic), &item.envelope)
            .await
            .map_err(|e| e.to_string())
    }
}
