//! The conformance suite: the same cases, run against every [`Bus`] backend.
//!
//! A backend's tests call [`run_all`] with a factory that returns a fresh bus
//! connected to the real engine. Each case uses its own topic names, so cases
//! do not see each other's traffic even on a shared engine.
//!
//! Cases never sleep: they wait for deliveries with a generous deadline
//! ([`DEADLINE`]) that only a broken backend reaches.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use roomcast_core::{Encoded, Envelope, Kind, RoomId};
use serde_json::json;

use crate::{Bus, Mode, Subscription};

/// How long a case waits for an expected delivery before failing.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// What a backend promises beyond the common cases.
#[derive(Clone, Copy, Debug)]
pub struct Capabilities {
    /// An envelope taken by a queue-group member that dies without acking is
    /// delivered again to another member (after the backend's ack deadline,
    /// which a backend's tests set short).
    pub redelivery: bool,
}

/// Run every case against buses made by `make`.
pub async fn run_all<F, Fut>(caps: Capabilities, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Bus>>,
{
    publish_then_consume(make().await).await;
    fan_out_reaches_every_subscription(make().await).await;
    queue_group_delivers_to_exactly_one(make().await).await;
    order_is_kept_per_room(make().await).await;
    a_run_is_stored_in_order(make().await).await;
    if caps.redelivery {
        unacked_delivery_is_redelivered(make().await).await;
    }
    assert!(make().await.healthy().await, "a fresh bus reports healthy");
}

fn fan_out(n: usize) -> Mode {
    Mode::FanOut {
        node: format!("node-{n}-{}", RoomId::new()),
    }
}

fn unique_topic(case: &str) -> String {
    format!("conformance.{case}.{}", RoomId::new())
}

fn envelope(room: RoomId, n: i64) -> Envelope {
    Envelope::to_room(Kind::ReceiveMessage, room, json!({ "n": n }))
}

async fn next_n(sub: &mut Subscription, count: usize) -> Vec<Envelope> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let d = tokio::time::timeout(DEADLINE, sub.next())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {count} deliveries", out.len()))
            .expect("subscription ended early")
            .expect("delivery error");
        out.push(d.envelope.clone());
        d.ack().await.expect("ack");
    }
    out
}

/// A published envelope arrives intact.
pub async fn publish_then_consume(bus: Arc<dyn Bus>) {
    let topic = unique_topic("basic");
    let mut sub = bus.subscribe(&topic, fan_out(0)).await.unwrap();
    let env = envelope(RoomId::new(), 1);
    bus.publish(&topic, &env.encode()).await.unwrap();
    assert_eq!(next_n(&mut sub, 1).await, vec![env]);
}

/// Every fan-out subscription gets every envelope.
pub async fn fan_out_reaches_every_subscription(bus: Arc<dyn Bus>) {
    let topic = unique_topic("fanout");
    let mut subs = Vec::new();
    for n in 0..3 {
        subs.push(bus.subscribe(&topic, fan_out(n)).await.unwrap());
    }
    let room = RoomId::new();
    let sent: Vec<_> = (1..=5).map(|n| envelope(room, n)).collect();
    for e in &sent {
        bus.publish(&topic, &e.encode()).await.unwrap();
    }
    for sub in &mut subs {
        let mut got = next_n(sub, sent.len()).await;
        got.sort_by_key(|e| e.payload_value()["n"].as_i64());
        assert_eq!(got, sent);
    }
}

/// In a queue group, each envelope goes to exactly one member.
pub async fn queue_group_delivers_to_exactly_one(bus: Arc<dyn Bus>) {
    let topic = unique_topic("queue");
    let group = Mode::Queue {
        group: "workers".into(),
    };
    let mut a = bus.subscribe(&topic, group.clone()).await.unwrap();
    let mut b = bus.subscribe(&topic, group).await.unwrap();
    let room = RoomId::new();
    let total = 20;
    for n in 0..total {
        bus.publish(&topic, &envelope(room, n).encode())
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < total as usize {
        let d = tokio::select! {
            d = a.next() => d,
            d = b.next() => d,
        };
        let d = d.expect("subscription ended").expect("delivery error");
        seen.push(d.envelope.payload_value()["n"].as_i64().unwrap());
        d.ack().await.unwrap();
    }
    seen.sort();
    assert_eq!(seen, (0..total).collect::<Vec<_>>(), "each exactly once");
}

/// Envelopes of one room published in order arrive in order.
pub async fn order_is_kept_per_room(bus: Arc<dyn Bus>) {
    let topic = unique_topic("order");
    let mut sub = bus.subscribe(&topic, fan_out(0)).await.unwrap();
    let room = RoomId::new();
    for n in 0..100 {
        bus.publish(&topic, &envelope(room, n).encode())
            .await
            .unwrap();
    }
    let got: Vec<_> = next_n(&mut sub, 100)
        .await
        .iter()
        .map(|e| e.payload_value()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

/// A run of one room's envelopes ([`Bus::publish_run`]), published beside
/// another room's run, arrives whole and in order.
pub async fn a_run_is_stored_in_order(bus: Arc<dyn Bus>) {
    let topic = unique_topic("run");
    let mut sub = bus.subscribe(&topic, fan_out(0)).await.unwrap();
    let (a, b) = (RoomId::new(), RoomId::new());
    let runs: Vec<Vec<Encoded>> = [a, b]
        .iter()
        .map(|room| (0..50).map(|n| envelope(*room, n).encode()).collect())
        .collect();
    let [run_a, run_b]: [Vec<Encoded>; 2] = runs.try_into().expect("two runs");
    let (ra, rb) = tokio::join!(
        bus.publish_run(&topic, run_a),
        bus.publish_run(&topic, run_b)
    );
    assert!(ra.1.is_none() && rb.1.is_none(), "{ra:?} {rb:?}");
    assert_eq!((ra.0, rb.0), (50, 50));
    let got = next_n(&mut sub, 100).await;
    for room in [a, b] {
        let ns: Vec<i64> = got
            .iter()
            .filter(|e| e.room_id == Some(room))
            .map(|e| e.payload_value()["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, (0..50).collect::<Vec<_>>(), "each room's run in order");
    }
}

/// A queue-group member that takes an envelope and dies without acking does
/// not lose it: another member of the group gets it.
pub async fn unacked_delivery_is_redelivered(bus: Arc<dyn Bus>) {
    let topic = unique_topic("redeliver");
    let group = Mode::Queue {
        group: "workers".into(),
    };
    let mut doomed = bus.subscribe(&topic, group.clone()).await.unwrap();
    let env = envelope(RoomId::new(), 7);
    bus.publish(&topic, &env.encode()).await.unwrap();
    let taken = tokio::time::timeout(DEADLINE, doomed.next())
        .await
        .expect("first delivery")
        .expect("subscription open")
        .expect("delivery");
    assert_eq!(taken.envelope, env);
    drop(taken); // never acked
    drop(doomed); // the consumer dies
    let mut survivor = bus.subscribe(&topic, group).await.unwrap();
    let again = tokio::time::timeout(DEADLINE * 3, survivor.next())
        .await
        .expect("redelivery within the deadline")
        .expect("subscription open")
        .expect("delivery");
    assert_eq!(again.envelope, env);
    again.ack().await.unwrap();
}
