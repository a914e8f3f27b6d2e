//! The bus between the tiers: the [`Bus`] trait every backend implements, the
//! in-process backend, consumer-side duplicate dropping, and the conformance
//! suite that every backend must pass.
//!
//! # Layout
//! - `lib.rs`: the [`Bus`] trait, [`Subscription`], [`Delivery`] and [`BusError`].
//! - [`memory`]: the in-process backend used by `roomcast serve`.
//! - [`dedupe`]: a bounded memory of recently seen envelope ids.
//! - [`mod@consume`]: the consumer loop (shutdown, duplicates, ack) every tier runs.
//! - [`conformance`]: the shared test cases, run against every backend.
//! - [`testkit`]: bounded waits the backends' own integration tests share.
//!
//! # Delivery contract
//! Delivery is **at-least-once** and consumers must be idempotent: an envelope
//! may arrive twice (drop it by [`roomcast_core::Envelope::id`], see [`dedupe`]).
//! Order is kept per publisher and topic by the in-process backend; distributed
//! backends keep it per room where they can (documented per backend).

pub mod conformance;
pub mod consume;
pub mod dedupe;
pub mod memory;
pub mod testkit;

use std::fmt;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use roomcast_core::{Encoded, Envelope};

pub use consume::{Handled, consume};
pub use dedupe::Deduper;
pub use memory::MemoryBus;

/// Errors a bus backend reports.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The engine cannot be reached (at start, or it went away).
    #[error("bus engine unavailable: {0}")]
    Unavailable(String),
    /// The bus has been closed.
    #[error("bus closed")]
    Closed,
    /// A message on the wire is not a valid envelope.
    #[error("malformed envelope: {0}")]
    Malformed(String),
}

/// How a subscription shares a topic with other subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// This subscription receives **every** envelope published to the topic
    /// (each realtime node consumes all of `chat.out`). `node` names the
    /// subscriber, for backends that keep a named subscription or consumer per
    /// node (Pub/Sub subscriptions, JetStream consumers); it must be unique
    /// among live subscribers of the topic.
    FanOut {
        /// Unique subscriber name, e.g. the realtime node's id.
        node: String,
    },
    /// Subscriptions with the same group name share the topic: each envelope
    /// goes to exactly one of them (the API tier consuming `chat.in`).
    Queue {
        /// Group name.
        group: String,
    },
}

/// A message bus backend. Four methods; every backend passes [`conformance`].
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Short backend name for logs and health output (`"memory"`, `"nats"`, …).
    fn name(&self) -> &'static str;

    /// Publish one envelope, its bytes as they are (a backend never encodes
    /// an envelope again). Returns once the backend has accepted it (durably,
    /// for durable backends); an error means it may not have been published and
    /// the caller keeps it (the outbox retries).
    async fn publish(&self, topic: &str, envelope: &Encoded) -> Result<(), BusError>;

    /// Publish `run`, envelopes of one ordering key (a room, else a user),
    /// to be stored in the order given. Returns how many of them, from the
    /// first, are surely accepted, with the error that stopped the rest: a
    /// later one is never accepted without every earlier one, so a retry of
    /// the rest keeps the order. The default publishes one at a time, each
    /// once the one before was accepted; a backend whose engine takes a
    /// whole run in order in one request (Pub/Sub) does that instead. The
    /// run is handed over, so a backend that keeps envelopes (the in-process
    /// bus) moves them instead of copying.
    async fn publish_run(&self, topic: &str, run: Vec<Encoded>) -> (usize, Option<BusError>) {
        for (i, envelope) in run.iter().enumerate() {
            if let Err(e) = self.publish(topic, envelope).await {
                return (i, Some(e));
            }
        }
        (run.len(), None)
    }

    /// Open a subscription. Envelopes published after this returns are delivered.
    async fn subscribe(&self, topic: &str, mode: Mode) -> Result<Subscription, BusError>;

    /// Whether the engine is reachable now (for `/healthz`).
    async fn healthy(&self) -> bool;
}

/// Acknowledges one delivery to its backend.
#[async_trait]
pub trait Acker: Send {
    /// Mark the delivery handled; the backend will not redeliver it.
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
}

/// One delivered envelope, decoded (its payload left as JSON text). Call
/// [`Delivery::ack`] once it is handled; a
/// delivery dropped without ack may be redelivered (backend permitting).
pub struct Delivery {
    /// The envelope.
    pub envelope: Envelope,
    acker: Option<Box<dyn Acker>>,
}

impl Delivery {
    /// A delivery with a backend-specific acker (`None`: nothing to ack).
    pub fn new(envelope: Envelope, acker: Option<Box<dyn Acker>>) -> Self {
        Self { envelope, acker }
    }

    /// Acknowledge the delivery.
    pub async fn ack(self) -> Result<(), BusError> {
        self.split().1.ack().await
    }

    /// The envelope, and what acknowledges it (so the envelope can be
    /// handed on without a copy).
    pub(crate) fn split(self) -> (Envelope, PendingAck) {
        (self.envelope, PendingAck(self.acker))
    }
}

/// The acknowledgement of a [`Delivery`] whose envelope was taken.
pub(crate) struct PendingAck(Option<Box<dyn Acker>>);

impl PendingAck {
    /// Acknowledge the delivery.
    pub(crate) async fn ack(self) -> Result<(), BusError> {
        match self.0 {
            Some(a) => a.ack().await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("envelope", &self.envelope)
            .finish_non_exhaustive()
    }
}

/// A stream of deliveries. Ends (`None`) when the bus is closed.
pub struct Subscription {
    inner: BoxStream<'static, Result<Delivery, BusError>>,
}

impl Subscription {
    /// Wrap a backend stream.
    pub fn new(inner: BoxStream<'static, Result<Delivery, BusError>>) -> Self {
        Self { inner }
    }

    /// The next delivery; `None` once the subscription is over.
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        self.inner.next().await
    }
}

/// The configured names of the two topics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// Name of `chat.out` (backend → realtime).
    pub chat_out: String,
    /// Name of `chat.in` (realtime → backend).
    pub chat_in: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            chat_out: roomcast_core::topics::CHAT_OUT.into(),
            chat_in: roomcast_core::topics::CHAT_IN.into(),
        }
    }
}

impl Topics {
    /// The configured name for a logical topic (`chat.out`, `chat.in`); other
    /// names pass through unchanged.
    pub fn resolve<'a>(&'a self, logical: &'a str) -> &'a str {
        match logical {
            roomcast_core::topics::CHAT_OUT => &self.chat_out,
            roomcast_core::topics::CHAT_IN => &self.chat_in,
            other => other,
        }
    }
}
