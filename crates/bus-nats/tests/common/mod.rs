//! Test helpers shared by the integration tests: reaching the shared NATS
//! (failing loudly when it is down), unique topics, deleting the streams a
//! test made (even when it panics, plus a sweep of old leftovers), and waits
//! bounded by deadlines.

#![allow(dead_code)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use roomcast_bus::Subscription;
use roomcast_bus_nats::{Config, NatsBus};
use roomcast_core::Envelope;

/// The shared NATS every developer and CI has.
pub const SHARED_URL: &str = "nats://127.0.0.1:4222";

/// How to start the shared NATS when it is down.
pub const START_COMMAND: &str = "start-stop-daemon --start --oknodo --background \
     --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server \
     -l /var/log/nats-server.log";

/// Upper bound on any wait in these tests; only a broken backend reaches it.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Test streams older than this are leftovers of crashed runs and deleted.
const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Prefix of the topics of this crate's own tests (conformance topics start
/// with `conformance.`).
pub const TOPIC_PREFIX: &str = "nats-test";

/// A topic no other run or test uses (its UUIDv7 dates it for the sweep).
pub fn unique_topic(case: &str) -> String {
    format!("{TOPIC_PREFIX}.{case}.{}", uuid::Uuid::now_v7())
}

/// The shared server's config with a short `ack_wait` for redelivery cases.
pub fn shared_config() -> Config {
    Config {
        url: SHARED_URL.into(),
        ack_wait_ms: 1_000,
        ..Config::default()
    }
}

/// Connect to the shared NATS, or panic (never skip) naming NATS and how to
/// start it.
pub async fn shared_bus(cfg: &Config) -> Arc<NatsBus> {
    match NatsBus::connect(cfg).await {
        Ok(bus) => bus,
        Err(e) => panic!(
            "NATS JetStream is not reachable at {} ({e}); these tests need it. Start it with:\n  {START_COMMAND}",
            cfg.url
        ),
    }
}

/// Deletes, when dropped (even in a panic), every stream the registered
/// buses created; and at creation, test streams older than [`STALE_AFTER`].
pub struct Cleanup {
    url: String,
    buses: Mutex<Vec<Arc<NatsBus>>>,
}

impl Cleanup {
    /// Clean up on `url`; sweeps stale test streams now.
    pub fn new(url: &str) -> Self {
        let url = url.to_owned();
        on_own_runtime(&url, |js| async move {
            let mut names = js.stream_names();
            let mut stale = Vec::new();
            while let Some(Ok(name)) = names.next().await {
                if is_stale_test_stream(&name) {
                    stale.push(name);
                }
            }
            for name in stale {
                let _ = js.delete_stream(&name).await;
            }
        });
        Self {
            url,
            buses: Mutex::new(Vec::new()),
        }
    }

    /// Delete `bus`'s streams at the end.
    pub fn track(&self, bus: &Arc<NatsBus>) {
        self.buses.lock().unwrap().push(bus.clone());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut names: Vec<String> = self
            .buses
            .lock()
            .map(|b| b.iter().flat_map(|bus| bus.streams()).collect())
            .unwrap_or_default();
        names.sort();
        names.dedup();
        on_own_runtime(&self.url, |js| async move {
            for name in names {
                let _ = js.delete_stream(&name).await;
            }
        });
    }
}

/// Whether `name` is a stream of a test (this crate's or the conformance
/// suite's) whose topic's UUIDv7 is older than [`STALE_AFTER`].
fn is_stale_test_stream(name: &str) -> bool {
    let ours = ["ROOMCAST_CONFORMANCE_", "ROOMCAST_NATS-TEST_"];
    if !ours.iter().any(|p| name.starts_with(p)) || name.len() < 36 {
        return false;
    }
    let Ok(id) = uuid::Uuid::parse_str(&name[name.len() - 36..]) else {
        return false;
    };
    let Some(ts) = id.get_timestamp() else {
        return false;
    };
    let (secs, _) = ts.to_unix();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    now.saturating_sub(secs) > STALE_AFTER.as_secs()
}

/// Run `f` with a JetStream context of its own on a thread of its own, so it
/// works from `Drop` and inside a panicking test; errors are ignored.
fn on_own_runtime<F, Fut>(url: &str, f: F)
where
    F: FnOnce(async_nats::jetstream::Context) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let url = url.to_owned();
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let connect = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(2))
                .connect(url.as_str());
            if let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(3), connect).await {
                let _ = tokio::time::timeout(DEADLINE, f(async_nats::jetstream::new(client))).await;
            }
        });
    })
    .join();
}

/// `fut`, or a panic naming `what` once [`DEADLINE`] has passed.
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next envelope of `sub` (acked), skipping outage reports.
pub async fn next_envelope(sub: &mut Subscription, what: &str) -> Envelope {
    within(what, async {
        loop {
            match sub.next().await.expect("subscription ended") {
                Ok(d) => {
                    let env = d.envelope.clone();
                    d.ack().await.expect("ack");
                    return env;
                }
                Err(e) => eprintln!("{what}: outage reported: {e}"),
            }
        }
    })
    .await
}

/// Wait until `probe` returns true, probing every few milliseconds, failing
/// at [`DEADLINE`]. For conditions only the server's state can show.
pub async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !probe().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}
