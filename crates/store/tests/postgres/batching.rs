//! Posts written in batches (group commit): many posts in one transaction,
//! each with the outcome it would have had alone.
//!
//! Each test opens a store with one post writer (or two, which take the
//! queue in turn): a third connection holds a room's lock while a writer
//! writes a first post to it, the test queues the posts it wants in one
//! batch behind it (each queued before the next, so in a known order), then
//! lets the lock go: the next batch is all of them.

use std::time::{Duration, Instant};

use roomcast_core::{ChatOut, Envelope, Kind, Message, RoomId, UserId};
use roomcast_store::{
    HistoryPage, NewMessage, Posted, PostgresStore, RoomAccess, Store, StoreError,
};
use sqlx::{Connection, Executor, PgConnection};

use crate::common::{msg, take, users, view_in};
use crate::posting::wait_for_lock_waiters;
use crate::{open, with_database_url};

type Outcome = tokio::task::JoinHandle<Result<Posted, StoreError>>;

/// A store with `writers` post writers.
async fn with_writers(url: &str, writers: usize) -> PostgresStore {
    open(&format!("{url}?max_connections=4&post_writers={writers}")).await
}

/// Post `m` through `store` in a task of its own, and return once it is
/// queued.
async fn queue(store: &PostgresStore, m: NewMessage<'_>) -> Outcome {
    let before = store.posts_queued();
    let (store2, room, sender, key, body, reply_to) = (
        store.clone(),
        m.room_id,
        m.sender_id,
        m.client_msg_id.to_owned(),
        m.body.to_owned(),
        m.reply_to,
    );
    let task = tokio::spawn(async move {
        let m = NewMessage {
            reply_to,
            ..msg(room, sender, &key, &body)
        };
        store2.post_message(m).await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.posts_queued() <= before {
        assert!(Instant::now() < deadline, "the post was never queued");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    task
}

/// Hold `room`'s row lock on a connection of its own; the writer's first
/// post to it (queued here) waits on it. Returns the connection holding
/// the lock (`COMMIT` lets it go) and that post.
async fn block_writer(
    store: &PostgresStore,
    url: &str,
    room: RoomId,
    sender: UserId,
) -> (PgConnection, Outcome) {
    let mut lock = PgConnection::connect(url).await.unwrap();
    lock.execute("BEGIN").await.unwrap();
    sqlx::query("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE")
        .bind(room.to_string())
        .execute(&mut lock)
        .await
        .unwrap();
    let writer = store.clone();
    let first = tokio::spawn(async move {
        writer
            .post_message(msg(room, sender, "first", "first"))
            .await
    });
    wait_for_lock_waiters(url, 1).await;
    (lock, first)
}

fn created(p: Posted) -> Message {
    match p {
        Posted::Created(m) => m,
        other => panic!("expected Created, got {other:?}"),
    }
}

/// The `receiveMessage` events of `room` in `out`, in outbox order: (seq,
/// eventSeq).
fn received(out: &[Envelope], room: RoomId) -> Vec<(i64, i64)> {
    out.iter()
        .filter(|e| e.kind == Kind::ReceiveMessage && e.room_id == Some(room))
        .map(|e| match ChatOut::decode(e).unwrap() {
            ChatOut::ReceiveMessage(m) => (m.seq, e.event_seq.unwrap()),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_queued_together_commit_together_each_with_its_own_outcome() {
    queued_together(1).await;
}

/// With two writers the second waits for the queue while the first holds
/// it (until its batch is written): the same single batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_take_the_queue_in_turn() {
    queued_together(2).await;
}

async fn queued_together(writers: usize) {
    with_database_url(move |url| async move {
        let store = with_writers(&url, writers).await;
        let [alice, bob, carol] = users(&store, ["alice", "bob", "carol"]).await;
        let a = store.create_room("a", alice, &[]).await.unwrap().id;
        let b = store.create_room("b", alice, &[bob]).await.unwrap().id;
        let c = store.create_room("c", carol, &[]).await.unwrap().id;
        take(&store).await;

        let (mut lock, first) = block_writer(&store, &url, a, alice).await;
        let b1 = queue(&store, msg(b, alice, "b1", "one")).await;
        let c1 = queue(&store, msg(c, carol, "c1", "in c")).await;
        let b2 = queue(&store, msg(b, bob, "b2", "two")).await;
        let nobody = queue(&store, msg(RoomId::new(), alice, "x", "no room")).await;
        let outsider = queue(&store, msg(b, carol, "x", "not a member")).await;
        let again = queue(&store, msg(b, alice, "b1", "one, again")).await;
        let b3 = queue(&store, msg(b, alice, "b3", "three")).await;
        let before = store.write_stats().unwrap();
        lock.execute("COMMIT").await.unwrap();

        assert_eq!(created(first.await.unwrap().unwrap()).seq, 1);
        let [b1, c1, b2, b3] =
            [b1, c1, b2, b3].map(|t| async { created(t.await.unwrap().unwrap()) });
        let (b1, c1, b2, b3) = (b1.await, c1.await, b2.await, b3.await);
        assert_eq!(
            (b1.seq, b2.seq, b3.seq, c1.seq),
            (1, 2, 3, 1),
            "arrival order"
        );
        assert!(matches!(nobody.await.unwrap(), Ok(Posted::NoRoom)));
        assert!(matches!(outsider.await.unwrap(), Ok(Posted::NotMember)));
        match again.await.unwrap().unwrap() {
            Posted::Existing(m) => assert_eq!(m, b1, "a repeat in the batch finds the first"),
            other => panic!("expected Existing, got {other:?}"),
        }
        let after = store.write_stats().unwrap();
        assert_eq!(
            (after.batches - before.batches, after.writes - before.writes),
            (1, 7),
            "the seven posts queued behind the first were one batch"
        );

        let history = store.history(b, bob, HistoryPage::After(0), 10).await;
        assert_eq!(history.unwrap(), vec![b1.clone(), b2.clone(), b3.clone()]);
        let out = take(&store).await;
        assert_eq!(
            received(&out, b),
            vec![(1, 1), (2, 2), (3, 3)],
            "in seq order"
        );
        assert_eq!(received(&out, c), vec![(1, 1)]);
        // Each post's roomUpdated shows the room as of that post, to each
        // member: bob's marker moved with his post, alice's with hers.
        let views = |who: UserId| -> Vec<(i64, i64)> {
            out.iter()
                .filter(|e| e.kind == Kind::RoomUpdated && e.user_id == Some(who))
                .map(view_in)
                .filter(|v| v.room.id == b)
                .map(|v| (v.last_message.unwrap().seq, v.read_seq))
                .collect()
        };
        assert_eq!(views(alice), vec![(1, 1), (2, 1), (3, 3)]);
        assert_eq!(views(bob), vec![(1, 0), (2, 2), (3, 2)]);
        let page = store.rooms_of(bob, None, 10).await.unwrap();
        let view = page.rooms.iter().find(|r| r.room.id == b).unwrap();
        assert_eq!((view.read_seq, view.unread_count), (2, 1));
        let access = store.access(b, alice).await.unwrap();
        let expected = RoomAccess::Member {
            last_seq: 3,
            last_event_seq: 3,
        };
        assert_eq!(access, expected, "the room's head moved with the batch");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_stored_client_msg_id_or_a_bad_reply_is_posted_one_by_one() {
    with_database_url(|url| async move {
        let store = with_writers(&url, 1).await;
        let [alice] = users(&store, ["alice"]).await;
        let a = store.create_room("a", alice, &[]).await.unwrap().id;
        let b = store.create_room("b", alice, &[]).await.unwrap().id;
        let elsewhere = created(
            store
                .post_message(msg(a, alice, "e", "in a"))
                .await
                .unwrap(),
        );
        let stored = created(
            store
                .post_message(msg(b, alice, "s", "stored"))
                .await
                .unwrap(),
        );
        take(&store).await;

        let (mut lock, first) = block_writer(&store, &url, a, alice).await;
        let b2 = queue(&store, msg(b, alice, "b2", "two")).await;
        let repeat = queue(&store, msg(b, alice, "s", "stored, again")).await;
        let bad = NewMessage {
            reply_to: Some(elsewhere.id),
            ..msg(b, alice, "bad", "a reply to another room")
        };
        let bad = queue(&store, bad).await;
        let b3 = queue(&store, msg(b, alice, "b3", "three")).await;
        lock.execute("COMMIT").await.unwrap();

        assert_eq!(created(first.await.unwrap().unwrap()).seq, 2);
        assert_eq!(created(b2.await.unwrap().unwrap()).seq, 2);
        match repeat.await.unwrap().unwrap() {
            Posted::Existing(m) => assert_eq!(m, stored),
            other => panic!("expected Existing, got {other:?}"),
        }
        assert!(matches!(bad.await.unwrap(), Err(StoreError::Invalid(_))));
        assert_eq!(created(b3.await.unwrap().unwrap()).seq, 3, "no seq lost");
        let out = take(&store).await;
        assert_eq!(received(&out, b), vec![(2, 2), (3, 3)]);
        let events = store.room_events(b, alice, 0, 10).await.unwrap();
        let seqs: Vec<i64> = events.events.iter().map(|e| e.event_seq).collect();
        assert_eq!(seqs, vec![1, 2, 3], "the event log has no gap");
    })
    .await;
}
