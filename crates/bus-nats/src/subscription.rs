//! One subscription: a reader over a durable pull consumer that turns
//! JetStream messages into [`Delivery`]s, acks and skips malformed payloads,
//! moves queue messages delivered too often to the dead-letter subject, and
//! reopens its consumer after errors.
//!
//! Limits and what happens at them:
//! - One pull request asks for at most `pull_batch` messages; the reader asks
//!   for more only once half of them were taken by the application, so at most
//!   `pull_batch` messages wait in the client per subscription. A slow
//!   application slows the pulls; the rest waits in the stream.
//! - The consumer has at most `max_ack_pending` unacked deliveries; at that
//!   cap the server delivers nothing more to it until acks arrive.
//! - Any error of the pull stream (missed heartbeats, consumer deleted, no
//!   responders, a failed pull) puts one `Err(BusError::Unavailable)` on the
//!   subscription, then the reader re-creates stream and consumer (both
//!   idempotent) and pulls again, waiting [`RETRY_MIN`] doubling up to
//!   [`RETRY_MAX`] between failed attempts. The subscription never ends by
//!   itself.
//!
//! Dead-lettering happens inside `Subscription::next`: a subscription dropped
//! in the middle of it (shutdown) may leave the original unacked after its
//! copy reached `<topic>.dlq`. The original then comes back after `ack_wait`
//! and is moved again; the second copy carries the same message id
//! (`<envelope id>.dlq`), so JetStream drops it within the duplicate window.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::{self};
use async_trait::async_trait;
use futures::StreamExt;
use roomcast_bus::{Acker, BusError, Delivery, Mode, Subscription};
use roomcast_core::Envelope;

use crate::topology::Shared;
use crate::{config, pack};

/// How long one pull request waits on the server for messages.
pub const PULL_EXPIRES: Duration = Duration::from_secs(10);
/// Idle heartbeat the server sends during a pull request; two missed in a
/// row mean the server or the consumer is gone, and the reader reopens.
pub const PULL_HEARTBEAT: Duration = Duration::from_secs(2);
/// First pause before reopening after a failed attempt.
pub const RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest pause between attempts to reopen.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// Header on a dead-lettered message: how many times it had been delivered.
pub const DEAD_LETTER_DELIVERIES: &str = "Roomcast-Dead-Letter-Deliveries";
/// Header on a dead-lettered message: the topic it was published to.
pub const DEAD_LETTER_TOPIC: &str = "Roomcast-Dead-Letter-Topic";

/// Open a subscription: the consumer exists and pulls are set up when this
/// returns, so everything published afterwards is delivered.
pub(crate) async fn open(
    shared: Arc<Shared>,
    topic: &str,
    mode: Mode,
) -> Result<Subscription, BusError> {
    let mut reader = Reader {
        shared,
        topic: topic.to_owned(),
        mode,
        messages: None,
        retry: None,
        pending: Mutex::new(VecDeque::new()),
    };
    reader.messages = Some(reader.pull().await?);
    let stream = futures::stream::unfold(reader, |mut r| async move {
        let item = r.next().await;
        Some((item, r))
    });
    Ok(Subscription::new(stream.boxed()))
}

struct Reader {
    shared: Arc<Shared>,
    topic: String,
    mode: Mode,
    /// The open pull stream; `None` after an error, until reopened.
    messages: Option<pull::Stream>,
    /// Pause before the next attempt to reopen, after a failed one.
    retry: Option<Duration>,
    /// The rest of a pack's deliveries, handed out before the next pull
    /// (in a mutex only so that `&Reader` is `Send`; never contended).
    pending: Mutex<VecDeque<Delivery>>,
}

impl Reader {
    fn pending_mut(&mut self) -> &mut VecDeque<Delivery> {
        self.pending.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    async fn pull(&self) -> Result<pull::Stream, BusError> {
        let consumer = self.shared.consumer(&self.topic, &self.mode).await?;
        consumer
            .stream()
            .max_messages_per_batch(self.shared.cfg.pull_batch.max(1))
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await
            .map_err(|e| BusError::Unavailable(format!("NATS pull on {}: {e}", self.topic)))
    }

    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            if let Some(d) = self.pending_mut().pop_front() {
                return Ok(d);
            }
            let Some(messages) = self.messages.as_mut() else {
                if let Some(pause) = self.retry {
                    tokio::time::sleep(pause).await;
                }
                match self.pull().await {
                    Ok(m) => {
                        tracing::info!(topic = %self.topic, "NATS subscription reopened");
                        self.messages = Some(m);
                        self.retry = None;
                        continue;
                    }
                    Err(e) => {
                        self.retry = Some(self.retry.map_or(RETRY_MIN, |p| (p * 2).min(RETRY_MAX)));
                        return Err(e);
                    }
                }
            };
            match messages.next().await {
                Some(Ok(msg)) => {
                    let deliveries = self.accept(msg).await;
                    self.pending_mut().extend(deliveries);
                }
                Some(Err(e)) => {
                    self.messages = None;
                    self.retry = Some(RETRY_MIN);
                    return Err(BusError::Unavailable(format!(
                        "NATS subscription to {}: {e}; reopening",
                        self.topic
                    )));
                }
                None => {
                    self.messages = None;
                    self.retry = Some(RETRY_MIN);
                }
            }
        }
    }

    /// The deliveries of one message (one, or a pack's), or none when it
    /// was handled here (malformed, or dead-lettered).
    async fn accept(&self, msg: jetstream::Message) -> Vec<Delivery> {
        let packed = pack::is_pack(&msg);
        let read = if packed {
            pack::unpack(&msg.payload)
        } else {
            Envelope::from_bytes(&msg.payload).map(|e| vec![e])
        };
        let envelopes = match read {
            Ok(envs) if !envs.is_empty() => envs,
            Ok(_) => {
                tracing::warn!(topic = %self.topic, "empty pack acked and skipped");
                if let Err(e) = msg.ack().await {
                    tracing::warn!(topic = %self.topic, error = %e, "ack of an empty pack failed");
                }
                return Vec::new();
            }
            Err(e) => {
                let seq = msg.info().map(|i| i.stream_sequence).unwrap_or_default();
                tracing::warn!(topic = %self.topic, seq, error = %e, "malformed envelope acked and skipped");
                if let Err(e) = msg.ack().await {
                    tracing::warn!(topic = %self.topic, error = %e, "ack of a malformed envelope failed");
                }
                return Vec::new();
            }
        };
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        let dead_letters = matches!(self.mode, Mode::Queue { .. })
            && !config::is_dead_letter(&self.topic)
            && delivered > self.shared.cfg.max_deliver();
        if dead_letters {
            self.dead_letter(msg, &envelopes[0], delivered).await;
            return Vec::new();
        }
        if !packed {
            let envelope = envelopes.into_iter().next().expect("one envelope");
            return vec![Delivery::new(envelope, Some(Box::new(NatsAcker(msg))))];
        }
        pack::deliveries(envelopes, msg)
    }

    /// Publish the message to `<topic>.dlq`, then ack it (a pack as a
    /// whole, still a pack). When the publish fails the message stays
    /// unacked and comes back after `ack_wait`.
    async fn dead_letter(&self, msg: jetstream::Message, envelope: &Envelope, delivered: i64) {
        let subject = config::dead_letter_subject(&self.topic);
        let mut headers = HeaderMap::new();
        headers.insert(DEAD_LETTER_DELIVERIES, (delivered - 1).to_string().as_str());
        headers.insert(DEAD_LETTER_TOPIC, self.topic.as_str());
        if let Some(count) = msg.headers.as_ref().and_then(|h| h.get(pack::PACK_HEADER)) {
            headers.insert(pack::PACK_HEADER, count.as_str());
        }
        // Its own message id: the original's id is in the duplicate window of
        // the same stream and would make JetStream drop the copy.
        let publish = Publish::build()
            .payload(msg.payload.clone())
            .headers(headers)
            .message_id(format!("{}{}", envelope.id, config::DLQ_SUFFIX));
        match self.shared.publish_acked(&subject, publish).await {
            Ok(_) => {
                tracing::warn!(topic = %self.topic, id = %envelope.id, deliveries = delivered - 1,
                    "envelope never acked; moved to {subject}");
                if let Err(e) = msg.ack().await {
                    tracing::warn!(topic = %self.topic, error = %e, "ack after dead-lettering failed");
                }
            }
            Err(e) => {
                tracing::warn!(topic = %self.topic, id = %envelope.id, error = %e,
                    "dead-lettering failed; retried after ack_wait");
            }
        }
    }
}

/// Acks one JetStream message (a plain ack: the server does not confirm it,
/// so an ack lost in an outage means one more delivery).
struct NatsAcker(jetstream::Message);

#[async_trait]
impl Acker for NatsAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.0
            .ack()
            .await
            .map_err(|e| BusError::Unavailable(format!("NATS ack failed: {e}")))
    }
}
