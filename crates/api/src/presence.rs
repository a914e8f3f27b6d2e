//! The presence sweeper: takes realtime nodes that stopped sending
//! `nodeHeartbeat` as gone, so their users go offline.
//!
//! A realtime node tells the API when a user's first socket connects and when
//! the last one leaves (`presenceChanged`), and that it is alive every few
//! seconds (`nodeHeartbeat`). A node that crashes says nothing more, so every
//! [`Sweeper::interval`] the sweeper calls `Store::sweep_nodes` with the
//! cut-off `now - node_timeout`: every node whose latest heartbeat is older is
//! swept, its users offline unless online on another node, and the store
//! queues the `presence` events (and wakes its relay).
//!
//! Several API processes may sweep the same database: sweeping is idempotent.
//! The cut-off uses the wall clock (heartbeats carry the nodes' wall clocks);
//! the interval uses the tokio clock.

use std::sync::Arc;
use std::time::Duration;

use roomcast_store::{Store, StoreError};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// How often the sweeper runs by default.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How long a node may stay silent by default (`presence.node_timeout_secs`).
pub const DEFAULT_NODE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sweeps silent realtime nodes.
pub struct Sweeper {
    /// Where presence lives.
    pub store: Arc<dyn Store>,
    /// A node silent for longer than this is gone.
    pub node_timeout: Duration,
    /// Time between sweeps.
    pub interval: Duration,
}

impl Sweeper {
    /// Sweep once, now: how many nodes were taken as gone.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let timeout = i64::try_from(self.node_timeout.as_millis()).unwrap_or(i64::MAX);
        let swept = self
            .store
            .sweep_nodes(roomcast_core::now_ms().saturating_sub(timeout))
            .await?;
        if swept > 0 {
            tracing::info!(nodes = swept, "presence: swept silent realtime nodes");
        }
        Ok(swept)
    }

    /// Sweep every `interval` (the first one an interval after the start, so
    /// nodes have had time to send a heartbeat) until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let start = tokio::time::Instant::now() + self.interval;
        let mut ticks = tokio::time::interval_at(start, self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "presence: sweeping silent nodes failed; next time");
            }
        }
    }
}
