//! What a run measures on the client side: deliveries (with loss and
//! duplicate detection per connection) and end-to-end latency in an HDR
//! histogram, sharded so 15,000 connection tasks do not contend on one lock.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

const SHARDS: usize = 64;

/// Per-connection record of which of its room's messages arrived.
pub struct ConnTracker {
    shard: usize,
    messages: usize,
    seen: Vec<u64>,
}

impl ConnTracker {
    /// A tracker for connection `i` whose room will get `messages` messages.
    pub fn new(i: usize, messages: usize) -> Self {
        Self {
            shard: i % SHARDS,
            messages,
            seen: vec![0; messages.div_ceil(64)],
        }
    }

    /// Distinct messages received.
    pub fn distinct(&self) -> u64 {
        self.seen.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// Counters and latency shared by all connections of a run.
pub struct Shared {
    /// The clock bench bodies carry (µs since this instant).
    pub epoch: Instant,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    disconnects: AtomicU64,
    foreign: AtomicU64,
    expected: AtomicU64,
    all_in: Notify,
    latency: Vec<Mutex<Histogram<u64>>>,
}

/// Latency summary, milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// (percentile, ms) points for plots.
    pub curve: Vec<(f64, f64)>,
}

impl Shared {
    /// Fresh counters; `expected` deliveries complete the run.
    pub fn new(expected: u64) -> Self {
        Self {
            epoch: Instant::now(),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            expected: AtomicU64::new(expected),
            all_in: Notify::new(),
            latency: (0..SHARDS)
                .map(|_| {
                    Mutex::new(
                        Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds"),
                    )
                })
                .collect(),
        }
    }

    /// Microseconds since the epoch, now.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Record one received bench message `k`, sent at `sent_us`.
    pub fn record(&self, t: &mut ConnTracker, k: usize, sent_us: u64) {
        let (word, bit) = (k / 64, 1u64 << (k % 64));
        let w = match t.seen.get_mut(word) {
            Some(w) if k < t.messages => w,
            _ => {
                self.foreign.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if *w & bit != 0 {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *w |= bit;
        let lat = self.now_us().saturating_sub(sent_us).max(1);
        if let Ok(mut h) = self.latency[t.shard].lock() {
            let _ = h.record(lat);
        }
        let n = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.expected.load(Ordering::Relaxed) {
            self.all_in.notify_waiters();
        }
    }

    /// A connection ended before the run did.
    pub fn note_disconnect(&self) {
        self.disconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// A `receiveMessage` that was not a bench message of this connection's room.
    pub fn note_foreign(&self) {
        self.foreign.fetch_add(1, Ordering::Relaxed);
    }

    /// Distinct deliveries so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Duplicate deliveries so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// Connections that ended early.
    pub fn disconnects(&self) -> u64 {
        self.disconnects.load(Ordering::Relaxed)
    }

    /// Unexpected `receiveMessage` packets.
    pub fn foreign(&self) -> u64 {
        self.foreign.load(Ordering::Relaxed)
    }

    /// Wait until every expected delivery arrived (the caller bounds the wait).
    pub async fn all_delivered(&self) {
        loop {
            let notified = self.all_in.notified();
            if self.delivered() >= self.expected.load(Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }

    /// Merge the shards into one latency summary.
    pub fn latency(&self) -> Latency {
        let mut all =
            Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds");
        for h in &self.latency {
            if let Ok(h) = h.lock() {
                let _ = all.add(&*h);
            }
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let curve = [
            50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
        ]
        .iter()
        .map(|&q| (q, ms(all.value_at_quantile(q / 100.0))))
        .collect();
        Latency {
            count: all.len(),
            p50_ms: ms(all.value_at_quantile(0.50)),
            p99_ms: ms(all.value_at_quantile(0.99)),
            p999_ms: ms(all.value_at_quantile(0.999)),
            max_ms: ms(all.max()),
            curve,
        }
    }
}

impl Shared {
    /// Record a raw duration sample (for connect → join times).
    pub fn record_raw(&self, took: std::time::Duration) {
        let shard = (self.now_us() as usize) % SHARDS;
        if let Ok(mut h) = self.latency[shard].lock() {
            let _ = h.record((took.as_micros() as u64).max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_distinct_deliveries_are_told_apart() {
        let s = Shared::new(3);
        let mut t = ConnTracker::new(0, 100);
        s.record(&mut t, 5, 0);
        s.record(&mut t, 5, 0);
        s.record(&mut t, 99, 0);
        s.record(&mut t, 100, 0); // out of range: foreign
        assert_eq!(t.distinct(), 2);
        assert_eq!((s.delivered(), s.duplicates(), s.foreign()), (2, 1, 1));
        assert_eq!(s.latency().count, 2);
    }
}
