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
//! verified socket, never a payload field. The API re-checks everything the
//! gateway checked (it is authoritative): a refusal (unknown type, malformed
//! payload, missing `userId`, not a member, …) is logged and acked
//! ([`Handled::Done`]) so it cannot loop; a database failure is
//! [`Handled::Retry`]: left unacked, to be redelivered.

use roomcast_bus::{Handled, Subscription};
use roomcast_core::{Envelope, MarkMessageRead, SendMessage, UserId, events, validate};
use roomcast_store::{NewMessage, Posted, StoreError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::error::is_refusal;

/// Queue group of the API tier on `chat.in`.
pub const GROUP: &str = "api";
/// Envelope ids remembered for duplicate dropping.
pub const DEDUPE_WINDOW: usize = 16_384;
/// Longest accepted realtime node name, in bytes.
pub const MAX_NODE_BYTES: usize = 128;

/// Payload of `presenceChanged`.
#[derive(Debug, Deserialize)]
pub struct PresenceChanged {
    /// The realtime node.
    pub node: String,
    /// First socket connected (`true`) or last one gone (`false`).
    pub online: bool,
    /// The node's clock, Unix ms.
    pub at: i64,
}

/// Payload of `nodeHeartbeat`.
#[derive(Debug, Deserialize)]
pub struct NodeHeartbeat {
    /// The realtime node.
    pub node: String,
    /// The node's clock, Unix ms.
    pub at: i64,
}

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

/// A command's outcome (the store wakes the relay for what it queued).
type Wrote = Result<(), Failure>;

/// Handle one `chat.in` envelope (what the consumer calls for each new one).
pub async fn handle(state: &AppState, env: &Envelope) -> Handled {
    let outcome = match env.kind.as_str() {
        events::SEND_MESSAGE => send_message(state, env).await,
        events::MARK_MESSAGE_READ => mark_message_read(state, env).await,
        events::PRESENCE_CHANGED => presence_changed(state, env).await,
        events::NODE_HEARTBEAT => node_heartbeat(state, env).await,
        _ => Err("unknown chat.in command".into()),
    };
    match outcome {
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

/// A command payload and the rules it must pass (the gateway's, re-checked).
trait Payload: DeserializeOwned {
    /// Why this payload is refused, if it is.
    fn check(&self) -> Result<(), String>;
}

impl Payload for SendMessage {
    fn check(&self) -> Result<(), String> {
        validate::client_msg_id(&self.client_msg_id)?;
        validate::body(&self.body)
    }
}

impl Payload for MarkMessageRead {
    fn check(&self) -> Result<(), String> {
        if self.seq < 0 {
            return Err("seq must be 0 or more".into());
        }
        Ok(())
    }
}

impl Payload for PresenceChanged {
    fn check(&self) -> Result<(), String> {
        node_name(&self.node)
    }
}

impl Payload for NodeHeartbeat {
    fn check(&self) -> Result<(), String> {
        node_name(&self.node)
    }
}

fn node_name(node: &str) -> Result<(), String> {
    if node.is_empty() || node.len() > MAX_NODE_BYTES {
        return Err(format!("node must be 1 to {MAX_NODE_BYTES} bytes"));
    }
    Ok(())
}

/// The envelope's payload, decoded and checked.
fn payload<T: Payload>(env: &Envelope) -> Result<T, Failure> {
    let p = T::deserialize(&env.payload).map_err(|e| format!("malformed payload: {e}"))?;
    p.check()?;
    Ok(p)
}

/// The envelope's user (set by the realtime tier from the socket's token).
fn sender(env: &Envelope) -> Result<UserId, Failure> {
    env.user_id
        .ok_or_else(|| "no userId in the envelope".into())
}

async fn send_message(state: &AppState, env: &Envelope) -> Wrote {
    let user = sender(env)?;
    let p: SendMessage = payload(env)?;
    let posted = state
        .store
        .post_message(NewMessage {
            room_id: p.room_id,
            sender_id: user,
            client_msg_id: &p.client_msg_id,
            body: &p.body,
            reply_to: p.reply_to,
        })
        .await?;
    match posted {
        Posted::Created(_) | Posted::Existing(_) => Ok(()),
        Posted::NoRoom => Err("no such room".into()),
        Posted::NotMember => Err("not a member of the room".into()),
    }
}

async fn mark_message_read(state: &AppState, env: &Envelope) -> Wrote {
    let user = sender(env)?;
    let p: MarkMessageRead = payload(env)?;
    state.store.mark_read(p.room_id, user, p.seq).await?;
    Ok(())
}

async fn presence_changed(state: &AppState, env: &Envelope) -> Wrote {
    let user = sender(env)?;
    let p: PresenceChanged = payload(env)?;
    let store = &state.store;
    store
        .presence_changed(user, &p.node, p.online, p.at)
        .await?;
    Ok(())
}

async fn node_heartbeat(state: &AppState, env: &Envelope) -> Wrote {
    let p: NodeHeartbeat = payload(env)?;
    state.store.node_heartbeat(&p.node, p.at).await?;
    Ok(())
}
