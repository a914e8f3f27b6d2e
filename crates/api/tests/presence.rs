//! The presence sweeper.
//!
//! Its timing runs on tokio's paused clock against [`DownStore`] (which
//! records each `sweep_nodes` cut-off and needs no I/O: sqlx's pool timeouts
//! would fire at once under a paused clock). What a sweep does runs against
//! the real SQLite store, on the real clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::World;
use common::down::DownStore;
use roomcast_api::Sweeper;
use roomcast_core::{Kind, now_ms};
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = Duration::from_secs(30);
const INTERVAL: Duration = Duration::from_secs(10);

fn sweeper(w: &World) -> Sweeper {
    Sweeper {
        store: w.store.clone(),
        node_timeout: TIMEOUT,
        interval: INTERVAL,
    }
}

/// Let the spawned sweeper run until it is waiting again.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn the_sweeper_sweeps_every_interval_even_after_failures_until_shutdown() {
    tokio::time::pause();
    let store = Arc::new(DownStore::default());
    let w = World::on(store.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(sweeper(&w).run(shutdown.clone()));
    let sweeps = || store.sweeps.lock().unwrap().clone();

    settle().await;
    tokio::time::advance(INTERVAL - Duration::from_millis(100)).await;
    settle().await;
    assert!(sweeps().is_empty(), "the first sweep waits an interval");

    // (Timer deadlines round up to the next millisecond: step past them.)
    tokio::time::advance(Duration::from_millis(200)).await;
    settle().await;
    let first = sweeps();
    assert_eq!(first.len(), 1);
    let timeout_ms = TIMEOUT.as_millis() as i64;
    let expected = now_ms() - timeout_ms;
    assert!(
        (expected - 5_000..=expected).contains(&first[0]),
        "the cut-off is now - node_timeout: {} vs {expected}",
        first[0]
    );

    // The store failed; the sweeper keeps going.
    let step = INTERVAL + Duration::from_millis(100);
    tokio::time::advance(step).await;
    settle().await;
    tokio::time::advance(step).await;
    settle().await;
    assert_eq!(sweeps().len(), 3);
    assert!(!task.is_finished());

    shutdown.cancel();
    task.await.unwrap();
    tokio::time::advance(INTERVAL * 3).await;
    assert_eq!(sweeps().len(), 3, "no sweep after shutdown");
}

#[tokio::test]
async fn a_sweep_takes_silent_nodes_users_offline_and_keeps_live_ones() {
    let w = World::new().await;
    let [a, b, c] = w.users(["alice", "bob", "carol"]).await;
    let room = w.room(&a, &[&b, &c]).await;
    let now = now_ms();
    // rt-dead last beat 31 s ago; rt-live 5 s ago.
    w.store
        .node_heartbeat("rt-dead", now - 31_000)
        .await
        .unwrap();
    let at = now - 31_000;
    w.store
        .presence_changed(b.id, "rt-dead", true, at)
        .await
        .unwrap();
    w.store
        .node_heartbeat("rt-live", now - 5_000)
        .await
        .unwrap();
    let at = now - 5_000;
    w.store
        .presence_changed(c.id, "rt-live", true, at)
        .await
        .unwrap();
    w.drain().await;

    let s = sweeper(&w);
    assert_eq!(s.sweep().await.unwrap(), 1, "only rt-dead");
    let p = w.store.room_presence(room, a.id).await.unwrap();
    let online: Vec<_> = p.iter().map(|p| p.online).collect();
    assert_eq!(online, [false, false, true]);
    assert!(p[1].last_seen_at.is_some());
    let told: Vec<_> = w.outbox().await.into_iter().map(|e| e.kind).collect();
    assert!(told.contains(&Kind::Presence), "{told:?}");

    assert_eq!(s.sweep().await.unwrap(), 0, "sweeping again finds nothing");
}

#[tokio::test]
async fn a_failed_sweep_is_an_error_not_a_panic() {
    let w = World::on(Arc::new(DownStore::default()));
    assert!(sweeper(&w).sweep().await.is_err());
}
