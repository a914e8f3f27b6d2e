//! The consumer loop every tier runs on a subscription: stop on shutdown or
//! when the subscription ends, log delivery errors, drop redelivered
//! duplicates (by envelope id, within a [`Deduper`] window), hand each new
//! envelope to the handler, then ack.
//!
//! The ack comes after the handler returns, so an envelope whose handler was
//! interrupted (process killed) is redelivered by backends that redeliver.
//!
//! Stopping (the shutdown token fires) never abandons a delivery the process
//! already holds: a handler in progress runs to its end and its delivery is
//! acked; then the deliveries the subscription has already received (ready
//! without waiting: a backend's client-side buffer, the in-process bus's
//! channel) are handled and acked too, at most [`DRAIN_MAX`] of them and for
//! at most [`DRAIN_TIME`]; then the loop returns without waiting for more.
//! (A backend that keeps pulling while the loop drains, as NATS does, could
//! otherwise keep a busy consumer from ever stopping.) What the engine had
//! not handed over, or sent while the subscription closed, stays unacked and
//! goes to another member of the group after the backend's ack deadline
//! (NATS `ack_wait_ms`, 30 s by default). Within the in-process bus nothing
//! survives the process, and nothing is published to it once the sockets are
//! gone, so there the drain is complete: this is what keeps a command a
//! socket already had ACKed from being lost when `roomcast serve` stops.
//! A handler that fails for a reason that may pass (the database is down)
//! returns [`Handled::Retry`]: the delivery is dropped unacked (backends
//! redeliver it, at once or after their ack deadline) and its id is forgotten
//! so the redelivery is handled.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::FutureExt;
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

/// Most deliveries handled after shutdown, from what the subscription had
/// already received: the in-process bus's channel holds at most this many.
pub const DRAIN_MAX: usize = crate::memory::SUBSCRIPTION_CAPACITY;
/// Longest time spent handling them (bounds the stop when a backend keeps
/// handing deliveries over).
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Consume `sub` until `shutdown` fires or the subscription ends. `what` names
/// the subscription in logs; `window` is the number of envelope ids
/// remembered for dropping duplicates. On shutdown, what was already received
/// is handled first (see the module docs).
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
            biased;
            _ = shutdown.cancelled() => break,
            next = sub.next() => next,
        };
        if !take(next, &mut seen, what, &mut handle).await {
            return;
        }
    }
    // Stopping: hand over what the subscription already holds, then stop.
    let mut drained = 0;
    let started = Instant::now();
    while drained < DRAIN_MAX && started.elapsed() < DRAIN_TIME {
        // Unconstrained: tokio's co-operative budget would otherwise make a
        // ready channel look empty after a hundred or so deliveries.
        let Some(next) = tokio::task::unconstrained(sub.next()).now_or_never() else {
            break;
        };
        drained += 1;
        if !take(next, &mut seen, what, &mut handle).await {
            return;
        }
    }
    if drained > 0 {
        tracing::info!(
            subscription = what,
            drained,
            "stopped; deliveries already received were handled"
        );
    }
}

/// Handle one item of the subscription; `false` once it has ended.
async fn take<F, Fut>(
    next: Option<Result<crate::Delivery, crate::BusError>>,
    seen: &mut Deduper,
    what: &str,
    handle: &mut F,
) -> bool
where
    F: FnMut(Envelope) -> Fut,
    Fut: Future<Output = Handled>,
{
    let delivery = match next {
        None => {
            tracing::warn!(subscription = what, "subscription ended");
            return false;
        }
        Some(Err(e)) => {
            tracing::warn!(subscription = what, error = %e, "delivery error");
            return true;
        }
        Some(Ok(d)) => d,
    };
    let (envelope, pending) = delivery.split();
    let id = envelope.id;
    if seen.first_time(id) {
        if handle(envelope).await == Handled::Retry {
            seen.forget(id);
            tracing::warn!(subscription = what, %id, "handler failed; left unacked for redelivery");
            drop(pending);
            return true;
        }
    } else {
        tracing::debug!(subscription = what, %id, "dropped duplicate envelope");
    }
    if let Err(e) = pending.ack().await {
        tracing::warn!(subscription = what, error = %e, "ack failed; the bus may redeliver");
    }
    true
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Bus, MemoryBus, Mode};
    use roomcast_core::Kind;

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
                tx.send(env.payload_value()["n"].as_i64()).await.unwrap();
                Handled::Done
            }
        }));
        let room = roomcast_core::RoomId::new();
        let one = Envelope::to_room(Kind::parse("x"), room, serde_json::json!({"n": 1}));
        let two = Envelope::to_room(Kind::parse("x"), room, serde_json::json!({"n": 2}));
        for e in [&one, &one, &two] {
            bus.publish("t", &e.encode()).await.unwrap();
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

    #[tokio::test]
    async fn on_shutdown_what_was_already_received_is_handled_then_the_loop_stops() {
        let bus = Arc::new(MemoryBus::new());
        let sub = bus
            .subscribe("t", Mode::Queue { group: "g".into() })
            .await
            .unwrap();
        let room = roomcast_core::RoomId::new();
        for n in 0..5 {
            let e = Envelope::to_room(Kind::parse("x"), room, serde_json::json!({"n": n}));
            bus.publish("t", &e.encode()).await.unwrap();
        }
        // Stopped before it even started: the five already received are still handled.
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = got.clone();
        consume(sub, shutdown, "t", 16, move |env| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .unwrap()
                    .push(env.payload_value()["n"].as_i64().unwrap());
                Handled::Done
            }
        })
        .await;
        assert_eq!(*got.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_handler_in_progress_at_shutdown_runs_to_its_end() {
        let bus = Arc::new(MemoryBus::new());
        let sub = bus
            .subscribe("t", Mode::Queue { group: "g".into() })
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (mut started_tx, mut release_rx) = (Some(started_tx), Some(release_rx));
        let done = finished.clone();
        let task = tokio::spawn(consume(sub, shutdown.clone(), "t", 16, move |_env| {
            let started = started_tx.take();
            let release = release_rx.take();
            let done = done.clone();
            async move {
                if let (Some(s), Some(r)) = (started, release) {
                    s.send(()).unwrap();
                    r.await.unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                Handled::Done
            }
        }));
        let room = roomcast_core::RoomId::new();
        bus.publish(
            "t",
            &Envelope::to_room(Kind::parse("x"), room, serde_json::json!({})).encode(),
        )
        .await
        .unwrap();
        started_rx.await.unwrap();
        shutdown.cancel();
        assert!(!task.is_finished());
        release_tx.send(()).unwrap();
        task.await.unwrap();
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
    }
}
