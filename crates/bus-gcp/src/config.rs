//! [`Config`] (`[bus.gcp]`): the settings and their documented defaults, and
//! the rules that turn them into an endpoint, bounded durations and Pub/Sub
//! subscription names.
//!
//! Optional strings follow the rest of roomcast's TOML configuration: an empty
//! string means "not set" (TOML has no null), so `roomcast config` can print
//! every key with its default.

use std::time::Duration;

use roomcast_bus::Mode;
use serde::{Deserialize, Serialize};

/// The emulator's environment variable, honoured when `emulator_host` is empty.
pub const EMULATOR_ENV: &str = "PUBSUB_EMULATOR_HOST";

/// The ack deadlines Pub/Sub accepts, seconds.
const ACK_DEADLINE_RANGE: (i32, i32) = (10, 600);

/// Longest subscription name Pub/Sub accepts.
const MAX_NAME: usize = 255;

/// `[bus.gcp]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Google Cloud project id. Empty: the project of the Application Default
    /// Credentials (real Pub/Sub only). Default: `roomcast-local`.
    pub project: String,
    /// Emulator address (`host:port`). Empty: `PUBSUB_EMULATOR_HOST`, and if
    /// that is unset too, real Pub/Sub with Application Default Credentials.
    /// Default: empty.
    pub emulator_host: String,
    /// Prefix of the subscriptions roomcast names. Default: `roomcast-`.
    pub subscription_prefix: String,
    /// Name of this node's `chat.out` (fan-out) subscription, to reuse one
    /// created up front or kept across restarts. Empty:
    /// `<prefix><topic>-<node id>`. Default: empty.
    pub fan_out_subscription: String,
    /// Fan-out subscriptions with no subscriber for this many days are deleted
    /// by Pub/Sub (values below 1 are raised to 1, the minimum it accepts).
    /// Default: `1`.
    pub fan_out_expiration_days: i64,
    /// A delivered message not acked within this many seconds is redelivered
    /// (clamped to 10–600, the range Pub/Sub accepts). Default: `10`.
    pub ack_deadline_secs: i32,
    /// Bound on one publish (until Pub/Sub returns the message id), one ack,
    /// and each start-up call (connect, create topic or subscription), ms.
    /// Default: `10000`.
    pub timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            project: "roomcast-local".into(),
            emulator_host: String::new(),
            subscription_prefix: "roomcast-".into(),
            fan_out_subscription: String::new(),
            fan_out_expiration_days: 1,
            ack_deadline_secs: 10,
            timeout_ms: 10_000,
        }
    }
}

impl Config {
    /// The emulator to talk to: `emulator_host`, else `PUBSUB_EMULATOR_HOST`;
    /// `None` means real Pub/Sub.
    pub fn emulator(&self) -> Option<String> {
        if !self.emulator_host.is_empty() {
            return Some(self.emulator_host.clone());
        }
        std::env::var(EMULATOR_ENV).ok().filter(|h| !h.is_empty())
    }

    /// How errors name the endpoint.
    pub(crate) fn endpoint_label(&self) -> String {
        match self.emulator() {
            Some(host) => format!("Pub/Sub emulator at {host}"),
            None => "Pub/Sub at pubsub.googleapis.com".into(),
        }
    }

    /// [`Config::timeout_ms`] as a duration (at least 1 ms).
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    /// [`Config::ack_deadline_secs`] within the range Pub/Sub accepts.
    pub(crate) fn ack_deadline(&self) -> i32 {
        self.ack_deadline_secs
            .clamp(ACK_DEADLINE_RANGE.0, ACK_DEADLINE_RANGE.1)
    }

    /// The fan-out expiration policy's time to live, seconds (at least a day).
    pub(crate) fn fan_out_ttl_secs(&self) -> i64 {
        self.fan_out_expiration_days.clamp(1, 365) * 86_400
    }

    /// The subscription a [`Mode`] on `topic` uses:
    /// - `FanOut{node}`: [`Config::fan_out_subscription`] verbatim if set (it
    ///   must match the one created up front), else `<prefix><topic>-<node>`;
    /// - `Queue{group}`: `<prefix><topic>-<group>`, shared by the group.
    ///
    /// Generated names are made valid with [`sanitize`].
    pub fn subscription_name(&self, topic: &str, mode: &Mode) -> String {
        let prefix = &self.subscription_prefix;
        match mode {
            Mode::FanOut { .. } if !self.fan_out_subscription.is_empty() => {
                self.fan_out_subscription.clone()
            }
            Mode::FanOut { node } => sanitize(&format!("{prefix}{topic}-{node}")),
            Mode::Queue { group } => sanitize(&format!("{prefix}{topic}-{group}")),
        }
    }
}

/// Make `name` a valid Pub/Sub resource id: only letters, digits and
/// `-_.~+%` (anything else becomes `-`), starting with a letter and not with
/// `goog` (else `s-` is put in front), 3–255 characters (short names are
/// padded with `_`; long ones are cut and end with a hash of the whole name,
/// so two long names that differ only at the end stay distinct).
pub fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.~+%".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let starts_ok = s.starts_with(|c: char| c.is_ascii_alphabetic());
    if !starts_ok || s.to_ascii_lowercase().starts_with("goog") {
        s.insert_str(0, "s-");
    }
    while s.len() < 3 {
        s.push('_');
    }
    if s.len() > MAX_NAME {
        let hash = format!("-{:016x}", fnv1a(name.as_bytes()));
        s.truncate(MAX_NAME - hash.len());
        s.push_str(&hash);
    }
    s
}

/// 64-bit FNV-1a: a stable hash (unlike `std`'s, it never changes between
/// Rust releases, so a node keeps the same subscription name after upgrades).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fan_out(node: &str) -> Mode {
        Mode::FanOut { node: node.into() }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.project, "roomcast-local");
        assert_eq!(c.subscription_prefix, "roomcast-");
        assert_eq!(c.fan_out_expiration_days, 1);
        assert_eq!(c.ack_deadline_secs, 10);
        assert_eq!(c.timeout_ms, 10_000);
        assert!(c.emulator_host.is_empty() && c.fan_out_subscription.is_empty());
        let parsed: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, c, "missing keys take the defaults");
    }

    #[test]
    fn out_of_range_settings_are_brought_into_range() {
        let c = Config {
            ack_deadline_secs: 1,
            fan_out_expiration_days: 0,
            timeout_ms: 0,
            ..Config::default()
        };
        assert_eq!(c.ack_deadline(), 10);
        assert_eq!(c.fan_out_ttl_secs(), 86_400);
        assert_eq!(c.timeout(), Duration::from_millis(1));
        let c = Config {
            ack_deadline_secs: 5_000,
            ..Config::default()
        };
        assert_eq!(c.ack_deadline(), 600);
    }

    #[test]
    fn subscription_names_follow_the_scheme() {
        let c = Config::default();
        assert_eq!(
            c.subscription_name("chat.out", &fan_out("rt/1")),
            "roomcast-chat.out-rt-1"
        );
        let queue = Mode::Queue {
            group: "api".into(),
        };
        assert_eq!(
            c.subscription_name("chat.in", &queue),
            "roomcast-chat.in-api"
        );
        let named = Config {
            fan_out_subscription: "my-node-sub".into(),
            ..Config::default()
        };
        assert_eq!(
            named.subscription_name("chat.out", &fan_out("x")),
            "my-node-sub"
        );
        assert_eq!(
            named.subscription_name("chat.in", &queue),
            "roomcast-chat.in-api",
            "the configured name is for fan-out only"
        );
    }

    #[test]
    fn names_follow_pubsub_rules() {
        assert_eq!(sanitize("1x"), "s-1x");
        assert_eq!(sanitize("google-x"), "s-google-x");
        assert_eq!(sanitize("a"), "a__");
        assert_eq!(sanitize("é b"), "s---b");
        let long_a = sanitize(&format!("{}a", "n".repeat(300)));
        let long_b = sanitize(&format!("{}b", "n".repeat(300)));
        assert_eq!(long_a.len(), 255);
        assert_ne!(long_a, long_b, "cut names keep a hash of the whole name");
        assert_eq!(long_a, sanitize(&format!("{}a", "n".repeat(300))), "stable");
    }
}
