//! Consent to be added to rooms: each user's [`AddPolicy`], and the
//! [`Invitation`] that adding a user who chose `invite` creates instead.
//!
//! - `anyone`: an owner or admin who adds the user (or a user who opens a DM
//!   with them) makes them a member at once, as before issue #16.
//! - `invite`: the add creates an invitation; the user becomes a member only
//!   when they accept it (`POST /v1/invitations/{roomId}/accept`), and
//!   declining it (`…/decline`) leaves them out. Opening a DM with such a
//!   user creates the DM with its opener alone and invites the peer.
//!
//! A user who never chose has the server's default
//! (`rooms.default_add_policy`, `invite` unless configured).

use serde::{Deserialize, Serialize};

use crate::ids::{RoomId, UserId};
use crate::wire::RoomKind;

/// Who may make a user a member of a room without asking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddPolicy {
    /// Any owner or admin adding them, or anyone opening a DM with them.
    Anyone,
    /// Nobody: an add becomes an [`Invitation`] they accept or decline.
    #[default]
    Invite,
}

impl AddPolicy {
    /// The wire name (also the stored form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anyone => "anyone",
            Self::Invite => "invite",
        }
    }

    /// Parse the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "anyone" => Some(Self::Anyone),
            "invite" => Some(Self::Invite),
            _ => None,
        }
    }
}

/// A user's own settings: `settings` in `GET /v1/me`, the body and answer of
/// `PATCH /v1/me/settings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// Who may add them to rooms (their own choice, or the server's default).
    pub add_policy: AddPolicy,
}

/// An invitation to a room, as its invitee sees it: an entry of
/// `GET /v1/invitations` and the payload of `invitationReceived`.
///
/// One per (room, invitee): inviting again while one is pending changes
/// nothing. The invitee is not a member, and sees no more of the room than
/// this until they accept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    /// The room.
    pub room_id: RoomId,
    /// Its kind: a group room, or a DM someone opened with the invitee.
    pub kind: RoomKind,
    /// Its name.
    pub name: String,
    /// Who invited them (added them, or opened the DM).
    pub inviter_id: UserId,
    /// The invitee (also the recipient of `invitationReceived`).
    pub user_id: UserId,
    /// When, RFC 3339.
    pub created_at: String,
}

/// Why an invitation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationEnd {
    /// The invitee accepted: they are a member now (`roomUpdated` follows).
    Accepted,
    /// The invitee declined.
    Declined,
}

/// Payload of `invitationRemoved`, to the invitee's own sockets (all their
/// devices): the invitation to `roomId` is no longer pending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationRemoved {
    /// The room.
    pub room_id: RoomId,
    /// The invitee (also the recipient).
    pub user_id: UserId,
    /// Accepted or declined.
    pub reason: InvitationEnd,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_have_one_name_each_way() {
        for p in [AddPolicy::Anyone, AddPolicy::Invite] {
            assert_eq!(AddPolicy::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), json!(p.as_str()));
        }
        assert_eq!(AddPolicy::parse("everyone"), None);
        assert_eq!(AddPolicy::default(), AddPolicy::Invite);
    }

    #[test]
    fn an_invitation_is_camel_case_on_the_wire() {
        let inv = Invitation {
            room_id: RoomId::new(),
            kind: RoomKind::Dm,
            name: "a, b".into(),
            inviter_id: UserId::new(),
            user_id: UserId::new(),
            created_at: "t".into(),
        };
        let v = serde_json::to_value(&inv).unwrap();
        assert_eq!(v["kind"], "dm");
        assert!(v["roomId"].is_string() && v["inviterId"].is_string());
        assert_eq!(serde_json::from_value::<Invitation>(v).unwrap(), inv);
    }
}
