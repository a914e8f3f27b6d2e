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
//! The login buckets are shared by every API node when they are built
//! [`ApiLimits::shared`] (the split deployment: in PostgreSQL,
//! [`Store::rate_take`]), so guesses spread over nodes count as one; the
//! other buckets are each process's (docs/security.md says which are per
//! node). Account names are keyed lowercased, as usernames match.

use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use roomcast_core::UserId;
use roomcast_limits::{Limited, Limiter, Rate, Rates};
use roomcast_sio::ClientIp;
use roomcast_store::Store;

use crate::ApiError;

/// Longest account name a login key keeps (usernames are at most 32 bytes;
/// a longer one is refused later anyway, and must not grow the map).
const ACCOUNT_KEY_BYTES: usize = 64;

/// Shared login checks between prunes of the shared buckets.
const PRUNE_EVERY: u64 = 1024;

/// The API's buckets.
pub struct ApiLimits {
    login_ip: Limiter<IpAddr>,
    login_account_ip: Limiter<(String, IpAddr)>,
    /// The login buckets in the database, when shared between nodes.
    shared: Option<Shared>,
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
            shared: None,
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

    /// These limits with the login buckets kept in `store`, shared by
    /// every API node on its database (when enabled).
    pub fn shared(mut self, rates: &Rates, enabled: bool, store: Arc<dyn Store>) -> Self {
        self.shared = enabled.then(|| Shared {
            store,
            login_ip: rates.login_ip,
            login_account_ip: rates.login_account_ip,
            checks: AtomicU64::new(0),
        });
        self
    }

    /// A login attempt for `account` from `ip`.
    pub async fn login(&self, ip: IpAddr, account: &str) -> Result<(), ApiError> {
        let account = account[..account.floor_char_boundary(ACCOUNT_KEY_BYTES)].to_lowercase();
        if let Some(shared) = &self.shared {
            return shared.login(ip, &account).await;
        }
        check(&self.login_ip, &ip, "login attempts from this address")?;
        check(
            &self.login_account_ip,
            &(account, ip),
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

/// The login buckets in the database ([`Store::rate_take`]).
struct Shared {
    store: Arc<dyn Store>,
    login_ip: Rate,
    login_account_ip: Rate,
    checks: AtomicU64,
}

impl Shared {
    async fn login(&self, ip: IpAddr, account: &str) -> Result<(), ApiError> {
        let by_ip = format!("login_ip:{ip}");
        if let Some(l) = self.take(&by_ip, self.login_ip).await? {
            return Err(ApiError::limited("login attempts from this address", l));
        }
        let by_account = format!("login_account_ip:{account}|{ip}");
        match self.take(&by_account, self.login_account_ip).await? {
            Some(l) => Err(ApiError::limited("login attempts for this account", l)),
            None => Ok(()),
        }
    }

    /// Take one action from the shared bucket `key`: `Some` if refused. A
    /// database failure is a 500, as the login itself would be, never a
    /// free pass.
    async fn take(&self, key: &str, rate: Rate) -> Result<Option<Limited>, ApiError> {
        let now = roomcast_core::now_ms();
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.rate_prune(now).await {
                    tracing::warn!(error = %e, "could not prune the shared rate limits");
                }
            });
        }
        let interval = i64::try_from(rate.refill_ms).unwrap_or(i64::MAX);
        let wait = self.store.rate_take(key, now, interval, rate.burst).await?;
        Ok(wait.map(|ms| Limited {
            retry_after: Duration::from_millis(u64::try_from(ms).unwrap_or(1)),
        }))
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
