//! The chat layer's settings: typing, presence, the membership cache.
//!
//! `roomcast` exposes `typing_timeout` as `chat.typing_timeout_ms` and
//! `heartbeat_interval` as `presence.heartbeat_secs`; the other fields keep
//! the defaults documented here (tests shorten them).

use std::time::Duration;

/// Settings of the chat layer. [`ChatConfig::default`] is the documented
/// behaviour of `docs/protocol.md`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatConfig {
    /// A `typing:true` state ends this long after the last `typing:true` of
    /// that user in that room; the gateway then relays `typing:false` itself.
    /// Default 5 s.
    pub typing_timeout: Duration,
    /// A `typing:true` refresh within this long of the last relay is accepted
    /// but not relayed again. Default 1 s.
    pub typing_refresh: Duration,
    /// Token bucket of `typing` events per socket: at most `typing_burst`
    /// at once, refilled at `typing_per_sec` per second; an event finding the
    /// bucket empty is refused `rate_limited`. Default 10 and 10.
    pub typing_per_sec: u32,
    /// See [`ChatConfig::typing_per_sec`].
    pub typing_burst: u32,
    /// Period of the `nodeHeartbeat` published on `chat.in`. Default 10 s.
    pub heartbeat_interval: Duration,
    /// How long a positive membership answer is reused for `sendMessage`,
    /// `markMessageRead` and `typing` (never for `joinRoom`, which needs the
    /// room's latest seq). At most 2 s; default 2 s; zero disables the cache.
    pub membership_cache_ttl: Duration,
    /// Most (room, user) answers the membership cache holds. Default 65,536
    /// (a few MiB at most).
    pub membership_cache_capacity: usize,
    /// At shutdown, how long publishing "offline" for this node's users may
    /// take before it is abandoned (the API's node sweeper covers the rest).
    /// Default 2 s.
    pub shutdown_offline_timeout: Duration,
    /// The latest logged events kept per room for replay on `joinRoom
    /// {sinceEventSeq}` (see [`crate::replay`]). Default 256.
    pub replay_buffer: usize,
}

/// Longest accepted [`ChatConfig::membership_cache_ttl`]: a member removed
/// elsewhere may pass the gateway's check for at most this long (the API
/// re-checks every command anyway).
pub const MAX_MEMBERSHIP_CACHE_TTL: Duration = Duration::from_secs(2);

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            typing_timeout: Duration::from_millis(5000),
            typing_refresh: Duration::from_secs(1),
            typing_per_sec: 10,
            typing_burst: 10,
            heartbeat_interval: Duration::from_secs(10),
            membership_cache_ttl: MAX_MEMBERSHIP_CACHE_TTL,
            membership_cache_capacity: 65_536,
            shutdown_offline_timeout: Duration::from_secs(2),
            replay_buffer: 256,
        }
    }
}

impl ChatConfig {
    /// The same settings with out-of-range values brought into range: the
    /// cache TTL capped at [`MAX_MEMBERSHIP_CACHE_TTL`], periods and rates
    /// at least 1 (ms, per second).
    pub fn sanitized(mut self) -> Self {
        let min = Duration::from_millis(1);
        self.typing_timeout = self.typing_timeout.max(min);
        self.heartbeat_interval = self.heartbeat_interval.max(min);
        self.membership_cache_ttl = self.membership_cache_ttl.min(MAX_MEMBERSHIP_CACHE_TTL);
        self.typing_per_sec = self.typing_per_sec.max(1);
        self.typing_burst = self.typing_burst.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones_and_sanitizing_keeps_them() {
        let c = ChatConfig::default();
        assert_eq!(c.typing_timeout, Duration::from_secs(5));
        assert_eq!(c.heartbeat_interval, Duration::from_secs(10));
        assert_eq!((c.typing_per_sec, c.typing_burst), (10, 10));
        assert_eq!(c.clone().sanitized(), c);
    }

    #[test]
    fn sanitizing_caps_the_cache_ttl_and_floors_periods() {
        let c = ChatConfig {
            typing_timeout: Duration::ZERO,
            heartbeat_interval: Duration::ZERO,
            membership_cache_ttl: Duration::from_secs(60),
            typing_per_sec: 0,
            typing_burst: 0,
            ..ChatConfig::default()
        }
        .sanitized();
        assert_eq!(c.membership_cache_ttl, MAX_MEMBERSHIP_CACHE_TTL);
        assert!(c.typing_timeout > Duration::ZERO && c.heartbeat_interval > Duration::ZERO);
        assert_eq!((c.typing_per_sec, c.typing_burst), (1, 1));
    }
}
