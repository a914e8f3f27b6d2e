//! Receiving: the stream of [`Delivery`]s for one Pub/Sub subscription, with
//! its flow-control limits, ack and nack, skipping of malformed messages, and
//! handing unacked messages back when a subscription is dropped.
//!
//! # Limits
//! - [`MAX_OUTSTANDING`]: Pub/Sub sends a subscriber at most this many
//!   messages it has not acked yet. When hit, the server stops sending to it
//!   until acks come in; the rest waits in Pub/Sub (within the subscription's
//!   retention).
//! - [`CHANNEL_CAPACITY`]: the bounded buffer between the client's pulling
//!   task and the [`Subscription`] stream. It is never smaller than
//!   [`MAX_OUTSTANDING`], so it fills only if the consumer stops acking; when
//!   full, the pulling task waits (nothing is dropped).
//!
//! The ack deadline runs from delivery, including time spent in the buffer: a
//! message not acked within `ack_deadline_secs` is delivered again (to this
//! or another subscriber). Consumers drop such duplicates by envelope id.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use gcloud_pubsub::subscriber::{ReceivedMessage, SubscriberConfig};
use gcloud_pubsub::subscription::{MessageStream, SubscribeConfig};
use roomcast_bus::{Acker, BusError, Delivery, Subscription};
use roomcast_core::Envelope;

use crate::resources::unavailable;

/// Most unacked messages Pub/Sub sends one subscription stream (see the
/// module docs).
pub const MAX_OUTSTANDING: i64 = 64;

/// Messages buffered per subscription between the client and the consumer
/// (see the module docs).
pub const CHANNEL_CAPACITY: usize = 64;

/// Start pulling `sub` (named `name` in logs and errors). Messages are
/// redelivered if not acked within `ack_deadline` seconds; acks are bounded by
/// `limit`.
pub(crate) async fn open(
    sub: &gcloud_pubsub::subscription::Subscription,
    name: &str,
    ack_deadline: i32,
    limit: Duration,
) -> Result<Subscription, BusError> {
    // The streaming pull's own ack deadline overrides the subscription's for
    // messages delivered over it; the client's default is 60 s.
    let pull = SubscriberConfig {
        stream_ack_deadline_seconds: ack_deadline,
        max_outstanding_messages: MAX_OUTSTANDING,
        ..SubscriberConfig::default()
    };
    let options = SubscribeConfig::default()
        .with_channel_capacity(CHANNEL_CAPACITY)
        .with_subscriber_config(pull);
    let messages = sub
        .subscribe(Some(options))
        .await
        .map_err(|e| unavailable(&format!("subscription {name}"), e))?;
    Ok(deliveries(Pulling(Some(messages)).boxed(), name, limit))
}

/// The [`Subscription`] handing out `messages` (whose drop must hand back
/// what it holds) as envelopes, acks bounded by `limit`.
pub(crate) fn deliveries(
    messages: BoxStream<'static, ReceivedMessage>,
    name: &str,
    limit: Duration,
) -> Subscription {
    let state = State {
        messages,
        name: name.to_owned(),
        limit,
        ended: false,
    };
    Subscription::new(futures::stream::unfold(state, next).boxed())
}

struct State {
    messages: BoxStream<'static, ReceivedMessage>,
    name: String,
    limit: Duration,
    ended: bool,
}

/// The next delivery: envelopes are handed out with an [`Acker`]; a message
/// that is not an envelope is acked (it can never succeed) and skipped. When
/// the client stops pulling (the subscription was deleted or expired, or
/// access was revoked) one error is yielded, then the stream ends.
async fn next(mut st: State) -> Option<(Result<Delivery, BusError>, State)> {
    loop {
        let Some(m) = st.messages.next().await else {
            if st.ended {
                return None;
            }
            st.ended = true;
            let what = format!("subscription {}", st.name);
            let e = unavailable(
                &what,
                "stopped pulling (deleted, expired or access revoked?)",
            );
            return Some((Err(e), st));
        };
        match Envelope::from_bytes(&m.message.data) {
            Ok(envelope) => {
                let acker = PubsubAcker {
                    message: Some(m),
                    limit: st.limit,
                };
                return Some((Ok(Delivery::new(envelope, Some(Box::new(acker)))), st));
            }
            Err(e) => {
                tracing::warn!(
                    subscription = %st.name,
                    message_id = %m.message.message_id,
                    error = %e,
                    "skipping a Pub/Sub message that is not an envelope"
                );
                match tokio::time::timeout(st.limit, m.ack()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "ack of a malformed message failed"),
                    Err(_) => tracing::warn!("ack of a malformed message timed out"),
                }
            }
        }
    }
}

/// Acks one message. Dropped without [`Acker::ack`], it nacks the message so
/// Pub/Sub redelivers it at once instead of after the ack deadline.
struct PubsubAcker {
    message: Option<ReceivedMessage>,
    limit: Duration,
}

#[async_trait]
impl Acker for PubsubAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        let Some(m) = self.message.take() else {
            return Ok(());
        };
        match tokio::time::timeout(self.limit, m.ack()).await {
            Ok(result) => result.map_err(|e| unavailable("ack", e)),
            Err(_) => Err(unavailable(
                "ack",
                format!("no answer within {:?}", self.limit),
            )),
        }
    }
}

impl Drop for PubsubAcker {
    fn drop(&mut self) {
        if let Some(m) = self.message.take() {
            nack_later(vec![m]);
        }
    }
}

/// Nack `messages` from a task of their own (for `Drop`s, which cannot
/// wait), so Pub/Sub redelivers them at once. Outside a runtime nothing can
/// be sent; the ack deadline redelivers them then.
pub(crate) fn nack_later(messages: Vec<ReceivedMessage>) {
    if messages.is_empty() {
        return;
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            for m in messages {
                if let Err(e) = m.nack().await {
                    tracing::debug!(error = %e, "nack failed; redelivered after the ack deadline");
                }
            }
        });
    }
}

/// The client's message stream. When dropped (the [`Subscription`] is), it is
/// disposed of: the pulling stops and messages received but not yet handed
/// out are nacked, so a consumer that goes away hands them back at once.
struct Pulling(Option<MessageStream>);

impl Stream for Pulling {
    type Item = ReceivedMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReceivedMessage>> {
        match self.0.as_mut() {
            Some(s) => s.poll_next_unpin(cx),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for Pulling {
    fn drop(&mut self) {
        let Some(messages) = self.0.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    messages.dispose().await;
                });
            }
            // The client's own drop would spawn (and panic without a runtime);
            // without one its tasks are gone already and the ack deadline
            // hands the messages back, so there is nothing left to clean up.
            Err(_) => std::mem::forget(messages),
        }
    }
}
