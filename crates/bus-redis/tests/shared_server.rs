//! Tests against the shared Redis at 127.0.0.1:6379: the conformance suite,
//! the stream cap, malformed entries, group membership, and that blocking
//! reads never stall publishes. Each test uses its own key prefix and deletes
//! its keys at the end (also when it fails). They fail, never skip, when the
//! shared Redis is down.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use redis::AsyncCommands;
use roomcast_bus::conformance::{Capabilities, run_all};
use roomcast_bus::{Bus, BusError, Mode};
use roomcast_bus_redis::{Config, connect, entries::FIELD};
use roomcast_core::{Envelope, Kind, RoomId};
use serde_json::json;

fn envelope(n: i64) -> Envelope {
    Envelope::to_room(Kind::ReceiveMessage, RoomId::new(), json!({ "n": n }))
}

fn fan_out() -> Mode {
    Mode::FanOut {
        node: "test-node".into(),
    }
}

fn queue() -> Mode {
    Mode::Queue {
        group: "workers".into(),
    }
}

#[tokio::test]
async fn redis_bus_passes_the_conformance_suite() {
    require_shared_redis();
    let cfg = shared_config("conformance");
    let cleanup = Cleanup::new(&cfg);
    run_all(Capabilities { redelivery: true }, || async {
        connect(&cfg).await.expect("connect to the shared redis")
    })
    .await;
    assert!(cleanup.run() > 0, "the suite's streams are deleted");
}

#[tokio::test]
async fn the_stream_stays_near_max_len() {
    require_shared_redis();
    let cfg = Config {
        max_len: 50,
        ..shared_config("capped")
    };
    let _cleanup = Cleanup::new(&cfg);
    let bus = connect(&cfg).await.unwrap();
    let mut last = None;
    for n in 0..1_000 {
        let env = envelope(n);
        bus.publish("capped", &env.encode()).await.unwrap();
        last = Some(env);
    }
    let mut conn = raw_conn(&cfg.url).await;
    let key = cfg.stream_key("capped");
    let len: usize = conn.xlen(&key).await.unwrap();
    // `MAXLEN ~` trims whole macro-nodes (100 entries by default).
    assert!(
        (50..=150).contains(&len),
        "stream length {len} should stay near the cap of 50"
    );
    let newest: redis::Value = redis::cmd("XREVRANGE")
        .arg(&key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let raw = format!("{newest:?}");
    let id = last.unwrap().id.to_string();
    assert!(raw.contains(&id), "the newest entry is kept: {raw}");
}

#[tokio::test]
async fn malformed_entries_are_skipped_and_acked() {
    require_shared_redis();
    let cfg = shared_config("malformed");
    let _cleanup = Cleanup::new(&cfg);
    let bus = connect(&cfg).await.unwrap();
    let mut fan = bus.subscribe("mixed", fan_out()).await.unwrap();
    let mut member = bus.subscribe("mixed", queue()).await.unwrap();
    let key = cfg.stream_key("mixed");
    let mut conn = raw_conn(&cfg.url).await;
    let good: Vec<_> = (0..3).map(envelope).collect();
    bus.publish("mixed", &good[0].encode()).await.unwrap();
    let _: String = conn.xadd(&key, "*", &[("other", "x")]).await.unwrap();
    let _: String = conn.xadd(&key, "*", &[(FIELD, "{not json")]).await.unwrap();
    bus.publish("mixed", &good[1].encode()).await.unwrap();
    let _: String = conn
        .xadd(&key, "*", &[(&b"\xff\xfe"[..], &b"\x00"[..])])
        .await
        .unwrap();
    bus.publish("mixed", &good[2].encode()).await.unwrap();

    for expected in &good {
        assert_eq!(&next_envelope(&mut fan, "fan-out delivery").await, expected);
        assert_eq!(
            &next_envelope(&mut member, "queue delivery").await,
            expected
        );
    }
    // Every entry, malformed ones included, has been acked by the group.
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(&key)
        .arg("workers")
        .query_async(&mut conn)
        .await
        .unwrap();
    let redis::Value::Array(summary) = pending else {
        panic!("unexpected XPENDING reply {pending:?}")
    };
    assert_eq!(
        summary.first(),
        Some(&redis::Value::Int(0)),
        "nothing pending"
    );
}

/// The documented limit of fan-out: a subscriber that stays behind for more
/// than `max_len` entries loses the trimmed ones, and continues with what is
/// still in the stream, in order.
#[tokio::test]
async fn a_fan_out_subscriber_far_behind_misses_trimmed_entries() {
    require_shared_redis();
    let cfg = Config {
        max_len: 100,
        ..shared_config("behind")
    };
    let _cleanup = Cleanup::new(&cfg);
    let bus = connect(&cfg).await.unwrap();
    let mut sub = bus.subscribe("t", fan_out()).await.unwrap();
    let total = 3_000;
    // Not reading: the reader buffers at most one channel plus one batch.
    for n in 0..total {
        bus.publish("t", &envelope(n).encode()).await.unwrap();
    }
    let mut got = Vec::new();
    while got.last() != Some(&(total - 1)) {
        let env = next_envelope(&mut sub, "the newest envelope").await;
        got.push(env.payload_value()["n"].as_i64().unwrap());
    }
    assert_eq!(got[0], 0, "nothing before the lag began is lost");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "still in order");
    let gaps = got.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert_eq!(gaps, 1, "one run of trimmed entries is skipped");
    assert!(
        got.len() < total as usize,
        "received {} of {total}",
        got.len()
    );
}

async fn consumer_count(mut conn: redis::aio::MultiplexedConnection, key: String) -> usize {
    let info: redis::streams::StreamInfoConsumersReply =
        conn.xinfo_consumers(&key, "workers").await.unwrap();
    info.consumers.len()
}

#[tokio::test]
async fn a_dropped_queue_member_leaves_its_group() {
    require_shared_redis();
    let cfg = shared_config("leave");
    let _cleanup = Cleanup::new(&cfg);
    let bus = connect(&cfg).await.unwrap();
    let key = cfg.stream_key("leave");
    let conn = raw_conn(&cfg.url).await;
    let mut member = bus.subscribe("leave", queue()).await.unwrap();
    let env = envelope(1);
    bus.publish("leave", &env.encode()).await.unwrap();
    assert_eq!(next_envelope(&mut member, "delivery").await, env);
    assert_eq!(consumer_count(conn.clone(), key.clone()).await, 1);
    drop(member);
    eventually("the consumer to leave the group", || {
        let (conn, key) = (conn.clone(), key.clone());
        async move { consumer_count(conn, key).await == 0 }
    })
    .await;
}

#[tokio::test]
async fn blocking_reads_do_not_stall_publishes() {
    require_shared_redis();
    let cfg = Config {
        block_ms: 60_000,
        ..shared_config("nostall")
    };
    let _cleanup = Cleanup::new(&cfg);
    let bus: Arc<dyn Bus> = connect(&cfg).await.unwrap();
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(bus.subscribe("t", fan_out()).await.unwrap());
        subs.push(bus.subscribe("t", queue()).await.unwrap());
    }
    let started = Instant::now();
    for n in 0..20 {
        bus.publish("t", &envelope(n).encode()).await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "20 publishes took {:?} while six reads were blocked",
        started.elapsed()
    );
    assert!(bus.healthy().await);
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast_with_the_url() {
    let cfg = Config {
        url: "redis://:hunter2@127.0.0.1:1".into(),
        ..Config::default()
    };
    let started = Instant::now();
    let err = match connect(&cfg).await {
        Ok(_) => panic!("nothing listens on port 1"),
        Err(e) => e,
    };
    let elapsed = started.elapsed();
    let msg = err.to_string();
    assert!(matches!(err, BusError::Unavailable(_)), "{err:?}");
    assert!(msg.contains("redis://:***@127.0.0.1:1"), "URL named: {msg}");
    assert!(!msg.contains("hunter2"), "password hidden: {msg}");
    assert!(
        elapsed < Duration::from_millis(cfg.connect_timeout_ms + cfg.command_timeout_ms),
        "failed after {elapsed:?}"
    );
}
