//! The Pub/Sub backend against the shared conformance suite, and how
//! `connect` fails when there is no Pub/Sub to talk to. Runs on Google's
//! emulator (`scripts/start-pubsub-emulator`).

mod support;

use std::time::{Duration, Instant};

use roomcast_bus::BusError;
use roomcast_bus::conformance::{self, Capabilities};
use roomcast_bus_gcp::{Config, connect};

/// Every case of the suite, redelivery included: a message left unacked by a
/// queue member that went away reaches the next member (at once, since the
/// dropped delivery is nacked; after the 10 s ack deadline at worst; the
/// suite allows 30 s).
#[tokio::test]
async fn the_pubsub_backend_passes_the_conformance_suite() {
    let cfg = support::config("conformance");
    conformance::run_all(Capabilities { redelivery: true }, || {
        let cfg = cfg.clone();
        async move { connect(&cfg).await.expect("connect to the emulator") }
    })
    .await;
}

async fn refused_quickly(cfg: Config, endpoint: &str) {
    let started = Instant::now();
    let err = match connect(&cfg).await {
        Ok(_) => panic!("connected to {endpoint}, which should be unreachable"),
        Err(e) => e,
    };
    let took = started.elapsed();
    assert!(matches!(err, BusError::Unavailable(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(endpoint),
        "the error names the endpoint: {text}"
    );
    assert!(text.contains("Pub/Sub"), "the error names Pub/Sub: {text}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn a_refused_connection_is_a_quick_clear_error() {
    let cfg = Config {
        emulator_host: "127.0.0.1:1".into(),
        ..Config::default()
    };
    refused_quickly(cfg, "127.0.0.1:1").await;
}

/// An endpoint that accepts connections but never answers: `timeout_ms`
/// bounds the wait.
#[tokio::test]
async fn a_silent_endpoint_fails_within_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn); // kept open, never written to
        }
    });
    let cfg = Config {
        emulator_host: addr.clone(),
        timeout_ms: 1_500,
        ..Config::default()
    };
    refused_quickly(cfg, &addr).await;
    silent.abort();
}
