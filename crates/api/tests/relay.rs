//! The outbox relay: a bus outage loses nothing, a room's order is kept,
//! and different rooms are published at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use roomcast_api::OutboxRelay;
use roomcast_api::relay::publish_batch;
use roomcast_bus::{Bus, BusError, MemoryBus, Mode, Subscription, Topics};
use roomcast_core::{Encoded, Envelope, Kind};
use roomcast_store::{NewMessage, Partitions, SqliteStore, Store};
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
    async fn publish(&self, topic: &str, envelope: &Encoded) -> Result<(), BusError> {
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
        node: "test".into(),
        batch: 3,
        poll_interval: Duration::from_secs(3600),
        status: Arc::default(),
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
        if d.envelope.kind == Kind::ReceiveMessage {
            seqs.push(d.envelope.payload_value()["seq"].as_i64().unwrap());
        }
    }
    seqs
}

#[tokio::test]
async fn rows_stay_while_the_bus_is_down_and_go_out_in_order_after() {
    let mut f = fixture().await;
    post_n(&*f.store, 7).await;
    f.bus.down.store(true, Ordering::SeqCst);
    let all = Partitions::all(f.store.outbox_partitions());
    assert!(f.relay.pass(&all).await.is_err());
    assert_eq!(
        f.store.outbox_pending(100).await.unwrap().len(),
        15,
        "roomUpdatedMany (creation) + 7 × (receiveMessage + roomUpdatedMany) kept"
    );

    f.bus.down.store(false, Ordering::SeqCst);
    assert_eq!(
        f.relay.pass(&all).await.unwrap(),
        15,
        "batches of 3 until empty"
    );
    assert!(f.store.outbox_pending(100).await.unwrap().is_empty());
    let first = f.sub.next().await.unwrap().unwrap();
    assert_eq!(first.envelope.kind, Kind::RoomUpdatedMany);
    assert_eq!(
        received_seqs(&mut f.sub, 7).await,
        (1..=7).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_running_relay_is_woken_by_the_store_and_drains_on_shutdown() {
    let f = fixture().await;
    let Fixture {
        store,
        relay,
        mut sub,
        ..
    } = f;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));

    // Nobody wakes the relay but the store itself (the poll interval is an hour).
    post_n(&*store, 2).await;
    assert_eq!(
        sub.next().await.unwrap().unwrap().envelope.kind,
        Kind::RoomUpdatedMany
    );
    assert_eq!(received_seqs(&mut sub, 2).await, vec![1, 2]);

    // Written right before the stop: published before the relay returns.
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

/// The in-process bus, with one room's publishes held until released and
/// the order of accepted publishes recorded.
struct Held {
    inner: MemoryBus,
    room: roomcast_core::RoomId,
    release: Notify,
    accepted: std::sync::Mutex<Vec<Envelope>>,
    refuse: std::sync::Mutex<Option<roomcast_core::EnvelopeId>>,
}

#[async_trait]
impl Bus for Held {
    fn name(&self) -> &'static str {
        "held"
    }
    async fn publish(&self, topic: &str, envelope: &Encoded) -> Result<(), BusError> {
        if *self.refuse.lock().unwrap() == Some(envelope.id) {
            return Err(BusError::Unavailable("refused".into()));
        }
        if envelope.key == Some(self.room.0) {
            self.release.notified().await;
        }
        self.accepted
            .lock()
            .unwrap()
            .push(envelope.decode().unwrap());
        self.inner.publish(topic, envelope).await
    }
    async fn subscribe(&self, topic: &str, mode: Mode) -> Result<Subscription, BusError> {
        self.inner.subscribe(topic, mode).await
    }
    async fn healthy(&self) -> bool {
        true
    }
}

/// Rows of two rooms and a user, in the interleaved order they were stored.
fn interleaved(
    a: roomcast_core::RoomId,
    b: roomcast_core::RoomId,
) -> Vec<roomcast_store::OutboxItem> {
    let user = roomcast_core::UserId::new();
    (0..9)
        .map(|i| {
            let mut envelope = match i % 3 {
                0 => Envelope::to_room(Kind::ReceiveMessage, a, serde_json::json!({})),
                1 => Envelope::to_room(Kind::ReceiveMessage, b, serde_json::json!({})),
                _ => Envelope::to_user(Kind::Presence, user, serde_json::json!({})),
            };
            envelope.event_seq = Some(i / 3 + 1);
            roomcast_store::OutboxItem {
                id: i + 1,
                topic: roomcast_core::topics::CHAT_OUT.into(),
                envelope: envelope.encode(),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_batch_publishes_other_rooms_while_one_room_waits_and_keeps_each_rooms_order() {
    let (a, b) = (roomcast_core::RoomId::new(), roomcast_core::RoomId::new());
    let bus = Arc::new(Held {
        inner: MemoryBus::new(),
        room: a,
        release: Notify::new(),
        accepted: Default::default(),
        refuse: Default::default(),
    });
    let items = interleaved(a, b);
    let topics = Topics::default();
    let publishing = publish_batch(&*bus, &topics, items.clone());
    tokio::pin!(publishing);
    // Room `b` and the user go out in full while room `a`'s first row waits.
    let others = loop {
        tokio::select! {
            _ = &mut publishing => panic!("finished with room a held"),
            _ = tokio::task::yield_now() => {}
        }
        let n = bus.accepted.lock().unwrap().len();
        if n == 6 {
            break n;
        }
    };
    assert_eq!(others, 6);
    assert!(
        bus.accepted
            .lock()
            .unwrap()
            .iter()
            .all(|e| e.room_id != Some(a))
    );
    let published = loop {
        bus.release.notify_one();
        tokio::select! {
            p = &mut publishing => break p,
            _ = tokio::task::yield_now() => {}
        }
    };
    assert_eq!(published.failure, None);
    assert_eq!(published.done, (1..=9).collect::<Vec<_>>());
    let accepted = bus.accepted.lock().unwrap().clone();
    for key in [Some(a), Some(b)] {
        let seqs: Vec<_> = accepted
            .iter()
            .filter(|e| e.room_id == key)
            .map(|e| e.event_seq.unwrap())
            .collect();
        assert_eq!(seqs, vec![1, 2, 3], "one room's rows in order");
    }
}

#[tokio::test]
async fn a_refused_row_keeps_its_rooms_later_rows_and_not_the_other_rooms() {
    let (a, b) = (roomcast_core::RoomId::new(), roomcast_core::RoomId::new());
    let bus = Held {
        inner: MemoryBus::new(),
        room: roomcast_core::RoomId::new(),
        release: Notify::new(),
        accepted: Default::default(),
        refuse: Default::default(),
    };
    let items = interleaved(a, b);
    // Room b's second row (id 5) is refused: its third (id 8) is not tried.
    *bus.refuse.lock().unwrap() = Some(items[4].envelope.id);
    let published = publish_batch(&bus, &Topics::default(), items.clone()).await;
    assert_eq!(
        published.failure.as_deref(),
        Some("bus engine unavailable: refused")
    );
    assert_eq!(published.done, vec![1, 2, 3, 4, 6, 7, 9]);
}
