//! The `chat.out` consumer: every envelope becomes one emit to this node's
//! sockets in `room:<roomId>` or `user:<userId>`, in the order the bus delivers.
//!
//! Duplicates (same envelope id) are dropped using a [`Deduper`] remembering
//! the last [`DEDUPE_WINDOW`] ids. Each delivery is acked after its emit.

use roomcast_bus::{Deduper, Subscription};
use tokio_util::sync::CancellationToken;

use crate::transport::Transport;

/// Envelope ids remembered for duplicate dropping.
pub const DEDUPE_WINDOW: usize = 16_384;

/// Socket.IO room for a chat room.
pub fn room_channel(room: roomcast_core::RoomId) -> String {
    format!("room:{room}")
}

/// Socket.IO room for a user's own sockets.
pub fn user_channel(user: roomcast_core::UserId) -> String {
    format!("user:{user}")
}

/// Consume until `shutdown` or the end of the subscription.
pub async fn run(mut sub: Subscription, transport: Transport, shutdown: CancellationToken) {
    let mut seen = Deduper::new(DEDUPE_WINDOW);
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = sub.next() => next,
        };
        let delivery = match next {
            None => {
                tracing::warn!("chat.out subscription ended");
                return;
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "chat.out delivery error");
                continue;
            }
            Some(Ok(d)) => d,
        };
        let env = &delivery.envelope;
        if seen.first_time(env.id) {
            if let Some(room) = env.room_id {
                transport.emit(room_channel(room), &env.kind, &env.payload);
            }
            if let Some(user) = env.user_id {
                transport.emit(user_channel(user), &env.kind, &env.payload);
            }
        } else {
            tracing::debug!(id = %env.id, "dropped duplicate envelope");
        }
        if let Err(e) = delivery.ack().await {
            tracing::warn!(error = %e, "chat.out ack failed; the bus may redeliver");
        }
    }
}
