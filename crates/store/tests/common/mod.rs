//! The store suite: the rules every [`Store`] keeps, as cases that each
//! backend's test binary runs through [`store_suite!`] (`tests/sqlite.rs`,
//! `tests/postgres/main.rs`), one `#[tokio::test]` per case per backend.
//!
//! A case is an `async fn(Db)`: [`Db`] holds a store opened on a fresh, empty
//! database and that database's URL (to open it again). The backend's runner
//! makes the database, runs the case and cleans up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use roomcast_core::{RoomId, UserId, events, topics};
use roomcast_store::{
    Access, NewMessage, OutboxItem, OutboxSink, Posted, RelayPass, Store, StoreError,
};

/// A fresh database for one case.
pub struct Db {
    /// A store open on it.
    pub store: Arc<dyn Store>,
    /// Its URL, for [`roomcast_store::open`].
    pub url: String,
}

/// One `#[tokio::test]` per shared case, each run through `$run`, an
/// `async fn run<F, Fut>(case: F)` with `F: FnOnce(Db) -> Fut`.
macro_rules! store_suite {
    ($run:path) => {
        $crate::common::store_suite!(@each $run;
            usernames_are_unique_regardless_of_case,
            a_room_lists_its_creator_first_and_queues_room_updated_per_member,
            an_unknown_member_creates_nothing,
            access_tells_member_non_member_and_missing_room_apart,
            concurrent_posts_get_gap_free_seqs_and_one_outbox_row_each,
            reposting_a_client_msg_id_returns_the_stored_message_and_writes_nothing,
            history_pages_in_seq_order,
            rooms_are_listed_latest_activity_first,
            outbox_rows_survive_a_reopen_until_marked_done,
            a_relay_pass_publishes_oldest_first_and_deletes_what_it_published,
            a_failing_sink_keeps_the_failed_row_and_the_rest,
        );
    };
    (@each $run:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $run($crate::common::$case).await;
            }
        )*
    };
}
pub(crate) use store_suite;

/// An [`OutboxSink`] that records what it published.
pub struct Recorder {
    /// Recorded with each row, to tell publishers apart in a shared log.
    pub instance: usize,
    /// `(instance, row id)` per published row, in publish order.
    pub log: Arc<Mutex<Vec<(usize, i64)>>>,
    /// Refuse the row with this id (and so stop the pass there).
    pub fail_on: Option<i64>,
    /// Sleep this long in each publish (widens race windows).
    pub pause: Duration,
}

impl Recorder {
    /// A recorder that publishes everything at once into `log`.
    pub fn new(instance: usize, log: Arc<Mutex<Vec<(usize, i64)>>>) -> Self {
        Self {
            instance,
            log,
            fail_on: None,
            pause: Duration::ZERO,
        }
    }

    /// The ids recorded so far, by anyone.
    pub fn ids(&self) -> Vec<i64> {
        self.log.lock().unwrap().iter().map(|(_, id)| *id).collect()
    }
}

#[async_trait]
impl OutboxSink for Recorder {
    async fn publish(&self, item: &OutboxItem) -> Result<(), String> {
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        if self.fail_on == Some(item.id) {
            return Err(format!("refused row {}", item.id));
        }
        self.log.lock().unwrap().push((self.instance, item.id));
        Ok(())
    }
}

/// Create a user named `name`.
pub async fn user(s: &dyn Store, name: &str) -> UserId {
    s.create_user(name, "hash").await.unwrap().id
}

/// A message to post.
pub fn msg<'a>(room: RoomId, sender: UserId, id: &'a str, body: &'a str) -> NewMessage<'a> {
    NewMessage {
        room_id: room,
        sender_id: sender,
        client_msg_id: id,
        body,
    }
}

/// Delete every pending outbox row.
pub async fn drain_outbox(s: &dyn Store) {
    let ids: Vec<i64> = s
        .outbox_pending(10_000)
        .await
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    s.outbox_done(&ids).await.unwrap();
}

/// The ids of the pending outbox rows, oldest first.
pub async fn pending_ids(s: &dyn Store) -> Vec<i64> {
    let rows = s.outbox_pending(10_000).await.unwrap();
    rows.iter().map(|o| o.id).collect()
}

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

pub async fn a_room_lists_its_creator_first_and_queues_room_updated_per_member(db: Db) {
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

pub async fn an_unknown_member_creates_nothing(db: Db) {
    let a = user(&*db.store, "alice").await;
    let ghost = UserId::new();
    let err = db.store.create_room("r", a, &[ghost]).await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownUser(id) if id == ghost));
    assert!(db.store.rooms_of(a).await.unwrap().is_empty());
    assert!(db.store.outbox_pending(10).await.unwrap().is_empty());
}

pub async fn access_tells_member_non_member_and_missing_room_apart(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = s.create_room("r", a, &[]).await.unwrap();
    assert_eq!(
        s.access(room.id, a).await.unwrap(),
        Access::Member { last_seq: 0 }
    );
    assert_eq!(s.access(room.id, b).await.unwrap(), Access::NotMember);
    assert_eq!(s.access(RoomId::new(), a).await.unwrap(), Access::NoRoom);
    let post = s.post_message(msg(room.id, b, "x", "hi")).await.unwrap();
    assert_eq!(post, Posted::NotMember);
    let post = s.post_message(msg(RoomId::new(), a, "x", "hi")).await;
    assert_eq!(post.unwrap(), Posted::NoRoom);
}

pub async fn concurrent_posts_get_gap_free_seqs_and_one_outbox_row_each(db: Db) {
    let a = user(&*db.store, "alice").await;
    let room = db.store.create_room("r", a, &[]).await.unwrap();
    drain_outbox(&*db.store).await;

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

pub async fn reposting_a_client_msg_id_returns_the_stored_message_and_writes_nothing(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    let room = s.create_room("r", a, &[b]).await.unwrap();
    let before = s.outbox_pending(100).await.unwrap().len();
    let Posted::Created(first) = s.post_message(msg(room.id, a, "k", "one")).await.unwrap() else {
        panic!("first post creates");
    };
    let again = s.post_message(msg(room.id, a, "k", "different body")).await;
    assert_eq!(again.unwrap(), Posted::Existing(first.clone()));
    assert_eq!(s.outbox_pending(100).await.unwrap().len(), before + 1);
    // The key is per sender: bob may use the same clientMsgId.
    let Posted::Created(bobs) = s.post_message(msg(room.id, b, "k", "bob")).await.unwrap() else {
        panic!("another sender's key is independent");
    };
    assert_eq!(bobs.seq, 2);
}

pub async fn history_pages_in_seq_order(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let room = s.create_room("r", a, &[]).await.unwrap();
    for i in 0..10 {
        s.post_message(msg(room.id, a, &format!("m{i}"), &format!("b{i}")))
            .await
            .unwrap();
    }
    let page = s.messages_after(room.id, 3, 4).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
    assert_eq!(page[0].body, "b3");
    assert!(s.messages_after(room.id, 10, 5).await.unwrap().is_empty());
}

pub async fn rooms_are_listed_latest_activity_first(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let r1 = s.create_room("one", a, &[]).await.unwrap();
    let r2 = s.create_room("two", a, &[]).await.unwrap();
    s.post_message(msg(r1.id, a, "x", "bump")).await.unwrap();
    let rooms = s.rooms_of(a).await.unwrap();
    assert_eq!(
        rooms.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r1.id, r2.id]
    );
    assert_eq!(rooms[0].last_seq, 1);
}

pub async fn outbox_rows_survive_a_reopen_until_marked_done(db: Db) {
    let Db { store, url } = db;
    let a = store.create_user("alice", "h").await.unwrap().id;
    let room = store.create_room("r", a, &[]).await.unwrap();
    store
        .post_message(msg(room.id, a, "x", "kept"))
        .await
        .unwrap();
    drop(store);

    let s = roomcast_store::open(&url).await.unwrap();
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

pub async fn a_relay_pass_publishes_oldest_first_and_deletes_what_it_published(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let room = s.create_room("r", a, &[]).await.unwrap();
    for i in 0..4 {
        s.post_message(msg(room.id, a, &format!("m{i}"), "hi"))
            .await
            .unwrap();
    }
    let all = pending_ids(s).await;
    assert_eq!(all.len(), 5);
    let sink = Recorder::new(0, Arc::default());

    let pass = s.outbox_relay(3, &sink).await.unwrap();
    assert_eq!(
        pass,
        RelayPass {
            published: 3,
            failure: None
        }
    );
    assert_eq!(sink.ids(), all[..3]);
    assert_eq!(pending_ids(s).await, all[3..]);

    let pass = s.outbox_relay(3, &sink).await.unwrap();
    assert_eq!(pass.published, 2);
    assert_eq!(sink.ids(), all);
    assert!(pending_ids(s).await.is_empty());
    assert_eq!(
        s.outbox_relay(3, &sink).await.unwrap(),
        RelayPass::default()
    );
}

pub async fn a_failing_sink_keeps_the_failed_row_and_the_rest(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let room = s.create_room("r", a, &[]).await.unwrap();
    for i in 0..5 {
        s.post_message(msg(room.id, a, &format!("m{i}"), "hi"))
            .await
            .unwrap();
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
