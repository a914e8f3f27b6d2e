//! `chat.out`, typed both ways: [`ChatOut`] is what a producer builds (the
//! store, in the transaction that keeps the event; the realtime tier for
//! `typing`), one variant per event with its payload type, encoded into an
//! [`Envelope`] once; [`Route`] is what the realtime tier reads back off an
//! envelope to route it, without parsing the payload it passes through
//! (only `roomUpdatedMany`, which it turns into per-member views, and
//! `typing`'s typer are parsed).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::consent::{Invitation, InvitationRemoved};
use crate::contract::{Skip, user, version};
use crate::envelope::{Envelope, raw};
use crate::ids::{RoomId, UserId};
use crate::kind::Kind;
use crate::wire::{
    Message, Presence, ReactionEvent, ReadUpdate, RoomRemoved, RoomUpdates, RoomView,
    SessionRevoked, Typing,
};

/// A `chat.out` event with its payload. Its targets follow from it: a room
/// event goes to its room, [`ChatOut::RoomUpdated`], [`ChatOut::Presence`]
/// and the invitation events to their user, [`ChatOut::RoomRemoved`] to both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatOut {
    /// `receiveMessage`.
    ReceiveMessage(Message),
    /// `messageUpdated`.
    MessageUpdated(Message),
    /// `messageDeleted` (body `""`, `deletedAt` set, seq kept).
    MessageDeleted(Message),
    /// `reactionAdded`.
    ReactionAdded(ReactionEvent),
    /// `reactionRemoved`.
    ReactionRemoved(ReactionEvent),
    /// `messageReadUpdate`.
    MessageReadUpdate(ReadUpdate),
    /// `roomUpdated` to one user.
    RoomUpdated {
        /// Who is told.
        to: UserId,
        /// The room as they see it.
        view: Box<RoomView>,
    },
    /// `roomUpdatedMany` (internal): a `roomUpdated` to each member named.
    RoomUpdatedMany(Box<RoomUpdates>),
    /// `roomRemoved`: the user's sockets leave the room, then are told.
    RoomRemoved(RoomRemoved),
    /// `typing` (not stored).
    Typing(Typing),
    /// `presence` to one user about a co-member.
    Presence {
        /// Who is told.
        to: UserId,
        /// About whom.
        presence: Presence,
    },
    /// `invitationReceived` to the invitee.
    InvitationReceived(Box<Invitation>),
    /// `invitationRemoved` to the invitee.
    InvitationRemoved(InvitationRemoved),
    /// `sessionRevoked` to the session's user.
    SessionRevoked(SessionRevoked),
}

impl ChatOut {
    /// Its [`Kind`].
    pub fn kind(&self) -> Kind {
        match self {
            Self::ReceiveMessage(_) => Kind::ReceiveMessage,
            Self::MessageUpdated(_) => Kind::MessageUpdated,
            Self::MessageDeleted(_) => Kind::MessageDeleted,
            Self::ReactionAdded(_) => Kind::ReactionAdded,
            Self::ReactionRemoved(_) => Kind::ReactionRemoved,
            Self::MessageReadUpdate(_) => Kind::MessageReadUpdate,
            Self::RoomUpdated { .. } => Kind::RoomUpdated,
            Self::RoomUpdatedMany(_) => Kind::RoomUpdatedMany,
            Self::RoomRemoved(_) => Kind::RoomRemoved,
            Self::Typing(_) => Kind::Typing,
            Self::Presence { .. } => Kind::Presence,
            Self::InvitationReceived(_) => Kind::InvitationReceived,
            Self::InvitationRemoved(_) => Kind::InvitationRemoved,
            Self::SessionRevoked(_) => Kind::SessionRevoked,
        }
    }

    /// The envelope's `roomId` and `userId`.
    pub fn targets(&self) -> (Option<RoomId>, Option<UserId>) {
        match self {
            Self::ReceiveMessage(m) | Self::MessageUpdated(m) | Self::MessageDeleted(m) => {
                (Some(m.room_id), None)
            }
            Self::ReactionAdded(r) | Self::ReactionRemoved(r) => (Some(r.room_id), None),
            Self::MessageReadUpdate(r) => (Some(r.room_id), None),
            Self::RoomUpdated { to, .. } | Self::Presence { to, .. } => (None, Some(*to)),
            Self::RoomUpdatedMany(u) => (Some(u.room.id), None),
            Self::RoomRemoved(r) => (Some(r.room_id), Some(r.user_id)),
            Self::Typing(t) => (Some(t.room_id), None),
            Self::InvitationReceived(i) => (None, Some(i.user_id)),
            Self::InvitationRemoved(i) => (None, Some(i.user_id)),
            Self::SessionRevoked(s) => (None, Some(s.user_id)),
        }
    }

    /// Whether it goes into its room's event log ([`Kind::is_logged`]).
    pub fn is_logged(&self) -> bool {
        self.kind().is_logged()
    }

    /// Its envelope, the payload encoded here, once; a logged event's
    /// position `event_seq` goes on the envelope and, for clients, into the
    /// payload as `eventSeq`.
    pub fn envelope(&self, event_seq: Option<i64>) -> Envelope {
        let (room, user) = self.targets();
        let mut env = Envelope::new(self.kind(), room, user, self.payload(event_seq));
        env.event_seq = event_seq;
        env
    }

    fn payload(&self, event_seq: Option<i64>) -> Box<RawValue> {
        match self {
            Self::ReceiveMessage(m) | Self::MessageUpdated(m) | Self::MessageDeleted(m) => {
                with_seq(m, event_seq)
            }
            Self::ReactionAdded(r) | Self::ReactionRemoved(r) => with_seq(r, event_seq),
            Self::MessageReadUpdate(r) => with_seq(r, event_seq),
            Self::RoomUpdated { view, .. } => raw(view),
            Self::RoomUpdatedMany(u) => raw(u),
            Self::RoomRemoved(r) => raw(r),
            Self::Typing(t) => raw(t),
            Self::Presence { presence, .. } => raw(presence),
            Self::InvitationReceived(i) => raw(i),
            Self::InvitationRemoved(i) => raw(i),
            Self::SessionRevoked(s) => raw(s),
        }
    }

    /// The event of a `chat.out` envelope, its payload parsed (tests, tools
    /// and consumers that read payloads; routing uses [`Route`]).
    pub fn decode(env: &Envelope) -> Result<Self, Skip> {
        version(env)?;
        Ok(match &env.kind {
            Kind::ReceiveMessage => Self::ReceiveMessage(parse(env)?),
            Kind::MessageUpdated => Self::MessageUpdated(parse(env)?),
            Kind::MessageDeleted => Self::MessageDeleted(parse(env)?),
            Kind::ReactionAdded => Self::ReactionAdded(parse(env)?),
            Kind::ReactionRemoved => Self::ReactionRemoved(parse(env)?),
            Kind::MessageReadUpdate => Self::MessageReadUpdate(parse(env)?),
            Kind::RoomUpdated => Self::RoomUpdated {
                to: user(env)?,
                view: parse(env)?,
            },
            Kind::RoomUpdatedMany => Self::RoomUpdatedMany(parse(env)?),
            Kind::RoomRemoved => Self::RoomRemoved(parse(env)?),
            Kind::Typing => Self::Typing(parse(env)?),
            Kind::Presence => Self::Presence {
                to: user(env)?,
                presence: parse(env)?,
            },
            Kind::InvitationReceived => Self::InvitationReceived(parse(env)?),
            Kind::InvitationRemoved => Self::InvitationRemoved(parse(env)?),
            Kind::SessionRevoked => Self::SessionRevoked(parse(env)?),
            other => return Err(Skip::UnknownKind(other.to_string())),
        })
    }
}

impl Envelope {
    /// The events this envelope stands for, as users receive them (tests and
    /// tools): a `roomUpdatedMany` becomes one `roomUpdated` (user target)
    /// per member it names, in user-id order, as the realtime tier emits
    /// them (a malformed one becomes nothing); any other envelope is itself.
    pub fn expand(self) -> Vec<Envelope> {
        if self.kind != Kind::RoomUpdatedMany {
            return vec![self];
        }
        let Ok(ChatOut::RoomUpdatedMany(updates)) = ChatOut::decode(&self) else {
            return Vec::new();
        };
        updates
            .views()
            .map(|(to, view)| {
                ChatOut::RoomUpdated {
                    to,
                    view: Box::new(view),
                }
                .envelope(None)
            })
            .collect()
    }
}

/// `body` as JSON text with `eventSeq` first, when given.
fn with_seq<T: Serialize>(body: &T, event_seq: Option<i64>) -> Box<RawValue> {
    #[derive(Serialize)]
    struct Logged<'a, T: Serialize> {
        #[serde(rename = "eventSeq")]
        event_seq: i64,
        #[serde(flatten)]
        body: &'a T,
    }
    match event_seq {
        Some(event_seq) => raw(&Logged { event_seq, body }),
        None => raw(body),
    }
}

/// The payload of `env`, parsed.
pub(crate) fn parse<T: DeserializeOwned>(env: &Envelope) -> Result<T, Skip> {
    serde_json::from_str(env.payload.get())
        .map_err(|e| Skip::malformed(env, format!("payload: {e}")))
}

/// How the realtime tier routes a `chat.out` envelope. The payload it emits
/// is the envelope's, unchanged.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// A logged room event ([`Kind::is_logged`]) with its position: to
    /// `room:<room>`, once per socket, in `eventSeq` order.
    Logged {
        /// The room.
        room: RoomId,
        /// Its position in the room's event log.
        event_seq: i64,
    },
    /// A logged room event without a position (written before the event
    /// log existed): to `room:<room>` as it comes.
    ToRoom {
        /// The room.
        room: RoomId,
    },
    /// `roomUpdated`, `presence` or an invitation event: to `user:<user>`.
    ToUser {
        /// The user.
        user: UserId,
    },
    /// `roomUpdatedMany`: each member named gets their own `roomUpdated`.
    RoomUpdatedMany(Box<RoomUpdates>),
    /// `roomRemoved`: the user's sockets leave the room, then the event
    /// goes to `user:<user>` only.
    RoomRemoved {
        /// The room left.
        room: RoomId,
        /// The user removed.
        user: UserId,
    },
    /// `sessionRevoked`: to `user:<user>`, then the sockets of `session`
    /// are disconnected.
    SessionRevoked(SessionRevoked),
    /// `typing`: to `room:<room>` except the typer's sockets.
    Typing {
        /// The room.
        room: RoomId,
        /// Whose sockets are skipped (`None`: nobody's).
        typer: Option<UserId>,
    },
}

impl Route {
    /// How to route `env`; an envelope this build cannot read is a [`Skip`].
    pub fn of(env: &Envelope) -> Result<Self, Skip> {
        version(env)?;
        let room = || {
            env.room_id
                .ok_or_else(|| Skip::malformed(env, "no roomId in the envelope"))
        };
        Ok(match &env.kind {
            k if k.is_logged() => match env.event_seq {
                Some(event_seq) => Self::Logged {
                    room: room()?,
                    event_seq,
                },
                None => Self::ToRoom { room: room()? },
            },
            Kind::RoomUpdated
            | Kind::Presence
            | Kind::InvitationReceived
            | Kind::InvitationRemoved => Self::ToUser { user: user(env)? },
            Kind::RoomUpdatedMany => Self::RoomUpdatedMany(parse(env)?),
            // Never tell a whole room it was removed: both targets or nothing.
            Kind::RoomRemoved => Self::RoomRemoved {
                room: room()?,
                user: user(env)?,
            },
            Kind::SessionRevoked => Self::SessionRevoked(parse(env)?),
            Kind::Typing => Self::Typing {
                room: room()?,
                typer: serde_json::from_str::<TypingOf>(env.payload.get())
                    .ok()
                    .and_then(|t| t.user_id),
            },
            other => return Err(Skip::UnknownKind(other.to_string())),
        })
    }
}

/// The typer of a `typing` payload, if it names one.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypingOf {
    #[serde(default)]
    user_id: Option<UserId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ENVELOPE_VERSION;
    use crate::{MessageId, Role, Room, RoomKind};
    use serde_json::json;

    fn message(room: RoomId) -> Message {
        Message {
            id: MessageId::new(),
            room_id: room,
            seq: 3,
            sender_id: UserId::new(),
            client_msg_id: "c1".into(),
            body: "hi".into(),
            reply_to: None,
            created_at: "t".into(),
            edited_at: None,
            deleted_at: None,
            reactions: Vec::new(),
        }
    }

    #[test]
    fn a_logged_event_carries_its_position_in_the_envelope_and_the_payload() {
        let room = RoomId::new();
        let event = ChatOut::ReceiveMessage(message(room));
        let env = event.envelope(Some(7));
        assert_eq!(
            (env.kind.clone(), env.room_id, env.event_seq),
            (Kind::ReceiveMessage, Some(room), Some(7))
        );
        assert_eq!(env.payload_value()["eventSeq"], 7);
        assert_eq!(env.payload_value()["body"], "hi");
        let back = Envelope::from_bytes(&env.encode().bytes).unwrap();
        assert_eq!(ChatOut::decode(&back), Ok(event));
        assert_eq!(Route::of(&back), Ok(Route::Logged { room, event_seq: 7 }));
        let unlogged = ChatOut::ReceiveMessage(message(room)).envelope(None);
        assert!(unlogged.payload_value().get("eventSeq").is_none());
        assert_eq!(Route::of(&unlogged), Ok(Route::ToRoom { room }));
    }

    #[test]
    fn targets_follow_from_the_event() {
        let (room, user) = (RoomId::new(), UserId::new());
        let removed = ChatOut::RoomRemoved(RoomRemoved {
            room_id: room,
            user_id: user,
        })
        .envelope(None);
        assert_eq!((removed.room_id, removed.user_id), (Some(room), Some(user)));
        assert_eq!(Route::of(&removed), Ok(Route::RoomRemoved { room, user }));
        let presence = ChatOut::Presence {
            to: user,
            presence: Presence {
                user_id: UserId::new(),
                online: true,
                last_seen_at: None,
            },
        };
        let env = presence.envelope(None);
        assert_eq!((env.room_id, env.user_id), (None, Some(user)));
        assert_eq!(Route::of(&env), Ok(Route::ToUser { user }));
        assert_eq!(ChatOut::decode(&env), Ok(presence));
        let typing = ChatOut::Typing(Typing {
            room_id: room,
            user_id: user,
            typing: true,
        })
        .envelope(None);
        assert_eq!(
            Route::of(&typing),
            Ok(Route::Typing {
                room,
                typer: Some(user)
            })
        );
    }

    #[test]
    fn invitation_events_go_to_the_invitee() {
        let (room, user) = (RoomId::new(), UserId::new());
        let received = ChatOut::InvitationReceived(Box::new(Invitation {
            room_id: room,
            kind: crate::RoomKind::Group,
            name: "team".into(),
            inviter_id: UserId::new(),
            user_id: user,
            created_at: "t".into(),
        }));
        let removed = ChatOut::InvitationRemoved(InvitationRemoved {
            room_id: room,
            user_id: user,
            reason: crate::InvitationEnd::Declined,
        });
        let revoked = ChatOut::SessionRevoked(SessionRevoked {
            user_id: user,
            session_id: crate::SessionId::new(),
        });
        let env = revoked.envelope(None);
        assert_eq!(env.user_id, Some(user));
        let Ok(Route::SessionRevoked(s)) = Route::of(&env) else {
            panic!("not routed as sessionRevoked");
        };
        assert_eq!(ChatOut::decode(&env), Ok(ChatOut::SessionRevoked(s)));
        for event in [received, removed] {
            let env = event.envelope(None);
            assert_eq!((env.room_id, env.user_id), (None, Some(user)));
            assert!(!event.is_logged());
            assert_eq!(Route::of(&env), Ok(Route::ToUser { user }));
            assert_eq!(ChatOut::decode(&env), Ok(event));
        }
    }

    #[test]
    fn room_updated_many_routes_with_its_views() {
        let (a, b, room) = (UserId::new(), UserId::new(), RoomId::new());
        let updates = RoomUpdates {
            room: Room {
                id: room,
                kind: RoomKind::Dm,
                name: "a, b".into(),
                members: vec![a, b],
                roles: [(a, Role::Member), (b, Role::Member)].into(),
                last_seq: 5,
                created_at: "t0".into(),
                last_activity_at: "t1".into(),
            },
            last_message: None,
            reads: [(a, 5), (b, 2)].into(),
        };
        let env = ChatOut::RoomUpdatedMany(Box::new(updates.clone())).envelope(None);
        assert_eq!(env.room_id, Some(room));
        let Ok(Route::RoomUpdatedMany(got)) = Route::of(&env) else {
            panic!("not routed as roomUpdatedMany");
        };
        assert_eq!(*got, updates);
        assert_eq!(got.view_for(b).unwrap().unread_count, 3);
    }

    #[test]
    fn what_cannot_be_routed_is_skipped() {
        let (room, user) = (RoomId::new(), UserId::new());
        let unknown = Envelope::to_user(Kind::parse("teleport"), user, json!({}));
        assert_eq!(
            Route::of(&unknown),
            Err(Skip::UnknownKind("teleport".into()))
        );
        assert_eq!(
            ChatOut::decode(&unknown),
            Err(Skip::UnknownKind("teleport".into()))
        );
        let mut newer = Envelope::to_user(Kind::RoomUpdated, user, json!({}));
        newer.v = ENVELOPE_VERSION + 1;
        assert_eq!(
            Route::of(&newer),
            Err(Skip::NewerVersion(ENVELOPE_VERSION + 1))
        );
        let half_removed = Envelope::to_user(Kind::RoomRemoved, user, json!({}));
        assert!(matches!(
            Route::of(&half_removed),
            Err(Skip::Malformed { .. })
        ));
        let garbled = Envelope::to_room(Kind::RoomUpdatedMany, room, json!([]));
        assert!(matches!(Route::of(&garbled), Err(Skip::Malformed { .. })));
        let no_target = Envelope::new(Kind::ReceiveMessage, None, None, raw(&json!({})));
        assert!(matches!(Route::of(&no_target), Err(Skip::Malformed { .. })));
        let bad_payload = Envelope::to_room(Kind::ReceiveMessage, room, json!({"body": 1}));
        assert!(matches!(
            ChatOut::decode(&bad_payload),
            Err(Skip::Malformed { .. })
        ));
    }
}
