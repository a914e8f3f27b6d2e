//! The consumer loop every tier runs on a subscription: stop on shutdown or
//! when the subscription ends, log delivery errors, drop redelivered
//! duplicates (by envelope id, within a [`Deduper`] window), hand each new
//! envelope to the handler, then ack.
//!
//! The ack comes after the handler returns, so an envelope whose handler was
//! interrupted (process killed) is redelivered by backends that redeliver.
//! A handler that fails for a reason that may pass (the database is down)
//! returns [`Handled::Retry`]: the delivery is dropped unacked (backends
//! redeliver it, at once or after their ack deadline) and its id is forgotten
//! so the redelivery is handled.

use std::future::Future;

use roomcast_core::Envelope;
use tokio_util::sync::CancellationToken;

use crate::{Deduper, Subscription};

/// What a handler made of an envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Done (or refused for good): ack it.
    Done,
    /// Failed for a reason that may pass: leave it unacked, to be redelivered.
    Retry,
}

/// Consume `sub` until `shutdown` fires or the subscription ends. `what` names
/// the subscription in logs; `window` is the number of envelope ids
/// remembered for dropping duplicates.
pub async fn consume<F, Fut>(
    mut sub: Subscription,
    shutdown: CancellationToken,
    what: &str,
    window: usize,
    mut handle: F,
) where
    F: FnMut(Envelope) -> Fut,
    Fut: Future<Output = Handled>,
{
    let mut seen = Deduper::new(window);
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = sub.next() => next,
        };
        let delivery = match next {
            None => {
                tracing::warn!(subscription = what, "subscription ended");
                return;
            }
            Some(Err(e)) => {
                tracing::warn!(subscription = what, error = %e, "delivery error");
                continue;
            }
            Some(Ok(d)) => d,
        };
        let id = delivery.envelope.id;
        if seen.first_time(id) {
            if handle(delivery.envelope.clone()).await == Handled::Retry {
                seen.forget(id);
                tracing::warn!(subscription = what, %id, "handler failed; left unacked for redelivery");
                drop(delivery);
                continue;
            }
        } else {
            tracing::debug!(subscription = what, id = %delivery.envelope.id, "dropped duplicate envelope");
        }
        if let Err(e) = delivery.ack().await {
            tracing::warn!(subscription = what, error = %e, "ack failed; the bus may redeliver");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Bus, MemoryBus, Mode};

    #[tokio::test]
    async fn duplicates_are_handled_once_and_shutdown_stops_the_loop() {
        let bus = Arc::new(MemoryBus::new());
        let sub = bus
            .subscribe("t", Mode::FanOut { node: "n".into() })
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let task = tokio::spawn(consume(sub, shutdown.clone(), "t", 16, move |env| {
            let tx = tx.clone();
            async move {
                tx.send(env.payload["n"].as_i64()).await.unwrap();
                Handled::Done
            }
        }));
        let room = roomcast_core::RoomId::new();
        let one = Envelope::to_room("x", room, serde_json::json!({"n": 1}));
        let two = Envelope::to_room("x", room, serde_json::json!({"n": 2}));
        for e in [&one, &one, &two] {
            bus.publish("t", e).await.unwrap();
        }
        assert_eq!(rx.recv().await.unwrap(), Some(1));
        assert_eq!(
            rx.recv().await.unwrap(),
            Some(2),
            "the duplicate of 1 was dropped"
        );
        shutdown.cancel();
        task.await.unwrap();
    }
}
