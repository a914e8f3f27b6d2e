//! The HTTP API's rate limits ([`ApiLimits`]), and [`ClientAddr`], the
//! extractor of the client's address they are keyed by.
//!
//! Each limit is checked before the work it guards, so a refused request
//! stores nothing and costs no password hash; it is answered 429 with
//! `Retry-After` and `{"error":{"code":"rate_limited","message",
//! "retryAfterMs"}}` ([`ApiError::limited`]).
//!
//! | route | limit(s) |
//! | --- | --- |
//! | `POST /v1/auth/login` | `login_ip`, then `login_account_ip` |
//! | `POST /v1/auth/register` | `register_ip` |
//! | `POST /v1/rooms`, `POST /v1/dms` | `rooms_user` |
//! | post, edit, delete a message | `messages_user` |
//! | add, remove a reaction | `reactions_user` |
//!
//! The buckets are this process's: with several API nodes behind a load
//! balancer each keeps its own (docs/security.md says which limits are per
//! node).

use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use roomcast_core::UserId;
use roomcast_limits::{Limiter, Rates};
use roomcast_sio::ClientIp;

use crate::ApiError;

/// Longest account name a login key keeps (usernames are at most 32 bytes;
/// a longer one is refused later anyway, and must not grow the map).
const ACCOUNT_KEY_BYTES: usize = 64;

/// The API's buckets.
pub struct ApiLimits {
    login_ip: Limiter<IpAddr>,
    login_account_ip: Limiter<(String, IpAddr)>,
    register_ip: Limiter<IpAddr>,
    rooms_user: Limiter<UserId>,
    messages_user: Limiter<UserId>,
    reactions_user: Limiter<UserId>,
}

impl ApiLimits {
    /// The limits of `rates`; all off when `enabled` is false.
    pub fn new(rates: &Rates, enabled: bool) -> Self {
        Self {
            login_ip: Limiter::new(rates.login_ip, enabled),
            login_account_ip: Limiter::new(rates.login_account_ip, enabled),
            register_ip: Limiter::new(rates.register_ip, enabled),
            rooms_user: Limiter::new(rates.rooms_user, enabled),
            messages_user: Limiter::new(rates.messages_user, enabled),
            reactions_user: Limiter::new(rates.reactions_user, enabled),
        }
    }

    /// No limits at all.
    pub fn off() -> Self {
        Self::new(&Rates::default(), false)
    }

    /// A login attempt for `account` from `ip`.
    pub fn login(&self, ip: IpAddr, account: &str) -> Result<(), ApiError> {
        check(&self.login_ip, &ip, "login attempts from this address")?;
        let account = &account[..account.floor_char_boundary(ACCOUNT_KEY_BYTES)];
        check(
            &self.login_account_ip,
            &(account.to_owned(), ip),
            "login attempts for this account",
        )
    }

    /// A registration from `ip`.
    pub fn register(&self, ip: IpAddr) -> Result<(), ApiError> {
        check(&self.register_ip, &ip, "registrations from this address")
    }

    /// `user` opens a room or a DM.
    pub fn room(&self, user: UserId) -> Result<(), ApiError> {
        check(&self.rooms_user, &user, "rooms created")
    }

    /// `user` posts, edits or deletes a message.
    pub fn message(&self, user: UserId) -> Result<(), ApiError> {
        check(&self.messages_user, &user, "messages")
    }

    /// `user` adds or removes a reaction.
    pub fn reaction(&self, user: UserId) -> Result<(), ApiError> {
        check(&self.reactions_user, &user, "reactions")
    }
}

/// Take one action of `key` from `limiter`; a refusal names `what`.
fn check<K: Hash + Eq + Clone>(limiter: &Limiter<K>, key: &K, what: &str) -> Result<(), ApiError> {
    limiter.check(key).map_err(|l| ApiError::limited(what, l))
}

/// The client's address: [`ClientIp`], which `roomcast_sio::serve_with`
/// puts on every request (the peer, or what a trusted proxy forwarded);
/// `0.0.0.0` when the request did not come through it (a test's `oneshot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ClientIp>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0),
        ))
    }
}
