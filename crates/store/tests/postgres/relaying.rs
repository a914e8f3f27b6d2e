//! Relaying from two processes (two [`PostgresStore`]s) on one database: one
//! relays at a time, every row goes out once and in id order, and a relay
//! that dies mid-pass leaves its rows to the next one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use roomcast_store::{OutboxItem, OutboxSink, PostgresStore, RelayPass, Store};
use sqlx::{Connection, PgConnection};
use tokio::sync::Notify;

use crate::common::{Recorder, msg, pending_ids, user};
use crate::{open, with_database_url};

/// Two stores on the database at `url`, and `posts` messages (each a
/// `receiveMessage` and a `roomUpdated`, after the room's own `roomUpdated`)
/// in the outbox, whose ids are returned oldest first.
async fn two_processes(url: &str, posts: usize) -> (PostgresStore, PostgresStore, Vec<i64>) {
    let a = open(url).await;
    let b = open(url).await;
    let alice = user(&a, "alice").await;
    let room = a.create_room("r", alice, &[]).await.unwrap();
    for i in 0..posts {
        a.post_message(msg(room.id, alice, &format!("m{i}"), "hi"))
            .await
            .unwrap();
    }
    let all = pending_ids(&a).await;
    assert_eq!(all.len(), 2 * posts + 1);
    (a, b, all)
}

/// A sink that publishes `open` rows, then stops at the next one until
/// released (once), recording what it published.
#[derive(Default)]
struct Gate {
    open: usize,
    log: Mutex<Vec<i64>>,
    held: AtomicBool,
    reached: Notify,
    release: Notify,
}

#[async_trait]
impl OutboxSink for Gate {
    async fn publish(&self, item: &OutboxItem) -> Result<(), String> {
        let published = self.log.lock().unwrap().len();
        if published == self.open && !self.held.swap(true, Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.notified().await;
        }
        self.log.lock().unwrap().push(item.id);
        Ok(())
    }
}

/// Start a relay pass of `store` through `gate` and wait until it is stopped
/// at the gate (holding the relay lock, its rows not yet deleted).
async fn stopped_at_gate(
    store: &PostgresStore,
    gate: &Arc<Gate>,
) -> tokio::task::JoinHandle<Result<RelayPass, roomcast_store::StoreError>> {
    let (store, sink) = (store.clone(), gate.clone());
    let pass = tokio::spawn(async move { store.outbox_relay(100, &*sink).await });
    tokio::time::timeout(Duration::from_secs(10), gate.reached.notified())
        .await
        .expect("the relay pass reaches the gate");
    pass
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaying_from_two_processes_publishes_every_row_once_in_id_order() {
    with_database_url(|url| async move {
        let (a, b, all) = two_processes(&url, 60).await;
        let log = Arc::new(Mutex::new(Vec::new()));
        let relays = [a.clone(), b.clone()]
            .into_iter()
            .enumerate()
            .map(|(instance, store)| {
                let mut sink = Recorder::new(instance, log.clone());
                sink.pause = Duration::from_millis(1);
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        let pass = store.outbox_relay(5, &sink).await.unwrap();
                        assert_eq!(pass.failure, None);
                        if pass.published == 0 {
                            if store.outbox_pending(1).await.unwrap().is_empty() {
                                return;
                            }
                            assert!(Instant::now() < deadline, "the outbox never drained");
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                })
            });
        for relay in futures::future::join_all(relays).await {
            relay.unwrap();
        }

        let log = log.lock().unwrap().clone();
        let ids: Vec<i64> = log.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids, all, "every row once, and in id order across both");
        for instance in 0..2 {
            let mine: Vec<i64> = log
                .iter()
                .filter(|(i, _)| *i == instance)
                .map(|(_, id)| *id)
                .collect();
            assert!(mine.is_sorted(), "instance {instance} in id order");
        }
        assert!(pending_ids(&a).await.is_empty(), "the outbox ends empty");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_one_process_relays_the_other_publishes_nothing() {
    with_database_url(|url| async move {
        let (a, b, all) = two_processes(&url, 4).await;
        let gate = Arc::new(Gate {
            open: 1,
            ..Gate::default()
        });
        let pass_a = stopped_at_gate(&a, &gate).await;

        let other = Recorder::new(1, Arc::default());
        assert_eq!(
            b.outbox_relay(100, &other).await.unwrap(),
            RelayPass::default(),
            "the lock is taken: nothing to do here"
        );
        assert!(other.ids().is_empty());
        assert_eq!(
            pending_ids(&b).await,
            all,
            "nothing deleted before a commit"
        );

        gate.release.notify_one();
        let pass_a = pass_a.await.unwrap().unwrap();
        assert_eq!(pass_a.published, all.len());
        assert_eq!(*gate.log.lock().unwrap(), all);
        assert!(pending_ids(&b).await.is_empty());
        assert_eq!(
            b.outbox_relay(100, &other).await.unwrap(),
            RelayPass::default()
        );
    })
    .await;
}

/// The relaying process "crashes" (its database session is killed) after
/// publishing two rows: its deletes are rolled back, the lock is freed, and
/// the other process publishes everything, those two rows again included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_dies_mid_pass_leaves_its_rows_to_the_next_relay() {
    with_database_url(|url| async move {
        let (a, b, all) = two_processes(&url, 4).await;
        let gate = Arc::new(Gate {
            open: 2,
            ..Gate::default()
        });
        let pass_a = stopped_at_gate(&a, &gate).await;

        let mut admin = PgConnection::connect(&url).await.unwrap();
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
             WHERE locktype = 'advisory' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap();
        assert_eq!(killed, vec![true], "one session held the relay lock");

        let next = Recorder::new(1, Arc::default());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pass = b.outbox_relay(100, &next).await.unwrap();
            if pass.published > 0 {
                assert_eq!(pass.published, all.len());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the dead relay's lock was never freed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(next.ids(), all, "everything, from the oldest row, in order");
        assert_eq!(
            *gate.log.lock().unwrap(),
            all[..2],
            "published before dying"
        );
        assert!(pending_ids(&b).await.is_empty());

        // The dead pass cannot commit its deletes.
        gate.release.notify_one();
        assert!(pass_a.await.unwrap().is_err());
        assert!(pending_ids(&a).await.is_empty());
    })
    .await;
}

/// A pass dropped mid-way (its task cancelled) rolls back the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_pass_cancelled_mid_way_leaves_its_rows_to_the_next_relay() {
    with_database_url(|url| async move {
        let (a, b, all) = two_processes(&url, 4).await;
        let gate = Arc::new(Gate {
            open: 2,
            ..Gate::default()
        });
        let pass_a = stopped_at_gate(&a, &gate).await;
        pass_a.abort();
        assert!(pass_a.await.unwrap_err().is_cancelled());

        let next = Recorder::new(1, Arc::default());
        let deadline = Instant::now() + Duration::from_secs(10);
        while next.ids().is_empty() {
            b.outbox_relay(100, &next).await.unwrap();
            assert!(
                Instant::now() < deadline,
                "the cancelled pass kept the lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(next.ids(), all);
        assert_eq!(*gate.log.lock().unwrap(), all[..2]);
        assert!(pending_ids(&a).await.is_empty());
    })
    .await;
}
