//! Messages: gap-free posting, idempotency, what a post queues, replies,
//! edits, deletes and history pages.

use roomcast_core::{Kind, Message, MessageId, Role, RoomId};
use roomcast_store::{HistoryPage, Posted, RoomAccess, UNREAD_FANOUT_MAX_MEMBERS};

use super::rooms::seen_by;
use super::{Db, msg, post, refused, room, take, targets, user, users, view_in};

pub async fn concurrent_posts_get_gap_free_seqs_and_one_receive_message_each(db: Db) {
    let a = user(&*db.store, "alice").await;
    let room = room(&*db.store, "r", a, &[]).await;

    let posts = (0..50).map(|i| {
        let store = db.store.clone();
        tokio::spawn(async move {
            let id = format!("m{i}");
            store
                .post_message(msg(room, a, &id, "hello"))
                .await
                .unwrap()
        })
    });
    let mut seqs: Vec<i64> = futures::future::join_all(posts)
        .await
        .into_iter()
        .map(|r| match r.unwrap() {
            Posted::Created(m) => m.seq,
            other => panic!("expected a new message, got {other:?}"),
        })
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=50).collect::<Vec<_>>());

    let out = take(&*db.store).await;
    let out_seqs: Vec<i64> = out
        .iter()
        .filter(|e| e.kind == Kind::ReceiveMessage)
        .map(|e| e.payload_value()["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        out_seqs,
        (1..=50).collect::<Vec<_>>(),
        "outbox rows follow seq order"
    );
    assert_eq!(
        db.store.access(room, a).await.unwrap(),
        RoomAccess::Member {
            last_seq: 50,
            last_event_seq: 50
        }
    );
}

pub async fn reposting_a_client_msg_id_returns_the_stored_message_and_writes_nothing(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = room(s, "r", a, &[b]).await;
    let first = post(s, room, a, "k", "one").await;
    take(s).await;
    let again = s.post_message(msg(room, a, "k", "different body")).await;
    assert_eq!(again.unwrap(), Posted::Existing(first.clone()));
    assert!(take(s).await.is_empty(), "a repeat queues nothing");
    // The key is per sender: bob may use the same clientMsgId.
    assert_eq!(post(s, room, b, "k", "bob").await.seq, 2);
}

pub async fn a_post_queues_receive_message_then_room_updated_per_member(db: Db) {
    let s = &*db.store;
    let [a, b, c] = users(s, ["alice", "bob", "carol"]).await;
    let room = room(s, "r", a, &[b, c]).await;
    let m = post(s, room, b, "k", "hello").await;
    assert_eq!((m.seq, m.body.as_str(), m.sender_id), (1, "hello", b));
    assert!(m.reactions.is_empty() && m.edited_at.is_none() && m.deleted_at.is_none());

    let out = take(s).await;
    assert_eq!(
        targets(&out),
        [
            (Kind::ReceiveMessage, Some(room), None),
            (Kind::RoomUpdated, None, Some(a)),
            (Kind::RoomUpdated, None, Some(b)),
            (Kind::RoomUpdated, None, Some(c)),
        ]
    );
    assert_eq!(
        serde_json::from_str::<Message>(out[0].payload.get()).unwrap(),
        m
    );
    let seen: Vec<(i64, i64)> = out[1..]
        .iter()
        .map(|e| {
            let v = view_in(e);
            assert_eq!(v.last_message.as_ref(), Some(&m));
            assert_eq!(v.room.last_seq, 1);
            (v.read_seq, v.unread_count)
        })
        .collect();
    assert_eq!(
        seen,
        [(0, 1), (1, 0), (0, 1)],
        "the sender has read their own message"
    );
}

pub async fn a_post_in_a_room_over_the_fanout_limit_queues_receive_message_only(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let mut others = Vec::new();
    for i in 0..UNREAD_FANOUT_MAX_MEMBERS {
        others.push(user(s, &format!("u{i}")).await);
    }
    let big = room(s, "big", a, &others).await;
    post(s, big, a, "k", "hello all").await;
    assert_eq!(
        targets(&take(s).await),
        [(Kind::ReceiveMessage, Some(big), None)]
    );
    assert_eq!(seen_by(s, big, others[0]).await, (0, 1), "still counted");
    s.mark_read(big, others[0], 1).await.unwrap();
    assert_eq!(
        targets(&take(s).await),
        [
            (Kind::MessageReadUpdate, Some(big), None),
            (Kind::RoomUpdated, None, Some(others[0]))
        ],
        "the reader still hears of their own marker"
    );
}

pub async fn a_reply_must_be_to_a_message_of_the_same_room(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let room = room(s, "r", a, &[]).await;
    let other = super::room(s, "other", a, &[]).await;
    let first = post(s, room, a, "k1", "question").await;
    let elsewhere = post(s, other, a, "k2", "elsewhere").await;
    take(s).await;

    let mut reply = msg(room, a, "k3", "answer");
    reply.reply_to = Some(first.id);
    let Posted::Created(answer) = s.post_message(reply.clone()).await.unwrap() else {
        panic!("a reply in the same room is stored");
    };
    assert_eq!(answer.reply_to, Some(first.id));
    take(s).await;

    for bad in [elsewhere.id, MessageId::new()] {
        let mut reply = msg(room, a, "k4", "misplaced");
        reply.reply_to = Some(bad);
        refused(s, s.post_message(reply).await, "invalid").await;
    }
    assert_eq!(
        s.access(room, a).await.unwrap(),
        RoomAccess::Member {
            last_seq: 2,
            last_event_seq: 2
        }
    );
    let history = s.history(room, a, HistoryPage::After(0), 10).await.unwrap();
    assert_eq!(
        history.iter().map(|m| m.reply_to).collect::<Vec<_>>(),
        [None, Some(first.id)]
    );
}

pub async fn the_sender_edits_and_a_repeat_changes_nothing(db: Db) {
    let s = &*db.store;
    let [a, b] = users(s, ["alice", "bob"]).await;
    let outsider = user(s, "carol").await;
    let room = room(s, "r", a, &[b]).await;
    let m = post(s, room, b, "k", "helo").await;
    take(s).await;

    let edited = s.edit_message(room, b, m.id, "hello").await.unwrap();
    assert_eq!((edited.seq, edited.body.as_str()), (m.seq, "hello"));
    assert!(edited.edited_at.is_some());
    let out = take(s).await;
    assert_eq!(targets(&out), [(Kind::MessageUpdated, Some(room), None)]);
    assert_eq!(
        serde_json::from_str::<Message>(out[0].payload.get()).unwrap(),
        edited
    );

    assert_eq!(
        s.edit_message(room, b, m.id, "hello").await.unwrap(),
        edited
    );
    assert!(take(s).await.is_empty(), "the same body changes nothing");

    refused(
        s,
        s.edit_message(room, a, m.id, "owner's words").await,
        "forbidden",
    )
    .await;
    refused(
        s,
        s.edit_message(room, outsider, m.id, "x").await,
        "forbidden",
    )
    .await;
    refused(
        s,
        s.edit_message(room, b, MessageId::new(), "x").await,
        "not_found",
    )
    .await;
    refused(
        s,
        s.edit_message(RoomId::new(), b, m.id, "x").await,
        "not_found",
    )
    .await;
    let history = s.history(room, a, HistoryPage::After(0), 10).await.unwrap();
    assert_eq!(history, vec![edited]);
}

pub async fn deleting_keeps_the_seq_and_clears_the_body(db: Db) {
    let s = &*db.store;
    let [o, admin, b, c] = users(s, ["owner", "admin", "bob", "carol"]).await;
    let room = room(s, "r", o, &[admin, b, c]).await;
    s.set_role(room, o, admin, Role::Admin).await.unwrap();
    let m1 = post(s, room, b, "k1", "mine").await;
    let m2 = post(s, room, b, "k2", "rude").await;
    let other = super::room(s, "other", o, &[b]).await;
    take(s).await;

    refused(s, s.delete_message(room, c, m1.id).await, "forbidden").await;
    refused(s, s.delete_message(other, b, m1.id).await, "not_found").await;

    let deleted = s.delete_message(room, b, m1.id).await.unwrap();
    assert_eq!((deleted.seq, deleted.body.as_str()), (1, ""));
    assert!(deleted.deleted_at.is_some());
    let out = take(s).await;
    assert_eq!(targets(&out), [(Kind::MessageDeleted, Some(room), None)]);
    assert_eq!(out[0].payload_value()["body"], "");

    let by_admin = s.delete_message(room, admin, m2.id).await.unwrap();
    assert!(by_admin.deleted_at.is_some());
    take(s).await;
    assert_eq!(s.delete_message(room, b, m2.id).await.unwrap(), by_admin);
    assert!(take(s).await.is_empty(), "deleting again changes nothing");
    refused(s, s.edit_message(room, b, m1.id, "back").await, "conflict").await;

    let history = s.history(room, c, HistoryPage::After(0), 10).await.unwrap();
    assert_eq!(
        history,
        vec![deleted, by_admin],
        "the seqs stay, the bodies are gone"
    );
    assert_eq!(
        s.access(room, c).await.unwrap(),
        RoomAccess::Member {
            last_seq: 2,
            last_event_seq: 4
        }
    );
}

pub async fn history_pages_both_ways_in_seq_order(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let outsider = user(s, "bob").await;
    let room = room(s, "r", a, &[]).await;
    for i in 1..=10 {
        post(s, room, a, &format!("m{i}"), &format!("b{i}")).await;
    }
    let seqs = |page: Vec<Message>| page.iter().map(|m| m.seq).collect::<Vec<_>>();
    let page = |p, n| s.history(room, a, p, n);

    let after = page(HistoryPage::After(3), 4).await.unwrap();
    assert_eq!(after[0].body, "b4");
    assert_eq!(seqs(after), [4, 5, 6, 7]);
    assert_eq!(seqs(page(HistoryPage::After(8), 5).await.unwrap()), [9, 10]);
    assert!(page(HistoryPage::After(10), 5).await.unwrap().is_empty());
    assert_eq!(
        seqs(page(HistoryPage::Before(i64::MAX), 3).await.unwrap()),
        [8, 9, 10]
    );
    assert_eq!(
        seqs(page(HistoryPage::Before(8), 3).await.unwrap()),
        [5, 6, 7]
    );
    assert_eq!(seqs(page(HistoryPage::Before(3), 5).await.unwrap()), [1, 2]);
    assert!(page(HistoryPage::Before(1), 5).await.unwrap().is_empty());

    take(s).await;
    refused(
        s,
        s.history(room, outsider, HistoryPage::After(0), 5).await,
        "forbidden",
    )
    .await;
    refused(
        s,
        s.history(RoomId::new(), a, HistoryPage::After(0), 5).await,
        "not_found",
    )
    .await;
}
