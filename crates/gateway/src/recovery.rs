//! Connection state recovery for the official `socket.io-client` (≥ 4.6),
//! backed by the room event log, so that it works across realtime nodes and
//! restarts (issue #7).
//!
//! # How
//! - Every CONNECT reply carries a private session id `pid` (the protocol
//!   layer's, [`roomcast_sio::Config::recovery`]), and every logged room
//!   event a socket receives carries, as its last argument, an **offset**:
//!   what the socket has of each room it joined, `u,<roomId>:<eventSeq>,…`
//!   (`u` when it joined its user channel). The client keeps the last one.
//!   `joinRoom`, `joinUser` and `leaveRoom` change what it has, so each is
//!   followed by a `sessionUpdated` event carrying the new offset.
//! - A client that reconnects sends `pid` and `offset` with its token.
//!   Nothing about the session is stored anywhere: the offset says it all,
//!   so any realtime node, fresh from a restart or not, can continue it.
//!   Before the CONNECT reply, [`plan`] checks the user (from the token,
//!   never from the offset) is still a member of each room, and that each
//!   gap can be replayed: from this node's buffer, else from the store (the
//!   page is kept for the replay). If every gap can be, the reply carries
//!   the same `pid` (`socket.recovered === true`), and right after it the
//!   socket rejoins its rooms and gets what it missed, in order, each event
//!   with its offset, then live events: the seam of [`crate::replay`].
//! - If a gap cannot be replayed (older than retention, longer than
//!   [`crate::replay::MAX_REPLAY`], or the store unreachable), the session
//!   is fresh (`recovered === false`): the client must rejoin and reload, as
//!   with any Socket.IO server.
//! - The user channel (`u`) comes back with the room list as it is now: a
//!   `roomUpdated` for each room of its first page (100 rooms, latest
//!   activity first; unread counts included), read after the socket is back
//!   in the channel, whatever `roomUpdated` was missed. A room the user was removed from while away is not rejoined;
//!   the socket gets the `roomRemoved` it missed instead (if it had joined
//!   the room; a removal from a room it had not joined is not told).
//!
//! Limits: the recovery window is the event log's retention (count and age,
//! `[event_log]`) and [`crate::replay::MAX_REPLAY`] events per room; the
//! token in `auth` must still be valid. At most [`MAX_OFFSET_ROOMS`] rooms
//! are recovered per socket; an offset naming more starts a fresh session.

use std::fmt::Write as _;
use std::sync::Arc;

use roomcast_core::{Kind, RoomEvent, RoomId, UserId, validate, wire};

use crate::consumer::{room_channel, user_channel};
use crate::membership::{Membership, member_seq};
use crate::replay::{self, RoomLogs, Seam, SocketRef};
use crate::transport::Conn;

/// The most rooms one offset may name.
pub const MAX_OFFSET_ROOMS: usize = 256;

/// The event that carries a socket's new offset after `joinRoom`,
/// `joinUser` or `leaveRoom`. Payload `{rooms: [roomId], user: bool}`.
pub const SESSION_UPDATED: &str = "sessionUpdated";

/// What a socket has: its user channel, and each room's position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offset {
    /// Joined `user:<id>`.
    pub user: bool,
    /// Each joined room and the last `eventSeq` received in it.
    pub rooms: Vec<(RoomId, i64)>,
}

impl Offset {
    /// `u,<roomId>:<eventSeq>,…` (an empty string for nothing joined).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(2 + self.rooms.len() * 48);
        if self.user {
            out.push('u');
        }
        for (room, seq) in &self.rooms {
            if !out.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "{room}:{seq}");
        }
        out
    }

    /// Parse what [`Offset::encode`] wrote; `None` for anything else (a
    /// fresh session).
    pub fn parse(s: &str) -> Option<Self> {
        let mut offset = Self::default();
        for (i, item) in s.split(',').enumerate() {
            if item.is_empty() && s.is_empty() {
                break;
            }
            if item == "u" && i == 0 {
                offset.user = true;
                continue;
            }
            let (room, seq) = item.split_once(':')?;
            let (room, seq): (RoomId, i64) = (room.parse().ok()?, seq.parse().ok()?);
            if seq < 0 || offset.rooms.iter().any(|(r, _)| *r == room) {
                return None;
            }
            offset.rooms.push((room, seq));
            if offset.rooms.len() > MAX_OFFSET_ROOMS {
                return None;
            }
        }
        Some(offset)
    }
}

/// How one room comes back.
enum RoomPlan {
    /// From this node's buffer (it covered the gap when checked).
    Buffer { room: RoomId, since: i64 },
    /// From this page of the store, ending at `upto`.
    Fetched {
        room: RoomId,
        since: i64,
        events: Vec<RoomEvent>,
        upto: i64,
    },
}

/// What a recovering socket gets back.
pub struct Plan {
    /// The user channel (refreshed with the room list once rejoined).
    user_channel: bool,
    rooms: Vec<RoomPlan>,
    removed: Vec<RoomId>,
}

/// Decide whether `user`'s session with `offset` can be continued here
/// (see the module docs); `None`: a fresh session.
pub async fn plan(
    logs: &RoomLogs,
    membership: &dyn Membership,
    user: UserId,
    offset: &str,
) -> Option<Plan> {
    let offset = Offset::parse(offset)?;
    let mut plan = Plan {
        user_channel: offset.user,
        rooms: Vec::with_capacity(offset.rooms.len()),
        removed: Vec::new(),
    };
    for (room, since) in offset.rooms {
        match membership.access(room, user).await {
            Ok(roomcast_core::RoomAccess::Member { .. }) => {}
            Ok(_) => {
                plan.removed.push(room);
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "recovery: membership check failed; fresh session");
                return None;
            }
        }
        if logs.covers(room, since) {
            plan.rooms.push(RoomPlan::Buffer { room, since });
            continue;
        }
        let page = match membership
            .events(room, user, since, replay::MAX_REPLAY)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "recovery: reading the room's events failed; fresh session");
                return None;
            }
        };
        let (_, upto) = replay::usable(&page, since)?;
        plan.rooms.push(RoomPlan::Fetched {
            room,
            since,
            events: page.events,
            upto,
        });
    }
    Some(plan)
}

/// Carry out `plan` on the recovered socket, right after its CONNECT reply:
/// rejoin the user channel and every room whose gap the check found
/// replayable, replaying it (the seam of [`crate::replay`]); the rest is
/// [`finish`]ed by a task.
pub fn restore(plan: Plan, conn: &Conn, logs: &Arc<RoomLogs>, membership: &Arc<dyn Membership>) {
    let who = SocketRef::of(conn);
    if plan.user_channel {
        conn.join(user_channel(who.user));
        logs.user_joined(who);
        for room in &plan.removed {
            let removed = wire::RoomRemoved {
                room_id: *room,
                user_id: who.user,
            };
            conn.emit_json(Kind::RoomRemoved.as_str(), &removed, None);
        }
    }
    let send =
        |e: &RoomEvent, offset: Option<String>| conn.emit(e.kind.as_str(), &e.payload, offset);
    let mut joined = Vec::with_capacity(plan.rooms.len());
    let mut again = Vec::new();
    for room_plan in plan.rooms {
        let (room, since, done) = match room_plan {
            RoomPlan::Buffer { room, since } => {
                let join = || conn.join(room_channel(room));
                let done = matches!(logs.rejoin(room, who, since, send, join), Seam::Joined(_));
                (room, since, done)
            }
            RoomPlan::Fetched {
                room,
                since,
                events,
                upto,
            } => {
                let join = || conn.join(room_channel(room));
                let done = logs
                    .rejoin_after_fetch(room, who, &events, upto, send, join)
                    .is_some();
                (room, since, done)
            }
        };
        if done {
            joined.push(room);
        } else {
            again.push((room, since));
        }
    }
    let (conn, logs, membership) = (conn.clone(), logs.clone(), membership.clone());
    tokio::spawn(async move {
        finish(conn, plan.user_channel, joined, again, &logs, &*membership).await;
    });
}

/// The rest of a restore, off the connection's path: rooms whose buffer
/// moved on since the check are fetched again; every room rejoined is
/// checked once more now that the socket is in it (a removal during the
/// recovery takes it out again, as `joinRoom` does); the user channel gets
/// the room list read now, after joining it, so nothing published meanwhile
/// is missed. A gap that can no longer be replayed, or a room list that
/// cannot be read, closes the connection: the client reconnects and gets a
/// fresh session rather than a silent hole.
async fn finish(
    conn: Conn,
    user_channel: bool,
    mut joined: Vec<RoomId>,
    again: Vec<(RoomId, i64)>,
    logs: &RoomLogs,
    membership: &dyn Membership,
) {
    for (room, since) in again {
        match replay::rejoin(logs, membership, &conn, room, since).await {
            Ok((true, _)) => joined.push(room),
            _ => {
                tracing::warn!(%room, "recovery: the gap can no longer be replayed; closing the connection");
                return conn.close();
            }
        }
    }
    for room in joined {
        if let Err(e) = member_seq(membership.access(room, conn.user()).await) {
            tracing::debug!(%room, error = %e.message, "recovery: no longer a member; left");
            conn.leave(room_channel(room));
            logs.left(conn.id(), room);
        }
    }
    if !user_channel {
        return;
    }
    match membership.rooms(conn.user(), validate::MAX_ROOM_PAGE).await {
        Ok(list) => {
            for view in &list.rooms {
                conn.emit_json(Kind::RoomUpdated.as_str(), view, None);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "recovery: reading the room list failed; closing the connection");
            conn.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_round_trip() {
        let (a, b) = (RoomId::new(), RoomId::new());
        for offset in [
            Offset::default(),
            Offset {
                user: true,
                rooms: vec![],
            },
            Offset {
                user: true,
                rooms: vec![(a, 0), (b, 42)],
            },
            Offset {
                user: false,
                rooms: vec![(b, 7)],
            },
        ] {
            assert_eq!(Offset::parse(&offset.encode()), Some(offset.clone()));
        }
        assert_eq!(
            Offset {
                user: true,
                rooms: vec![(a, 3)]
            }
            .encode(),
            format!("u,{a}:3")
        );
    }

    #[test]
    fn junk_offsets_start_a_fresh_session() {
        let a = RoomId::new();
        for bad in [
            "x".to_owned(),
            "u,u".to_owned(),
            format!("{a}"),
            format!("{a}:-1"),
            format!("{a}:1,{a}:2"),
            format!("{a}:1,"),
            "not-a-room:3".to_owned(),
            ",".to_owned(),
        ] {
            assert_eq!(Offset::parse(&bad), None, "{bad}");
        }
        let many: Vec<String> = (0..=MAX_OFFSET_ROOMS)
            .map(|_| format!("{}:1", RoomId::new()))
            .collect();
        assert_eq!(Offset::parse(&many.join(",")), None, "too many rooms");
    }
}
