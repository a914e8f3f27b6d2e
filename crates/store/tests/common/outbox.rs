//! Accounts, and the outbox itself: rows survive a reopen, a relay pass
//! publishes oldest first and keeps what failed.

use std::sync::Arc;

use roomcast_core::events;
use roomcast_store::{RelayPass, StoreError};

use super::{Db, Recorder, pending_ids, post, room, user};

pub async fn usernames_are_unique_regardless_of_case(db: Db) {
    user(&*db.store, "Alice").await;
    let again = db.store.create_user("alice", "h").await;
    assert!(matches!(again, Err(StoreError::UsernameTaken)));
    let creds = db.store.credentials("ALICE").await.unwrap().unwrap();
    assert_eq!(creds.user.username, "Alice");
    assert_eq!(creds.password_hash, "hash");
    assert_eq!(
        db.store
            .user(creds.user.id)
            .await
            .unwrap()
            .unwrap()
            .username,
        "Alice"
    );
    assert!(db.store.credentials("bob").await.unwrap().is_none());
}

pub async fn outbox_rows_survive_a_reopen_until_marked_done(db: Db) {
    let Db { store, url } = db;
    let a = store.create_user("alice", "h").await.unwrap().id;
    let room = store.create_room("r", a, &[]).await.unwrap();
    post(&*store, room.id, a, "x", "kept").await;
    drop(store);

    let s = roomcast_store::open(&url).await.unwrap();
    let pending = s.outbox_pending(10).await.unwrap();
    let kinds: Vec<&str> = pending.iter().map(|o| o.envelope.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            events::ROOM_UPDATED_MANY,
            events::RECEIVE_MESSAGE,
            events::ROOM_UPDATED_MANY
        ],
        "still queued: the room's creation, then the post"
    );
    s.outbox_done(&[pending[0].id]).await.unwrap();
    let left = s.outbox_pending(10).await.unwrap();
    assert_eq!(left.len(), 2);
    assert_eq!(left[0].envelope.kind, events::RECEIVE_MESSAGE);
    assert_eq!(left[0].envelope.payload["body"], "kept");
}

pub async fn a_relay_pass_publishes_oldest_first_and_deletes_what_it_published(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let room = room(s, "r", a, &[]).await;
    for i in 0..3 {
        post(s, room, a, &format!("m{i}"), "hi").await;
    }
    let all = pending_ids(s).await;
    assert_eq!(all.len(), 6, "receiveMessage + roomUpdated per post");
    let sink = Recorder::new(0, Arc::default());

    let pass = s.outbox_relay(4, &sink).await.unwrap();
    assert_eq!(
        pass,
        RelayPass {
            published: 4,
            failure: None
        }
    );
    assert_eq!(sink.ids(), all[..4]);
    assert_eq!(pending_ids(s).await, all[4..]);

    let pass = s.outbox_relay(4, &sink).await.unwrap();
    assert_eq!(pass.published, 2);
    assert_eq!(sink.ids(), all);
    assert!(pending_ids(s).await.is_empty());
    assert_eq!(
        s.outbox_relay(4, &sink).await.unwrap(),
        RelayPass::default()
    );
}

pub async fn a_failing_sink_keeps_the_failed_row_and_the_rest(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let room = room(s, "r", a, &[]).await;
    for i in 0..3 {
        post(s, room, a, &format!("m{i}"), "hi").await;
    }
    let all = pending_ids(s).await;
    assert_eq!(all.len(), 6);
    let mut sink = Recorder::new(0, Arc::default());
    sink.fail_on = Some(all[2]);

    let pass = s.outbox_relay(10, &sink).await.unwrap();
    assert_eq!(pass.published, 2);
    assert_eq!(pass.failure, Some(format!("refused row {}", all[2])));
    assert_eq!(sink.ids(), all[..2], "published up to the failure");
    assert_eq!(
        pending_ids(s).await,
        all[2..],
        "the failed row and the rest stay"
    );

    sink.fail_on = None;
    let pass = s.outbox_relay(10, &sink).await.unwrap();
    assert_eq!(pass.published, 4);
    assert_eq!(sink.ids(), all, "the retry resumes at the failed row");
    assert!(pending_ids(s).await.is_empty());
}
