//! The outbox relay: a bus outage loses nothing, and order is kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use roomcast_api::OutboxRelay;
use roomcast_bus::{Bus, BusError, MemoryBus, Mode, Subscription, Topics};
use roomcast_core::{Envelope, events};
use roomcast_store::{NewMessage, SqliteStore, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The real in-process bus behind a switch that makes publishes fail, standing
/// in for an engine outage (the relay is under test here, not the bus).
struct Switchable {
    inner: MemoryBus,
    down: AtomicBool,
}

#[async_trait]
impl Bus for Switchable {
    fn name(&self) -> &'static str {
        "switchable"
    }
    async fn publish(&self, topic: &str, envelope: &Envelope) -> Result<(), BusError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable("switched off".into()));
        }
        self.inner.publish(topic, envelope).await
    }
    async fn subscribe(&self, topic: &str, mode: Mode) -> Result<Subscription, BusError> {
        self.inner.subscribe(topic, mode).await
    }
    async fn healthy(&self) -> bool {
        !self.down.load(Ordering::SeqCst)
    }
}

struct Fixture {
    store: Arc<dyn Store>,
    bus: Arc<Switchable>,
    relay: OutboxRelay,
    sub: Subscription,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap(),
    );
    let bus = Arc::new(Switchable {
        inner: MemoryBus::new(),
        down: AtomicBool::new(false),
    });
    let sub = bus
        .subscribe(
            "chat.out",
            Mode::FanOut {
                node: "test".into(),
            },
        )
        .await
        .unwrap();
    let relay = OutboxRelay {
        store: store.clone(),
        bus: bus.clone(),
        topics: Topics::default(),
        wake: Arc::new(Notify::new()),
        batch: 3,
        poll_interval: Duration::from_secs(3600),
    };
    Fixture {
        store,
        bus,
        relay,
        sub,
        _dir: dir,
    }
}

async fn post_n(store: &dyn Store, n: usize) {
    let a = store.create_user("alice", "h").await.unwrap().id;
    let room = store.create_room("r", a, &[]).await.unwrap();
    for i in 0..n {
        store
            .post_message(NewMessage {
                room_id: room.id,
                sender_id: a,
                client_msg_id: &format!("m{i}"),
                body: "hello",
                reply_to: None,
            })
            .await
            .unwrap();
    }
}

async fn received_seqs(sub: &mut Subscription, count: usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    while seqs.len() < count {
        let d = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("delivery within the deadline")
            .unwrap()
            .unwrap();
        if d.envelope.kind == events::RECEIVE_MESSAGE {
            seqs.push(d.envelope.payload["seq"].as_i64().unwrap());
        }
    }
    seqs
}

#[tokio::test]
async fn rows_stay_while_the_bus_is_down_and_go_out_in_order_after() {
    let mut f = fixture().await;
    post_n(&*f.store, 7).await;
    f.bus.down.store(true, Ordering::SeqCst);
    assert!(f.relay.pass().await.is_err());
    assert_eq!(
        f.store.outbox_pending(100).await.unwrap().len(),
        15,
        "roomUpdatedMany (creation) + 7 × (receiveMessage + roomUpdatedMany) kept"
    );

    f.bus.down.store(false, Ordering::SeqCst);
    assert_eq!(
        f.relay.pass().await.unwrap(),
        15,
        "batches of 3 until empty"
    );
    assert!(f.store.outbox_pending(100).await.unwrap().is_empty());
    let first = f.sub.next().await.unwrap().unwrap();
    assert_eq!(first.envelope.kind, events::ROOM_UPDATED_MANY);
    assert_eq!(
        received_seqs(&mut f.sub, 7).await,
        (1..=7).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_running_relay_publishes_on_wake_and_drains_on_shutdown() {
    let f = fixture().await;
    let Fixture {
        store,
        relay,
        mut sub,
        ..
    } = f;
    let wake = relay.wake.clone();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));

    post_n(&*store, 2).await;
    wake.notify_one();
    assert_eq!(
        sub.next().await.unwrap().unwrap().envelope.kind,
        events::ROOM_UPDATED_MANY
    );
    assert_eq!(received_seqs(&mut sub, 2).await, vec![1, 2]);

    // Written without a wake-up (the poll interval is an hour): the final
    // pass at shutdown must still publish it.
    let a = store.credentials("alice").await.unwrap().unwrap().user.id;
    let room = store.rooms_of(a, None, 10).await.unwrap().rooms[0].room.id;
    store
        .post_message(NewMessage {
            room_id: room,
            sender_id: a,
            client_msg_id: "late",
            body: "last",
            reply_to: None,
        })
        .await
        .unwrap();
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(received_seqs(&mut sub, 1).await, vec![3]);
    assert!(store.outbox_pending(10).await.unwrap().is_empty());
}
