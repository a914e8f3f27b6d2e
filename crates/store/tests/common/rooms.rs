//! Rooms: creating group rooms and DMs, who sees them, the room list,
//! renaming.

use roomcast_core::{Kind, Role, RoomId, RoomKind, UserId, now_ms};
use roomcast_store::{Posted, RoomAccess, Store, StoreError};

use super::{Db, msg, post, refused, room, take, targets, user, users, view_in};

/// Wait (without sleeping) until the millisecond clock has moved on, so
/// the next change's activity time is later than everything before it.
pub async fn next_ms() {
    let now = now_ms();
    while now_ms() == now {
        tokio::task::yield_now().await;
    }
}

pub async fn a_room_lists_its_creator_first_as_owner_and_queues_room_updated_per_member(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = s.create_room("general", a, &[b, a, b]).await.unwrap();
    assert_eq!(room.members, vec![a, b]);
    assert_eq!(room.kind, RoomKind::Group);
    assert_eq!(room.roles, [(a, Role::Owner), (b, Role::Member)].into());
    assert_eq!(
        (room.last_seq, &room.last_activity_at),
        (0, &room.created_at)
    );

    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [
            (Kind::RoomUpdated, None, Some(a)),
            (Kind::RoomUpdated, None, Some(b))
        ]
    );
    for env in &out {
        let view = view_in(env);
        assert_eq!(view.room, room);
        assert_eq!((view.read_seq, view.unread_count), (0, 0));
        assert_eq!(view.last_message, None);
    }
}

pub async fn an_unknown_member_creates_nothing(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let ghost = UserId::new();
    let err = s.create_room("r", a, &[ghost]).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownUser(id) if id == ghost));
    assert!(s.rooms_of(a, None, 10).await.unwrap().rooms.is_empty());
    assert!(take(s).await.is_empty());
}

pub async fn access_tells_member_non_member_and_missing_room_apart(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = room(s, "r", a, &[]).await;
    assert_eq!(
        s.access(room, a).await.unwrap(),
        RoomAccess::Member {
            last_seq: 0,
            last_event_seq: 0
        }
    );
    assert_eq!(s.access(room, b).await.unwrap(), RoomAccess::NotMember);
    assert_eq!(
        s.access(RoomId::new(), a).await.unwrap(),
        RoomAccess::NoRoom
    );
    let post = s.post_message(msg(room, b, "x", "hi")).await.unwrap();
    assert_eq!(post, Posted::NotMember);
    let post = s.post_message(msg(RoomId::new(), a, "x", "hi")).await;
    assert_eq!(post.unwrap(), Posted::NoRoom);
    assert!(take(s).await.is_empty(), "refused posts queue nothing");
}

pub async fn a_room_is_seen_by_members_only(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = room(s, "r", a, &[]).await;
    let view = s.room(room, a).await.unwrap();
    assert_eq!((view.room.id, view.room.members.clone()), (room, vec![a]));
    refused(s, s.room(room, b).await, "forbidden").await;
    refused(s, s.room(RoomId::new(), a).await, "not_found").await;
}

pub async fn a_dm_is_one_room_from_either_side(db: Db) {
    let s = &*db.store;
    let a = user(s, "bob").await;
    let b = user(s, "Alice").await;
    let (dm, created) = s.open_dm(a, b).await.unwrap();
    assert!(created);
    assert_eq!(dm.kind, RoomKind::Dm);
    assert_eq!(dm.name, "Alice, bob");
    assert_eq!(dm.members, vec![a, b]);
    assert_eq!(dm.roles, [(a, Role::Member), (b, Role::Member)].into());
    assert_eq!(
        targets(&take(s).await),
        [
            (Kind::RoomUpdated, None, Some(a)),
            (Kind::RoomUpdated, None, Some(b))
        ]
    );

    assert_eq!(s.open_dm(b, a).await.unwrap(), (dm.clone(), false));
    assert_eq!(s.open_dm(a, b).await.unwrap(), (dm.clone(), false));
    assert!(take(s).await.is_empty(), "reopening queues nothing");

    refused(s, s.open_dm(a, a).await, "invalid").await;
    let ghost = UserId::new();
    let err = s.open_dm(a, ghost).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownUser(id) if id == ghost));
    let c = user(s, "carol").await;
    let (other, created) = s.open_dm(c, a).await.unwrap();
    assert!(created && other.id != dm.id, "another pair, another DM");
}

pub async fn a_dm_keeps_its_two_members(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let c = user(s, "carol").await;
    let (dm, _) = s.open_dm(a, b).await.unwrap();
    take(s).await;
    refused(s, s.add_members(dm.id, a, &[c]).await, "invalid").await;
    refused(s, s.remove_member(dm.id, a, b).await, "invalid").await;
    refused(s, s.remove_member(dm.id, a, a).await, "invalid").await;
    refused(s, s.rename_room(dm.id, a, "x").await, "invalid").await;
    refused(s, s.set_role(dm.id, a, b, Role::Admin).await, "invalid").await;
    refused(s, s.add_members(dm.id, c, &[c]).await, "forbidden").await;
    assert_eq!(s.room(dm.id, a).await.unwrap().room, dm, "unchanged");
}

pub async fn the_room_list_is_latest_activity_first_in_cursor_pages(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let mut rooms = Vec::new();
    for i in 0..5 {
        next_ms().await;
        let members = if i == 2 { vec![b] } else { vec![] };
        rooms.push(room(s, &format!("r{i}"), a, &members).await);
    }
    next_ms().await;
    let bump = post(s, rooms[1], a, "k", "bump").await;
    let expected = [rooms[1], rooms[4], rooms[3], rooms[2], rooms[0]];

    let whole = s.rooms_of(a, None, 100).await.unwrap();
    let ids: Vec<RoomId> = whole.rooms.iter().map(|v| v.room.id).collect();
    assert_eq!(ids, expected);
    assert_eq!(whole.next, None);
    assert_eq!(whole.rooms[0].last_message, Some(bump.clone()));
    assert_eq!(whole.rooms[0].room.last_activity_at, bump.created_at);
    assert_eq!(
        (whole.rooms[0].read_seq, whole.rooms[0].unread_count),
        (1, 0)
    );

    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s.rooms_of(a, cursor.as_deref(), 2).await.unwrap();
        pages += 1;
        assert!(page.rooms.len() <= 2);
        paged.extend(page.rooms.iter().map(|v| v.room.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!((paged.as_slice(), pages), (&expected[..], 3));

    take(s).await;
    let bobs = s.rooms_of(b, None, 10).await.unwrap();
    assert_eq!(bobs.rooms.len(), 1);
    assert_eq!(bobs.rooms[0].room.id, rooms[2]);
    refused(s, s.rooms_of(a, Some("garbage"), 2).await, "invalid").await;
    refused(s, s.rooms_of(a, None, 0).await, "invalid").await;
}

pub async fn owners_and_admins_rename_and_members_may_not(db: Db) {
    let s = &*db.store;
    let [a, b, c, d] = users(s, ["alice", "bob", "carol", "dave"]).await;
    let room = room(s, "r", a, &[b, c]).await;
    s.set_role(room, a, b, Role::Admin).await.unwrap();
    take(s).await;

    let renamed = s.rename_room(room, a, "owner's").await.unwrap();
    assert_eq!(renamed.name, "owner's");
    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [a, b, c].map(|u| (Kind::RoomUpdated, None, Some(u)))
    );
    assert!(out.iter().all(|e| view_in(e).room.name == "owner's"));
    assert_eq!(
        s.rename_room(room, b, "admin's").await.unwrap().name,
        "admin's"
    );
    take(s).await;

    assert_eq!(
        s.rename_room(room, b, "admin's").await.unwrap().name,
        "admin's"
    );
    assert!(take(s).await.is_empty(), "the same name changes nothing");
    refused(s, s.rename_room(room, c, "member's").await, "forbidden").await;
    refused(s, s.rename_room(room, d, "outsider's").await, "forbidden").await;
    refused(s, s.rename_room(RoomId::new(), a, "x").await, "not_found").await;
    assert_eq!(s.room(room, a).await.unwrap().room.name, "admin's");
}

/// The room as `viewer` sees it (a shorthand for the cases).
pub async fn seen_by(s: &dyn Store, room: RoomId, viewer: UserId) -> (i64, i64) {
    let v = s.room(room, viewer).await.unwrap();
    (v.read_seq, v.unread_count)
}
