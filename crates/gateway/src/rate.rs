//! Per-socket rate limiting of `typing` events: a token bucket per socket.
//!
//! A bucket holds at most `burst` tokens and gains `per_sec` tokens per
//! second; each event takes one, and an event finding it empty is refused
//! (`rate_limited`) without touching any state. With the defaults (10, 10) a
//! socket may send 10 events at once and then 10 per second.
//!
//! Buckets live in [`RateLimits`], keyed by [`ConnId`]: one is made when a
//! socket connects and dropped when it disconnects, so the map holds at most
//! one entry per socket connected to this node. An event of a socket with no
//! bucket (it has disconnected) is refused.
//!
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause`.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::Instant;

use crate::transport::ConnId;

/// One token bucket.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_sec: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_sec` per second.
    pub fn new(burst: u32, per_sec: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_sec: f64::from(per_sec),
            updated: now,
        }
    }

    /// Take one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Why an event was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The socket's bucket is empty.
    Limited,
    /// The socket is not (or no longer) connected.
    Gone,
}

/// The buckets of this node's sockets.
pub struct RateLimits {
    burst: u32,
    per_sec: u32,
    buckets: Mutex<HashMap<ConnId, TokenBucket>>,
}

impl RateLimits {
    /// Buckets of `burst` tokens refilled at `per_sec` per second.
    pub fn new(burst: u32, per_sec: u32) -> Self {
        Self {
            burst,
            per_sec,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// A socket connected: give it a full bucket.
    pub fn add(&self, conn: ConnId) {
        let bucket = TokenBucket::new(self.burst, self.per_sec, Instant::now());
        self.lock().insert(conn, bucket);
    }

    /// A socket disconnected: drop its bucket.
    pub fn remove(&self, conn: ConnId) {
        self.lock().remove(&conn);
    }

    /// Take one token from `conn`'s bucket.
    pub fn take(&self, conn: ConnId) -> Result<(), Refused> {
        let mut buckets = self.lock();
        let bucket = buckets.get_mut(&conn).ok_or(Refused::Gone)?;
        if bucket.take(Instant::now()) {
            Ok(())
        } else {
            Err(Refused::Limited)
        }
    }

    /// Sockets with a bucket.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// No socket has a bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ConnId, TokenBucket>> {
        self.buckets.lock().expect("rate limit lock")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_refill_rate() {
        let limits = RateLimits::new(10, 10);
        let c = ConnId(1);
        limits.add(c);
        for i in 0..10 {
            assert_eq!(limits.take(c), Ok(()), "event {i} of the burst");
        }
        assert_eq!(limits.take(c), Err(Refused::Limited));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(limits.take(c), Ok(()), "one token back after 100 ms");
        assert_eq!(limits.take(c), Err(Refused::Limited));
        tokio::time::advance(Duration::from_secs(60)).await;
        let granted = (0..20).filter(|_| limits.take(c).is_ok()).count();
        assert_eq!(granted, 10, "a long pause refills no more than the burst");
    }

    #[tokio::test(start_paused = true)]
    async fn sustained_rate_is_capped_per_socket() {
        let limits = RateLimits::new(10, 10);
        let (a, b) = (ConnId(1), ConnId(2));
        limits.add(a);
        limits.add(b);
        let mut granted = 0;
        // 50 events per second for 2 s from `a`: 10 (burst) + 20 (refill).
        for _ in 0..100 {
            if limits.take(a).is_ok() {
                granted += 1;
            }
            tokio::time::advance(Duration::from_millis(20)).await;
        }
        assert!((29..=31).contains(&granted), "{granted}");
        assert_eq!(limits.take(b), Ok(()), "another socket has its own bucket");
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_or_removed_sockets_are_refused_and_removal_frees_memory() {
        let limits = RateLimits::new(10, 10);
        assert_eq!(limits.take(ConnId(9)), Err(Refused::Gone));
        limits.add(ConnId(9));
        assert_eq!(limits.len(), 1);
        limits.remove(ConnId(9));
        assert!(limits.is_empty());
        assert_eq!(limits.take(ConnId(9)), Err(Refused::Gone));
    }
}
