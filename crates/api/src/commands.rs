//! The `chat.in` consumer: commands sent by sockets through the realtime tier.
//!
//! Every API process subscribes as a member of the queue group [`GROUP`], so
//! each command is handled by exactly one of them. Delivery is at-least-once:
//! a duplicate envelope id seen recently is dropped ([`DEDUPE_WINDOW`]); the
//! handlers themselves are idempotent for the rest. A command that cannot be
//! handled (unknown type, malformed) is logged and acked, so it cannot loop.
//!
//! No command is defined yet: the chat-domain work (issue #5) adds
//! `sendMessage`, `markMessageRead`, … here.

use roomcast_bus::Subscription;
use roomcast_core::Envelope;
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Queue group of the API tier on `chat.in`.
pub const GROUP: &str = "api";
/// Envelope ids remembered for duplicate dropping.
pub const DEDUPE_WINDOW: usize = 16_384;

/// Consume until `shutdown`; an unacked command in flight is redelivered by the bus.
pub async fn run(sub: Subscription, state: AppState, shutdown: CancellationToken) {
    roomcast_bus::consume(sub, shutdown, "chat.in", DEDUPE_WINDOW, |env| {
        let state = state.clone();
        async move { handle(&state, &env).await }
    })
    .await;
}

async fn handle(_state: &AppState, env: &Envelope) {
    tracing::warn!(kind = %env.kind, id = %env.id, "unknown chat.in command; dropped");
}
