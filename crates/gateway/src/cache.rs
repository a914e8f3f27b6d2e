//! A short positive cache in front of [`Membership`], for the socket commands
//! that only need "is this user a member?" (`sendMessage`, `markMessageRead`,
//! `typing`) — so a burst of typing events does not become a burst of store
//! queries or API round trips. `joinRoom` never uses it: it needs the room's
//! latest seq as of the join.
//!
//! Rules:
//! - Only `Member` answers are kept, each for at most `ttl` (≤ 2 s, see
//!   [`crate::config::MAX_MEMBERSHIP_CACHE_TTL`]). Refusals and failures are
//!   always asked again.
//! - A `roomRemoved` event for (room, user) drops the entry at once
//!   ([`MembershipCache::forget`]). An answer that was in flight while a
//!   `forget` happened is not stored, so it cannot bring the entry back.
//! - At most `capacity` entries: when full, expired entries are purged; if it
//!   is still full, the cache is emptied (every entry is at most `ttl` old, so
//!   this only costs a few re-checks).
//!
//! The API re-checks membership when it handles each command, so a stale
//! positive answer here can at worst let a command reach the API, which
//! refuses it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use roomcast_core::RoomAccess;
use roomcast_core::{RoomId, UserId};
use tokio::time::Instant;

use crate::membership::{Membership, MembershipError};

struct Inner {
    entries: HashMap<(RoomId, UserId), Instant>,
    /// Bumped by every `forget`; an answer is stored only if it is unchanged
    /// since the question was asked.
    generation: u64,
}

/// The cache; see the module docs.
pub struct MembershipCache {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

impl MembershipCache {
    /// Keep `Member` answers for `ttl` (zero: no caching), at most `capacity`.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                generation: 0,
            }),
        }
    }

    /// `user`'s access to `room`: `Member` from the cache if a fresh answer is
    /// there (with `last_seq` 0: callers of the cache must not use it), else
    /// asked from `membership`.
    pub async fn access(
        &self,
        membership: &dyn Membership,
        room: RoomId,
        user: UserId,
    ) -> Result<RoomAccess, MembershipError> {
        if self.ttl.is_zero() {
            return membership.access(room, user).await;
        }
        let generation = {
            let inner = self.lock();
            if let Some(at) = inner.entries.get(&(room, user))
                && at.elapsed() < self.ttl
            {
                return Ok(RoomAccess::Member {
                    last_seq: 0,
                    last_event_seq: 0,
                });
            }
            inner.generation
        };
        let answer = membership.access(room, user).await?;
        if matches!(answer, RoomAccess::Member { .. }) {
            self.store(room, user, generation);
        }
        Ok(answer)
    }

    /// Drop the entry for (`room`, `user`), and any answer now in flight.
    pub fn forget(&self, room: RoomId, user: UserId) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        inner.entries.remove(&(room, user));
    }

    /// Entries held (fresh or not yet purged).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn store(&self, room: RoomId, user: UserId, asked_at_generation: u64) {
        let mut inner = self.lock();
        if inner.generation != asked_at_generation {
            return;
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&(room, user)) {
            let ttl = self.ttl;
            inner.entries.retain(|_, at| at.elapsed() < ttl);
            if inner.entries.len() >= self.capacity {
                inner.entries.clear();
            }
        }
        inner.entries.insert((room, user), Instant::now());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("membership cache lock")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;

    /// Answers `Member` (or what `answer` holds) and counts the questions.
    struct Counting {
        asked: AtomicUsize,
        answer: Mutex<RoomAccess>,
    }

    impl Counting {
        fn new() -> Self {
            Self {
                asked: AtomicUsize::new(0),
                answer: Mutex::new(RoomAccess::Member {
                    last_seq: 7,
                    last_event_seq: 0,
                }),
            }
        }
        fn asked(&self) -> usize {
            self.asked.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl Membership for Counting {
        async fn access(&self, _: RoomId, _: UserId) -> Result<RoomAccess, MembershipError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            Ok(*self.answer.lock().unwrap())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn member_answers_are_reused_for_the_ttl_only() {
        let m = Counting::new();
        let cache = MembershipCache::new(Duration::from_secs(2), 16);
        let (r, u) = (RoomId::new(), UserId::new());
        assert!(matches!(
            cache.access(&m, r, u).await,
            Ok(RoomAccess::Member { .. })
        ));
        assert!(matches!(
            cache.access(&m, r, u).await,
            Ok(RoomAccess::Member { .. })
        ));
        assert_eq!(m.asked(), 1);
        tokio::time::advance(Duration::from_millis(2001)).await;
        *m.answer.lock().unwrap() = RoomAccess::NotMember;
        assert!(matches!(
            cache.access(&m, r, u).await,
            Ok(RoomAccess::NotMember)
        ));
        assert!(matches!(
            cache.access(&m, r, u).await,
            Ok(RoomAccess::NotMember)
        ));
        assert_eq!(m.asked(), 3, "refusals are never cached");
    }

    #[tokio::test(start_paused = true)]
    async fn forget_drops_the_entry_at_once() {
        let m = Counting::new();
        let cache = MembershipCache::new(Duration::from_secs(2), 16);
        let (r, u) = (RoomId::new(), UserId::new());
        cache.access(&m, r, u).await.unwrap();
        cache.forget(r, u);
        *m.answer.lock().unwrap() = RoomAccess::NotMember;
        assert!(matches!(
            cache.access(&m, r, u).await,
            Ok(RoomAccess::NotMember)
        ));
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_flight_during_a_forget_is_not_stored() {
        let m = Counting::new();
        let cache = MembershipCache::new(Duration::from_secs(2), 16);
        let (r, u) = (RoomId::new(), UserId::new());
        let generation = cache.lock().generation;
        cache.forget(r, u);
        cache.store(r, u, generation);
        assert!(cache.is_empty());
        cache.access(&m, r, u).await.unwrap();
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_stays_within_its_capacity() {
        let m = Counting::new();
        let cache = MembershipCache::new(Duration::from_secs(2), 4);
        let u = UserId::new();
        for _ in 0..10 {
            cache.access(&m, RoomId::new(), u).await.unwrap();
            assert!(cache.len() <= 4);
        }
        // Expired entries are purged before anything fresh is dropped.
        tokio::time::advance(Duration::from_secs(3)).await;
        let fresh: Vec<_> = (0..4).map(|_| RoomId::new()).collect();
        for r in &fresh {
            cache.access(&m, *r, u).await.unwrap();
        }
        let asked = m.asked();
        for r in &fresh {
            cache.access(&m, *r, u).await.unwrap();
        }
        assert_eq!(m.asked(), asked, "the four fresh answers were all kept");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_ttl_asks_every_time() {
        let m = Counting::new();
        let cache = MembershipCache::new(Duration::ZERO, 4);
        let (r, u) = (RoomId::new(), UserId::new());
        cache.access(&m, r, u).await.unwrap();
        cache.access(&m, r, u).await.unwrap();
        assert_eq!(m.asked(), 2);
        assert!(cache.is_empty());
    }
}
