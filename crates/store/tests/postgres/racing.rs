//! Domain writes racing through two processes (two [`PostgresStore`]s) on
//! one database: one DM per pair, read markers that only move forward.
//!
//! The deterministic cases hold the contended row in a third connection's
//! transaction while both processes call, wait until both are queued on it,
//! then commit; the others simply run many calls at once.

use std::collections::BTreeMap;

use roomcast_core::{Envelope, Kind, RoomId, UserId};
use roomcast_store::{PostgresStore, Store};
use sqlx::{Connection, PgConnection};

use crate::common::{post, room, take, user};
use crate::posting::wait_for_lock_waiters;
use crate::{open, with_database_url};

/// A DM's key, as the store writes it (the two ids sorted, joined by ':').
fn dm_key(a: UserId, b: UserId) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_opened_by_both_sides_while_another_opening_commits_is_that_one() {
    with_database_url(|url| async move {
        let (a, b) = (open(&url).await, open(&url).await);
        let alice = user(&a, "alice").await;
        let bob = user(&a, "bob").await;

        // Another process's open_dm, caught between its insert and its commit.
        let mut other = PgConnection::connect(&url).await.unwrap();
        let mut tx = other.begin().await.unwrap();
        let theirs = RoomId::new();
        sqlx::query(
            "INSERT INTO rooms (id, kind, name, created_by, dm_key, last_seq, created_at, last_activity_at)
             VALUES ($1, 'dm', 'alice, bob', $2, $3, 0, 1, 1)",
        )
        .bind(theirs.to_string())
        .bind(alice.to_string())
        .bind(dm_key(alice, bob))
        .execute(&mut *tx)
        .await
        .unwrap();
        for (pos, u) in [alice, bob].iter().enumerate() {
            sqlx::query(
                "INSERT INTO room_members (room_id, user_id, position, joined_at, role)
                 VALUES ($1, $2, $3, 1, 'member')",
            )
            .bind(theirs.to_string())
            .bind(u.to_string())
            .bind(pos as i64)
            .execute(&mut *tx)
            .await
            .unwrap();
        }

        let from_a = tokio::spawn(async move { a.open_dm(alice, bob).await.unwrap() });
        let from_b = {
            let b = b.clone();
            tokio::spawn(async move { b.open_dm(bob, alice).await.unwrap() })
        };
        wait_for_lock_waiters(&url, 2).await;
        tx.commit().await.unwrap();

        let (ra, created_a) = from_a.await.unwrap();
        let (rb, created_b) = from_b.await.unwrap();
        assert_eq!((ra.id, rb.id), (theirs, theirs), "both get the committed DM");
        assert!(!created_a && !created_b, "neither created one");
        assert!(take(&b).await.is_empty(), "the losers queued nothing");
        let rooms: i64 = sqlx::query_scalar("SELECT count(*) FROM rooms")
            .fetch_one(&mut other)
            .await
            .unwrap();
        assert_eq!(rooms, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_dms_opened_from_both_sides_at_once_are_one_room_per_pair() {
    with_database_url(|url| async move {
        let (a, b) = (open(&url).await, open(&url).await);
        let mut pairs = Vec::new();
        for i in 0..15 {
            let x = user(&a, &format!("x{i}")).await;
            let y = user(&a, &format!("y{i}")).await;
            pairs.push((x, y));
        }
        let open_dm = |s: &PostgresStore, me, peer| {
            let s = s.clone();
            tokio::spawn(async move { s.open_dm(me, peer).await.unwrap() })
        };
        let calls: Vec<_> = pairs
            .iter()
            .map(|&(x, y)| (open_dm(&a, x, y), open_dm(&b, y, x)))
            .collect();
        for (first, second) in calls {
            let (r1, c1) = first.await.unwrap();
            let (r2, c2) = second.await.unwrap();
            assert_eq!(r1.id, r2.id, "one room per pair");
            assert!(c1 ^ c2, "created exactly once");
        }
        let out = take(&a).await;
        assert_eq!(
            out.len(),
            2 * pairs.len(),
            "roomUpdated to both, once per pair"
        );
        let mut per_room: BTreeMap<RoomId, usize> = BTreeMap::new();
        for e in &out {
            assert_eq!(e.kind, Kind::RoomUpdated);
            *per_room
                .entry(e.payload_value()["id"].as_str().unwrap().parse().unwrap())
                .or_default() += 1;
        }
        assert!(per_room.values().all(|n| *n == 2) && per_room.len() == pairs.len());
    })
    .await;
}

/// The seqs of the `messageReadUpdate`s among `out`, in order.
fn read_updates(out: &[Envelope]) -> Vec<i64> {
    out.iter()
        .filter(|e| e.kind == Kind::MessageReadUpdate)
        .map(|e| e.payload_value()["seq"].as_i64().unwrap())
        .collect()
}

/// A room of alice and bob with `posts` messages, its events drained.
async fn read_room(s: &PostgresStore, posts: usize) -> (UserId, UserId, RoomId) {
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let r = room(s, "r", alice, &[bob]).await;
    for i in 0..posts {
        post(s, r, alice, &format!("m{i}"), "hi").await;
    }
    take(s).await;
    (alice, bob, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_read_waiting_on_a_further_one_does_not_move_the_marker_back() {
    with_database_url(|url| async move {
        let (a, b) = (open(&url).await, open(&url).await);
        let (_, bob, r) = read_room(&a, 6).await;

        let mut other = PgConnection::connect(&url).await.unwrap();
        let mut tx = other.begin().await.unwrap();
        sqlx::query("UPDATE room_members SET read_seq = 4 WHERE room_id = $1 AND user_id = $2")
            .bind(r.to_string())
            .bind(bob.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        let behind = {
            let a = a.clone();
            tokio::spawn(async move { a.mark_read(r, bob, 3).await.unwrap() })
        };
        let ahead = tokio::spawn(async move { b.mark_read(r, bob, 5).await.unwrap() });
        wait_for_lock_waiters(&url, 2).await;
        tx.commit().await.unwrap();

        let behind = behind.await.unwrap();
        let ahead = ahead.await.unwrap();
        assert!(!behind.moved && behind.read_seq >= 4, "{behind:?}");
        assert!(ahead.moved, "{ahead:?}");
        let out = take(&a).await;
        let reads = read_updates(&out);
        assert_eq!(reads, [5]);
        assert_eq!(a.room(r, bob).await.unwrap().read_seq, 5);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_marks_through_two_processes_only_ever_move_forward() {
    with_database_url(|url| async move {
        let (a, b) = (open(&url).await, open(&url).await);
        let (_, bob, r) = read_room(&a, 40).await;
        let marks: Vec<_> = (1..=40)
            .rev()
            .chain(1..=40)
            .enumerate()
            .map(|(i, seq)| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { s.mark_read(r, bob, seq).await.unwrap() })
            })
            .collect();
        let mut moves = 0;
        for m in futures::future::join_all(marks).await {
            moves += usize::from(m.unwrap().moved);
        }
        let out = take(&a).await;
        let reads = read_updates(&out);
        assert_eq!(reads.len(), moves, "one messageReadUpdate per move");
        assert!(
            reads.windows(2).all(|w| w[0] < w[1]),
            "announced forward only: {reads:?}"
        );
        assert_eq!(reads.last(), Some(&40));
        let updated = out.iter().filter(|e| e.kind == Kind::RoomUpdated).count();
        assert_eq!(updated, moves, "one roomUpdated to the reader per move");
        assert_eq!(a.room(r, bob).await.unwrap().unread_count, 0);
    })
    .await;
}

/// Two API processes share a rate-limit bucket: racing takes through both
/// allow exactly its burst, whichever process each goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_raced_through_two_processes_allows_exactly_its_burst() {
    with_database_url(|url| async move {
        let (a, b) = (open(&url).await, open(&url).await);
        let mut tasks = Vec::new();
        for i in 0..24 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                store
                    .rate_take("login:alice", 1_000, 60_000, 10)
                    .await
                    .unwrap()
            }));
        }
        let mut allowed = 0;
        for t in tasks {
            if t.await.unwrap().is_none() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 10, "one shared bucket of 10");
        assert!(
            b.rate_take("login:alice", 1_000, 60_000, 10)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            a.rate_take("login:bob", 1_000, 60_000, 10).await.unwrap(),
            None
        );
    })
    .await;
}
