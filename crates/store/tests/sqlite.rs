//! The store's rules, on a real SQLite file.

use std::sync::Arc;

use roomcast_core::{RoomId, UserId, events, topics};
use roomcast_store::{Access, NewMessage, Posted, SqliteStore, Store, StoreError};

struct Db {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    Db { store, _dir: dir }
}

async fn user(s: &dyn Store, name: &str) -> UserId {
    s.create_user(name, "hash").await.unwrap().id
}

fn msg<'a>(room: RoomId, sender: UserId, id: &'a str, body: &'a str) -> NewMessage<'a> {
    NewMessage {
        room_id: room,
        sender_id: sender,
        client_msg_id: id,
        body,
    }
}

#[tokio::test]
async fn usernames_are_unique_regardless_of_case() {
    let db = db().await;
    user(&*db.store, "Alice").await;
    let again = db.store.create_user("alice", "h").await;
    assert!(matches!(again, Err(StoreError::UsernameTaken)));
    let creds = db.store.credentials("ALICE").await.unwrap().unwrap();
    assert_eq!(creds.user.username, "Alice");
    assert_eq!(creds.password_hash, "hash");
}

#[tokio::test]
async fn a_room_lists_its_creator_first_and_queues_room_updated_per_member() {
    let db = db().await;
    let a = user(&*db.store, "alice").await;
    let b = user(&*db.store, "bob").await;
    let room = db
        .store
        .create_room("general", a, &[b, a, b])
        .await
        .unwrap();
    assert_eq!(room.members, vec![a, b]);
    let outbox = db.store.outbox_pending(100).await.unwrap();
    let targets: Vec<_> = outbox.iter().map(|o| o.envelope.user_id.unwrap()).collect();
    assert_eq!(targets, vec![a, b]);
    assert!(outbox.iter().all(|o| o.topic == topics::CHAT_OUT
        && o.envelope.kind == events::ROOM_UPDATED
        && o.envelope.payload["id"] == room.id.to_string()));
}

#[tokio::test]
async fn an_unknown_member_creates_nothing() {
    let db = db().await;
    let a = user(&*db.store, "alice").await;
    let ghost = UserId::new();
    let err = db.store.create_room("r", a, &[ghost]).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownUser(id) if id == ghost));
    assert!(db.store.rooms_of(a).await.unwrap().is_empty());
    assert!(db.store.outbox_pending(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn access_tells_member_non_member_and_missing_room_apart() {
    let db = db().await;
    let a = user(&*db.store, "alice").await;
    let b = user(&*db.store, "bob").await;
    let room = db.store.create_room("r", a, &[]).await.unwrap();
    assert_eq!(
        db.store.access(room.id, a).await.unwrap(),
        Access::Member { last_seq: 0 }
    );
    assert_eq!(
        db.store.access(room.id, b).await.unwrap(),
        Access::NotMember
    );
    assert_eq!(
        db.store.access(RoomId::new(), a).await.unwrap(),
        Access::NoRoom
    );
    assert_eq!(
        db.store
            .post_message(msg(room.id, b, "x", "hi"))
            .await
            .unwrap(),
        Posted::NotMember
    );
    assert_eq!(
        db.store
            .post_message(msg(RoomId::new(), a, "x", "hi"))
            .await
            .unwrap(),
        Posted::NoRoom
    );
}

#[tokio::test]
async fn concurrent_posts_get_gap_free_seqs_and_one_outbox_row_each() {
    let db = db().await;
    let a = user(&*db.store, "alice").await;
    let room = db.store.create_room("r", a, &[]).await.unwrap();
    let drained: Vec<i64> = db
        .store
        .outbox_pending(10)
        .await
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    db.store.outbox_done(&drained).await.unwrap();

    let posts = (0..50).map(|i| {
        let store = db.store.clone();
        tokio::spawn(async move {
            let id = format!("m{i}");
            store
                .post_message(msg(room.id, a, &id, "hello"))
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

    let outbox = db.store.outbox_pending(100).await.unwrap();
    let out_seqs: Vec<i64> = outbox
        .iter()
        .map(|o| o.envelope.payload["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        out_seqs,
        (1..=50).collect::<Vec<_>>(),
        "outbox rows follow seq order"
    );
    assert_eq!(
        db.store.access(room.id, a).await.unwrap(),
        Access::Member { last_seq: 50 }
    );
}

#[tokio::test]
async fn reposting_a_client_msg_id_returns_the_stored_message_and_writes_nothing() {
    let db = db().await;
    let a = user(&*db.store, "alice").await;
    let b = user(&*db.store, "bob").await;
    let room = db.store.create_room("r", a, &[b]).await.unwrap();
    let before = db.store.outbox_pending(100).await.unwrap().len();
    let Posted::Created(first) = db
        .store
        .post_message(msg(room.id, a, "k", "one"))
        .await
        .unwrap()
    else {
        panic!("first post creates");
    };
    let again = db
        .store
        .post_message(msg(room.id, a, "k", "different body"))
        .await
        .unwrap();
    assert_eq!(again, Posted::Existing(first.clone()));
    assert_eq!(
        db.store.outbox_pending(100).await.unwrap().len(),
        before + 1
    );
    // The key is per sender: bob may use the same clientMsgId.
    let Posted::Created(bobs) = db
        .store
        .post_message(msg(room.id, b, "k", "bob"))
        .await
        .unwrap()
    else {
        panic!("another sender's key is independent");
    };
    assert_eq!(bobs.seq, 2);
}

#[tokio::test]
async fn history_pages_in_seq_order() {
    let db = db().await;
    let a = user(&*db.store, "alice").await;
    let room = db.store.create_room("r", a, &[]).await.unwrap();
    for i in 0..10 {
        db.store
            .post_message(msg(room.id, a, &format!("m{i}"), &format!("b{i}")))
            .await
            .unwrap();
    }
    let page = db.store.messages_after(room.id, 3, 4).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
    assert_eq!(page[0].body, "b3");
    assert!(
        db.store
            .messages_after(room.id, 10, 5)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn rooms_are_listed_latest_activity_first() {
    let db = db().await;
    let a = user(&*db.store, "alice").await;
    let r1 = db.store.create_room("one", a, &[]).await.unwrap();
    let r2 = db.store.create_room("two", a, &[]).await.unwrap();
    db.store
        .post_message(msg(r1.id, a, "x", "bump"))
        .await
        .unwrap();
    let rooms = db.store.rooms_of(a).await.unwrap();
    assert_eq!(
        rooms.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r1.id, r2.id]
    );
    assert_eq!(rooms[0].last_seq, 1);
}

#[tokio::test]
async fn outbox_rows_survive_a_reopen_until_marked_done() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/t.db", dir.path().display());
    {
        let s = SqliteStore::open(&url).await.unwrap();
        let a = s.create_user("alice", "h").await.unwrap().id;
        let room = s.create_room("r", a, &[]).await.unwrap();
        s.post_message(msg(room.id, a, "x", "kept")).await.unwrap();
    }
    let s = SqliteStore::open(&url).await.unwrap();
    let pending = s.outbox_pending(10).await.unwrap();
    assert_eq!(
        pending.len(),
        2,
        "roomUpdated + receiveMessage still queued"
    );
    s.outbox_done(&[pending[0].id]).await.unwrap();
    let left = s.outbox_pending(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].envelope.kind, events::RECEIVE_MESSAGE);
    assert_eq!(left[0].envelope.payload["body"], "kept");
}

#[tokio::test]
async fn an_unsupported_url_is_a_clear_error() {
    let err = roomcast_store::open("mysql://x").await.err().unwrap();
    assert!(err.to_string().contains("sqlite"), "{err}");
}
