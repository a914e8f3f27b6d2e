//! Test helpers shared by the integration tests: reaching the shared Redis
//! (failing loudly when it is down), unique key prefixes, cleanup of the keys
//! a test made, and small waits bounded by deadlines.

#![allow(dead_code)]

#[allow(unused_imports)]
pub use roomcast_bus::testkit::{DEADLINE, eventually, next_envelope, within};
use std::time::Duration;

use roomcast_bus_redis::Config;

/// The shared Redis every developer and CI has.
pub const SHARED_URL: &str = "redis://127.0.0.1:6379";

/// How to start the shared Redis when it is down.
pub const START_COMMAND: &str = "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
     --save \"\" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log";

/// Panic (never skip) unless the shared Redis answers `PING`.
pub fn require_shared_redis() {
    let answer = redis::Client::open(SHARED_URL).and_then(|c| {
        let mut conn = c.get_connection_with_timeout(Duration::from_secs(2))?;
        redis::cmd("PING").query::<String>(&mut conn)
    });
    if let Err(e) = answer {
        panic!(
            "Redis is not reachable at {SHARED_URL} ({e}); these tests need it. Start it with:\n  {START_COMMAND}"
        );
    }
}

/// A key prefix no other run or test uses.
pub fn unique_prefix(test: &str) -> String {
    format!("roomcast-test:{test}:{}:", uuid::Uuid::now_v7())
}

/// A config for the shared Redis with its own key prefix, a short claim time
/// for the redelivery cases, and the defaults otherwise.
pub fn shared_config(test: &str) -> Config {
    Config {
        url: SHARED_URL.into(),
        key_prefix: unique_prefix(test),
        claim_idle_ms: 1_000,
        ..Config::default()
    }
}

/// Deletes every key under a prefix when dropped, even when the test panics.
pub struct Cleanup {
    url: String,
    prefix: String,
}

impl Cleanup {
    /// Clean up `cfg.key_prefix*` on `cfg.url` at the end of the test.
    pub fn new(cfg: &Config) -> Self {
        Self {
            url: cfg.url.clone(),
            prefix: cfg.key_prefix.clone(),
        }
    }

    /// Delete the keys now; the number deleted.
    pub fn run(&self) -> usize {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return 0;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return 0;
        };
        let mut deleted = 0;
        let mut cursor = 0u64;
        loop {
            let Ok((next, keys)) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query::<(u64, Vec<String>)>(&mut conn)
            else {
                return deleted;
            };
            if !keys.is_empty() {
                deleted += redis::cmd("DEL")
                    .arg(&keys)
                    .query::<usize>(&mut conn)
                    .unwrap_or(0);
            }
            if next == 0 {
                return deleted;
            }
            cursor = next;
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

/// A plain async connection to `url` for inspecting streams directly.
pub async fn raw_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection to redis")
}
