//! What the Pub/Sub backend promises beyond the conformance suite, on
//! Google's emulator (`scripts/start-pubsub-emulator`): order per room,
//! reuse of a named fan-out subscription, skipping malformed messages, and
//! the settings of the subscriptions it creates.

mod support;

use std::time::Duration;

use gcloud_pubsub::client::{Client, ClientConfig};
use google_cloud_gax::conn::Environment;
use google_cloud_googleapis::pubsub::v1::PubsubMessage;
use roomcast_bus::{Bus, Mode, Subscription};
use roomcast_bus_gcp::{Config, GcpBus, connect};
use roomcast_core::{Envelope, Kind, RoomId};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn fan_out(node: &str) -> Mode {
    Mode::FanOut { node: node.into() }
}

async fn next(sub: &mut Subscription) -> Envelope {
    let d = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a delivery within the deadline")
        .expect("subscription open")
        .expect("delivery");
    let env = d.envelope.clone();
    d.ack().await.expect("ack");
    env
}

/// A raw client on the same emulator project, to look behind the backend.
async fn raw_client(cfg: &Config) -> Client {
    let config = ClientConfig {
        project_id: Some(cfg.project.clone()),
        environment: Environment::Emulator(cfg.emulator_host.clone()),
        ..ClientConfig::default()
    };
    Client::new(config).await.expect("raw client")
}

#[tokio::test]
async fn envelopes_of_a_room_arrive_in_order_on_a_fan_out_subscription() {
    let bus = connect(&support::config("order")).await.unwrap();
    let mut sub = bus.subscribe("chat.out", fan_out("rt-1")).await.unwrap();
    let (a, b) = (RoomId::new(), RoomId::new());
    // 100 envelopes for room a, interleaved with 100 for room b.
    for n in 0..100 {
        for room in [a, b] {
            let env = Envelope::to_room(Kind::ReceiveMessage, room, json!({ "n": n }));
            bus.publish("chat.out", &env.encode()).await.unwrap();
        }
    }
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let env = next(&mut sub).await;
        let n = env.payload_value()["n"].as_i64().unwrap();
        if env.room_id == Some(a) {
            got_a.push(n)
        } else {
            got_b.push(n)
        }
    }
    let expected: Vec<i64> = (0..100).collect();
    assert_eq!(got_a, expected, "room a in order");
    assert_eq!(got_b, expected, "room b in order");
}

#[tokio::test]
async fn a_named_fan_out_subscription_is_reused_across_restarts() {
    let cfg = Config {
        fan_out_subscription: "roomcast-chat.out-vm-1".into(),
        ..support::config("reuse")
    };
    let bus = connect(&cfg).await.unwrap();
    let first = bus.subscribe("chat.out", fan_out("a")).await.unwrap();
    drop(first);
    drop(bus);
    // While the node is down, an envelope is published: the subscription
    // keeps it.
    let publisher = connect(&cfg).await.unwrap();
    let room = RoomId::new();
    let while_down = Envelope::to_room(Kind::ReceiveMessage, room, json!({"n": 1}));
    publisher
        .publish("chat.out", &while_down.encode())
        .await
        .unwrap();
    // The node restarts (even under another node id): same subscription, no error.
    let bus = connect(&cfg).await.unwrap();
    let mut again = bus.subscribe("chat.out", fan_out("b")).await.unwrap();
    assert_eq!(next(&mut again).await, while_down);
    let after = Envelope::to_room(Kind::ReceiveMessage, room, json!({"n": 2}));
    bus.publish("chat.out", &after.encode()).await.unwrap();
    assert_eq!(next(&mut again).await, after);
}

#[tokio::test]
async fn a_named_subscription_on_another_topic_is_refused() {
    let cfg = Config {
        fan_out_subscription: "roomcast-node-x".into(),
        ..support::config("wrong-topic")
    };
    let bus = connect(&cfg).await.unwrap();
    let _sub = bus.subscribe("chat.out", fan_out("x")).await.unwrap();
    let err = match bus.subscribe("other.topic", fan_out("x")).await {
        Ok(_) => panic!("a subscription of chat.out was used for other.topic"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("roomcast-node-x") && err.contains("chat.out"),
        "{err}"
    );
}

#[tokio::test]
async fn a_malformed_message_is_skipped() {
    let cfg = support::config("malformed");
    let bus = connect(&cfg).await.unwrap();
    let mut sub = bus.subscribe("chat.out", fan_out("rt-1")).await.unwrap();
    let raw = raw_client(&cfg).await.topic("chat.out").new_publisher(None);
    for data in [&b"not json"[..], b"{\"id\": 1}"] {
        let garbage = PubsubMessage {
            data: data.to_vec(),
            ..PubsubMessage::default()
        };
        raw.publish_immediately(vec![garbage], None).await.unwrap();
    }
    let good = Envelope::to_room(Kind::ReceiveMessage, RoomId::new(), json!({"n": 1}));
    bus.publish("chat.out", &good.encode()).await.unwrap();
    assert_eq!(next(&mut sub).await, good, "the garbage was skipped");
    assert!(bus.healthy().await);
}

#[tokio::test]
async fn subscriptions_are_created_with_ordering_deadline_and_expiration() {
    let cfg = Config {
        ack_deadline_secs: 15,
        fan_out_expiration_days: 2,
        ..support::config("settings")
    };
    let bus = GcpBus::connect(&cfg).await.unwrap();
    let _out = bus.subscribe("chat.out", fan_out("rt/1")).await.unwrap();
    let queue = Mode::Queue {
        group: "api".into(),
    };
    let _in = bus.subscribe("chat.in", queue).await.unwrap();
    let raw = raw_client(&cfg).await;

    let (topic, s) = raw
        .subscription("roomcast-chat.out-rt-1")
        .config(None)
        .await
        .unwrap();
    assert!(topic.ends_with("/topics/chat.out"), "{topic}");
    assert!(s.enable_message_ordering);
    assert_eq!(s.ack_deadline_seconds, 15);
    let ttl = s
        .expiration_policy
        .and_then(|p| p.ttl)
        .expect("an expiration ttl");
    assert_eq!(ttl.seconds, 2 * 86_400);
    assert_eq!(
        s.message_retention_duration,
        Some(Duration::from_secs(3_600))
    );

    let (topic, s) = raw
        .subscription("roomcast-chat.in-api")
        .config(None)
        .await
        .unwrap();
    assert!(topic.ends_with("/topics/chat.in"), "{topic}");
    assert!(s.enable_message_ordering);
    assert_eq!(s.ack_deadline_seconds, 15);
    assert!(
        s.expiration_policy.is_none_or(|p| p.ttl.is_none()),
        "the queue subscription never expires"
    );
}

#[tokio::test]
async fn a_deleted_subscription_ends_the_stream_with_an_error() {
    let cfg = support::config("deleted");
    let bus = connect(&cfg).await.unwrap();
    let mut sub = bus.subscribe("chat.out", fan_out("rt-1")).await.unwrap();
    let raw = raw_client(&cfg).await;
    raw.subscription("roomcast-chat.out-rt-1")
        .delete(None)
        .await
        .unwrap();
    let end = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("noticed within the deadline");
    match end {
        Some(Err(e)) => assert!(e.to_string().contains("roomcast-chat.out-rt-1"), "{e}"),
        other => panic!("expected an error naming the subscription, got {other:?}"),
    }
    let after = tokio::time::timeout(WAIT, sub.next()).await.expect("ends");
    assert!(after.is_none(), "then the stream ends");
}
