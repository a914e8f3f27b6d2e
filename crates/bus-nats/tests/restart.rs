//! Outage and restart against a `nats-server -js` of the test's own (a child
//! process on a free port with a temporary store), killed like a crash and
//! started again on the same port and store:
//! - a publish during the outage fails within the request timeout (the
//!   outbox keeps the row) instead of hanging;
//! - subscriptions opened **before** the restart, fan-out and queue, receive
//!   what is published after it: no new subscription is needed;
//! - what was acked by JetStream before the crash is still there after it;
//! - after an outage long enough to be reported on the subscriptions, they
//!   reopen by themselves and deliver again;
//! - a reachable server without JetStream is refused at connect, quickly.
//!
//! Every wait is on a signal (the server's ready line, a delivery, a
//! successful publish); deadlines only bound failures.

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{next_envelope, within};
use roomcast_bus::{Bus, Mode, Subscription};
use roomcast_bus_nats::{Config, NatsBus, config};
use roomcast_core::{Envelope, EnvelopeId, Kind, RoomId};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where Debian's package puts the server.
const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A child NATS server of the test's own. Readiness is its own "Server is
/// ready" log line, never a sleep.
struct ChildServer {
    port: u16,
    store: tempfile::TempDir,
    jetstream: bool,
    child: Option<Child>,
}

impl ChildServer {
    /// Start a JetStream server on a free port with a fresh store; returns
    /// once it is ready for clients.
    async fn start() -> Self {
        Self::start_with(true).await
    }

    /// Start a server, with JetStream or without.
    async fn start_with(jetstream: bool) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            port,
            store: tempfile::tempdir().expect("temp store dir"),
            jetstream,
            child: None,
        };
        server.run().await;
        server
    }

    /// `nats://127.0.0.1:<port>`.
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kill the server (SIGKILL, like a crash) and wait until it is gone.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill nats-server");
        }
    }

    /// Start the server again on the same port and store.
    async fn restart(&mut self) {
        self.kill().await;
        self.run().await;
    }

    async fn run(&mut self) {
        let mut command = Command::new(NATS_SERVER);
        command.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.jetstream {
            command.arg("-js").arg("-sd").arg(self.store.path());
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NATS_SERVER}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let port = self.port;
        within("the child nats-server to be ready", async {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line.contains("Server is ready") => return,
                    Ok(Some(line)) => {
                        if line.contains("[FTL]") || line.contains("[ERR]") {
                            eprintln!("nats-server :{port}: {line}");
                        }
                    }
                    Ok(None) | Err(_) => panic!("nats-server on :{port} exited before ready"),
                }
            }
        })
        .await;
        // Keep draining its log so the pipe never fills and blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }
}

fn envelope(n: i64) -> Envelope {
    Envelope::to_room(Kind::ReceiveMessage, RoomId::new(), json!({ "n": n }))
}

fn child_config(url: String) -> Config {
    Config {
        url,
        request_timeout_ms: 1_500,
        ack_wait_ms: 1_000,
        ..Config::default()
    }
}

/// The next envelope of `sub` that is not one of `ignore` (envelopes whose
/// ack or publish outcome the crash left open may legitimately come again).
async fn next_new(sub: &mut Subscription, ignore: &HashSet<EnvelopeId>, what: &str) -> Envelope {
    loop {
        let env = next_envelope(sub, what).await;
        if !ignore.contains(&env.id) {
            return env;
        }
        eprintln!("{what}: redelivered {} after the restart", env.id);
    }
}

/// Publish `env` until it is accepted, as the outbox does; each attempt is
/// bounded by the request timeout, the whole by the deadline.
async fn publish_until_accepted(bus: &NatsBus, topic: &str, env: &Envelope) {
    within("a publish to succeed after the restart", async {
        loop {
            match bus.publish(topic, &env.encode()).await {
                Ok(()) => return,
                Err(e) => eprintln!("publish after restart not yet accepted: {e}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn subscriptions_survive_an_engine_restart_and_outage_publishes_fail_fast() {
    let mut server = ChildServer::start().await;
    let cfg = child_config(server.url());
    let bus = NatsBus::connect(&cfg)
        .await
        .expect("connect to the child server");
    assert!(bus.healthy().await);
    let topic = common::unique_topic("restart");

    let mut fan = bus
        .subscribe(
            &topic,
            Mode::FanOut {
                node: "node-a".into(),
            },
        )
        .await
        .unwrap();
    let mut group = bus
        .subscribe(
            &topic,
            Mode::Queue {
                group: "api".into(),
            },
        )
        .await
        .unwrap();
    let before = envelope(1);
    bus.publish(&topic, &before.encode()).await.unwrap();
    assert_eq!(next_envelope(&mut fan, "fan-out before").await, before);
    assert_eq!(next_envelope(&mut group, "queue before").await, before);

    // Crash: publishes fail, within the request timeout, and health says so.
    server.kill().await;
    let during = envelope(2);
    let started = Instant::now();
    let failed = bus.publish(&topic, &during.encode()).await;
    assert!(failed.is_err(), "a publish with the engine down must fail");
    assert!(
        started.elapsed() < cfg.request_timeout() + Duration::from_secs(2),
        "the failing publish took {:?}",
        started.elapsed()
    );
    assert!(!bus.healthy().await, "health reports the outage");

    server.restart().await;
    let after = envelope(3);
    publish_until_accepted(&bus, &topic, &after).await;
    assert!(bus.healthy().await);

    // `during` may have been sent from the client's buffer after the
    // reconnect; `before`'s ack may have been lost with the crash.
    let ignore: HashSet<_> = [before.id, during.id].into();
    assert_eq!(next_new(&mut fan, &ignore, "fan-out after").await, after);
    assert_eq!(next_new(&mut group, &ignore, "queue after").await, after);

    // Nothing acked by JetStream was lost: the stream still holds `before`
    // and `after`, and a new queue member of another group reads both.
    let mut audit = bus
        .subscribe(
            &topic,
            Mode::Queue {
                group: "audit".into(),
            },
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !seen.contains(&after.id) {
        seen.push(next_envelope(&mut audit, "audit replay").await.id);
    }
    assert_eq!(
        seen.first(),
        Some(&before.id),
        "replay starts at the oldest"
    );
    let info = bus
        .jetstream()
        .get_stream(config::stream_name(&topic))
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert!(
        info.state.messages >= 2,
        "stream state after restart: {:?}",
        info.state
    );
}

#[tokio::test]
async fn connect_fails_fast_when_the_server_has_no_jetstream() {
    // A plain NATS without -js: reachable, but not usable as this bus.
    let server = ChildServer::start_with(false).await;
    let cfg = child_config(server.url());
    let started = Instant::now();
    let err = match NatsBus::connect(&cfg).await {
        Ok(_) => panic!("a server without JetStream must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&cfg.url) && err.contains("JetStream"), "{err}");
    assert!(started.elapsed() < cfg.connect_timeout() + Duration::from_secs(1));
}

#[tokio::test]
async fn a_long_outage_is_reported_on_the_subscription_which_then_resumes() {
    let mut server = ChildServer::start().await;
    let cfg = child_config(server.url());
    let bus = NatsBus::connect(&cfg)
        .await
        .expect("connect to the child server");
    let topic = common::unique_topic("outage");
    let mut fan = bus
        .subscribe(
            &topic,
            Mode::FanOut {
                node: "node-b".into(),
            },
        )
        .await
        .unwrap();
    let mut group = bus
        .subscribe(
            &topic,
            Mode::Queue {
                group: "api".into(),
            },
        )
        .await
        .unwrap();

    // Down until both subscriptions report it (missed heartbeats).
    server.kill().await;
    for (name, sub) in [("fan-out", &mut fan), ("queue", &mut group)] {
        let report = within("the outage to be reported", sub.next()).await;
        match report.expect("the subscription stays open") {
            Err(e) => eprintln!("{name}: outage reported: {e}"),
            Ok(d) => panic!("{name}: unexpected delivery during the outage: {d:?}"),
        }
    }

    server.restart().await;
    let after = envelope(4);
    publish_until_accepted(&bus, &topic, &after).await;
    let ignore = HashSet::new();
    assert_eq!(next_new(&mut fan, &ignore, "fan-out after").await, after);
    assert_eq!(next_new(&mut group, &ignore, "queue after").await, after);
}
