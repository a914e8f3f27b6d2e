//! Admission at CONNECT: a correctly signed token whose user does not exist
//! (never did, or is gone) is refused before the CONNECT reply, with
//! `connect_error` data `{code: "unknown_user"}`; one whose login session
//! has ended (logout, a password change, a reused refresh token) with
//! `{code: "session_ended"}`.
//!
//! Rules:
//! - [`Membership::admit`] answers (the store in `serve`, the API tier's
//!   internal route in the split deployment).
//! - A token of a session is checked at every CONNECT (a session can end
//!   at any moment). For a token of no session, only "exists" answers are
//!   kept, each for [`KNOWN_TTL`]; "no such user" is always asked again.
//! - At most [`KNOWN_CAPACITY`] users are kept: when full, expired entries
//!   are purged; if it is still full, the cache is emptied (a few re-checks).
//! - If the check fails (the database or the API tier unreachable), the
//!   socket is admitted and the failure logged: its token is valid, it can
//!   join no room while membership checks fail too, and refusing would make
//!   socket.io-client give up on a connection a user is entitled to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_core::UserId;
use serde_json::json;
use tokio::time::Instant;

use crate::membership::{Admitted, Membership};
use crate::transport::{Identity, Refusal};

/// How long a user known to exist is admitted without asking again.
pub const KNOWN_TTL: Duration = Duration::from_secs(60);

/// Most users remembered as existing.
pub const KNOWN_CAPACITY: usize = 100_000;

/// The `connect_error` data code of a refused unknown user.
pub const UNKNOWN_USER: &str = "unknown_user";

/// The `connect_error` data code of a token whose session has ended.
pub const SESSION_ENDED: &str = "session_ended";

/// Decides whether a token's user may connect; see the module docs.
pub struct Admission {
    membership: Arc<dyn Membership>,
    known: Mutex<HashMap<UserId, Instant>>,
}

impl Admission {
    /// Admission asking `membership`.
    pub fn new(membership: Arc<dyn Membership>) -> Self {
        Self {
            membership,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Admit `who`, or refuse them.
    pub async fn admit(&self, who: Identity) -> Result<(), Refusal> {
        let (user, session) = (who.user, who.session);
        let now = Instant::now();
        if session.is_none() && self.known().get(&user).is_some_and(|&at| now < at) {
            return Ok(());
        }
        match self.membership.admit(user, session).await {
            Ok(Admitted::Yes) => {
                if session.is_none() {
                    self.remember(user, now + KNOWN_TTL);
                }
                Ok(())
            }
            Ok(Admitted::UnknownUser) => Err(Refusal::with_data(
                "this account does not exist (any more): sign in again",
                json!({ "code": UNKNOWN_USER }),
            )),
            Ok(Admitted::SessionEnded) => Err(Refusal::with_data(
                "this session has ended (logged out): sign in again",
                json!({ "code": SESSION_ENDED }),
            )),
            Err(e) => {
                tracing::warn!(error = %e, %user, "could not check that the user exists: admitted");
                Ok(())
            }
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Instant>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, user: UserId, until: Instant) {
        let mut known = self.known();
        if known.len() >= KNOWN_CAPACITY && !known.contains_key(&user) {
            let now = Instant::now();
            known.retain(|_, at| now < *at);
            if known.len() >= KNOWN_CAPACITY {
                known.clear();
            }
        }
        known.insert(user, until);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use roomcast_core::{RoomAccess, RoomId, SessionId};

    use super::*;
    use crate::membership::MembershipError;

    /// Users who exist and sessions that ended, counting the checks;
    /// `down` fails every check.
    struct Users {
        exist: Vec<UserId>,
        ended: Vec<SessionId>,
        down: bool,
        asked: AtomicUsize,
    }

    #[async_trait]
    impl Membership for Users {
        async fn access(&self, _: RoomId, _: UserId) -> Result<RoomAccess, MembershipError> {
            Ok(RoomAccess::NoRoom)
        }
        async fn admit(
            &self,
            user: UserId,
            session: Option<SessionId>,
        ) -> Result<Admitted, MembershipError> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            if self.down {
                return Err(MembershipError("down".into()));
            }
            Ok(match (self.exist.contains(&user), session) {
                (false, _) => Admitted::UnknownUser,
                (true, Some(s)) if self.ended.contains(&s) => Admitted::SessionEnded,
                (true, _) => Admitted::Yes,
            })
        }
    }

    fn admission(exist: Vec<UserId>, down: bool) -> (Admission, Arc<Users>) {
        ended(exist, Vec::new(), down)
    }

    fn ended(exist: Vec<UserId>, ended: Vec<SessionId>, down: bool) -> (Admission, Arc<Users>) {
        let users = Arc::new(Users {
            exist,
            ended,
            down,
            asked: AtomicUsize::new(0),
        });
        (Admission::new(users.clone()), users)
    }

    fn who(user: UserId) -> Identity {
        Identity {
            user,
            session: None,
        }
    }

    #[tokio::test]
    async fn a_sessions_token_is_checked_every_time_and_refused_once_it_ended() {
        let (alice, live, over) = (UserId::new(), SessionId::new(), SessionId::new());
        let (adm, users) = ended(vec![alice], vec![over], false);
        let of = |session| Identity {
            user: alice,
            session: Some(session),
        };
        adm.admit(of(live)).await.unwrap();
        adm.admit(of(live)).await.unwrap();
        assert_eq!(users.asked.load(Ordering::Relaxed), 2, "not cached");
        let refused = adm.admit(of(over)).await.unwrap_err();
        assert_eq!(refused.data, Some(json!({"code": SESSION_ENDED})));
    }

    #[tokio::test(start_paused = true)]
    async fn known_users_are_remembered_for_a_minute_and_unknown_ones_refused_every_time() {
        let (alice, ghost) = (UserId::new(), UserId::new());
        let (adm, users) = admission(vec![alice], false);
        for _ in 0..3 {
            adm.admit(who(alice)).await.unwrap();
        }
        assert_eq!(users.asked.load(Ordering::Relaxed), 1, "asked once");
        tokio::time::advance(KNOWN_TTL).await;
        adm.admit(who(alice)).await.unwrap();
        assert_eq!(
            users.asked.load(Ordering::Relaxed),
            2,
            "asked again after the TTL"
        );

        for _ in 0..2 {
            let refused = adm.admit(who(ghost)).await.unwrap_err();
            assert_eq!(refused.data, Some(json!({"code": UNKNOWN_USER})));
        }
        assert_eq!(
            users.asked.load(Ordering::Relaxed),
            4,
            "refusals are not cached"
        );
    }

    #[tokio::test]
    async fn a_failed_check_admits() {
        let (adm, users) = admission(Vec::new(), true);
        adm.admit(who(UserId::new())).await.unwrap();
        adm.admit(who(UserId::new())).await.unwrap();
        assert_eq!(
            users.asked.load(Ordering::Relaxed),
            2,
            "a failure is not remembered"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_stays_bounded() {
        let (adm, _) = admission(Vec::new(), false);
        for _ in 0..KNOWN_CAPACITY {
            adm.remember(UserId::new(), Instant::now() + KNOWN_TTL);
        }
        adm.remember(UserId::new(), Instant::now() + KNOWN_TTL);
        assert!(adm.known().len() <= KNOWN_CAPACITY, "{}", adm.known().len());
    }
}
