//! Members and roles: who may add, remove and promote whom, and what each
//! change queues.

use roomcast_core::{Kind, Role, RoomId, RoomRemoved, UserId};
use roomcast_store::{HistoryPage, Posted, StoreError};

use super::{Db, msg, post, refused, room, take, targets, user, users, view_in};

pub async fn the_owner_makes_admins_and_nobody_else_changes_roles(db: Db) {
    let s = &*db.store;
    let [a, b, c] = users(s, ["alice", "bob", "carol"]).await;
    let outsider = user(s, "dave").await;
    let room = room(s, "r", a, &[b, c]).await;

    let changed = s.set_role(room, a, b, Role::Admin).await.unwrap();
    assert_eq!(changed.roles[&b], Role::Admin);
    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [a, b, c].map(|u| (Kind::RoomUpdated, None, Some(u)))
    );
    assert!(out.iter().all(|e| view_in(e).room.roles[&b] == Role::Admin));

    s.set_role(room, a, b, Role::Admin).await.unwrap();
    assert!(
        take(s).await.is_empty(),
        "the same role again changes nothing"
    );

    refused(s, s.set_role(room, b, c, Role::Admin).await, "forbidden").await;
    refused(s, s.set_role(room, c, c, Role::Admin).await, "forbidden").await;
    refused(
        s,
        s.set_role(room, outsider, c, Role::Admin).await,
        "forbidden",
    )
    .await;
    refused(s, s.set_role(room, a, c, Role::Owner).await, "invalid").await;
    refused(s, s.set_role(room, a, a, Role::Member).await, "invalid").await;
    refused(
        s,
        s.set_role(room, a, outsider, Role::Admin).await,
        "not_found",
    )
    .await;
    refused(
        s,
        s.set_role(RoomId::new(), a, b, Role::Admin).await,
        "not_found",
    )
    .await;

    let roles = s.room(room, c).await.unwrap().room.roles;
    assert_eq!(
        roles,
        [(a, Role::Owner), (b, Role::Admin), (c, Role::Member)].into()
    );
    s.set_role(room, a, b, Role::Member).await.unwrap();
    assert_eq!(s.room(room, a).await.unwrap().room.roles[&b], Role::Member);
}

pub async fn admins_add_members_once_and_members_may_not(db: Db) {
    let s = &*db.store;
    let [a, b, c, d] = users(s, ["alice", "bob", "carol", "dave"]).await;
    let room = room(s, "r", a, &[b]).await;
    s.set_role(room, a, b, Role::Admin).await.unwrap();
    post(s, room, a, "m1", "before carol").await;
    take(s).await;

    let added = s.add_members(room, b, &[c, c, a]).await.unwrap();
    assert_eq!(added.members, vec![a, b, c]);
    assert_eq!(added.roles[&c], Role::Member);
    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [a, b, c].map(|u| (Kind::RoomUpdated, None, Some(u)))
    );
    let carols = view_in(&out[2]);
    assert_eq!(
        (carols.read_seq, carols.unread_count),
        (1, 0),
        "a new member starts at the latest message"
    );

    assert_eq!(s.add_members(room, a, &[c, b]).await.unwrap(), added);
    assert!(
        take(s).await.is_empty(),
        "adding members again changes nothing"
    );

    refused(s, s.add_members(room, c, &[d]).await, "forbidden").await;
    refused(s, s.add_members(room, d, &[d]).await, "forbidden").await;
    refused(s, s.add_members(RoomId::new(), a, &[d]).await, "not_found").await;
    let ghost = UserId::new();
    let err = s.add_members(room, a, &[d, ghost]).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownUser(id) if id == ghost));
    assert!(take(s).await.is_empty());
    assert_eq!(s.room(room, a).await.unwrap().room.members, vec![a, b, c]);
}

pub async fn who_may_remove_whom(db: Db) {
    let s = &*db.store;
    let [o, a1, a2, m1, m2] = users(s, ["owner", "admin1", "admin2", "member1", "member2"]).await;
    let outsider = user(s, "outsider").await;
    let room = room(s, "r", o, &[a1, a2, m1, m2]).await;
    for admin in [a1, a2] {
        s.set_role(room, o, admin, Role::Admin).await.unwrap();
    }
    take(s).await;

    refused(s, s.remove_member(room, a1, a2).await, "forbidden").await;
    refused(s, s.remove_member(room, a1, o).await, "forbidden").await;
    refused(s, s.remove_member(room, m1, m2).await, "forbidden").await;
    refused(s, s.remove_member(room, m1, a1).await, "forbidden").await;
    refused(s, s.remove_member(room, outsider, m1).await, "forbidden").await;
    refused(s, s.remove_member(room, o, o).await, "conflict").await;
    refused(s, s.remove_member(room, o, outsider).await, "not_found").await;
    refused(s, s.remove_member(RoomId::new(), o, m1).await, "not_found").await;
    assert_eq!(s.room(room, o).await.unwrap().room.members.len(), 5);

    assert!(
        !s.remove_member(room, a1, m1)
            .await
            .unwrap()
            .members
            .contains(&m1)
    );
    assert!(
        !s.remove_member(room, o, a2)
            .await
            .unwrap()
            .members
            .contains(&a2)
    );
    assert!(
        !s.remove_member(room, m2, m2)
            .await
            .unwrap()
            .members
            .contains(&m2)
    );
    assert!(
        !s.remove_member(room, a1, a1)
            .await
            .unwrap()
            .members
            .contains(&a1)
    );
    take(s).await;
    refused(s, s.remove_member(room, o, m1).await, "not_found").await;
    let left = s.remove_member(room, o, o).await.unwrap();
    assert!(left.members.is_empty(), "alone, the owner may leave");
}

pub async fn removal_queues_room_removed_then_room_updated_to_those_left(db: Db) {
    let s = &*db.store;
    let [a, b, c] = users(s, ["alice", "bob", "carol"]).await;
    let room = room(s, "r", a, &[b, c]).await;

    let after = s.remove_member(room, a, b).await.unwrap();
    assert_eq!(after.members, vec![a, c]);
    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [
            (Kind::RoomRemoved, Some(room), Some(b)),
            (Kind::RoomUpdated, None, Some(a)),
            (Kind::RoomUpdated, None, Some(c)),
        ]
    );
    let removed: RoomRemoved = serde_json::from_str(out[0].payload.get()).unwrap();
    assert_eq!(
        removed,
        RoomRemoved {
            room_id: room,
            user_id: b
        }
    );
    assert_eq!(view_in(&out[1]).room, after);

    s.remove_member(room, c, c).await.unwrap();
    assert_eq!(
        targets(&take(s).await),
        [
            (Kind::RoomRemoved, Some(room), Some(c)),
            (Kind::RoomUpdated, None, Some(a)),
        ],
        "leaving is removing oneself"
    );
}

pub async fn a_removed_member_can_do_nothing_more(db: Db) {
    let s = &*db.store;
    let [a, b] = users(s, ["alice", "bob"]).await;
    let room = room(s, "r", a, &[b]).await;
    let m = post(s, room, b, "m1", "bye").await;
    s.remove_member(room, a, b).await.unwrap();
    take(s).await;

    let post = s
        .post_message(msg(room, b, "m2", "still here?"))
        .await
        .unwrap();
    assert_eq!(post, Posted::NotMember);
    refused(s, s.room(room, b).await, "forbidden").await;
    refused(
        s,
        s.history(room, b, HistoryPage::After(0), 10).await,
        "forbidden",
    )
    .await;
    refused(s, s.mark_read(room, b, 1).await, "forbidden").await;
    refused(s, s.react(room, b, m.id, "👍", true).await, "forbidden").await;
    refused(
        s,
        s.edit_message(room, b, m.id, "edited").await,
        "forbidden",
    )
    .await;
    refused(s, s.delete_message(room, b, m.id).await, "forbidden").await;
    refused(s, s.room_presence(room, b).await, "forbidden").await;
    refused(s, s.add_members(room, b, &[b]).await, "forbidden").await;
    assert!(s.rooms_of(b, None, 10).await.unwrap().rooms.is_empty());
    let history = s.history(room, a, HistoryPage::After(0), 10).await.unwrap();
    assert_eq!(history, vec![m], "their message stays, unchanged");
}
