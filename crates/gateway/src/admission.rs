//! Admission at CONNECT: a correctly signed token whose user does not exist
//! (never did, or is gone) is refused before the CONNECT reply, with
//! `connect_error` data `{code: "unknown_user"}`; one whose login session
//! has ended (logout, a password change, a reused refresh token) with
//! `{code: "session_ended"}`.
//!
//! Rules:
//! - [`Membership::admit`] answers (the store in `serve`, the API tier's
//!   internal route in the split deployment).
//! - Only "admitted" answers are kept, each for [`KNOWN_TTL`], keyed by the
//!   user and the token's session (if any); a refusal is always asked again.
//!   A CONNECT whose answer is kept is decided on the connection's own task
//!   ([`Admission::known`]), with no spawn and no query.
//! - A session that ends is forgotten at once: the `sessionRevoked` event
//!   reaches every realtime node over `chat.out` ([`Admission::ended`]),
//!   which also disconnects that session's sockets. A check that was under
//!   way when a session ended keeps nothing (an epoch counts the endings),
//!   so an answer given before the end is never kept after it. Until the
//!   event arrives (the bus delays or is down), a node may admit a
//!   reconnect of the ended session for at most [`KNOWN_TTL`]; the event
//!   disconnects it when it comes.
//! - At most [`KNOWN_CAPACITY`] answers are kept: when full, expired entries
//!   are purged; if it is still full, the cache is emptied (a few re-checks).
//! - If the check fails (the database or the API tier unreachable), the
//!   socket is admitted and the failure logged: its token is valid, it can
//!   join no room while membership checks fail too, and refusing would make
//!   socket.io-client give up on a connection a user is entitled to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_core::{SessionId, UserId};
use serde_json::json;
use tokio::time::Instant;

use crate::membership::{Admitted, Membership};
use crate::transport::{Identity, Refusal};

/// How long an admitted user (and session) is admitted without asking again.
pub const KNOWN_TTL: Duration = Duration::from_secs(60);

/// Most answers kept.
pub const KNOWN_CAPACITY: usize = 100_000;

/// The `connect_error` data code of a refused unknown user.
pub const UNKNOWN_USER: &str = "unknown_user";

/// The `connect_error` data code of a token whose session has ended.
pub const SESSION_ENDED: &str = "session_ended";

/// What an answer is kept under: the user and the token's session.
type Key = (UserId, Option<SessionId>);

/// Decides whether a token's user may connect; see the module docs.
pub struct Admission {
    membership: Arc<dyn Membership>,
    known: Mutex<HashMap<Key, Instant>>,
    /// Sessions ended so far (by [`Admission::ended`]).
    endings: AtomicU64,
}

impl Admission {
    /// Admission asking `membership`.
    pub fn new(membership: Arc<dyn Membership>) -> Self {
        Self {
            membership,
            known: Mutex::new(HashMap::new()),
            endings: AtomicU64::new(0),
        }
    }

    /// Whether `who` is admitted from a kept answer, without asking.
    pub fn known(&self, who: &Identity) -> bool {
        let now = Instant::now();
        self.cache()
            .get(&(who.user, who.session))
            .is_some_and(|&until| now < until)
    }

    /// `session` of `user` has ended: its kept answer is dropped, and no check
    /// under way keeps its answer.
    pub fn ended(&self, user: UserId, session: SessionId) {
        let mut known = self.cache();
        self.endings.fetch_add(1, Ordering::AcqRel);
        known.remove(&(user, Some(session)));
    }

    /// Admit `who`, or refuse them.
    pub async fn admit(&self, who: Identity) -> Result<(), Refusal> {
        if self.known(&who) {
            return Ok(());
        }
        let (user, session) = (who.user, who.session);
        let (asked_at, endings) = (Instant::now(), self.endings.load(Ordering::Acquire));
        match self.membership.admit(user, session).await {
            Ok(Admitted::Yes) => {
                self.remember((user, session), asked_at + KNOWN_TTL, endings);
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

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Instant>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep an answer asked for when `endings` sessions had ended, unless one
    /// has ended since (it may be this one).
    fn remember(&self, key: Key, until: Instant, endings: u64) {
        let mut known = self.cache();
        if key.1.is_some() && self.endings.load(Ordering::Acquire) != endings {
            return;
        }
        if known.len() >= KNOWN_CAPACITY && !known.contains_key(&key) {
            let now = Instant::now();
            known.retain(|_, at| now < *at);
            if known.len() >= KNOWN_CAPACITY {
                known.clear();
            }
        }
        known.insert(key, until);
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
    async fn a_live_session_is_kept_until_it_ends_and_an_ended_one_refused_every_time() {
        let (alice, live, over) = (UserId::new(), SessionId::new(), SessionId::new());
        let (adm, users) = ended(vec![alice], vec![over], false);
        let of = |session| Identity {
            user: alice,
            session: Some(session),
        };
        adm.admit(of(live)).await.unwrap();
        assert!(
            adm.known(&of(live)),
            "kept: the next CONNECT needs no check"
        );
        adm.admit(of(live)).await.unwrap();
        assert_eq!(users.asked.load(Ordering::Relaxed), 1, "asked once");
        for _ in 0..2 {
            let refused = adm.admit(of(over)).await.unwrap_err();
            assert_eq!(refused.data, Some(json!({"code": SESSION_ENDED})));
        }
        assert_eq!(
            users.asked.load(Ordering::Relaxed),
            3,
            "refusals are not kept"
        );

        // The session ends (its `sessionRevoked` arrived): asked again.
        adm.ended(alice, live);
        assert!(!adm.known(&of(live)));
        adm.admit(of(live)).await.unwrap();
        assert_eq!(users.asked.load(Ordering::Relaxed), 4, "asked again");
    }

    /// Admits everyone, each check waiting for `go`.
    struct Slow {
        started: tokio::sync::Notify,
        go: tokio::sync::Notify,
    }

    #[async_trait]
    impl Membership for Slow {
        async fn access(&self, _: RoomId, _: UserId) -> Result<RoomAccess, MembershipError> {
            Ok(RoomAccess::NoRoom)
        }
        async fn admit(
            &self,
            _: UserId,
            _: Option<SessionId>,
        ) -> Result<Admitted, MembershipError> {
            self.started.notify_one();
            self.go.notified().await;
            Ok(Admitted::Yes)
        }
    }

    #[tokio::test]
    async fn a_check_under_way_when_a_session_ends_keeps_nothing() {
        let slow = Arc::new(Slow {
            started: tokio::sync::Notify::new(),
            go: tokio::sync::Notify::new(),
        });
        let adm = Arc::new(Admission::new(slow.clone()));
        let who = Identity {
            user: UserId::new(),
            session: Some(SessionId::new()),
        };
        let check = tokio::spawn({
            let adm = adm.clone();
            async move { adm.admit(who).await }
        });
        slow.started.notified().await;
        // The answer "yes" was read before the end; the end arrives first.
        adm.ended(who.user, who.session.unwrap());
        slow.go.notify_one();
        check.await.unwrap().unwrap();
        assert!(
            !adm.known(&who),
            "an answer from before the end is not kept"
        );

        // With no ending meanwhile, the next answer is kept.
        let again = tokio::spawn({
            let adm = adm.clone();
            async move { adm.admit(who).await }
        });
        slow.started.notified().await;
        slow.go.notify_one();
        again.await.unwrap().unwrap();
        assert!(adm.known(&who));
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
            adm.remember((UserId::new(), None), Instant::now() + KNOWN_TTL, 0);
        }
        adm.remember((UserId::new(), None), Instant::now() + KNOWN_TTL, 0);
        assert!(adm.cache().len() <= KNOWN_CAPACITY, "{}", adm.cache().len());
    }
}
