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
use roomcast_core::RoomAccess;
use roomcast_core::{ErrorBody, ErrorCode, RoomId, UserId, validate};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::admission::Admission;
use crate::commands::Commands;
use crate::consumer::{room_channel, user_channel};
use crate::guard::Guard;
use crate::membership::{Membership, member_seq};
use crate::presence::Presence;
use crate::recovery::{self, Offset};
use crate::replay::{self, RoomLogs, SocketRef};
use crate::transport::{Ack, Conn, ConnId, Handler, Identity, Refusal, Restore};

/// `joinRoom` and `leaveRoom` payload.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomRef {
    room_id: RoomId,
}

/// `joinRoom` payload.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinRoom {
    room_id: RoomId,
    /// Replay the room's logged events after this position first.
    #[serde(default)]
    since_event_seq: Option<i64>,
}

/// The chat layer's [`Handler`].
pub struct ChatHandler {
    tokens: Arc<Tokens>,
    membership: Arc<dyn Membership>,
    commands: Commands,
    presence: Arc<Presence>,
    logs: Arc<RoomLogs>,
    guard: Arc<Guard>,
    admission: Arc<Admission>,
}

impl ChatHandler {
    /// A handler verifying tokens with `tokens`, admitting only users
    /// `membership` knows ([`crate::admission`]), checking `joinRoom` with
    /// `membership` (uncached), running the bus commands with `commands`,
    /// counting sockets in `presence`, replaying from `logs` and limiting
    /// with `guard`; `admission` asks `membership` too, and is told by the
    /// `chat.out` consumer of sessions that end.
    pub fn new(
        tokens: Arc<Tokens>,
        membership: Arc<dyn Membership>,
        commands: Commands,
        presence: Arc<Presence>,
        logs: Arc<RoomLogs>,
        guard: Arc<Guard>,
        admission: Arc<Admission>,
    ) -> Self {
        Self {
            tokens,
            admission,
            membership,
            commands,
            presence,
            logs,
            guard,
        }
    }

    /// `joinRoom {roomId, sinceEventSeq?}` → `{ok, seq, eventSeq}`, plus
    /// `recovered` with `sinceEventSeq` (see [`crate::replay`]).
    async fn join_room(&self, conn: &Conn, data: Option<Value>) -> Result<Value, ErrorBody> {
        let join: JoinRoom = data
            .and_then(|v| serde_json::from_value(v).ok())
            .filter(|j: &JoinRoom| j.since_event_seq.is_none_or(|s| s >= 0))
            .ok_or_else(|| {
                bad_request("joinRoom expects {roomId: <room id>, sinceEventSeq?: <integer ≥ 0>}")
            })?;
        let (room, user) = (join.room_id, conn.user());
        self.check_member(room, user).await?;
        let replay = match join.since_event_seq {
            Some(since) => {
                Some(replay::rejoin(&self.logs, &*self.membership, conn, room, since).await?)
            }
            None => {
                conn.join(room_channel(room));
                None
            }
        };
        // Read the room's latest seq and eventSeq after joining: every event
        // after them is published after this join and so reaches this
        // socket; everything up to them is in the history. No gap at the seam.
        let answer = self.membership.access(room, user).await;
        let last_event_seq = match &answer {
            Ok(RoomAccess::Member { last_event_seq, .. }) => *last_event_seq,
            _ => 0,
        };
        let seq = match member_seq(answer) {
            Ok(seq) => seq,
            Err(e) => {
                conn.leave(room_channel(room));
                self.logs.left(conn.id(), room);
                return Err(e);
            }
        };
        let reply = match replay {
            Some((true, upto)) => {
                json!({ "ok": true, "seq": seq, "eventSeq": upto, "recovered": true })
            }
            Some((false, last)) => {
                json!({ "ok": true, "seq": seq, "eventSeq": last, "recovered": false })
            }
            None => {
                // The client's REST reload covers everything up to here; this
                // socket is held back from what this node has not emitted up
                // to there yet.
                self.logs
                    .hold_back(room, SocketRef::of(conn), last_event_seq);
                json!({ "ok": true, "seq": seq, "eventSeq": last_event_seq })
            }
        };
        session_updated(conn, self.logs.offset(conn.id()));
        Ok(reply)
    }

    /// `joinUser {rooms?: bool}` → `{ok}`; with `rooms: true` also the first
    /// page of the room list (`rooms`, `next`), read after joining: every
    /// `roomUpdated` that follows is at least as new.
    async fn join_user(&self, conn: &Conn, data: Option<Value>) -> Result<Value, ErrorBody> {
        let want_rooms = match data.as_ref().and_then(|d| d.get("rooms")) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad_request("joinUser expects {rooms?: <boolean>}")),
        };
        conn.join(user_channel(conn.user()));
        session_updated(conn, self.logs.user_joined(SocketRef::of(conn)));
        if !want_rooms {
            return Ok(json!({ "ok": true }));
        }
        match self
            .membership
            .rooms(conn.user(), validate::MAX_ROOM_PAGE)
            .await
        {
            Ok(list) => Ok(json!({ "ok": true, "rooms": list.rooms, "next": list.next })),
            Err(e) => {
                tracing::error!(error = %e, "joinUser: reading the room list failed");
                Err(ErrorBody::new(ErrorCode::Internal, "internal error"))
            }
        }
    }

    /// Stop receiving the room's events on this socket; membership is unchanged.
    fn leave_room(&self, conn: &Conn, data: Option<Value>) -> Result<Value, ErrorBody> {
        let leave: RoomRef = data
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| bad_request("leaveRoom expects {roomId: <room id>}"))?;
        conn.leave(room_channel(leave.room_id));
        session_updated(conn, self.logs.left(conn.id(), leave.room_id));
        Ok(json!({ "ok": true }))
    }

    async fn check_member(&self, room: RoomId, user: UserId) -> Result<i64, ErrorBody> {
        member_seq(self.membership.access(room, user).await)
    }
}

/// With recovery on, tell the client its new offset (see [`recovery`]).
fn session_updated(conn: &Conn, offset: Option<String>) {
    let Some(offset) = offset else { return };
    let parsed = Offset::parse(&offset).unwrap_or_default();
    let rooms: Vec<RoomId> = parsed.rooms.iter().map(|(r, _)| *r).collect();
    let payload = json!({ "rooms": rooms, "user": parsed.user });
    conn.emit_json(recovery::SESSION_UPDATED, &payload, Some(offset));
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
    fn allow_handshake(&self, ip: Option<std::net::IpAddr>) -> Result<(), std::time::Duration> {
        self.guard.handshake(ip)
    }

    fn authenticate(&self, auth: Option<&Value>) -> Result<Identity, Refusal> {
        let token = auth
            .and_then(|a| a.get("token"))
            .and_then(Value::as_str)
            .ok_or("missing token: connect with auth: {token}")?;
        let token = self
            .tokens
            .verify_full(token)
            .map_err(|_| Refusal::from("invalid or expired token"))?;
        self.guard
            .admit(token.user)
            .map_err(|(message, data)| Refusal::with_data(message, data))?;
        Ok(Identity {
            user: token.user,
            session: token.session,
        })
    }

    fn admits(&self, who: &Identity) -> bool {
        !self.admission.known(who)
    }

    async fn admit(&self, who: Identity) -> Result<(), Refusal> {
        self.admission.admit(who).await
    }

    fn on_connect(&self, conn: &Conn) {
        self.commands.connected(conn.id());
        self.presence.connected(conn.user());
    }

    async fn recover(&self, user: UserId, offset: &str) -> Option<Restore> {
        let plan = recovery::plan(&self.logs, &*self.membership, user, offset).await?;
        let (logs, membership) = (self.logs.clone(), self.membership.clone());
        Some(Box::new(move |conn: &Conn| {
            recovery::restore(plan, conn, &logs, &membership)
        }))
    }

    fn on_disconnect(&self, id: ConnId, user: UserId) {
        self.logs.forget(id);
        self.commands.disconnected(id, user);
        self.presence.disconnected(user);
    }

    async fn on_event(&self, conn: Conn, event: String, data: Option<Value>, ack: Option<Ack>) {
        let user = conn.user();
        // Limits first: a refused command is not checked or published.
        let limit = match event.as_str() {
            "joinRoom" | "joinUser" => self.guard.join(user),
            "sendMessage" => self.guard.message(user),
            _ => Ok(()),
        };
        let reply = match (limit, event.as_str()) {
            (Err(e), _) => Err(e),
            (Ok(()), "joinRoom") => self.join_room(&conn, data).await,
            (Ok(()), "joinUser") => self.join_user(&conn, data).await,
            (Ok(()), "leaveRoom") => self.leave_room(&conn, data),
            (Ok(()), other) => match self.commands.run(conn.id(), user, other, data).await {
                Some(reply) => reply,
                None => Err(bad_request(&format!("unknown event {other:?}"))),
            },
        };
        if let Some(ack) = ack {
            ack.send(&reply.unwrap_or_else(|e| ack_error(&e)));
        }
    }
}
