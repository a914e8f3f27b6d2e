//! The `chat.out` consumer: every envelope becomes one emit to this node's
//! sockets in `room:<roomId>` or `user:<userId>`, in the order the bus delivers.
//!
//! Duplicates (same envelope id) are dropped by [`roomcast_bus::consume()`], remembering
//! the last [`DEDUPE_WINDOW`] ids. Each delivery is acked after its emit.

use roomcast_bus::Subscription;
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
pub async fn run(sub: Subscription, transport: Transport, shutdown: CancellationToken) {
    roomcast_bus::consume(sub, shutdown, "chat.out", DEDUPE_WINDOW, |env| {
        if let Some(room) = env.room_id {
            transport.emit(room_channel(room), &env.kind, &env.payload);
        }
        if let Some(user) = env.user_id {
            transport.emit(user_channel(user), &env.kind, &env.payload);
        }
        std::future::ready(())
    })
    .await;
}
