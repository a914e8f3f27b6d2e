//! The chat handlers: authentication of sockets and the `joinRoom` / `joinUser`
//! commands, each answered with an ACK `{ok:true,…}` or
//! `{ok:false, error:{code,message}}`.
//!
//! The user is always the token's; a `userId` in a payload is ignored.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_auth::Tokens;
use roomcast_core::{ErrorBody, ErrorCode, RoomId, UserId};
use roomcast_store::Access;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::consumer::{room_channel, user_channel};
use crate::membership::Membership;
use crate::transport::{Ack, Conn, Handler};

/// `joinRoom` payload.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinRoom {
    room_id: RoomId,
}

/// The chat layer's [`Handler`].
pub struct ChatHandler {
    tokens: Arc<Tokens>,
    membership: Arc<dyn Membership>,
}

impl ChatHandler {
    /// A handler verifying tokens with `tokens` and membership with `membership`.
    pub fn new(tokens: Arc<Tokens>, membership: Arc<dyn Membership>) -> Self {
        Self { tokens, membership }
    }

    async fn join_room(&self, conn: &Conn, data: Option<Value>) -> Result<Value, ErrorBody> {
        let join: JoinRoom = data
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| bad_request("joinRoom expects {roomId: <room id>}"))?;
        let user = conn.user();
        self.check_member(join.room_id, user).await?;
        // Join first, then read the room's latest seq: every message with a
        // higher seq is published after this join and so reaches this socket;
        // every message up to `seq` is in the history. No gap at the seam.
        conn.join(room_channel(join.room_id));
        match self.check_member(join.room_id, user).await {
            Ok(seq) => Ok(json!({ "ok": true, "seq": seq })),
            Err(e) => {
                conn.leave(room_channel(join.room_id));
                Err(e)
            }
        }
    }

    async fn check_member(&self, room: RoomId, user: UserId) -> Result<i64, ErrorBody> {
        match self.membership.access(room, user).await {
            Ok(Access::Member { last_seq }) => Ok(last_seq),
            Ok(Access::NotMember) => Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "you are not a member of this room",
            )),
            Ok(Access::NoRoom) => Err(ErrorBody::new(ErrorCode::NotFound, "no such room")),
            Err(e) => {
                tracing::error!(error = %e, "membership check failed");
                Err(ErrorBody::new(ErrorCode::Internal, "internal error"))
            }
        }
    }
}

fn bad_request(message: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, message)
}

/// The ACK payload for a failure.
pub fn ack_error(e: &ErrorBody) -> Value {
    json!({ "ok": false, "error": e })
}

#[async_trait]
impl Handler for ChatHandler {
    fn authenticate(&self, auth: Option<&Value>) -> Result<UserId, String> {
        let token = auth
            .and_then(|a| a.get("token"))
            .and_then(Value::as_str)
            .ok_or("missing token: connect with auth: {token}")?;
        self.tokens
            .verify(token)
            .map_err(|_| "invalid or expired token".to_owned())
    }

    async fn on_event(&self, conn: Conn, event: String, data: Option<Value>, ack: Option<Ack>) {
        let reply = match event.as_str() {
            "joinRoom" => self.join_room(&conn, data).await,
            "joinUser" => {
                conn.join(user_channel(conn.user()));
                Ok(json!({ "ok": true }))
            }
            other => Err(bad_request(&format!("unknown event {other:?}"))),
        };
        if let Some(ack) = ack {
            ack.send(&reply.unwrap_or_else(|e| ack_error(&e)));
        }
    }
}
