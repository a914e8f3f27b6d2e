//! The `chat.out` consumer: every envelope becomes one emit to this node's
//! sockets in `room:<roomId>` or `user:<userId>`, in the order the bus delivers.
//! Logged room events (those with an `eventSeq`) go through
//! [`crate::replay::RoomLogs`]: once per socket, recorded for replay.
//!
//! Each envelope is decoded once (its payload kept as the JSON text it came
//! as, and written into the Socket.IO frame as it is) and routed by its
//! [`Route`]; one that this build
//! cannot read (an unknown `type`, a newer contract version, a known `type`
//! without its targets) is skipped and acked, logged once per kind, and the
//! consumer goes on. Four events are routed specially:
//! - `roomRemoved` (room **and** user target): every socket of the user
//!   first leaves `room:<roomId>`, the membership cache entry is dropped,
//!   then the event goes to `user:<id>` only;
//! - `sessionRevoked` (user target): to `user:<id>` (every device learns
//!   which session ended), admission forgets the session
//!   ([`crate::admission::Admission::ended`]), then every socket of that
//!   session is disconnected (its client reconnects, and is refused
//!   `session_ended`);
//! - `typing` (room target): to `room:<id>` except the typer's own sockets;
//! - `roomUpdatedMany` (room target, internal): for each member it names who
//!   has sockets in `user:<id>` on this node, that member's own
//!   `roomUpdated` (their read marker and unread count) to `user:<id>`; it is
//!   never emitted as is.
//!
//! "The user's sockets" are all the sockets of this node authenticated as
//! that user, whether or not they joined `user:<id>`: a socket that never
//! sent `joinUser` still leaves the room on `roomRemoved` (it just does not
//! receive the event), and never sees its own user's typing.
//!
//! Duplicates (same envelope id) are dropped by [`roomcast_bus::consume()`], remembering
//! the last [`DEDUPE_WINDOW`] ids. Each delivery is acked after its emit.

use std::sync::{Arc, LazyLock};

use roomcast_bus::Subscription;
use roomcast_core::{Envelope, Kind, RoomEvent, RoomId, Route, SkipLog, UserId};
use tokio_util::sync::CancellationToken;

use crate::admission::Admission;
use crate::cache::MembershipCache;
use crate::replay::RoomLogs;
use crate::transport::Transport;

/// Envelope ids remembered for duplicate dropping.
pub const DEDUPE_WINDOW: usize = 16_384;

/// Socket.IO room for a chat room.
pub fn room_channel(room: RoomId) -> String {
    format!("room:{room}")
}

/// Socket.IO room for a user's own sockets.
pub fn user_channel(user: UserId) -> String {
    format!("user:{user}")
}

/// What this process skipped on `chat.out` (each kind logged once).
static SKIPPED: LazyLock<SkipLog> = LazyLock::new(SkipLog::default);

/// What the consumer keeps true on this node besides the sockets: the
/// membership answers (`roomRemoved`) and the admission answers
/// (`sessionRevoked`).
pub struct Caches {
    /// Membership answers of `joinRoom` and the socket commands.
    pub membership: Arc<MembershipCache>,
    /// Admission answers of CONNECT.
    pub admission: Arc<Admission>,
}

/// Consume until `shutdown` or the end of the subscription.
pub async fn run(
    sub: Subscription,
    transport: Transport,
    cache: Caches,
    logs: Arc<RoomLogs>,
    shutdown: CancellationToken,
) {
    roomcast_bus::consume(sub, shutdown, "chat.out", DEDUPE_WINDOW, |env| {
        match Route::of(&env) {
            Ok(event) => deliver(&transport, &cache, &logs, env, event),
            Err(skip) => {
                SKIPPED.skipped("chat.out", &env, &skip);
            }
        }
        std::future::ready(roomcast_bus::Handled::Done)
    })
    .await;
}

/// Emit one decoded `chat.out` event to this node's sockets.
fn deliver(transport: &Transport, cache: &Caches, logs: &RoomLogs, env: Envelope, route: Route) {
    match route {
        // A logged room event: once per socket, in order, recorded for replay.
        Route::Logged { room, event_seq } => {
            let event = RoomEvent {
                event_seq,
                kind: env.kind,
                payload: env.payload,
            };
            let target = room_channel(room);
            logs.emit(room, event, |e, skip, offsets| {
                let offset = |conn| offsets.of(conn);
                transport.emit_logged(target, e.kind.as_str(), &e.payload, skip, offset);
            });
        }
        Route::ToRoom { room } | Route::Typing { room, typer: None } => {
            transport.emit(room_channel(room), env.kind.as_str(), &env.payload)
        }
        Route::ToUser { user } => {
            transport.emit(user_channel(user), env.kind.as_str(), &env.payload)
        }
        Route::Typing {
            room,
            typer: Some(typer),
        } => transport.emit_except_user(room_channel(room), typer, env.kind.as_str(), &env.payload),
        Route::RoomUpdatedMany(updates) => {
            for &user in updates.reads.keys() {
                let target = user_channel(user);
                if transport.room_len(&target) == 0 {
                    continue;
                }
                if let Some(view) = updates.view_for(user) {
                    transport.emit_json(target, Kind::RoomUpdated.as_str(), &view);
                }
            }
        }
        Route::SessionRevoked(ended) => {
            let user = ended.user_id;
            transport.emit(user_channel(user), env.kind.as_str(), &env.payload);
            cache.admission.ended(user, ended.session_id);
            transport.disconnect_session(user, ended.session_id);
        }
        Route::RoomRemoved { room, user } => {
            transport.leave_user(user, room_channel(room));
            logs.removed(user, room);
            cache.membership.forget(room, user);
            transport.emit(user_channel(user), env.kind.as_str(), &env.payload);
        }
    }
}
