//! roomcast-limits: rate limits as token buckets (GCRA, from `governor`),
//! one bucket per key (a client address, a user, an account and address).
//!
//! A [`Rate`] is a burst and a refill: a key may act `burst` times at once,
//! then once more every `refill_ms`. A refused
//! action learns how long to wait ([`Limited::retry_after`]), which becomes
//! `Retry-After` and `retryAfterMs` in the answer, and nothing of it is done.
//!
//! Memory: a bucket is a few words per key seen recently. Every
//! [`SWEEP_EVERY`] checks, a limiter holding more than [`SWEEP_ABOVE`] keys
//! drops the buckets that have refilled (they are the same as a new one), so
//! the map holds only keys active within one refill of the burst.
//!
//! A [`Limiter`] built disabled (`limits.enabled = false`) allows everything
//! and holds nothing.
//!
//! # Layout
//! - [`Rates`]: every limit roomcast applies, with its default (the
//!   `[limits]` section of the config).
//! - [`Rate`]: one quota (serde, for the config file).
//! - [`Limiter`]: keyed buckets with [`Limiter::check`].
//! - [`Limited`]: the refusal, with its wait.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

/// Checks between sweeps of refilled buckets.
pub const SWEEP_EVERY: u64 = 1024;
/// Keys a limiter holds before a sweep drops refilled buckets.
pub const SWEEP_ABOVE: usize = 4096;

/// A quota: `burst` actions at once, one more regained every `refill_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Actions allowed at once (at least 1).
    pub burst: u32,
    /// One action is regained every this many milliseconds (at least 1).
    pub refill_ms: u64,
}

impl Rate {
    /// `burst` at once, one more every `refill_ms`.
    pub const fn new(burst: u32, refill_ms: u64) -> Self {
        Self { burst, refill_ms }
    }

    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(Duration::from_millis(self.refill_ms.max(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// Every rate limit, keyed as its name says; see docs/security.md "Rate
/// limits" for what each guards. Per node: each API or realtime process
/// keeps its own buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rates {
    /// Engine.IO handshakes (connection attempts) per client address.
    pub connect_ip: Rate,
    /// Login attempts per client address, whatever the account.
    pub login_ip: Rate,
    /// Login attempts per account and client address: the back-off on
    /// password guessing. Keyed by both, so guessing from one address never
    /// locks the account's owner out from another.
    pub login_account_ip: Rate,
    /// Registrations per client address.
    pub register_ip: Rate,
    /// Rooms and DMs opened per user.
    pub rooms_user: Rate,
    /// Messages posted, edited or deleted per user (HTTP and socket each).
    pub messages_user: Rate,
    /// Reactions added or removed per user.
    pub reactions_user: Rate,
    /// `joinRoom` and `joinUser` per user, on each realtime node.
    pub joins_user: Rate,
}

impl Default for Rates {
    fn default() -> Self {
        Self {
            connect_ip: Rate::new(200, 100),
            login_ip: Rate::new(30, 2_000),
            login_account_ip: Rate::new(10, 30_000),
            register_ip: Rate::new(30, 20_000),
            rooms_user: Rate::new(20, 6_000),
            messages_user: Rate::new(30, 200),
            reactions_user: Rate::new(30, 200),
            joins_user: Rate::new(500, 20),
        }
    }
}

/// An action refused by a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    /// How long until the key may act again.
    pub retry_after: Duration,
}

impl Limited {
    /// What a refusal of `what` (`"messages"`, `"joins"`) tells the client.
    pub fn message(what: &str) -> String {
        format!("too many {what}; retry later")
    }

    /// [`Limited::retry_after`] in whole milliseconds, at least 1.
    pub fn retry_after_ms(&self) -> u64 {
        u64::try_from(self.retry_after.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// Token buckets keyed by `K`.
pub struct Limiter<K: Hash + Eq + Clone> {
    buckets: Option<DefaultKeyedRateLimiter<K>>,
    checks: AtomicU64,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// Buckets of `rate`; with `enabled` false, a limiter that allows all.
    pub fn new(rate: Rate, enabled: bool) -> Self {
        Self {
            buckets: enabled.then(|| RateLimiter::keyed(rate.quota())),
            checks: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }

    /// Take one action from `key`'s bucket, or say how long to wait.
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        let Some(buckets) = &self.buckets else {
            return Ok(());
        };
        let result = buckets.check_key(key).map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(self.clock.now()),
        });
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1
            && buckets.len() > SWEEP_ABOVE
        {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
        result
    }

    /// Keys holding a bucket now.
    pub fn len(&self) -> usize {
        self.buckets.as_ref().map_or(0, |b| b.len())
    }

    /// Whether no key holds a bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_refusal_with_its_wait() {
        let l = Limiter::new(Rate::new(3, 1000), true);
        for _ in 0..3 {
            assert_eq!(l.check(&"a"), Ok(()));
        }
        let refused = l.check(&"a").unwrap_err();
        assert!(
            refused.retry_after > Duration::from_millis(500),
            "{refused:?}"
        );
        assert!(refused.retry_after <= Duration::from_secs(1), "{refused:?}");
        assert!(refused.retry_after_ms() >= 1);
        // Another key has its own bucket.
        assert_eq!(l.check(&"b"), Ok(()));
    }

    #[test]
    fn disabled_allows_everything_and_holds_nothing() {
        let l = Limiter::new(Rate::new(1, 1), false);
        for _ in 0..100 {
            assert_eq!(l.check(&1u32), Ok(()));
        }
        assert!(l.is_empty());
    }

    #[test]
    fn refilled_buckets_are_swept() {
        // A bucket refills 1 ms after its one action.
        let l = Limiter::new(Rate::new(1, 1), true);
        for k in 0..(SWEEP_ABOVE as u64 + SWEEP_EVERY * 2) {
            let _ = l.check(&k);
        }
        // Without a sweep every key would still hold its bucket.
        assert!(
            l.len() < SWEEP_ABOVE + SWEEP_EVERY as usize * 2,
            "{}",
            l.len()
        );
    }
}
