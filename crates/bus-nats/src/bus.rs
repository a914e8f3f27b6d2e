//! [`NatsBus`]: the [`Bus`] implementation. Connecting (fail fast, then let
//! async-nats reconnect by itself), publishing with `Nats-Msg-Id` and a bounded
//! wait for the ack, opening subscriptions, and health.
//!
//! Limits of the connection and what happens at them:
//! - Outgoing commands wait in a channel of [`CLIENT_CAPACITY`]; when it is
//!   full (during an outage it is not drained) a publish waits, and fails when
//!   `request_timeout_ms` runs out.
//! - Each NATS subscription (one per bus subscription, its pull inbox) buffers
//!   at most [`SUBSCRIPTION_CAPACITY`] messages in the client. Pulls ask for
//!   far fewer (`pull_batch`), so it is not reached; if it were, async-nats
//!   drops the excess ("slow consumer") and JetStream delivers it again after
//!   `ack_wait`, since it was never acked.

use std::sync::Arc;

use async_nats::connection::State;
use async_nats::jetstream::{self, message::PublishMessage as Publish};
use async_nats::{ConnectOptions, Event, HeaderMap};
use async_trait::async_trait;
use roomcast_bus::{Bus, BusError, Mode, Subscription};
use roomcast_core::Encoded;

use crate::config::{self, Config};
use crate::topology::Shared;
use crate::{pack, subscription};

/// Outgoing commands buffered in the client before publishes wait.
pub const CLIENT_CAPACITY: usize = 2_048;
/// Messages buffered per NATS subscription inside the client.
pub const SUBSCRIPTION_CAPACITY: usize = 4_096;

/// The NATS JetStream [`Bus`].
pub struct NatsBus {
    shared: Arc<Shared>,
}

impl NatsBus {
    /// Connect to `cfg.url` and check that JetStream answers, within
    /// `connect_timeout_ms`. Fails with [`BusError::Unavailable`] naming the
    /// URL (password hidden); there is no retry at start. Once connected,
    /// the client reconnects by itself for as long as the process lives.
    pub async fn connect(cfg: &Config) -> Result<Arc<Self>, BusError> {
        let url = cfg.display_url();
        let fail = |reason: String| {
            BusError::Unavailable(format!("cannot connect to NATS at {url}: {reason}"))
        };
        let limit = cfg.connect_timeout();
        let event_url = url.clone();
        let options = ConnectOptions::new()
            .name("roomcast")
            .connection_timeout(limit)
            .request_timeout(Some(cfg.request_timeout()))
            .client_capacity(CLIENT_CAPACITY)
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .event_callback(move |event| {
                let url = event_url.clone();
                async move { log_event(&url, event) }
            });
        let client = tokio::time::timeout(limit, options.connect(cfg.url.as_str()))
            .await
            .map_err(|_| fail(format!("no answer within {} ms", limit.as_millis())))?
            .map_err(|e| fail(e.to_string()))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(cfg.request_timeout())
            .build(client.clone());
        // The raw account-info request: its typed form does not parse the
        // answers of every server version, and only "does it answer" matters.
        let info: serde_json::Value = tokio::time::timeout(limit, js.request("INFO", &()))
            .await
            .map_err(|_| {
                fail(format!(
                    "JetStream did not answer within {} ms",
                    limit.as_millis()
                ))
            })?
            .map_err(|e| {
                fail(format!(
                    "JetStream is not available (is the server started with -js?): {e}"
                ))
            })?;
        if let Some(error) = info.get("error") {
            return Err(fail(format!("JetStream refused the account: {error}")));
        }
        tracing::info!(url = %url, "connected to NATS JetStream");
        Ok(Arc::new(Self {
            shared: Arc::new(Shared::new(client, js, cfg.clone())),
        }))
    }

    /// Names of the streams this bus created or found so far (tests delete
    /// them when done).
    pub fn streams(&self) -> Vec<String> {
        self.shared.known_streams()
    }

    /// The JetStream context of this bus, for administration and tests.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.shared.js
    }
}

fn log_event(url: &str, event: Event) {
    match event {
        Event::Connected => tracing::info!(url, "NATS connection (re)established"),
        Event::Disconnected => tracing::warn!(url, "NATS connection lost; reconnecting"),
        other => tracing::warn!(url, event = %other, "NATS client event"),
    }
}

#[async_trait]
impl Bus for NatsBus {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn publish(&self, topic: &str, envelope: &Encoded) -> Result<(), BusError> {
        self.stream_ready(topic).await?;
        let message = Publish::build()
            .payload(envelope.bytes.clone())
            .message_id(envelope.id.to_string());
        let ack = self.shared.publish_acked(topic, message).await?;
        if ack.duplicate {
            tracing::debug!(topic, id = %envelope.id, "re-published envelope dropped by JetStream");
        }
        Ok(())
    }

    /// The run in packs ([`crate::pack`]), each once the one before was
    /// acked: each pack is stored whole or not at all, so what was accepted
    /// is always a prefix of the run.
    async fn publish_run(&self, topic: &str, run: Vec<Encoded>) -> (usize, Option<BusError>) {
        if let Err(e) = self.stream_ready(topic).await {
            return (0, Some(e));
        }
        let mut accepted = 0;
        for part in pack::parts(&run, self.shared.cfg.pack_max) {
            let message = Publish::build().payload(part.payload);
            let message = match part.pack_id {
                Some(id) => {
                    let mut headers = HeaderMap::new();
                    headers.insert(pack::PACK_HEADER, part.count.to_string().as_str());
                    message.headers(headers).message_id(id)
                }
                None => message.message_id(run[accepted].id.to_string()),
            };
            if let Err(e) = self.shared.publish_acked(topic, message).await {
                return (accepted, Some(e));
            }
            accepted += part.count;
        }
        (accepted, None)
    }

    async fn subscribe(&self, topic: &str, mode: Mode) -> Result<Subscription, BusError> {
        config::validate_topic(topic).map_err(BusError::Unavailable)?;
        subscription::open(self.shared.clone(), topic, mode).await
    }

    async fn healthy(&self) -> bool {
        self.shared.client.connection_state() == State::Connected
    }
}

impl NatsBus {
    /// Check `topic` and make sure its stream exists.
    async fn stream_ready(&self, topic: &str) -> Result<(), BusError> {
        config::validate_topic(topic).map_err(BusError::Unavailable)?;
        let limit = self.shared.cfg.request_timeout();
        // Creating the stream is bounded by the JetStream request timeout;
        // the outer bound keeps a publish within it even when it queues.
        tokio::time::timeout(limit, self.shared.ensure_stream(topic))
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "NATS stream for {topic} not ready within {} ms",
                    limit.as_millis()
                ))
            })??;
        Ok(())
    }
}
