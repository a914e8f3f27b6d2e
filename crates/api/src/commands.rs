//! The `chat.in` consumer: commands sent by sockets through the realtime tier.
//!
//! Every API process subscribes as a member of the queue group [`GROUP`], so
//! each command is handled by exactly one of them. Delivery is at-least-once:
//! a duplicate envelope id seen recently is dropped ([`DEDUPE_WINDOW`]), and
//! the handlers are idempotent for the rest (a redelivered `sendMessage`
//! finds its `clientMsgId`, a read marker only moves forward, a presence
//! change not newer than the stored one is ignored).
//!
//! | command | payload | store call |
//! | --- | --- | --- |
//! | `sendMessage` | `{roomId, clientMsgId, body, replyTo?}` | `post_message` |
//! | `markMessageRead` | `{roomId, seq}` | `mark_read` |
//! | `presenceChanged` | `{node, online, at}` | `presence_changed` |
//! | `nodeHeartbeat` | `{node, at}` | `node_heartbeat` |
//!
//! The user is the envelope's `userId`, set by the realtime tier from the
//! verified socket, never a payload field. Each command is decoded and
//! checked by [`ChatIn::decode`], the same rules the gateway applied (the
//! API is authoritative). A refusal (malformed payload, missing `userId`,
//! not a member, …) is logged and acked ([`Handled::Done`]) so it cannot
//! loop; an unknown type or a newer contract version is logged once per
//! kind and acked; a database failure is [`Handled::Retry`]: left unacked,
//! to be redelivered.

use roomcast_bus::{Handled, Subscription};
use std::sync::LazyLock;

use roomcast_core::{ChatIn, Envelope, Skip, SkipLog};
use roomcast_store::{NewMessage, Posted, StoreError};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::error::is_refusal;

/// Queue group of the API tier on `chat.in`.
pub const GROUP: &str = "api";
/// Envelope ids remembered for duplicate dropping.
pub const DEDUPE_WINDOW: usize = 16_384;
/// What this process skipped on `chat.in` (each kind logged once).
static SKIPPED: LazyLock<SkipLog> = LazyLock::new(SkipLog::default);

/// Consume until `shutdown`; an unacked command in flight is redelivered by the bus.
pub async fn run(sub: Subscription, state: AppState, shutdown: CancellationToken) {
    roomcast_bus::consume(sub, shutdown, "chat.in", DEDUPE_WINDOW, |env| {
        let state = state.clone();
        async move { handle(&state, &env).await }
    })
    .await;
}

/// Why a command was not carried out.
enum Failure {
    /// Refused for good (logged, acked): the reason.
    Refused(String),
    /// The store failed; the command is redelivered.
    Failed(StoreError),
}

impl From<String> for Failure {
    fn from(why: String) -> Self {
        Self::Refused(why)
    }
}

impl From<&str> for Failure {
    fn from(why: &str) -> Self {
        Self::Refused(why.to_owned())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if is_refusal(&e) {
            Self::Refused(e.to_string())
        } else {
            Self::Failed(e)
        }
    }
}

/// Handle one `chat.in` envelope (what the consumer calls for each new one).
pub async fn handle(state: &AppState, env: &Envelope) -> Handled {
    let cmd = match ChatIn::decode(env) {
        Ok(cmd) => cmd,
        Err(skip @ (Skip::UnknownKind(_) | Skip::NewerVersion(_))) => {
            SKIPPED.skipped("chat.in", env, &skip);
            return Handled::Done;
        }
        Err(Skip::Malformed { why, .. }) => {
            tracing::warn!(kind = %env.kind, id = %env.id, user = ?env.user_id, %why, "chat.in command refused; dropped");
            return Handled::Done;
        }
    };
    match carry_out(state, cmd).await {
        Ok(()) => Handled::Done,
        Err(Failure::Refused(why)) => {
            tracing::warn!(kind = %env.kind, id = %env.id, user = ?env.user_id, %why, "chat.in command refused; dropped");
            Handled::Done
        }
        Err(Failure::Failed(e)) => {
            tracing::warn!(kind = %env.kind, id = %env.id, error = %e, "chat.in command failed; will be redelivered");
            Handled::Retry
        }
    }
}

/// Carry a decoded command out.
async fn carry_out(state: &AppState, cmd: ChatIn) -> Result<(), Failure> {
    let store = &state.store;
    match cmd {
        ChatIn::SendMessage { user, cmd } => {
            let posted = store
                .post_message(NewMessage {
                    room_id: cmd.room_id,
                    sender_id: user,
                    client_msg_id: &cmd.client_msg_id,
                    body: &cmd.body,
                    reply_to: cmd.reply_to,
                })
                .await?;
            match posted {
                Posted::Created(_) | Posted::Existing(_) => Ok(()),
                Posted::NoRoom => Err("no such room".into()),
                Posted::NotMember => Err("not a member of the room".into()),
            }
        }
        ChatIn::MarkMessageRead { user, cmd } => {
            store.mark_read(cmd.room_id, user, cmd.seq).await?;
            Ok(())
        }
        ChatIn::PresenceChanged { user, cmd } => {
            store
                .presence_changed(user, &cmd.node, cmd.online, cmd.at)
                .await?;
            Ok(())
        }
        ChatIn::NodeHeartbeat(cmd) => {
            store.node_heartbeat(&cmd.node, cmd.at).await?;
            Ok(())
        }
    }
}
