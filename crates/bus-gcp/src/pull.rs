//! Receiving for work queues (`Mode::Queue`, the API tier reading
//! `chat.in`): unary `Pull` calls in a loop instead of one long-lived
//! `StreamingPull`.
//!
//! # Why not a stream
//! The members of a queue subscription come and go (an API node is
//! deployed, scaled in, killed), and what one of them leaves unacked must
//! reach another. With a streaming pull, a member that goes away cancels its
//! stream; Google's Pub/Sub emulator (0.8.x, the one our tests run on) fails
//! while handling that cancellation (`NoSuchMethodError` in its bundled
//! gRPC) and keeps the dead stream as a subscriber, which then takes the
//! redelivered messages again and again, so they never reach the live
//! member. A unary pull that is cancelled takes at most one batch with it,
//! which comes back after the ack deadline. Semantics are Pub/Sub's own
//! either way: leases of `ack_deadline_secs`, ack, nack.
//!
//! # Limits
//! - Each pull asks for at most [`crate::deliver::MAX_OUTSTANDING`] messages
//!   and never more than the buffer has room for, so at most
//!   [`crate::deliver::CHANNEL_CAPACITY`] messages are held unacked in the
//!   buffer.
//! - The buffer is bounded ([`crate::deliver::CHANNEL_CAPACITY`]); when full
//!   the loop waits for the consumer (nothing is dropped, nothing is pulled).
//! - A pull that fails transiently is retried after a back-off of 100 ms
//!   doubling to 5 s; any other failure (the subscription was deleted,
//!   access revoked) ends the stream, and the [`Subscription`] yields one
//!   error, then ends.
//!
//! When the [`Subscription`] is dropped the loop stops and the messages in
//! the buffer are nacked, so they are redelivered at once.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use gcloud_pubsub::subscriber::ReceivedMessage;
use gcloud_pubsub::subscription::Subscription as PubsubSubscription;
use google_cloud_gax::grpc::Code;
use roomcast_bus::Subscription;
use tokio::sync::mpsc;

use crate::deliver::{CHANNEL_CAPACITY, MAX_OUTSTANDING, deliveries, nack_later};

/// First back-off after a transient pull failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest back-off between pull attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Start pulling `sub` (named `name` in logs and errors) with unary pulls;
/// acks are bounded by `limit`.
pub(crate) fn open(sub: PubsubSubscription, name: &str, limit: Duration) -> Subscription {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(pull_loop(sub, name.to_owned(), tx));
    deliveries(Buffered { rx }.boxed(), name, limit)
}

/// Whether a failed pull is worth repeating.
fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Internal
            | Code::Unknown
            | Code::Cancelled
    )
}

async fn pull_loop(sub: PubsubSubscription, name: String, tx: mpsc::Sender<ReceivedMessage>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        // Wait for room, then ask for no more than there is room for.
        let Ok(permit) = tx.reserve().await else {
            return;
        };
        let room = (tx.capacity() + 1).min(MAX_OUTSTANDING as usize);
        drop(permit);
        let pulled = tokio::select! {
            () = tx.closed() => return,
            pulled = sub.pull(room as i32, None) => pulled,
        };
        match pulled {
            Ok(messages) => {
                backoff = BACKOFF_MIN;
                let mut messages = messages.into_iter();
                while let Some(m) = messages.next() {
                    if let Err(mpsc::error::SendError(m)) = tx.send(m).await {
                        // The subscription is gone: hand everything back.
                        for m in std::iter::once(m).chain(messages) {
                            let _ = m.nack().await;
                        }
                        return;
                    }
                }
            }
            Err(status) if transient(status.code()) => {
                tracing::debug!(subscription = %name, error = %status, "pull failed; retrying");
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(status) => {
                tracing::warn!(subscription = %name, error = %status, "pull failed; stopping");
                return;
            }
        }
    }
}

/// The buffer between the pull loop and the deliveries. Dropped, it stops
/// the loop (its sender sees the close) and nacks what it still holds.
struct Buffered {
    rx: mpsc::Receiver<ReceivedMessage>,
}

impl Stream for Buffered {
    type Item = ReceivedMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReceivedMessage>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Buffered {
    fn drop(&mut self) {
        self.rx.close();
        let mut held = Vec::new();
        while let Ok(m) = self.rx.try_recv() {
            held.push(m);
        }
        nack_later(held);
    }
}
