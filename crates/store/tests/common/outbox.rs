//! Accounts, and the outbox itself: rows survive a reopen, a claim reads
//! its partitions oldest first and leaves the rows until they are done,
//! the backlog, the wake-up, the partition count.

use roomcast_core::Kind;
use roomcast_store::outbox::DEFAULT_PARTITIONS;
use roomcast_store::{OutboxBacklog, Partitions, Store, StoreError, StoreOptions};

use super::{Db, post, room, user};

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
    let kinds: Vec<Kind> = pending.iter().map(|o| o.envelope.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            Kind::RoomUpdatedMany,
            Kind::ReceiveMessage,
            Kind::RoomUpdatedMany
        ],
        "still queued: the room's creation, then the post"
    );
    s.outbox_done(&[pending[0].id]).await.unwrap();
    let left = s.outbox_pending(10).await.unwrap();
    assert_eq!(left.len(), 2);
    assert_eq!(left[0].envelope.kind, Kind::ReceiveMessage);
    assert_eq!(
        left[0].envelope.decode().unwrap().payload_value()["body"],
        "kept"
    );
}

/// Rooms `n` with one post each: every row's ordering hash, by id.
async fn rooms_with_a_post(s: &dyn Store, n: usize) -> Vec<(i64, i64)> {
    let a = user(s, "alice").await;
    let mut rooms = Vec::new();
    for i in 0..n {
        rooms.push(room(s, &format!("r{i}"), a, &[]).await);
    }
    for (i, r) in rooms.into_iter().enumerate() {
        post(s, r, a, &format!("m{i}"), "hi").await;
    }
    s.outbox_pending(1000)
        .await
        .unwrap()
        .iter()
        .map(|o| (o.id, o.envelope.ordering_hash()))
        .collect()
}

pub async fn a_claim_reads_its_partitions_rows_oldest_first(db: Db) {
    let s = &*db.store;
    let all = rooms_with_a_post(s, 12).await;
    assert_eq!(all.len(), 24, "per room: a message and its roomUpdated");
    let count = s.outbox_partitions();
    let even = Partitions {
        count,
        owned: (0..count).filter(|p| p % 2 == 0).collect(),
    };
    let odd = Partitions {
        count,
        owned: (0..count).filter(|p| p % 2 == 1).collect(),
    };
    let mut seen = Vec::new();
    for parts in [&even, &odd] {
        let rows = s.outbox_claim(parts, 1000).await.unwrap();
        let ids: Vec<i64> = rows.iter().map(|o| o.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
        for o in &rows {
            let p = parts.of(o.envelope.ordering_hash());
            assert!(parts.owned.contains(&p), "row {} of partition {p}", o.id);
        }
        let expected: Vec<i64> = all
            .iter()
            .filter(|(_, h)| parts.owned.contains(&parts.of(*h)))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(ids, expected);
        seen.extend(ids);
    }
    seen.sort_unstable();
    assert_eq!(seen, all.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    // A limit keeps the oldest; no partition, no rows.
    let first = s.outbox_claim(&Partitions::all(count), 5).await.unwrap();
    assert_eq!(
        first.iter().map(|o| o.id).collect::<Vec<_>>(),
        all[..5].iter().map(|(id, _)| *id).collect::<Vec<_>>()
    );
    assert!(
        s.outbox_claim(&Partitions::none(count), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn claimed_rows_stay_until_marked_done(db: Db) {
    let s = &*db.store;
    let all = rooms_with_a_post(s, 2).await;
    let parts = Partitions::all(s.outbox_partitions());
    let once = s.outbox_claim(&parts, 100).await.unwrap();
    // A relay that dies after claiming (or publishing) leaves them all.
    let again = s.outbox_claim(&parts, 100).await.unwrap();
    assert_eq!(once.len(), all.len());
    assert_eq!(
        once.iter().map(|o| o.id).collect::<Vec<_>>(),
        again.iter().map(|o| o.id).collect::<Vec<_>>()
    );
    s.outbox_done(&[once[0].id, once[2].id]).await.unwrap();
    let left: Vec<i64> = s
        .outbox_claim(&parts, 100)
        .await
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    let expected: Vec<i64> = all
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != once[0].id && *id != once[2].id)
        .collect();
    assert_eq!(left, expected);
}

pub async fn the_backlog_counts_rows_and_the_oldest_ones_age(db: Db) {
    let s = &*db.store;
    assert_eq!(s.outbox_backlog().await.unwrap(), OutboxBacklog::default());
    let all = rooms_with_a_post(s, 3).await;
    let backlog = s.outbox_backlog().await.unwrap();
    assert_eq!(backlog.rows, all.len() as i64);
    assert!(
        (0..60_000).contains(&backlog.oldest_age_ms),
        "written just now: {backlog:?}"
    );
    let ids: Vec<i64> = all.iter().map(|(id, _)| *id).collect();
    s.outbox_done(&ids).await.unwrap();
    assert_eq!(s.outbox_backlog().await.unwrap(), OutboxBacklog::default());
}

pub async fn every_write_wakes_the_relay(db: Db) {
    let s = &*db.store;
    let signal = s.outbox_signal();
    let a = user(s, "alice").await;
    let b = user(s, "bob").await;
    // Each write must leave a wake-up behind (a permit, if nobody waits yet).
    let woke = || async {
        tokio::time::timeout(std::time::Duration::from_secs(5), signal.wait())
            .await
            .expect("the write woke the relay");
    };
    let r = room(s, "r", a, &[]).await;
    woke().await;
    post(s, r, a, "m1", "hi").await;
    woke().await;
    s.add_members(r, a, &[b]).await.unwrap();
    woke().await;
    s.mark_read(r, b, 1).await.unwrap();
    woke().await;
    s.open_dm(a, b).await.unwrap();
    woke().await;
    s.presence_changed(a, "n1", true, roomcast_core::now_ms())
        .await
        .unwrap();
    woke().await;
}

pub async fn a_lone_relay_holds_every_partition(db: Db) {
    let s = &*db.store;
    let mut lease = s.outbox_lease("only").await.unwrap();
    assert!(lease.partitions().is_all());
    assert_eq!(lease.partitions().count, s.outbox_partitions());
    lease.renew().await.unwrap();
    assert!(lease.partitions().is_all(), "still all after a renewal");
    lease.announce().await.unwrap();
    lease.release().await;
}

pub async fn the_partition_count_is_fixed_when_the_database_is_made(db: Db) {
    let Db { store, url } = db;
    assert_eq!(store.outbox_partitions(), DEFAULT_PARTITIONS);
    let other = StoreOptions {
        outbox_partitions: 4,
        ..StoreOptions::default()
    };
    let again = roomcast_store::open_with(&url, &other).await.unwrap();
    assert_eq!(
        again.outbox_partitions(),
        DEFAULT_PARTITIONS,
        "the database keeps the count it was made with"
    );
}
