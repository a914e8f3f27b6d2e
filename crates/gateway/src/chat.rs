//! The chat layer's [`Handler`]: authentication of sockets, the commands that
//! act on the socket itself (`joinRoom`, `joinUser`, `leaveRoom`), the
//! dispatch of the others to [`crate::commands`], and the connect and
//! disconnect hooks (presence counting, typing rate limits and states).
//! Every event with an ACK is answered `{ok:true,…}` or
//! `{ok:false, error:{code,message}}`.
//!
//! The user is always the token's; a `userId` in a payload is ignored.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_auth::Tokens;
use roomcast_core::{ErrorBody, ErrorCode, RoomId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::commands::Commands;
use crate::consumer::{room_channel, user_channel};
use crate::membership::{Membership, member_seq};
use crate::presence::Presence;
use crate::transport::{Ack, Conn, ConnId, Handler};

/// `joinRoom` and `leaveRoom` payload.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomRef {
    room_id: RoomId,
}

/// The chat layer's [`Handler`].
pub struct ChatHandler {
    tokens: Arc<Tokens>,
    membership: Arc<dyn Membership>,
    commands: Commands,
    presence: Arc<Presence>,
}

impl ChatHandler {
    /// A handler verifying tokens with `tokens`, checking `joinRoom` with
    /// `membership` (uncached), running the bus commands with `commands` and
    /// counting sockets in `presence`.
    pub fn new(
        tokens: Arc<Tokens>,
        membership: Arc<dyn Membership>,
        commands: Commands,
        presence: Arc<Presence>,
    ) -> Self {
        Self {
            tokens,
            membership,
            commands,
            presence,
        }
    }

    async fn join_room(&self, conn: &Conn, data: Option<Value>) -> Result<Value, ErrorBody> {
        let join: RoomRef = data
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

    /// Stop receiving the room's events on this socket; membership is unchanged.
    fn leave_room(&self, conn: &Conn, data: Option<Value>) -> Result<Value, ErrorBody> {
        let leave: RoomRef = data
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| bad_request("leaveRoom expects {roomId: <room id>}"))?;
        conn.leave(room_channel(leave.room_id));
        Ok(json!({ "ok": true }))
    }

    async fn check_member(&self, room: RoomId, user: UserId) -> Result<i64, ErrorBody> {
        member_seq(self.membership.access(room, user).await)
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

    fn on_connect(&self, conn: &Conn) {
        self.commands.connected(conn.id());
        self.presence.connected(conn.user());
    }

    fn on_disconnect(&self, id: ConnId, user: UserId) {
        self.commands.disconnected(id, user);
        self.presence.disconnected(user);
    }

    async fn on_event(&self, conn: Conn, event: String, data: Option<Value>, ack: Option<Ack>) {
        let reply = match event.as_str() {
            "joinRoom" => self.join_room(&conn, data).await,
            "joinUser" => {
                conn.join(user_channel(conn.user()));
                Ok(json!({ "ok": true }))
            }
            "leaveRoom" => self.leave_room(&conn, data),
            other => match self.commands.run(conn.id(), conn.user(), other, data).await {
                Some(reply) => reply,
                None => Err(bad_request(&format!("unknown event {other:?}"))),
            },
        };
        if let Some(ack) = ack {
            ack.send(&reply.unwrap_or_else(|e| ack_error(&e)));
        }
    }
}
