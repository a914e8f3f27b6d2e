//! The bus across a Redis restart, on a Redis of the test's own (a child
//! `redis-server` on a free port with AOF in a temporary directory), so the
//! shared server is never disturbed.
//!
//! The **existing** subscriptions are the ones checked after the restart:
//! their readers reconnect by themselves, and they receive what is published
//! once Redis is back, without being re-created.
//!
//! Every wait is on a signal (the server's "Ready to accept connections" log
//! line, the child's exit, a delivery, an outage report); deadlines only bound
//! failures. Retried publishes model the outbox, which retries until one is
//! accepted.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use roomcast_bus::{Bus, BusError, Mode, Subscription};
use roomcast_bus_redis::{Config, connect};
use roomcast_core::{Envelope, Kind, RoomId};
use serde_json::json;

const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// A `redis-server` child process; killed when dropped.
struct Server {
    child: Child,
}

impl Server {
    /// Start on `port` with AOF in `dir`; returns once it accepts connections.
    fn start(port: u16, dir: &Path) -> Self {
        let mut child = Command::new(REDIS_SERVER)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {REDIS_SERVER}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = mpsc::channel();
        // Reads the log to its end (so the pipe never fills), signalling once.
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections")
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        if ready_rx.recv_timeout(DEADLINE).is_err() {
            let _ = child.kill();
            panic!("redis-server on port {port} did not become ready");
        }
        Self { child }
    }

    /// SIGKILL, and wait until the process is gone (its port is closed).
    fn kill(mut self) {
        self.child.kill().expect("kill redis-server");
        self.child.wait().expect("reap redis-server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn envelope(n: i64) -> Envelope {
    Envelope::to_room(Kind::ReceiveMessage, RoomId::new(), json!({ "n": n }))
}

/// The next item must be the outage report.
async fn expect_outage(sub: &mut Subscription, what: &str) {
    let item = within(what, sub.next()).await.expect("subscription open");
    match item {
        Err(BusError::Unavailable(msg)) => assert!(msg.contains("redis"), "{msg}"),
        Err(e) => panic!("{what}: unexpected error {e}"),
        Ok(d) => panic!("{what}: unexpected delivery {:?}", d.envelope),
    }
}

/// Wait for `expected`, tolerating redeliveries of earlier envelopes (entries
/// Redis had not yet written to its AOF when it was killed may be redelivered
/// by a recreated group) and outage reports.
async fn expect_envelope(sub: &mut Subscription, expected: &Envelope, what: &str) {
    within(what, async {
        loop {
            match sub.next().await.expect("subscription open") {
                Ok(d) if d.envelope == *expected => return d.ack().await.expect("ack"),
                Ok(d) => {
                    eprintln!("{what}: earlier envelope again: {:?}", d.envelope.payload);
                    d.ack().await.expect("ack");
                }
                Err(e) => eprintln!("{what}: outage reported: {e}"),
            }
        }
    })
    .await
}

#[tokio::test]
async fn publishing_and_existing_subscriptions_recover_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = Server::start(port, dir.path());
    let cfg = Config {
        url: format!("redis://127.0.0.1:{port}"),
        key_prefix: unique_prefix("restart"),
        claim_idle_ms: 1_000,
        command_timeout_ms: 1_000,
        ..Config::default()
    };
    let bus = connect(&cfg)
        .await
        .expect("connect to the test's own redis");
    let mut fan = bus
        .subscribe("t", Mode::FanOut { node: "n1".into() })
        .await
        .unwrap();
    let mut member = bus
        .subscribe("t", Mode::Queue { group: "g".into() })
        .await
        .unwrap();

    let before = envelope(1);
    bus.publish("t", &before.encode()).await.unwrap();
    assert_eq!(next_envelope(&mut fan, "fan-out before").await, before);
    assert_eq!(next_envelope(&mut member, "member before").await, before);

    server.kill();

    // During the outage: a publish fails, quickly, naming the server.
    let started = Instant::now();
    let err = bus
        .publish("t", &envelope(2).encode())
        .await
        .expect_err("redis is down");
    let bound = Duration::from_millis(cfg.command_timeout_ms) + Duration::from_millis(500);
    assert!(
        started.elapsed() < bound,
        "failed after {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains(&cfg.url), "{err}");
    assert!(!bus.healthy().await, "unhealthy while redis is down");
    // Both readers noticed the outage and report it once.
    expect_outage(&mut fan, "fan-out outage report").await;
    expect_outage(&mut member, "member outage report").await;

    let _server = Server::start(port, dir.path());

    let after = envelope(3);
    publish_until_accepted(bus.as_ref(), &after).await;
    expect_envelope(&mut fan, &after, "fan-out after restart").await;
    expect_envelope(&mut member, &after, "member after restart").await;
    assert!(bus.healthy().await, "healthy again");

    // And the usual flow goes on.
    let later = envelope(4);
    bus.publish("t", &later.encode()).await.unwrap();
    expect_envelope(&mut fan, &later, "fan-out later").await;
    expect_envelope(&mut member, &later, "member later").await;
}

/// Publish like the outbox does: retry until accepted, failing at the deadline.
async fn publish_until_accepted(bus: &dyn Bus, env: &Envelope) {
    within("a publish to be accepted after the restart", async {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match bus.publish("t", &env.encode()).await {
                Ok(()) => return eprintln!("published after {attempts} attempt(s)"),
                // The outbox's retry pace; not a synchronisation point.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
}
