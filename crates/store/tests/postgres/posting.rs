//! Posting from two processes (two [`PostgresStore`]s, two pools) on one
//! database: `seq` stays gap-free and `clientMsgId` stays idempotent.

use std::time::{Duration, Instant};

use roomcast_core::{Kind, Message, RoomId, UserId};
use roomcast_store::{HistoryPage, OutboxItem, Posted, PostgresStore, RoomAccess, Store};
use sqlx::{Connection, PgConnection};

use crate::common::{drain_outbox, msg, user};
use crate::{open, with_database_url};

/// Two stores on the database at `url`, a user and a room with an empty outbox.
async fn two_processes(url: &str) -> (PostgresStore, PostgresStore, UserId, RoomId) {
    let a = open(url).await;
    let b = open(url).await;
    let alice = user(&a, "alice").await;
    let room = a.create_room("r", alice, &[]).await.unwrap();
    drain_outbox(&a).await;
    (a, b, alice, room.id)
}

/// Post `key` through `store` in a task of its own.
fn post(
    store: &PostgresStore,
    room: RoomId,
    sender: UserId,
    key: String,
) -> tokio::task::JoinHandle<Posted> {
    let store = store.clone();
    tokio::spawn(async move {
        store
            .post_message(msg(room, sender, &key, "hello"))
            .await
            .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_and_marking_read_at_once_never_deadlock() {
    with_database_url(|url| async move {
        let (a, b, alice, room) = two_processes(&url).await;
        let bob = user(&a, "bob").await;
        a.add_members(room, alice, &[bob]).await.unwrap();
        // Each of alice and bob posts (room row, then their member row) while
        // marking read (their member row, then the room row when the move is
        // logged) through the other process.
        let tasks: Vec<_> = (0..40)
            .flat_map(|i| {
                let (a, b) = (a.clone(), b.clone());
                [alice, bob].map(|who| {
                    let (a, b) = (a.clone(), b.clone());
                    tokio::spawn(async move {
                        let key = format!("{who}{i}");
                        let posted = a.post_message(msg(room, who, &key, "hi"));
                        let marked = b.mark_read(room, who, i64::MAX);
                        let (posted, marked) = tokio::join!(posted, marked);
                        posted.map(|_| ()).and(marked.map(|_| ()))
                    })
                })
            })
            .collect();
        for t in futures::future::join_all(tasks).await {
            t.unwrap().expect("no deadlock, no error");
        }
        let access = b.access(room, alice).await.unwrap();
        assert!(
            matches!(access, RoomAccess::Member { last_seq: 80, .. }),
            "{access:?}"
        );
    })
    .await;
}

/// The two outcomes of one key posted twice at once: the message, checked to
/// be one `Created` and one `Existing` of the same message.
fn one_created_one_existing(first: Posted, second: Posted) -> Message {
    match (first, second) {
        (Posted::Created(c), Posted::Existing(e)) | (Posted::Existing(e), Posted::Created(c)) => {
            assert_eq!(c, e, "Existing returns the stored message");
            c
        }
        other => panic!("expected one Created and one Existing, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_posting_to_one_room_get_seqs_1_to_100() {
    with_database_url(|url| async move {
        let (a, b, alice, room) = two_processes(&url).await;
        let posts: Vec<_> = (0..50)
            .flat_map(|i| {
                [
                    post(&a, room, alice, format!("a{i}")),
                    post(&b, room, alice, format!("b{i}")),
                ]
            })
            .collect();
        let mut seqs: Vec<i64> = futures::future::join_all(posts)
            .await
            .into_iter()
            .map(|r| match r.unwrap() {
                Posted::Created(m) => m.seq,
                other => panic!("expected a new message, got {other:?}"),
            })
            .collect();
        seqs.sort();
        assert_eq!(seqs, (1..=100).collect::<Vec<_>>(), "no gap, no duplicate");

        let stored = b
            .history(room, alice, HistoryPage::After(0), 1000)
            .await
            .unwrap();
        let stored: Vec<i64> = stored.iter().map(|m| m.seq).collect();
        assert_eq!(stored, (1..=100).collect::<Vec<_>>());
        let outbox = a.outbox_pending(1000).await.unwrap();
        let out_seqs: Vec<i64> = received(&outbox)
            .iter()
            .map(|o| {
                o.envelope.decode().unwrap().payload_value()["seq"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            out_seqs,
            (1..=100).collect::<Vec<_>>(),
            "100 outbox rows, in seq order"
        );
        assert_eq!(
            a.access(room, alice).await.unwrap(),
            RoomAccess::Member {
                last_seq: 100,
                last_event_seq: 100
            }
        );
    })
    .await;
}

/// Forces the race: a third connection holds the room's row lock while both
/// processes post the same key, so both miss it in the lookup and queue on
/// the lock; the loser's insert then hits the unique constraint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_client_msg_id_racing_through_two_processes_is_stored_once() {
    with_database_url(|url| async move {
        let (a, b, alice, room) = two_processes(&url).await;
        let mut blocker = PgConnection::connect(&url).await.unwrap();
        let mut lock = blocker.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE")
            .bind(room.to_string())
            .execute(&mut *lock)
            .await
            .unwrap();

        let first = post(&a, room, alice, "same".into());
        let second = post(&b, room, alice, "same".into());
        wait_for_lock_waiters(&url, 2).await;
        lock.commit().await.unwrap();

        let stored = one_created_one_existing(first.await.unwrap(), second.await.unwrap());
        assert_eq!(stored.seq, 1);
        let history = a.history(room, alice, HistoryPage::After(0), 10);
        assert_eq!(history.await.unwrap(), vec![stored]);
        let outbox = a.outbox_pending(10).await.unwrap();
        assert_eq!(received(&outbox).len(), 1, "one receiveMessage");
        assert_eq!(
            b.access(room, alice).await.unwrap(),
            RoomAccess::Member {
                last_seq: 1,
                last_event_seq: 1
            },
            "the loser's seq increment was rolled back"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_client_msg_id_posted_at_once_through_two_processes_is_stored_once() {
    with_database_url(|url| async move {
        let (a, b, alice, room) = two_processes(&url).await;
        let pairs: Vec<_> = (0..20)
            .map(|i| {
                let key = format!("k{i}");
                (
                    post(&a, room, alice, key.clone()),
                    post(&b, room, alice, key),
                )
            })
            .collect();
        let mut seqs = Vec::new();
        for (first, second) in pairs {
            let stored = one_created_one_existing(first.await.unwrap(), second.await.unwrap());
            seqs.push(stored.seq);
        }
        seqs.sort();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
        let outbox = a.outbox_pending(100).await.unwrap();
        assert_eq!(received(&outbox).len(), 20);
    })
    .await;
}

/// The `receiveMessage` rows of `outbox`.
fn received(outbox: &[OutboxItem]) -> Vec<&OutboxItem> {
    outbox
        .iter()
        .filter(|o| o.envelope.kind == Kind::ReceiveMessage)
        .collect()
}

/// Wait until `n` sessions on the database at `url` are waiting for a lock.
pub async fn wait_for_lock_waiters(url: &str, n: i64) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if waiting >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {waiting} of {n} sessions queued on the room lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
