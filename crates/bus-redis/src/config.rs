//! The backend's settings: [`Config`], its defaults, and the values derived
//! from it (stream keys, timeouts, the URL as it may appear in messages).
//!
//! Every field has a default, so a config file only names what it changes,
//! e.g. `[bus.redis] url = "redis://redis.internal:6379"`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the Redis Streams bus backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Redis URL (`redis://[user:password@]host:port[/db]`).
    /// Default: `redis://127.0.0.1:6379`.
    pub url: String,
    /// Prepended to every topic to form its stream key (`<prefix><topic>`).
    /// Default: `roomcast:`.
    pub key_prefix: String,
    /// Approximate cap on the number of entries kept per stream
    /// (`XADD … MAXLEN ~ max_len`). Redis trims whole macro-nodes, so a stream
    /// can hold somewhat more than this. A fan-out subscriber that falls
    /// further behind than this misses the trimmed entries. Default: `100000`.
    pub max_len: usize,
    /// How long one `XREAD`/`XREADGROUP` call blocks waiting for new entries,
    /// in milliseconds (at least 1). It bounds how long a dropped subscription
    /// lingers on the server and how late an idle reader notices a dead
    /// connection. Default: `5000`.
    pub block_ms: u64,
    /// In a queue group, an entry delivered to a consumer and not acked for
    /// longer than this (milliseconds) is taken over by another consumer of
    /// the group (`XAUTOCLAIM`) and delivered again. It must exceed the time a
    /// consumer needs to handle one delivery, or entries are handled twice.
    /// Default: `30000`.
    pub claim_idle_ms: u64,
    /// Bound on establishing one TCP connection to Redis, in milliseconds;
    /// [`crate::connect`] fails after this when Redis does not answer.
    /// Default: `2000`.
    pub connect_timeout_ms: u64,
    /// Bound on one non-blocking command (`XADD`, `XACK`, `XAUTOCLAIM`, …),
    /// in milliseconds, including waiting for a reconnect in progress. A
    /// publish during an outage fails after at most this long, so the outbox
    /// keeps its rows and retries. Default: `3000`.
    pub command_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "roomcast:".into(),
            max_len: 100_000,
            block_ms: 5_000,
            claim_idle_ms: 30_000,
            connect_timeout_ms: 2_000,
            command_timeout_ms: 3_000,
        }
    }
}

impl Config {
    /// The stream key of a topic: `<key_prefix><topic>`.
    pub fn stream_key(&self, topic: &str) -> String {
        format!("{}{topic}", self.key_prefix)
    }

    /// [`Config::block_ms`], at least 1 ms (`BLOCK 0` would block forever).
    pub(crate) fn block(&self) -> Duration {
        Duration::from_millis(self.block_ms.max(1))
    }

    /// [`Config::claim_idle_ms`], at least 1 ms.
    pub(crate) fn claim_idle(&self) -> Duration {
        Duration::from_millis(self.claim_idle_ms.max(1))
    }

    /// [`Config::connect_timeout_ms`], at least 1 ms.
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    /// [`Config::command_timeout_ms`], at least 1 ms.
    pub(crate) fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms.max(1))
    }

    /// Response timeout of a subscription's own connection: a blocking read
    /// legitimately takes [`Config::block_ms`], plus the usual command bound.
    pub(crate) fn blocking_response_timeout(&self) -> Duration {
        self.block() + self.command_timeout()
    }

    /// The URL with any password replaced by `***`, for errors and logs.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// Hide the password of `scheme://user:password@host…`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    format!("{scheme}://{user}:***@{}", &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.url, "redis://127.0.0.1:6379");
        assert_eq!(c.key_prefix, "roomcast:");
        assert_eq!(c.max_len, 100_000);
        assert_eq!(c.block_ms, 5_000);
        assert_eq!(c.claim_idle_ms, 30_000);
        assert_eq!(c.stream_key("chat.out"), "roomcast:chat.out");
    }

    #[test]
    fn a_partial_config_keeps_the_other_defaults() {
        let c: Config = serde_json::from_str(r#"{"max_len": 10, "key_prefix": "t:"}"#).unwrap();
        assert_eq!(c.max_len, 10);
        assert_eq!(c.stream_key("x"), "t:x");
        assert_eq!(c.block_ms, Config::default().block_ms);
        assert!(serde_json::from_str::<Config>(r#"{"maxlen": 1}"#).is_err());
    }

    #[test]
    fn zero_durations_are_raised_to_one_millisecond() {
        let c = Config {
            block_ms: 0,
            claim_idle_ms: 0,
            ..Config::default()
        };
        assert_eq!(c.block(), Duration::from_millis(1));
        assert_eq!(c.claim_idle(), Duration::from_millis(1));
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact("rediss://app:s3cret@host:6379"),
            "rediss://app:***@host:6379"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
