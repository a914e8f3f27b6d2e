//! The Google Cloud Pub/Sub bus backend (`bus.kind = "gcp"`), the seed's own glue.
//!
//! # Layout
//! - `lib.rs`: [`Config`], [`connect`] and [`GcpBus`] (one file: the whole
//!   mapping fits in it).
//!
//! # Mapping
//! - A topic is a Pub/Sub topic of the same name (`chat.out`, `chat.in`),
//!   created if missing (several processes may race; "already exists" is fine).
//! - publish: the envelope's JSON as data, attributes `id` and `type`, and the
//!   **ordering key** = the room id (else the user id), so one room's events
//!   arrive in order on subscriptions with message ordering (which roomcast
//!   creates). Each publish waits for the server's message id, bounded by
//!   `publish_timeout_ms`; an error leaves the row in the outbox.
//! - `Mode::FanOut{node}`: subscription `<prefix><topic>-<node>` (or
//!   `fan_out_subscription`), created with message ordering and an expiration
//!   policy of `fan_out_expiration_days`, so a node that is gone for good leaves
//!   nothing behind. It receives what is published after it exists.
//! - `Mode::Queue{group}`: one shared subscription `<prefix><topic>-<group>`;
//!   each message goes to one subscriber; an unacked message is redelivered
//!   after `ack_deadline_secs`.
//! - A message whose data is not an envelope is acked and skipped (logged).
//!
//! # Verified here, and not
//! Tested on Google's emulator (`PUBSUB_EMULATOR_HOST`): publish/consume,
//! fan-out, queue groups, ordering per room, reuse of a named subscription,
//! the split-deployment topology. **Not** shown yet: redelivery to another
//! queue member after one goes away without acking (on the emulator it did not
//! happen within 30 s; open in issue #4). Real GCP (credentials from the
//! environment, IAM, expiration policies being enforced) is not exercised by CI.
//!
//! Limit: each subscription buffers at most [`CHANNEL_CAPACITY`] messages in
//! the client; when full, the client stops pulling until the consumer catches
//! up (messages wait in Pub/Sub).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use gcloud_pubsub::client::{Client, ClientConfig};
use gcloud_pubsub::publisher::{Publisher, PublisherConfig};
use gcloud_pubsub::subscriber::ReceivedMessage;
use gcloud_pubsub::subscription::{MessageStream, SubscribeConfig, SubscriptionConfig};
use google_cloud_gax::conn::Environment;
use google_cloud_gax::grpc::Code;
use google_cloud_googleapis::pubsub::v1::{ExpirationPolicy, PubsubMessage};
use roomcast_bus::{Acker, Bus, BusError, Delivery, Mode, Subscription};
use roomcast_core::Envelope;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// Messages buffered per subscription in the client.
pub const CHANNEL_CAPACITY: usize = 1024;

/// `[bus.gcp]` settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Google Cloud project id. Default: `roomcast-local`.
    pub project: String,
    /// Emulator address (`host:port`); empty: `PUBSUB_EMULATOR_HOST`, and if
    /// that is unset too, real Pub/Sub with Application Default Credentials.
    /// Default: empty.
    pub emulator_host: String,
    /// Prefix of the subscriptions roomcast creates. Default: `roomcast-`.
    pub subscription_prefix: String,
    /// This node's `chat.out` subscription name, to reuse one created up
    /// front; empty: `<prefix><topic>-<node id>`. Default: empty.
    pub fan_out_subscription: String,
    /// Per-node subscriptions unused this many days are deleted by Pub/Sub
    /// (1 is the minimum it accepts). Default: `1`.
    pub fan_out_expiration_days: i64,
    /// Unacked messages are redelivered after this many seconds (10–600).
    /// Default: `10`.
    pub ack_deadline_secs: i32,
    /// Bound on one publish and on start-up calls, ms. Default: `10000`.
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

/// The Pub/Sub [`Bus`].
pub struct GcpBus {
    client: Client,
    cfg: Config,
    publishers: Mutex<HashMap<String, Publisher>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("Pub/Sub {what}: {e}"))
}

/// Connect to Pub/Sub (or the emulator). Fails within `timeout_ms` if it cannot be reached.
pub async fn connect(cfg: &Config) -> Result<Arc<dyn Bus>, BusError> {
    let emulator = if cfg.emulator_host.is_empty() {
        std::env::var("PUBSUB_EMULATOR_HOST").ok()
    } else {
        Some(cfg.emulator_host.clone())
    };
    let endpoint = emulator
        .clone()
        .unwrap_or_else(|| "pubsub.googleapis.com".into());
    let mut config = ClientConfig {
        project_id: Some(cfg.project.clone()),
        ..ClientConfig::default()
    };
    let timeout = Duration::from_millis(cfg.timeout_ms);
    match emulator {
        Some(host) => config.environment = Environment::Emulator(host),
        None => {
            config = tokio::time::timeout(timeout, config.with_auth())
                .await
                .map_err(|_| unavailable(&endpoint, "credentials timed out"))?
                .map_err(|e| unavailable(&endpoint, e))?;
        }
    }
    let client = tokio::time::timeout(timeout, Client::new(config))
        .await
        .map_err(|_| unavailable(&endpoint, "connect timed out"))?
        .map_err(|e| unavailable(&endpoint, e))?;
    // One real call, so an unreachable endpoint fails here and not later.
    tokio::time::timeout(timeout, client.get_topics(None))
        .await
        .map_err(|_| unavailable(&endpoint, "no answer"))?
        .map_err(|e| unavailable(&endpoint, e))?;
    Ok(Arc::new(GcpBus {
        client,
        cfg: cfg.clone(),
        publishers: Mutex::new(HashMap::new()),
    }))
}

/// Pub/Sub names allow letters, digits and `-_.~+%`, 3–255 characters,
/// starting with a letter.
fn sanitize(name: &str) -> String {
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
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert_str(0, "s-");
    }
    while s.len() < 3 {
        s.push('_');
    }
    s.truncate(255);
    s
}

impl GcpBus {
    async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        let t = self.client.topic(topic);
        if t.exists(None).await.map_err(|e| unavailable(topic, e))? {
            return Ok(());
        }
        match t.create(None, None).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Code::AlreadyExists => Ok(()),
            Err(e) => Err(unavailable(topic, e)),
        }
    }

    async fn publisher(&self, topic: &str) -> Result<Publisher, BusError> {
        let mut map = self.publishers.lock().await;
        if let Some(p) = map.get(topic) {
            return Ok(p.clone());
        }
        self.ensure_topic(topic).await?;
        let p = self
            .client
            .topic(topic)
            .new_publisher(Some(PublisherConfig {
                flush_interval: Duration::from_millis(1),
                ..PublisherConfig::default()
            }));
        map.insert(topic.to_owned(), p.clone());
        Ok(p)
    }
}

/// Acks one message; a message dropped without ack is nacked at once, so
/// Pub/Sub redelivers it now instead of after the ack deadline.
struct PubsubAcker(Option<ReceivedMessage>);

#[async_trait]
impl Acker for PubsubAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        match self.0.take() {
            Some(m) => m.ack().await.map_err(|e| unavailable("ack", e)),
            None => Ok(()),
        }
    }
}

impl Drop for PubsubAcker {
    fn drop(&mut self) {
        if let (Some(m), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = m.nack().await;
            });
        }
    }
}

/// The client's message stream, stopped (its pullers end and buffered
/// messages are nacked) when the subscription is dropped: a consumer that goes
/// away hands its messages back at once.
struct Pulling(Option<MessageStream>);

impl futures::Stream for Pulling {
    type Item = ReceivedMessage;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<ReceivedMessage>> {
        match self.0.as_mut() {
            Some(s) => s.poll_next_unpin(cx),
            None => std::task::Poll::Ready(None),
        }
    }
}

impl Drop for Pulling {
    fn drop(&mut self) {
        if let (Some(s), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                s.dispose().await;
            });
        }
    }
}

#[async_trait]
impl Bus for GcpBus {
    fn name(&self) -> &'static str {
        "gcp"
    }

    async fn publish(&self, topic: &str, envelope: &Envelope) -> Result<(), BusError> {
        let publisher = self.publisher(topic).await?;
        let key = envelope
            .room_id
            .map(|r| r.to_string())
            .or_else(|| envelope.user_id.map(|u| u.to_string()))
            .unwrap_or_default();
        let message = PubsubMessage {
            data: envelope.to_bytes(),
            attributes: HashMap::from([
                ("id".to_owned(), envelope.id.to_string()),
                ("type".to_owned(), envelope.kind.clone()),
            ]),
            ordering_key: key,
            ..PubsubMessage::default()
        };
        let awaiter = publisher.publish(message).await;
        tokio::time::timeout(Duration::from_millis(self.cfg.timeout_ms), awaiter.get())
            .await
            .map_err(|_| unavailable(topic, "publish timed out"))?
            .map(|_| ())
            .map_err(|e| unavailable(topic, e))
    }

    async fn subscribe(&self, topic: &str, mode: Mode) -> Result<Subscription, BusError> {
        self.ensure_topic(topic).await?;
        let prefix = &self.cfg.subscription_prefix;
        let (name, expiration) = match &mode {
            Mode::FanOut { node } if !self.cfg.fan_out_subscription.is_empty() => {
                let _ = node;
                (self.cfg.fan_out_subscription.clone(), true)
            }
            Mode::FanOut { node } => (sanitize(&format!("{prefix}{topic}-{node}")), true),
            Mode::Queue { group } => (sanitize(&format!("{prefix}{topic}-{group}")), false),
        };
        let sub = self.client.subscription(&name);
        if !sub.exists(None).await.map_err(|e| unavailable(&name, e))? {
            let cfg = SubscriptionConfig {
                enable_message_ordering: true,
                ack_deadline_seconds: self.cfg.ack_deadline_secs,
                expiration_policy: expiration.then(|| ExpirationPolicy {
                    ttl: Some(prost_types::Duration {
                        seconds: self.cfg.fan_out_expiration_days * 86_400,
                        nanos: 0,
                    }),
                }),
                ..SubscriptionConfig::default()
            };
            match self
                .client
                .create_subscription(&name, topic, cfg, None)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == Code::AlreadyExists => {}
                Err(e) => return Err(unavailable(&name, e)),
            }
        }
        let stream = sub
            .subscribe(Some(
                SubscribeConfig::default().with_channel_capacity(CHANNEL_CAPACITY),
            ))
            .await
            .map_err(|e| unavailable(&name, e))?;
        let deliveries = Pulling(Some(stream)).filter_map(move |m| async move {
            match Envelope::from_bytes(&m.message.data) {
                Ok(env) => Some(Ok(Delivery::new(env, Some(Box::new(PubsubAcker(Some(m))) as Box<dyn Acker>)))),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a Pub/Sub message that is not an envelope");
                    let _ = m.ack().await;
                    None
                }
            }
        });
        Ok(Subscription::new(deliveries.boxed()))
    }

    async fn healthy(&self) -> bool {
        let t = Duration::from_millis(self.cfg.timeout_ms.min(2_000));
        matches!(
            tokio::time::timeout(t, self.client.get_topics(None)).await,
            Ok(Ok(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn names_follow_pubsub_rules() {
        assert_eq!(sanitize("roomcast-chat.out-rt/1"), "roomcast-chat.out-rt-1");
        assert_eq!(sanitize("1x"), "s-1x");
        assert!(sanitize("a").len() >= 3);
    }
}
