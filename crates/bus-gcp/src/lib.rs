//! The Google Cloud Pub/Sub bus backend (`bus.kind = "gcp"`): [`connect`]
//! returns a [`roomcast_bus::Bus`] on Pub/Sub or its emulator.
//!
//! Client: `gcloud-pubsub` (yoshidan's crate, formerly `google-cloud-pubsub`),
//! which speaks gRPC to Pub/Sub, honours `PUBSUB_EMULATOR_HOST`, and provides
//! streaming pull with flow control.
//!
//! # Layout
//! - `lib.rs`: this design, [`connect`] and [`GcpBus`].
//! - [`config`]: [`Config`] (`[bus.gcp]`), defaults, subscription names.
//! - [`resources`]: creating topics and subscriptions; the reachability probe.
//! - [`publish`]: envelope → Pub/Sub message; the bounded publish.
//! - [`deliver`]: the delivery stream (a streaming pull, for fan-out),
//!   ack/nack and its limits.
//! - [`pull`]: unary pulls in a loop, for work queues (why: see there).
//!
//! # Topics
//! A bus topic is the Pub/Sub topic of the same name (`chat.out`, `chat.in`,
//! or as configured). Topics are created on first publish or subscribe if
//! missing; "already exists" counts as success, since several processes race
//! to create them. Credentials that may not create topics (only
//! publish/subscribe) are tolerated: the topics must then exist up front.
//!
//! # Subscriptions
//! - `Mode::FanOut{node}` (each realtime node reads all of `chat.out`): a
//!   subscription per node, `<subscription_prefix><topic>-<node>`, or
//!   `fan_out_subscription` if set (to reuse one created up front or kept
//!   across restarts). Created if missing, with message ordering and an
//!   **expiration policy** of `fan_out_expiration_days` (1 day by default,
//!   the minimum Pub/Sub allows): the subscription of a node that is gone for
//!   good is deleted by Pub/Sub instead of piling up messages. Pub/Sub requires
//!   the expiration to exceed the retention of unacked messages, so these keep
//!   them for [`resources::FAN_OUT_RETENTION`] (1 hour). A fan-out
//!   subscription receives what is published after it exists.
//! - `Mode::Queue{group}` (the API tier reading `chat.in`): one subscription
//!   `<subscription_prefix><topic>-<group>` shared by all members; Pub/Sub
//!   gives each message to one of them. It never expires. Members receive
//!   with unary pulls in a loop rather than a streaming pull, so that what a
//!   member that went away left unacked reaches the others (see [`pull`]).
//! - Generated names are made valid ([`config::sanitize`]): letters, digits
//!   and `-_.~+%`, starting with a letter, 3–255 characters.
//! - An existing subscription is reused as is; one attached to another topic
//!   is an error.
//!
//! # Publishing and order
//! Each envelope is one message: its JSON as data, attributes `id` and
//! `type`, and the **ordering key** = its room id (else its user id). Pub/Sub
//! delivers the messages of one ordering key in the order it received them,
//! on subscriptions with message ordering on (the ones roomcast creates). A
//! publish waits for the server's message id, at most `timeout_ms`; an error
//! leaves the envelope in the outbox, which retries it.
//!
//! # Delivery and acks
//! At-least-once. `Delivery::ack` is a Pub/Sub ack. A message not acked within
//! `ack_deadline_secs` (default 10, Pub/Sub's minimum) is redelivered to a
//! member of the subscription; a delivery dropped unacked is nacked, so it is
//! redelivered at once. A message that is not an envelope is acked, skipped
//! and logged (`warn`). Flow-control limits: see [`deliver`] and [`pull`].
//!
//! # Verified here, and not
//! On Google's emulator (`scripts/start-pubsub-emulator`, tests in `tests/`):
//! the shared conformance suite including redelivery of a message left
//! unacked by a queue member that went away; publish/consume; fan-out;
//! queue groups; order of 100 envelopes of one room; reuse of a named fan-out subscription across a restart
//! (including what was published while the node was down); skipping of
//! malformed messages; the settings subscriptions are created with; a quick,
//! clear error for an unreachable endpoint.
//!
//! **Only on real GCP, and not tested by this crate:** Application Default
//! Credentials; IAM (running with publish/subscribe-only roles); that
//! expiration policies actually delete idle subscriptions, and that Pub/Sub
//! accepts the expiration/retention pair (the emulator stores but enforces
//! neither); ordering guarantees across regions (publish from one region, as
//! a single relay does); quotas and latency.

pub mod config;
pub mod deliver;
pub mod publish;
pub mod pull;
pub mod resources;

use std::sync::Arc;

use async_trait::async_trait;
use gcloud_pubsub::client::{Client, ClientConfig};
use google_cloud_gax::conn::{ConnectionOptions, Environment};
use roomcast_bus::{Bus, BusError, Mode, Subscription};
use roomcast_core::Encoded;

pub use config::Config;

use publish::Publishers;
use resources::{ensure_subscription, ensure_topic, probe, subscription_settings};

/// Bound on the [`Bus::healthy`] check.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The Pub/Sub [`Bus`]. Made by [`connect`].
pub struct GcpBus {
    client: Client,
    cfg: Config,
    publishers: Publishers,
}

/// Connect to Pub/Sub, or the emulator if one is configured (see
/// [`Config::emulator`]). Fails with [`BusError::Unavailable`] naming the
/// endpoint if it cannot be reached, each step bounded by `timeout_ms`.
pub async fn connect(cfg: &Config) -> Result<Arc<dyn Bus>, BusError> {
    Ok(Arc::new(GcpBus::connect(cfg).await?))
}

impl GcpBus {
    /// [`connect`], returning the concrete type.
    pub async fn connect(cfg: &Config) -> Result<Self, BusError> {
        let endpoint = cfg.endpoint_label();
        let fail = |e: &dyn std::fmt::Display| {
            BusError::Unavailable(format!("{endpoint} is unreachable: {e}"))
        };
        let limit = cfg.timeout();
        let mut config = ClientConfig {
            project_id: (!cfg.project.is_empty()).then(|| cfg.project.clone()),
            connection_option: ConnectionOptions {
                connect_timeout: Some(limit),
                ..ConnectionOptions::default()
            },
            ..ClientConfig::default()
        };
        match cfg.emulator() {
            Some(host) => {
                config.environment = Environment::Emulator(host);
                if config.project_id.is_none() {
                    config.project_id = Some(Config::default().project);
                }
            }
            None => {
                if matches!(config.environment, Environment::Emulator(_)) {
                    // The client read an empty `PUBSUB_EMULATOR_HOST`.
                    return Err(fail(&"PUBSUB_EMULATOR_HOST is set but empty"));
                }
                config = tokio::time::timeout(limit, config.with_auth())
                    .await
                    .map_err(|_| fail(&"no credentials within the timeout"))?
                    .map_err(|e| fail(&format_args!("credentials: {e}")))?;
            }
        }
        let client = tokio::time::timeout(limit, Client::new(config))
            .await
            .map_err(|_| fail(&format_args!("no connection within {limit:?}")))?
            .map_err(|e| fail(&e))?;
        // One real call, so an endpoint that accepts connections but does not
        // answer fails here, not on first use.
        probe(&client, limit).await.map_err(|e| fail(&e))?;
        Ok(Self {
            client,
            cfg: cfg.clone(),
            publishers: Publishers::new(limit),
        })
    }
}

/// Envelopes per `Publish` request of a run (Pub/Sub takes at most 1,000
/// messages and 10 MB per request; a chat event is a few KiB at most).
pub const RUN_CHUNK: usize = 100;

#[async_trait]
impl Bus for GcpBus {
    fn name(&self) -> &'static str {
        "gcp"
    }

    async fn publish(&self, topic: &str, envelope: &Encoded) -> Result<(), BusError> {
        self.publishers
            .publish(&self.client, topic, &[envelope])
            .await
    }

    /// One `Publish` request per [`RUN_CHUNK`] envelopes of the run, in
    /// turn: Pub/Sub stores the messages of one ordering key in the order of
    /// the request, and a request is accepted whole or not at all.
    async fn publish_run(&self, topic: &str, run: Vec<Encoded>) -> (usize, Option<BusError>) {
        let mut done = 0;
        for chunk in run.chunks(RUN_CHUNK) {
            let chunk: Vec<&Encoded> = chunk.iter().collect();
            if let Err(e) = self.publishers.publish(&self.client, topic, &chunk).await {
                return (done, Some(e));
            }
            done += chunk.len();
        }
        (done, None)
    }

    async fn subscribe(&self, topic: &str, mode: Mode) -> Result<Subscription, BusError> {
        let limit = self.cfg.timeout();
        ensure_topic(&self.client, topic, limit).await?;
        let name = self.cfg.subscription_name(topic, &mode);
        let settings = subscription_settings(&self.cfg, &mode);
        let sub = ensure_subscription(&self.client, &name, topic, settings, limit).await?;
        match mode {
            Mode::Queue { .. } => Ok(pull::open(sub, &name, limit)),
            Mode::FanOut { .. } => deliver::open(&sub, &name, self.cfg.ack_deadline(), limit).await,
        }
    }

    async fn healthy(&self) -> bool {
        probe(&self.client, HEALTH_TIMEOUT.min(self.cfg.timeout()))
            .await
            .is_ok()
    }
}
