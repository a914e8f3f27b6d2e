//! Packs ([`roomcast_bus_nats::pack`]) against the shared NATS JetStream at
//! 127.0.0.1:4222: a run goes as few messages and arrives whole and in
//! order, a re-published pack is dropped by its id, a pack with an unacked
//! envelope comes back whole, and `pack_max = 1` publishes one message per
//! envelope. They fail (never skip) when the shared server is down.

mod common;

use std::sync::Arc;

use common::{Cleanup, next_envelope, shared_bus, shared_config, unique_topic};
use roomcast_bus::{Bus, Mode, testkit};
use roomcast_bus_nats::{Config, NatsBus, config};
use roomcast_core::{Envelope, Kind, RoomId};
use serde_json::json;

fn run(n: i64) -> Vec<Envelope> {
    let room = RoomId::new();
    (0..n)
        .map(|i| Envelope::to_room(Kind::ReceiveMessage, room, json!({ "n": i })))
        .collect()
}

async fn stored(bus: &Arc<NatsBus>, topic: &str) -> u64 {
    bus.jetstream()
        .get_stream(config::stream_name(topic))
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .state
        .messages
}

#[tokio::test]
async fn a_run_goes_as_packs_and_arrives_whole_in_order() {
    let cfg = Config {
        pack_max: 4,
        ..shared_config()
    };
    let bus = shared_bus(&cfg).await;
    let cleanup = Cleanup::new(&cfg.url);
    cleanup.track(&bus);
    let topic = unique_topic("packs");
    let mut sub = bus
        .subscribe(&topic, Mode::FanOut { node: "n1".into() })
        .await
        .unwrap();
    let envs = run(10);
    let (accepted, failure) = bus.publish_run(&topic, testkit::encoded(&envs)).await;
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(accepted, 10);
    assert_eq!(
        stored(&bus, &topic).await,
        3,
        "10 envelopes in packs of 4, 4, 2"
    );
    // The relay re-publishing the same run after a lost ack: dropped.
    let (accepted, _) = bus.publish_run(&topic, testkit::encoded(&envs)).await;
    assert_eq!(accepted, 10);
    assert_eq!(
        stored(&bus, &topic).await,
        3,
        "re-published packs are not stored"
    );
    for (i, want) in envs.iter().enumerate() {
        let got = next_envelope(&mut sub, &format!("envelope {i}")).await;
        assert_eq!(&got, want, "in order");
    }
}

#[tokio::test]
async fn a_pack_with_an_unacked_envelope_comes_back_whole() {
    let cfg = Config {
        ack_wait_ms: 300,
        ..shared_config()
    };
    let bus = shared_bus(&cfg).await;
    let cleanup = Cleanup::new(&cfg.url);
    cleanup.track(&bus);
    let topic = unique_topic("pack-redeliver");
    let group = Mode::Queue {
        group: "api".into(),
    };
    let mut sub = bus.subscribe(&topic, group.clone()).await.unwrap();
    let envs = run(3);
    assert_eq!(bus.publish_run(&topic, testkit::encoded(&envs)).await.0, 3);
    let mut taken = Vec::new();
    for i in 0..3 {
        let d = common::within(&format!("delivery {i}"), sub.next())
            .await
            .expect("open")
            .expect("delivery");
        taken.push(d);
    }
    let last = taken.pop().unwrap();
    for d in taken {
        d.ack().await.unwrap();
    }
    drop(last); // never acked: the pack comes back
    for (i, want) in envs.iter().enumerate() {
        let d = common::within(&format!("redelivery {i}"), sub.next())
            .await
            .expect("open")
            .expect("delivery");
        assert_eq!(&d.envelope, want, "the whole pack, in order");
        d.ack().await.unwrap();
    }
    let stream = bus
        .jetstream()
        .get_stream(config::stream_name(&topic))
        .await
        .unwrap();
    common::eventually("the pack acked", || async {
        let info = stream
            .consumer_info(config::queue_consumer("api"))
            .await
            .unwrap();
        info.ack_floor.stream_sequence == 1 && info.num_ack_pending == 0
    })
    .await;
}

#[tokio::test]
async fn pack_max_one_publishes_one_message_per_envelope() {
    let cfg = Config {
        pack_max: 1,
        ..shared_config()
    };
    let bus = shared_bus(&cfg).await;
    let cleanup = Cleanup::new(&cfg.url);
    cleanup.track(&bus);
    let topic = unique_topic("no-packs");
    let mut sub = bus
        .subscribe(&topic, Mode::FanOut { node: "n1".into() })
        .await
        .unwrap();
    let envs = run(5);
    assert_eq!(bus.publish_run(&topic, testkit::encoded(&envs)).await.0, 5);
    assert_eq!(stored(&bus, &topic).await, 5);
    for want in &envs {
        assert_eq!(&next_envelope(&mut sub, "envelope").await, want);
    }
}
