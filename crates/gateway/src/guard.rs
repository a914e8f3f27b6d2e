//! The realtime tier's caps and rate limits (docs/security.md): connection
//! attempts per client address, sockets per user, and per user
//! `sendMessage` and the joins (`joinRoom`, `joinUser`).
//!
//! - A handshake past `connect_ip` is answered 429 with `Retry-After` by
//!   the protocol layer (no session is made).
//! - A CONNECT of a user who already has `sockets_per_user` sockets on this
//!   node is refused with a `connect_error` whose `message` says so and
//!   whose `data` is `{"code": "too_many_sockets"}`. The count is the
//!   sockets connected now ([`Presence::sockets`]), so two CONNECTs at the
//!   same instant may both pass; the cap is then exceeded by at most the
//!   CONNECTs in flight.
//! - A command past its limit is ACKed `{ok:false, error:{code:
//!   "rate_limited", message, retryAfterMs}}` before anything is checked or
//!   published.
//!
//! Everything here is per realtime node: a user's sockets on two nodes are
//! counted on each. With `enabled` false nothing is limited.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use roomcast_core::{ErrorBody, UserId};
use roomcast_limits::{Limited, Limiter, Rates};
use serde_json::json;

use crate::presence::Presence;

/// What the guard enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardConfig {
    /// false: nothing is limited (load tests and benchmarks only).
    pub enabled: bool,
    /// Sockets one user may have on this node (0: no cap). Default 20.
    pub sockets_per_user: usize,
    /// The rates (`connect_ip`, `messages_user`, `joins_user` are used here).
    pub rates: Rates,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sockets_per_user: 20,
            rates: Rates::default(),
        }
    }
}

/// The connect-error code of a CONNECT past the per-user socket cap.
pub const TOO_MANY_SOCKETS: &str = "too_many_sockets";

/// The realtime tier's limits.
pub struct Guard {
    connect_ip: Limiter<IpAddr>,
    messages_user: Limiter<UserId>,
    joins_user: Limiter<UserId>,
    sockets_per_user: usize,
    presence: Arc<Presence>,
}

impl Guard {
    /// The limits of `cfg`, counting sockets in `presence`.
    pub fn new(cfg: &GuardConfig, presence: Arc<Presence>) -> Self {
        let on = cfg.enabled;
        Self {
            connect_ip: Limiter::new(cfg.rates.connect_ip, on),
            messages_user: Limiter::new(cfg.rates.messages_user, on),
            joins_user: Limiter::new(cfg.rates.joins_user, on),
            sockets_per_user: if on { cfg.sockets_per_user } else { 0 },
            presence,
        }
    }

    /// May a client at `ip` open an Engine.IO session? `Err`: how long to
    /// wait. Unknown addresses (not served by `serve_with`) are not limited.
    pub fn handshake(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        match ip {
            Some(ip) => self.connect_ip.check(&ip).map_err(|l| l.retry_after),
            None => Ok(()),
        }
    }

    /// May `user` connect one more socket? `Err`: the connect_error's
    /// message and data.
    pub fn admit(&self, user: UserId) -> Result<(), (String, serde_json::Value)> {
        let cap = self.sockets_per_user;
        if cap > 0 && self.presence.sockets(user) >= cap {
            return Err((
                format!("too many sockets: this user already has {cap} open; close one"),
                json!({ "code": TOO_MANY_SOCKETS }),
            ));
        }
        Ok(())
    }

    /// `user` sends a message (`sendMessage`).
    pub fn message(&self, user: UserId) -> Result<(), ErrorBody> {
        self.messages_user
            .check(&user)
            .map_err(|l| limited("messages", l))
    }

    /// `user` joins a room or their own channel.
    pub fn join(&self, user: UserId) -> Result<(), ErrorBody> {
        self.joins_user
            .check(&user)
            .map_err(|l| limited("joins", l))
    }
}

fn limited(what: &str, l: Limited) -> ErrorBody {
    ErrorBody::rate_limited(Limited::message(what), l.retry_after_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_core::ErrorCode;
    use roomcast_limits::Rate;

    fn guard(enabled: bool) -> (Guard, Arc<Presence>) {
        let presence = Presence::new("test");
        let rates = Rates {
            messages_user: Rate::new(2, 60_000),
            joins_user: Rate::new(1, 60_000),
            connect_ip: Rate::new(1, 60_000),
            ..Rates::default()
        };
        let cfg = GuardConfig {
            enabled,
            sockets_per_user: 2,
            rates,
        };
        (Guard::new(&cfg, presence.clone()), presence)
    }

    #[test]
    fn commands_past_their_rate_are_refused_with_the_wait() {
        let (g, _) = guard(true);
        let (a, b) = (UserId::new(), UserId::new());
        assert!(g.message(a).is_ok() && g.message(a).is_ok());
        let e = g.message(a).unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert!(e.retry_after_ms.is_some_and(|ms| ms > 1000), "{e:?}");
        assert!(g.message(b).is_ok(), "another user has their own bucket");
        assert!(g.join(a).is_ok());
        assert!(g.join(a).is_err());
        let ip = "10.1.2.3".parse().unwrap();
        assert!(g.handshake(Some(ip)).is_ok());
        assert!(g.handshake(Some(ip)).unwrap_err() > Duration::from_secs(1));
        assert!(g.handshake(None).is_ok());
    }

    #[test]
    fn the_socket_cap_counts_connected_sockets() {
        let (g, presence) = guard(true);
        let user = UserId::new();
        presence.connected(user);
        assert!(g.admit(user).is_ok());
        presence.connected(user);
        let (message, data) = g.admit(user).unwrap_err();
        assert!(message.contains('2'), "{message}");
        assert_eq!(data["code"], TOO_MANY_SOCKETS);
        presence.disconnected(user);
        assert!(g.admit(user).is_ok());
    }

    #[test]
    fn disabled_limits_nothing() {
        let (g, presence) = guard(false);
        let user = UserId::new();
        for _ in 0..5 {
            presence.connected(user);
            assert!(g.admit(user).is_ok());
            assert!(g.message(user).is_ok());
            assert!(g.join(user).is_ok());
            assert!(g.handshake(Some("10.1.2.3".parse().unwrap())).is_ok());
        }
    }
}
