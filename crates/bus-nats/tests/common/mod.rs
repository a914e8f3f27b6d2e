//! Test helpers shared by the integration tests: reaching the shared NATS
//! (failing loudly when it is down), unique topics, deleting the streams a
//! test made (even when it panics, plus a sweep of old leftovers), and waits
//! bounded by deadlines.

#![allow(dead_code)]

#[allow(unused_imports)]
pub use roomcast_bus::testkit::{DEADLINE, eventually, next_envelope, within};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use roomcast_bus_nats::{Config, NatsBus};

/// The shared NATS every developer and CI has.
pub const SHARED_URL: &str = "nats://127.0.0.1:4222";

/// How to start the shared NATS when it is down.
pub const START_COMMAND: &str = "start-stop-daemon --start --oknodo --background \
     --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server \
     -l /var/log/nats-server.log";

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
