//! The `chat.out` consumer: every envelope becomes one emit to this node's
//! sockets in `room:<roomId>` or `user:<userId>`, in the order the bus delivers.
//! Logged room events (those with an `eventSeq`) go through
//! [`crate::replay::RoomLogs`]: once per socket, recorded for replay.
//!
//! Three events are routed specially ([`route`]):
//! - `roomRemoved` (room **and** user target): every socket of the user
//!   first leaves `room:<roomId>`, the membership cache entry is dropped,
//!   then the event goes to `user:<id>` only;
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

use std::sync::Arc;

use roomcast_bus::Subscription;
use roomcast_core::{Envelope, RoomEvent, RoomId, RoomUpdates, UserId, events};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

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

/// What to do with one `chat.out` envelope on this node.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Emit to each of these Socket.IO rooms (none: drop it).
    Emit(Vec<String>),
    /// Emit to `room`, except the sockets of `except`.
    EmitExcept {
        /// Target.
        room: String,
        /// Sockets of this user are skipped.
        except: UserId,
    },
    /// `roomUpdated` to each member named, as that member sees the room.
    PerMember(Box<RoomUpdates>),
    /// Remove `user` from `room`: sockets leave, the cache forgets, then emit
    /// to the user only.
    Removed {
        /// The room left.
        room: RoomId,
        /// The user removed.
        user: UserId,
    },
}

/// How `env` is delivered (see the module docs).
pub fn route(env: &Envelope) -> Route {
    match (env.kind.as_str(), env.room_id, env.user_id) {
        (events::ROOM_REMOVED, Some(room), Some(user)) => Route::Removed { room, user },
        // Malformed: never tell a whole room it was removed.
        (events::ROOM_REMOVED, _, user) => {
            Route::Emit(user.map(user_channel).into_iter().collect())
        }
        (events::ROOM_UPDATED_MANY, _, _) => match RoomUpdates::deserialize(&env.payload) {
            Ok(updates) => Route::PerMember(Box::new(updates)),
            Err(_) => Route::Emit(Vec::new()),
        },
        (events::TYPING, Some(room), None) => {
            match env
                .payload
                .get("userId")
                .and_then(|u| u.as_str()?.parse().ok())
            {
                Some(typer) => Route::EmitExcept {
                    room: room_channel(room),
                    except: typer,
                },
                None => Route::Emit(vec![room_channel(room)]),
            }
        }
        (_, room, user) => Route::Emit(
            room.map(room_channel)
                .into_iter()
                .chain(user.map(user_channel))
                .collect(),
        ),
    }
}

/// Consume until `shutdown` or the end of the subscription.
pub async fn run(
    sub: Subscription,
    transport: Transport,
    cache: Arc<MembershipCache>,
    logs: Arc<RoomLogs>,
    shutdown: CancellationToken,
) {
    roomcast_bus::consume(sub, shutdown, "chat.out", DEDUPE_WINDOW, |env| {
        let route = route(&env);
        // A logged room event: once per socket, in order, recorded for replay.
        if let (Route::Emit(targets), Some(room), Some(seq)) = (&route, env.room_id, env.event_seq)
            && env.is_logged()
        {
            let event = RoomEvent {
                event_seq: seq,
                kind: env.kind,
                payload: env.payload,
            };
            logs.emit(room, event, |e, skip, offsets| {
                for target in targets {
                    let offset = |conn| offsets.of(conn);
                    transport.emit_logged(target.clone(), &e.kind, &e.payload, skip, offset);
                }
            });
            return std::future::ready(roomcast_bus::Handled::Done);
        }
        match route {
            Route::Emit(targets) => {
                if targets.is_empty() {
                    tracing::warn!(kind = %env.kind, id = %env.id, "chat.out envelope without a usable target; dropped");
                }
                for target in targets {
                    transport.emit(target, &env.kind, &env.payload);
                }
            }
            Route::EmitExcept { room, except } => {
                transport.emit_except_user(room, except, &env.kind, &env.payload)
            }
            Route::PerMember(updates) => {
                for &user in updates.reads.keys() {
                    let target = user_channel(user);
                    if transport.room_len(&target) == 0 {
                        continue;
                    }
                    if let Some(view) = updates.view_for(user) {
                        match serde_json::to_value(&view) {
                            Ok(payload) => transport.emit(target, events::ROOM_UPDATED, &payload),
                            Err(e) => tracing::error!(error = %e, "roomUpdated does not serialize"),
                        }
                    }
                }
            }
            Route::Removed { room, user } => {
                transport.leave_user(user, room_channel(room));
                logs.removed(user, room);
                cache.forget(room, user);
                transport.emit(user_channel(user), &env.kind, &env.payload);
            }
        }
        std::future::ready(roomcast_bus::Handled::Done)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn room_removed_goes_to_the_user_only_after_leaving() {
        let (room, user) = (RoomId::new(), UserId::new());
        let mut env = Envelope::to_room(events::ROOM_REMOVED, room, json!({}));
        env.user_id = Some(user);
        assert_eq!(route(&env), Route::Removed { room, user });
    }

    #[test]
    fn typing_skips_the_typers_sockets() {
        let (room, user) = (RoomId::new(), UserId::new());
        let payload = json!({ "roomId": room, "userId": user, "typing": true });
        let env = Envelope::to_room(events::TYPING, room, payload);
        assert_eq!(
            route(&env),
            Route::EmitExcept {
                room: format!("room:{room}"),
                except: user,
            }
        );
    }

    #[test]
    fn everything_else_goes_to_its_targets() {
        let (room, user) = (RoomId::new(), UserId::new());
        let env = Envelope::to_room(events::RECEIVE_MESSAGE, room, json!({}));
        assert_eq!(route(&env), Route::Emit(vec![room_channel(room)]));
        let env = Envelope::to_user(events::ROOM_UPDATED, user, json!({}));
        assert_eq!(route(&env), Route::Emit(vec![user_channel(user)]));
        let mut both = Envelope::to_room("somethingNew", room, json!({}));
        both.user_id = Some(user);
        assert_eq!(
            route(&both),
            Route::Emit(vec![room_channel(room), user_channel(user)])
        );
        // A roomRemoved missing its user is not emitted to the room; a typing
        // without a typer goes to the whole room.
        let env = Envelope::to_room(events::ROOM_REMOVED, room, json!({}));
        assert_eq!(route(&env), Route::Emit(vec![]));
        let env = Envelope::to_room(events::TYPING, room, json!({}));
        assert_eq!(route(&env), Route::Emit(vec![room_channel(room)]));
    }
}
