//! Consent to be added: add policies, invitations, and what accepting or
//! declining changes and queues. Each case sets the policies it relies on
//! (the runners' default is `anyone`, see [`super::options`]).

use roomcast_core::{
    AddPolicy, ChatOut, Invitation, InvitationEnd, Kind, RoomKind, Settings, UserId,
};
use roomcast_store::{Store, StoreError};

use super::{Db, post, refused, room, take, targets, users, view_in};

/// Make `users` choose `invite`.
async fn invite_only(s: &dyn Store, users: &[UserId]) {
    for u in users {
        let set = s.set_add_policy(*u, AddPolicy::Invite).await.unwrap();
        assert_eq!(set.add_policy, AddPolicy::Invite);
    }
}

/// The invitation an `invitationReceived` envelope carries.
fn invitation_in(env: &roomcast_core::Envelope) -> Invitation {
    match ChatOut::decode(env) {
        Ok(ChatOut::InvitationReceived(i)) => *i,
        other => panic!("expected invitationReceived, got {other:?}"),
    }
}

pub async fn a_users_policy_is_their_choice_or_the_default(db: Db) {
    let s = &*db.store;
    let [a] = users(s, ["alice"]).await;
    let anyone = Settings {
        add_policy: AddPolicy::Anyone,
    };
    assert_eq!(s.settings(a).await.unwrap(), Some(anyone), "the default");
    invite_only(s, &[a]).await;
    assert_eq!(
        s.settings(a).await.unwrap().unwrap().add_policy,
        AddPolicy::Invite
    );
    assert_eq!(s.settings(UserId::new()).await.unwrap(), None);
    assert!(matches!(
        s.set_add_policy(UserId::new(), AddPolicy::Anyone).await,
        Err(StoreError::UnknownUser(_))
    ));
    assert!(take(s).await.is_empty(), "a setting queues nothing");
}

pub async fn adding_invites_who_chose_invite_and_adds_the_others(db: Db) {
    let s = &*db.store;
    let [a, b, c, d] = users(s, ["alice", "bob", "carol", "dave"]).await;
    invite_only(s, &[c, d]).await;

    let created = s.create_room("team", a, &[b, c]).await.unwrap();
    assert_eq!(created.members, [a, b], "carol is invited, not added");
    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [
            (Kind::RoomUpdated, None, Some(a)),
            (Kind::RoomUpdated, None, Some(b)),
            (Kind::InvitationReceived, None, Some(c)),
        ]
    );
    let inv = invitation_in(&out[2]);
    assert_eq!(
        (
            inv.room_id,
            inv.kind,
            inv.name.as_str(),
            inv.inviter_id,
            inv.user_id
        ),
        (created.id, RoomKind::Group, "team", a, c)
    );
    assert_eq!(s.invitations(c, 10).await.unwrap(), [inv]);
    refused(s, s.room(created.id, c).await, "forbidden").await;

    // Adding again: carol's invitation is pending, so nothing; dave is new.
    let room = s.add_members(created.id, a, &[c, d]).await.unwrap();
    assert_eq!(room.members, [a, b]);
    assert_eq!(
        targets(&take(s).await),
        [(Kind::InvitationReceived, None, Some(d))],
        "one invitation per room and invitee, and no roomUpdated: nobody joined"
    );
    s.add_members(created.id, a, &[c]).await.unwrap();
    assert!(take(s).await.is_empty(), "a repeat queues nothing");

    // An unknown user among them: nothing at all.
    let res = s.add_members(created.id, a, &[UserId::new()]).await;
    assert!(matches!(res, Err(StoreError::UnknownUser(_))), "{res:?}");
    let res = s.create_room("x", a, &[c, UserId::new()]).await;
    assert!(matches!(res, Err(StoreError::UnknownUser(_))), "{res:?}");
    assert!(take(s).await.is_empty());
    assert_eq!(s.invitations(c, 10).await.unwrap().len(), 1);
}

pub async fn accepting_joins_and_declining_leaves_out(db: Db) {
    let s = &*db.store;
    let [a, b, c] = users(s, ["alice", "bob", "carol"]).await;
    invite_only(s, &[b, c]).await;
    let id = room(s, "team", a, &[b, c]).await;
    post(s, id, a, "m1", "before they joined").await;
    take(s).await;

    let joined = s.accept_invitation(id, b).await.unwrap();
    assert_eq!(joined.members, [a, b]);
    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [
            (Kind::InvitationRemoved, None, Some(b)),
            (Kind::RoomUpdated, None, Some(a)),
            (Kind::RoomUpdated, None, Some(b)),
        ]
    );
    let Ok(ChatOut::InvitationRemoved(removed)) = ChatOut::decode(&out[0]) else {
        panic!("not invitationRemoved");
    };
    assert_eq!(removed.reason, InvitationEnd::Accepted);
    let seen = view_in(&out[2]);
    assert_eq!(
        (seen.read_seq, seen.unread_count),
        (1, 0),
        "a group's new member starts at its latest message"
    );
    assert!(s.invitations(b, 10).await.unwrap().is_empty());
    assert_eq!(s.accept_invitation(id, b).await.unwrap().members, [a, b]);
    assert!(take(s).await.is_empty(), "accepting again changes nothing");

    assert!(s.decline_invitation(id, c).await.unwrap());
    let out = take(s).await;
    assert_eq!(targets(&out), [(Kind::InvitationRemoved, None, Some(c))]);
    assert!(!s.decline_invitation(id, c).await.unwrap());
    refused(s, s.accept_invitation(id, c).await, "not_found").await;
    refused(
        s,
        s.accept_invitation(roomcast_core::RoomId::new(), c).await,
        "not_found",
    )
    .await;
    assert_eq!(s.room(id, a).await.unwrap().room.members, [a, b]);

    // Invited again after declining: a new invitation.
    s.add_members(id, a, &[c]).await.unwrap();
    assert_eq!(
        targets(&take(s).await),
        [(Kind::InvitationReceived, None, Some(c))]
    );
}

pub async fn a_dm_with_an_invitee_starts_with_its_opener_alone(db: Db) {
    let s = &*db.store;
    let [a, b] = users(s, ["alice", "bob"]).await;
    invite_only(s, &[b]).await;

    let (dm, created) = s.open_dm(a, b).await.unwrap();
    assert!(created);
    assert_eq!(dm.members, [a]);
    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [
            (Kind::RoomUpdated, None, Some(a)),
            (Kind::InvitationReceived, None, Some(b)),
        ]
    );
    assert_eq!(invitation_in(&out[1]).kind, RoomKind::Dm);
    let (again, created) = s.open_dm(a, b).await.unwrap();
    assert_eq!(
        (again.id, again.members.clone(), created),
        (dm.id, vec![a], false)
    );
    assert!(take(s).await.is_empty(), "opening it again changes nothing");
    post(s, dm.id, a, "m1", "hello?").await;
    take(s).await;

    // Bob opening it is his consent: he joins, with the request unread.
    let (joined, created) = s.open_dm(b, a).await.unwrap();
    assert_eq!((joined.id, created), (dm.id, false));
    assert_eq!(joined.members, [a, b]);
    let view = s.room(dm.id, b).await.unwrap();
    assert_eq!((view.read_seq, view.unread_count), (0, 1));
    assert_eq!(
        targets(&take(s).await),
        [
            (Kind::InvitationRemoved, None, Some(b)),
            (Kind::RoomUpdated, None, Some(a)),
            (Kind::RoomUpdated, None, Some(b)),
        ]
    );
    assert!(s.invitations(b, 10).await.unwrap().is_empty());
}

pub async fn invitations_are_listed_newest_first_per_invitee(db: Db) {
    let s = &*db.store;
    let [a, b, c] = users(s, ["alice", "bob", "carol"]).await;
    invite_only(s, &[c]).await;
    let first = room(s, "first", a, &[c]).await;
    let second = room(s, "second", b, &[c]).await;
    let (dm, _) = s.open_dm(a, c).await.unwrap();
    let all = s.invitations(c, 10).await.unwrap();
    let rooms: Vec<_> = all.iter().map(|i| i.room_id).collect();
    // Same-millisecond invitations order by room id, newest (UUIDv7) first.
    assert_eq!(rooms, [dm.id, second, first]);
    assert_eq!(all[1].inviter_id, b);
    assert_eq!(s.invitations(c, 2).await.unwrap().len(), 2);
    assert!(s.invitations(a, 10).await.unwrap().is_empty());
    // Choosing `anyone` later leaves pending invitations pending.
    s.set_add_policy(c, AddPolicy::Anyone).await.unwrap();
    assert_eq!(s.invitations(c, 10).await.unwrap().len(), 3);
    let joined = s.create_room("third", a, &[c]).await.unwrap();
    assert_eq!(joined.members, [a, c]);
}
