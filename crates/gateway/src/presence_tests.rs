//! Presence counting and publishing on a paused clock.

use std::time::Duration;

use roomcast_core::{Envelope, Kind, UserId};
use tokio::time::sleep;

use super::*;
use crate::test_support::{Wire, drain};

/// `(user, online, at)` of each `presenceChanged`, checking the envelope.
fn changes(envs: Vec<Envelope>) -> Vec<(UserId, bool, i64)> {
    envs.into_iter()
        .filter(|e| e.kind == Kind::PresenceChanged)
        .map(|e| {
            assert_eq!(e.payload_value()["node"], "rt-1");
            assert_eq!(e.room_id, None);
            (
                e.user_id.expect("userId set"),
                e.payload_value()["online"].as_bool().unwrap(),
                e.payload_value()["at"].as_i64().unwrap(),
            )
        })
        .collect()
}

struct Running {
    wire: Wire,
    presence: Arc<Presence>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Running {
    let wire = Wire::new().await;
    let presence = Presence::new("rt-1");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(presence.clone().run(
        wire.publisher.clone(),
        Duration::from_secs(2),
        shutdown.clone(),
    ));
    Running {
        wire,
        presence,
        shutdown,
        task,
    }
}

#[tokio::test(start_paused = true)]
async fn first_socket_online_last_socket_offline() {
    let mut t = start().await;
    let u = UserId::new();
    t.presence.connected(u);
    sleep(Duration::from_millis(1)).await;
    t.presence.connected(u);
    t.presence.connected(u);
    sleep(Duration::from_millis(1)).await;
    assert_eq!(t.presence.sockets(u), 3);
    t.presence.disconnected(u);
    t.presence.disconnected(u);
    sleep(Duration::from_millis(1)).await;
    let seen = changes(drain(&mut t.wire.chat_in));
    assert_eq!(seen.len(), 1, "only the first socket announces: {seen:?}");
    assert_eq!((seen[0].0, seen[0].1), (u, true));
    t.presence.disconnected(u);
    sleep(Duration::from_millis(1)).await;
    let seen2 = changes(drain(&mut t.wire.chat_in));
    assert_eq!(seen2.len(), 1);
    assert_eq!((seen2[0].0, seen2[0].1), (u, false));
    assert!(seen2[0].2 > seen[0].2, "at increases");
    assert_eq!(t.presence.tracked(), 0, "nothing kept for an offline user");
    // A spurious extra disconnect is harmless.
    t.presence.disconnected(u);
    assert_eq!(t.presence.sockets(u), 0);
}

#[tokio::test(start_paused = true)]
async fn a_flap_between_passes_publishes_nothing_or_the_final_state() {
    let mut t = start().await;
    let (a, b) = (UserId::new(), UserId::new());
    // Connected and gone before the task runs: nothing to say.
    t.presence.connected(a);
    t.presence.disconnected(a);
    sleep(Duration::from_millis(1)).await;
    assert!(changes(drain(&mut t.wire.chat_in)).is_empty());
    assert_eq!(t.presence.tracked(), 0);
    // Online, then a reconnect (gone + back) between passes: still online,
    // no offline flicker is published.
    t.presence.connected(b);
    sleep(Duration::from_millis(1)).await;
    t.presence.disconnected(b);
    t.presence.connected(b);
    sleep(Duration::from_millis(1)).await;
    let seen: Vec<_> = changes(drain(&mut t.wire.chat_in))
        .into_iter()
        .map(|(u, on, _)| (u, on))
        .collect();
    assert_eq!(seen, [(b, true)]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_publish_is_retried() {
    let mut t = start().await;
    let u = UserId::new();
    t.wire.fail(true);
    t.presence.connected(u);
    sleep(Duration::from_millis(10)).await;
    assert!(changes(drain(&mut t.wire.chat_in)).is_empty());
    t.wire.fail(false);
    sleep(RETRY_AFTER).await;
    let seen: Vec<_> = changes(drain(&mut t.wire.chat_in))
        .into_iter()
        .map(|(u, on, _)| (u, on))
        .collect();
    assert_eq!(seen, [(u, true)]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_announces_everyone_offline_and_stops() {
    let mut t = start().await;
    let users: Vec<UserId> = (0..100).map(|_| UserId::new()).collect();
    for u in &users {
        t.presence.connected(*u);
    }
    sleep(Duration::from_millis(1)).await;
    assert_eq!(changes(drain(&mut t.wire.chat_in)).len(), 100);
    t.shutdown.cancel();
    t.task.await.unwrap();
    let mut offline: Vec<UserId> = changes(drain(&mut t.wire.chat_in))
        .into_iter()
        .map(|(u, on, _)| {
            assert!(!on);
            u
        })
        .collect();
    offline.sort();
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(offline, expected);
    // After shutdown, counting goes on but nothing is published.
    t.presence.disconnected(users[0]);
    sleep(Duration::from_millis(10)).await;
    assert!(drain(&mut t.wire.chat_in).is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_gives_up_after_its_timeout_when_the_bus_hangs() {
    let t = start().await;
    t.presence.connected(UserId::new());
    sleep(Duration::from_millis(1)).await;
    t.wire
        .bus
        .hang
        .store(true, std::sync::atomic::Ordering::SeqCst);
    t.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(3), t.task)
        .await
        .expect("ends within the offline timeout")
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn heartbeats_every_interval_until_shutdown() {
    let mut wire = Wire::new().await;
    let presence = Presence::new("rt-1");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(presence.clone().heartbeat(
        wire.publisher.clone(),
        Duration::from_secs(10),
        shutdown.clone(),
    ));
    sleep(Duration::from_millis(35_000)).await; // t = 0, 10, 20, 30
    let beats = drain(&mut wire.chat_in);
    assert_eq!(beats.len(), 4);
    for b in &beats {
        assert_eq!(b.kind, Kind::NodeHeartbeat);
        assert_eq!(b.payload_value()["node"], "rt-1");
        assert!(b.payload_value()["at"].as_i64().unwrap() > 0);
        assert_eq!((b.user_id, b.room_id), (None, None));
    }
    shutdown.cancel();
    task.await.unwrap();
    sleep(Duration::from_secs(30)).await;
    assert!(drain(&mut wire.chat_in).is_empty());
}
