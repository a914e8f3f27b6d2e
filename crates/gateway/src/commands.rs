//! The socket commands that go to the bus: `sendMessage` and
//! `markMessageRead` (published to `chat.in` for the API tier) and `typing`
//! (relayed to `chat.out` by [`crate::typing`]).
//!
//! Each command is checked in this order, the first failure being its ACK:
//! 1. (`typing` only) the socket's rate limit → `rate_limited`;
//! 2. the payload's shape and the `roomcast_core::validate` rules → `bad_request`;
//! 3. membership, through the short [`MembershipCache`] → `forbidden` /
//!    `not_found` (`internal` if it cannot be answered);
//! 4. the publish → `internal` if the bus refuses it.
//!
//! The ACK `{ok:true,…}` is sent only after the publish succeeded. The user
//! is always the socket's (the envelope's `userId`); a `userId` in a payload
//! is ignored. The API re-checks everything when it handles the command.

use std::sync::Arc;

use roomcast_core::{
    ChatIn, Check, ErrorBody, ErrorCode, Kind, MarkMessageRead, RoomId, SendMessage, UserId,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::cache::MembershipCache;
use crate::membership::{Membership, member_seq};
use crate::publish::Publisher;
use crate::rate::{RateLimits, Refused};
use crate::transport::ConnId;
use crate::typing::TypingRelay;

/// `typing` payload from a client.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypingIn {
    room_id: RoomId,
    typing: bool,
}

/// The result of a command: the ACK payload, or the error to ACK.
pub type Reply = Result<Value, ErrorBody>;

/// The commands' shared machinery.
pub struct Commands {
    membership: Arc<dyn Membership>,
    cache: Arc<MembershipCache>,
    publisher: Publisher,
    typing: Arc<TypingRelay>,
    limits: RateLimits,
}

impl Commands {
    /// Commands checking membership with `membership` behind `cache`,
    /// publishing with `publisher`, relaying typing through `typing`,
    /// limiting typing with `limits`.
    pub fn new(
        membership: Arc<dyn Membership>,
        cache: Arc<MembershipCache>,
        publisher: Publisher,
        typing: Arc<TypingRelay>,
        limits: RateLimits,
    ) -> Self {
        Self {
            membership,
            cache,
            publisher,
            typing,
            limits,
        }
    }

    /// Run command `event` of socket `conn` of `user`; `None` if `event` is
    /// not one of these commands.
    pub async fn run(
        &self,
        conn: ConnId,
        user: UserId,
        event: &str,
        data: Option<Value>,
    ) -> Option<Reply> {
        Some(match Kind::parse(event) {
            Kind::SendMessage => self.send_message(user, data).await,
            Kind::MarkMessageRead => self.mark_read(user, data).await,
            Kind::Typing => self.typing(conn, user, data).await,
            _ => return None,
        })
    }

    /// Socket `conn` connected: it gets its typing rate limit.
    pub fn connected(&self, conn: ConnId) {
        self.limits.add(conn);
    }

    /// Socket `conn` of `user` is gone: its rate limit is dropped and the
    /// typing states it last refreshed end.
    pub fn disconnected(&self, conn: ConnId, user: UserId) {
        self.limits.remove(conn);
        self.typing.disconnected(conn, user);
    }

    async fn send_message(&self, user: UserId, data: Option<Value>) -> Reply {
        let p: SendMessage = payload(
            data,
            "sendMessage expects {roomId, clientMsgId, body, replyTo?}",
        )?;
        p.check().map_err(bad_request)?;
        self.check_member(p.room_id, user).await?;
        let client_msg_id = p.client_msg_id.clone();
        self.publish(ChatIn::SendMessage { user, cmd: p }).await?;
        Ok(json!({ "ok": true, "clientMsgId": client_msg_id }))
    }

    async fn mark_read(&self, user: UserId, data: Option<Value>) -> Reply {
        let p: MarkMessageRead = payload(data, "markMessageRead expects {roomId, seq}")?;
        p.check().map_err(bad_request)?;
        self.check_member(p.room_id, user).await?;
        self.publish(ChatIn::MarkMessageRead { user, cmd: p })
            .await?;
        Ok(json!({ "ok": true }))
    }

    async fn typing(&self, conn: ConnId, user: UserId, data: Option<Value>) -> Reply {
        match self.limits.take(conn) {
            Ok(()) => {}
            Err(Refused::Limited) => {
                return Err(ErrorBody::new(
                    ErrorCode::RateLimited,
                    "too many typing events; slow down",
                ));
            }
            Err(Refused::Gone) => return Err(internal("socket closed")),
        }
        let p: TypingIn = payload(data, "typing expects {roomId, typing: true|false}")?;
        self.check_member(p.room_id, user).await?;
        match self.typing.set(conn, user, p.room_id, p.typing).await {
            Ok(_) => Ok(json!({ "ok": true })),
            Err(e) => {
                tracing::warn!(error = %e, "could not relay typing");
                Err(internal("could not relay, try again"))
            }
        }
    }

    async fn check_member(&self, room: RoomId, user: UserId) -> Result<(), ErrorBody> {
        member_seq(self.cache.access(&*self.membership, room, user).await).map(drop)
    }

    async fn publish(&self, cmd: ChatIn) -> Result<(), ErrorBody> {
        self.publisher.command(&cmd).await.map_err(|e| {
            tracing::warn!(error = %e, "could not publish a command to chat.in");
            internal("could not send, try again")
        })
    }
}

/// Decode a payload; a wrong shape is a `bad_request` naming the expected one.
fn payload<T: DeserializeOwned>(data: Option<Value>, expected: &str) -> Result<T, ErrorBody> {
    let value = data.ok_or_else(|| bad_request(expected.to_owned()))?;
    serde_json::from_value(value).map_err(|e| bad_request(format!("{expected}: {e}")))
}

fn bad_request(message: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, message)
}

fn internal(message: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, message)
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
