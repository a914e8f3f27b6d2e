//! Tests against the shared NATS JetStream at 127.0.0.1:4222: the conformance
//! suite, dead-lettering, malformed payloads, duplicate publishes, racing
//! stream creation, and the error when the engine cannot be reached.
//! They fail (never skip) when the shared server is down.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Cleanup, shared_bus, shared_config, unique_topic, within};
use roomcast_bus::conformance::{self, Capabilities};
use roomcast_bus::{Bus, Mode};
use roomcast_bus_nats::{Config, NatsBus, config, connect, subscription};
use roomcast_core::{Envelope, Kind, RoomId};
use serde_json::json;

fn envelope(n: i64) -> Envelope {
    Envelope::to_room(Kind::ReceiveMessage, RoomId::new(), json!({ "n": n }))
}

fn queue(group: &str) -> Mode {
    Mode::Queue {
        group: group.into(),
    }
}

fn fan_out(node: &str) -> Mode {
    Mode::FanOut { node: node.into() }
}

#[tokio::test]
async fn nats_passes_the_conformance_suite() {
    let cleanup = Arc::new(Cleanup::new(common::SHARED_URL));
    let c = cleanup.clone();
    conformance::run_all(Capabilities { redelivery: true }, move || {
        let c = c.clone();
        async move {
            let bus = shared_bus(&Config {
                ack_wait_ms: 1_000,
                ..Default::default()
            })
            .await;
            c.track(&bus);
            bus as Arc<dyn Bus>
        }
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_engine_is_a_quick_clear_error() {
    let cfg = Config {
        url: "nats://127.0.0.1:1".into(),
        ..Config::default()
    };
    let started = Instant::now();
    let err = match connect(&cfg).await {
        Ok(_) => panic!("connecting to a closed port must fail"),
        Err(e) => e.to_string(),
    };
    assert!(
        started.elapsed() < cfg.connect_timeout() + Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.contains("nats://127.0.0.1:1"), "{err}");
    assert!(err.contains("NATS"), "{err}");
}

#[tokio::test]
async fn a_queue_message_never_acked_goes_to_the_dead_letter_subject() {
    let cfg = Config {
        ack_wait_ms: 300,
        max_deliver: 2,
        ..shared_config()
    };
    let bus = shared_bus(&cfg).await;
    let cleanup = Cleanup::new(&cfg.url);
    cleanup.track(&bus);
    let topic = unique_topic("dlq");
    let dlq_topic = config::dead_letter_subject(&topic);
    let mut dead = bus
        .subscribe(&dlq_topic, fan_out("inspector"))
        .await
        .unwrap();
    let mut workers = bus.subscribe(&topic, queue("workers")).await.unwrap();
    let env = envelope(1);
    bus.publish(&topic, &env.encode()).await.unwrap();

    for attempt in 1..=cfg.max_deliver {
        let d = within("a delivery to the group", workers.next())
            .await
            .expect("open")
            .expect("delivery");
        assert_eq!(d.envelope, env, "attempt {attempt}");
        drop(d); // never acked
    }
    // Keep the group pulling (it is what moves the message) for the rest of
    // the test, in a task of its own so no wait here can interrupt the move;
    // the group must not see the envelope again.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::channel(8);
    let drain = tokio::spawn(async move {
        while let Some(d) = workers.next().await {
            match d {
                Ok(d) => seen_tx.send(d.envelope).await.expect("test alive"),
                Err(e) => eprintln!("workers: {e}"),
            }
        }
    });
    let moved = within("the dead letter", dead.next())
        .await
        .expect("open")
        .expect("delivery");
    assert_eq!(moved.envelope, env);
    moved.ack().await.unwrap();

    let js = bus.jetstream();
    let stored = js
        .get_stream(config::stream_name(&topic))
        .await
        .unwrap()
        .get_last_raw_message_by_subject(&dlq_topic)
        .await
        .unwrap();
    let headers = stored.headers;
    assert_eq!(
        headers
            .get(subscription::DEAD_LETTER_DELIVERIES)
            .map(|v| v.as_str()),
        Some("2")
    );
    assert_eq!(
        headers
            .get(subscription::DEAD_LETTER_TOPIC)
            .map(|v| v.as_str()),
        Some(topic.as_str())
    );
    // The original is acked: nothing pending for the group any more.
    let stream = js.get_stream(config::stream_name(&topic)).await.unwrap();
    common::eventually("the original to be acked", || async {
        let info = stream
            .consumer_info(config::queue_consumer("workers"))
            .await
            .unwrap();
        info.num_ack_pending == 0 && info.num_pending == 0
    })
    .await;
    drain.abort();
    if let Ok(again) = seen_rx.try_recv() {
        panic!("delivered a {}th time: {again:?}", cfg.max_deliver + 1);
    }
}

#[tokio::test]
async fn a_malformed_payload_is_acked_and_skipped() {
    let cfg = shared_config();
    let bus = shared_bus(&cfg).await;
    let cleanup = Cleanup::new(&cfg.url);
    cleanup.track(&bus);
    let topic = unique_topic("malformed");
    let mut sub = bus.subscribe(&topic, queue("api")).await.unwrap();
    let js = bus.jetstream();
    js.publish(topic.clone(), "not an envelope".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let env = envelope(2);
    bus.publish(&topic, &env.encode()).await.unwrap();
    assert_eq!(
        common::next_envelope(&mut sub, "the valid envelope").await,
        env
    );
    let stream = js.get_stream(config::stream_name(&topic)).await.unwrap();
    common::eventually("both messages acked", || async {
        let info = stream
            .consumer_info(config::queue_consumer("api"))
            .await
            .unwrap();
        info.ack_floor.stream_sequence == 2 && info.num_ack_pending == 0
    })
    .await;
}

#[tokio::test]
async fn a_republished_envelope_is_dropped_by_its_id() {
    let cfg = shared_config();
    let bus = shared_bus(&cfg).await;
    let cleanup = Cleanup::new(&cfg.url);
    cleanup.track(&bus);
    let topic = unique_topic("dedupe");
    let mut sub = bus.subscribe(&topic, fan_out("n1")).await.unwrap();
    let (first, second) = (envelope(1), envelope(2));
    bus.publish(&topic, &first.encode()).await.unwrap();
    bus.publish(&topic, &first.encode()).await.unwrap(); // the outbox retrying
    bus.publish(&topic, &second.encode()).await.unwrap();
    assert_eq!(common::next_envelope(&mut sub, "first").await, first);
    assert_eq!(common::next_envelope(&mut sub, "second").await, second);
    let info = bus
        .jetstream()
        .get_stream(config::stream_name(&topic))
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.state.messages, 2, "the re-publish is not stored");
}

#[tokio::test]
async fn processes_racing_to_create_a_stream_all_succeed() {
    let cfg = shared_config();
    let cleanup = Cleanup::new(&cfg.url);
    let topic = unique_topic("race");
    let mut tasks = Vec::new();
    for n in 0..6 {
        let (cfg, topic) = (cfg.clone(), topic.clone());
        tasks.push(tokio::spawn(async move {
            let bus = shared_bus(&cfg).await;
            let mode = if n % 2 == 0 {
                queue("api")
            } else {
                fan_out(&format!("node{n}"))
            };
            let sub = bus
                .subscribe(&topic, mode)
                .await
                .expect("subscribe while racing");
            bus.publish(&topic, &envelope(n).encode())
                .await
                .expect("publish while racing");
            (bus, sub)
        }));
    }
    let mut buses: Vec<Arc<NatsBus>> = Vec::new();
    for t in tasks {
        let (bus, _sub) = t.await.unwrap();
        cleanup.track(&bus);
        buses.push(bus);
    }
    assert_eq!(buses[0].streams(), vec![config::stream_name(&topic)]);
}

#[tokio::test]
async fn an_existing_stream_with_other_limits_is_reconciled() {
    let cfg = shared_config();
    let bus = shared_bus(&cfg).await;
    let cleanup = Cleanup::new(&cfg.url);
    cleanup.track(&bus);
    let topic = unique_topic("reconcile");
    let name = config::stream_name(&topic);
    let js = bus.jetstream();
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![topic.clone()],
        max_age: Duration::from_secs(60),
        ..Default::default()
    })
    .await
    .unwrap();
    let env = envelope(3);
    let mut sub = bus.subscribe(&topic, fan_out("n1")).await.unwrap();
    bus.publish(&topic, &env.encode()).await.unwrap();
    assert_eq!(common::next_envelope(&mut sub, "the envelope").await, env);
    let info = js
        .get_stream(&name)
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.max_age, cfg.max_age());
    assert_eq!(
        info.config.subjects,
        vec![topic.clone(), config::dead_letter_subject(&topic)]
    );
}

#[tokio::test]
async fn a_topic_colliding_with_another_streams_name_is_refused() {
    let cfg = shared_config();
    let bus = shared_bus(&cfg).await;
    let cleanup = Cleanup::new(&cfg.url);
    cleanup.track(&bus);
    let topic = unique_topic("collide");
    bus.publish(&topic, &envelope(1).encode()).await.unwrap();
    // Same stream name (`.` and `_` both map to `_`), other subject.
    let other = topic.replacen('.', "_", 1);
    let err = bus
        .publish(&other, &envelope(2).encode())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("rename one of the topics"), "{err}");
}

#[tokio::test]
async fn invalid_topics_are_refused() {
    let bus = shared_bus(&shared_config()).await;
    for bad in ["", "a.*", "a.>", "a b", "a..b"] {
        assert!(
            bus.publish(bad, &envelope(1).encode()).await.is_err(),
            "{bad:?}"
        );
        assert!(bus.subscribe(bad, fan_out("n")).await.is_err(), "{bad:?}");
    }
    assert_eq!(bus.name(), "nats");
    assert!(bus.healthy().await);
}
