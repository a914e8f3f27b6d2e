//! Read markers and unread counts.

use roomcast_core::{Kind, ReadUpdate, RoomId};
use roomcast_store::ReadMarked;

use super::rooms::seen_by;
use super::{Db, post, refused, room, take, targets, user, users, view_in};

pub async fn unread_counts_follow_each_members_read_marker(db: Db) {
    let s = &*db.store;
    let [a, b, c] = users(s, ["alice", "bob", "carol"]).await;
    let room = room(s, "r", a, &[b, c]).await;
    post(s, room, a, "a1", "one").await;
    post(s, room, a, "a2", "two").await;
    post(s, room, b, "b1", "three").await;

    assert_eq!(
        seen_by(s, room, a).await,
        (2, 1),
        "alice read up to her own post"
    );
    assert_eq!(seen_by(s, room, b).await, (3, 0));
    assert_eq!(seen_by(s, room, c).await, (0, 3));

    s.mark_read(room, c, 2).await.unwrap();
    assert_eq!(seen_by(s, room, c).await, (2, 1));
    assert_eq!(
        seen_by(s, room, a).await,
        (2, 1),
        "one reader moves only their marker"
    );

    for (u, expected) in [(a, 1), (b, 0), (c, 1)] {
        let list = s.rooms_of(u, None, 10).await.unwrap();
        assert_eq!(list.rooms[0].unread_count, expected);
    }
}

pub async fn the_read_marker_only_moves_forward_and_is_capped(db: Db) {
    let s = &*db.store;
    let [a, b] = users(s, ["alice", "bob"]).await;
    let outsider = user(s, "carol").await;
    let room = room(s, "r", a, &[b]).await;
    for i in 1..=5 {
        post(s, room, a, &format!("m{i}"), "hi").await;
    }
    take(s).await;

    let marked = s.mark_read(room, b, 2).await.unwrap();
    assert_eq!(
        marked,
        ReadMarked {
            moved: true,
            read_seq: 2,
            unread_count: 3
        }
    );
    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [
            (Kind::MessageReadUpdate, Some(room), None),
            (Kind::RoomUpdated, None, Some(b)),
        ]
    );
    let update: ReadUpdate = serde_json::from_str(out[0].payload.get()).unwrap();
    assert_eq!(
        update,
        ReadUpdate {
            room_id: room,
            user_id: b,
            seq: 2
        }
    );
    let view = view_in(&out[1]);
    assert_eq!((view.read_seq, view.unread_count), (2, 3));

    for back in [1, 2, 0, -4] {
        let marked = s.mark_read(room, b, back).await.unwrap();
        assert_eq!(
            marked,
            ReadMarked {
                moved: false,
                read_seq: 2,
                unread_count: 3
            }
        );
    }
    assert!(
        take(s).await.is_empty(),
        "a marker not ahead queues nothing"
    );

    let capped = s.mark_read(room, b, 100).await.unwrap();
    assert_eq!(
        (capped.moved, capped.read_seq, capped.unread_count),
        (true, 5, 0)
    );
    assert_eq!(take(s).await.len(), 2);
    assert!(!s.mark_read(room, b, 100).await.unwrap().moved);
    assert!(take(s).await.is_empty());

    refused(s, s.mark_read(room, outsider, 1).await, "forbidden").await;
    refused(s, s.mark_read(RoomId::new(), b, 1).await, "not_found").await;
}
