//! The backend's settings: [`Config`], its defaults, and the names and values
//! derived from it (stream and consumer names, dead-letter subjects, timeouts,
//! the URL as it may appear in messages).
//!
//! Every field has a default, so a config file only names what it changes,
//! e.g. `[bus.nats] url = "nats://nats.internal:4222"`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Suffix of the dead-letter subject of a topic: `<topic>.dlq`.
pub const DLQ_SUFFIX: &str = ".dlq";

/// Prefix of every stream this backend creates.
pub const STREAM_PREFIX: &str = "ROOMCAST_";

/// Settings of the NATS JetStream bus backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// NATS server URL (`nats://[user:password@]host:port`).
    /// Default: `nats://127.0.0.1:4222`.
    pub url: String,
    /// Bound on establishing the first connection (TCP, handshake, and the
    /// JetStream account check), in milliseconds. [`crate::connect`] fails
    /// after this instead of retrying. Default: `2000`.
    pub connect_timeout_ms: u64,
    /// Bound on one JetStream request, in milliseconds: creating a stream or
    /// consumer, and each publish **including** waiting for its ack. A
    /// publish during an outage fails after at most this long, so the outbox
    /// keeps its rows and retries. Default: `5000`.
    pub request_timeout_ms: u64,
    /// A delivery not acked within this many milliseconds is delivered again
    /// (JetStream `ack_wait`). It must exceed the time a consumer needs to
    /// handle one delivery, or deliveries are handled twice. Default: `30000`.
    pub ack_wait_ms: u64,
    /// How many times a delivery is handed to the application before giving
    /// up on it (at least 1). In a queue group the next delivery goes to the
    /// dead-letter subject `<topic>.dlq` and is acked; a fan-out consumer just
    /// stops redelivering it. Default: `5`.
    pub max_deliver: u32,
    /// Age after which a stream drops a message, in seconds (JetStream
    /// `max_age`). A queue group that is down longer loses the older commands.
    /// Default: `3600`.
    pub max_age_secs: u64,
    /// Cap on the messages kept per stream (JetStream `max_msgs`, discard
    /// old): at the cap, each publish drops the oldest message, consumed or
    /// not. Default: `1000000`.
    pub max_msgs: i64,
    /// Window in which a re-published envelope (same id, sent as
    /// `Nats-Msg-Id`) is dropped by the stream, in seconds; never longer than
    /// `max_age_secs`. Default: `120`.
    pub duplicate_window_secs: u64,
    /// A fan-out consumer (one per node) that no client pulls from for this
    /// many seconds is deleted by the server, so nodes that went away leave
    /// nothing behind. Default: `300`.
    pub inactive_threshold_secs: u64,
    /// Messages asked for by one pull request of a subscription (at least 1):
    /// the most that wait in the client for one subscription. Default: `64`.
    pub pull_batch: usize,
    /// Deliveries a consumer may have unacked at once (JetStream
    /// `max_ack_pending`, at least 1); at the cap the server delivers nothing
    /// more to that consumer until some are acked. Default: `1000`.
    pub max_ack_pending: i64,
    /// Envelopes of one run (one room's, in order) published as one
    /// JetStream message, a *pack* (at least 1; see [`crate::pack`]): one
    /// ack for all of them. `1` publishes one message per envelope, each
    /// once the one before was acked, readable by every older version.
    /// Default: `64`.
    pub pack_max: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            connect_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
            ack_wait_ms: 30_000,
            max_deliver: 5,
            max_age_secs: 3_600,
            max_msgs: 1_000_000,
            duplicate_window_secs: 120,
            inactive_threshold_secs: 300,
            pull_batch: 64,
            max_ack_pending: 1_000,
            pack_max: 64,
        }
    }
}

impl Config {
    /// [`Config::connect_timeout_ms`] (at least 1 ms).
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.max(1))
    }

    /// [`Config::request_timeout_ms`] (at least 1 ms).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    /// [`Config::ack_wait_ms`] (at least 1 ms).
    pub fn ack_wait(&self) -> Duration {
        Duration::from_millis(self.ack_wait_ms.max(1))
    }

    /// [`Config::max_deliver`] (at least 1).
    pub fn max_deliver(&self) -> i64 {
        i64::from(self.max_deliver.max(1))
    }

    /// [`Config::max_age_secs`] (at least 1 s).
    pub fn max_age(&self) -> Duration {
        Duration::from_secs(self.max_age_secs.max(1))
    }

    /// [`Config::duplicate_window_secs`], at least 1 s, at most `max_age`.
    pub fn duplicate_window(&self) -> Duration {
        Duration::from_secs(self.duplicate_window_secs.max(1)).min(self.max_age())
    }

    /// [`Config::inactive_threshold_secs`] (at least 1 s).
    pub fn inactive_threshold(&self) -> Duration {
        Duration::from_secs(self.inactive_threshold_secs.max(1))
    }

    /// The URL with any password replaced by `***`, for messages and logs.
    pub fn display_url(&self) -> String {
        redact(&self.url)
    }
}

fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://***@{host}"),
        },
        None => url.to_owned(),
    }
}

/// Whether `topic` is a dead-letter subject (`<topic>.dlq`).
pub fn is_dead_letter(topic: &str) -> bool {
    topic.ends_with(DLQ_SUFFIX) && topic.len() > DLQ_SUFFIX.len()
}

/// The topic whose stream holds `topic`: itself, or the topic it is the
/// dead-letter subject of.
pub fn base_topic(topic: &str) -> &str {
    if is_dead_letter(topic) {
        &topic[..topic.len() - DLQ_SUFFIX.len()]
    } else {
        topic
    }
}

/// The dead-letter subject of `topic`.
pub fn dead_letter_subject(topic: &str) -> String {
    format!("{}{DLQ_SUFFIX}", base_topic(topic))
}

/// The stream holding `topic` and its dead-letter subject:
/// `chat.out` → `ROOMCAST_CHAT_OUT`, `chat.in.dlq` → `ROOMCAST_CHAT_IN`.
/// Characters other than ASCII letters, digits, `-` and `_` become `_`.
pub fn stream_name(topic: &str) -> String {
    let mut name = String::from(STREAM_PREFIX);
    name.extend(base_topic(topic).chars().map(|c| match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c.to_ascii_uppercase(),
        _ => '_',
    }));
    name
}

/// The durable consumer of a fan-out subscriber: `fanout_<node>`.
pub fn fan_out_consumer(node: &str) -> String {
    format!("fanout_{}", sanitize(node))
}

/// The durable consumer shared by a queue group: `queue_<group>`.
pub fn queue_consumer(group: &str) -> String {
    format!("queue_{}", sanitize(group))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '_',
        })
        .collect()
}

/// Checks that `topic` is a plain NATS subject: non-empty dot-separated
/// tokens without wildcards or whitespace.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    let bad_token = topic
        .split('.')
        .any(|t| t.is_empty() || t == "*" || t == ">" || t.chars().any(|c| c.is_whitespace()));
    if bad_token || topic.contains(['*', '>']) {
        return Err(format!(
            "invalid NATS topic {topic:?}: need dot-separated tokens without wildcards or spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_derived_from_the_topic() {
        assert_eq!(stream_name("chat.out"), "ROOMCAST_CHAT_OUT");
        assert_eq!(stream_name("chat.in.dlq"), "ROOMCAST_CHAT_IN");
        assert_eq!(stream_name("a.b-c.9"), "ROOMCAST_A_B-C_9");
        assert_eq!(dead_letter_subject("chat.in"), "chat.in.dlq");
        assert_eq!(dead_letter_subject("chat.in.dlq"), "chat.in.dlq");
        assert_eq!(base_topic("chat.in.dlq"), "chat.in");
        assert_eq!(base_topic(".dlq"), ".dlq");
        assert_eq!(fan_out_consumer("node.1 x"), "fanout_node_1_x");
        assert_eq!(queue_consumer("api"), "queue_api");
    }

    #[test]
    fn topics_with_wildcards_or_gaps_are_rejected() {
        assert!(validate_topic("chat.out").is_ok());
        for bad in [
            "", "chat.", ".chat", "a..b", "chat.*", "chat.>", "a b", "a*",
        ] {
            assert!(validate_topic(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_values_are_clamped() {
        let cfg = Config {
            max_age_secs: 30,
            max_deliver: 0,
            ..Config::default()
        };
        assert_eq!(cfg.duplicate_window(), Duration::from_secs(30));
        assert_eq!(cfg.max_deliver(), 1);
        assert_eq!(
            Config::default().duplicate_window(),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn passwords_never_appear_in_the_display_url() {
        let cfg = Config {
            url: "nats://me:secret@host:4222".into(),
            ..Config::default()
        };
        assert_eq!(cfg.display_url(), "nats://me:***@host:4222");
        assert_eq!(redact("nats://tok@host"), "nats://***@host");
        assert_eq!(redact("nats://host:4222"), "nats://host:4222");
    }

    #[test]
    fn an_empty_config_file_gives_the_defaults() {
        let cfg: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, Config::default());
        assert!(serde_json::from_str::<Config>(r#"{"nope":1}"#).is_err());
    }
}
