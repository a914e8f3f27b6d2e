//! The room event log: every logged event gets the room's next `eventSeq`
//! (on the envelope and in its payload), is kept as emitted, and is read
//! back after a position, with `recovered` telling whether the reader
//! missed anything; retention prunes by count and age.

use roomcast_core::{Envelope, Kind, now_ms};
use roomcast_store::StoreError;

use super::*;

fn logged(out: &[Envelope]) -> Vec<(Kind, i64)> {
    out.iter()
        .filter(|e| e.event_seq.is_some())
        .map(|e| (e.kind.clone(), e.event_seq.unwrap()))
        .collect()
}

pub async fn every_logged_event_gets_the_rooms_next_event_seq_and_replays_as_emitted(db: Db) {
    let s = &*db.store;
    let [a, b, c] = users(s, ["alice", "bob", "carol"]).await;
    let room = room(s, "r", a, &[b]).await;
    let m = post(s, room, a, "k1", "one").await;
    s.edit_message(room, a, m.id, "one, edited").await.unwrap();
    s.react(room, b, m.id, "👍", true).await.unwrap();
    s.react(room, b, m.id, "👍", false).await.unwrap();
    s.mark_read(room, b, 1).await.unwrap();
    s.delete_message(room, a, m.id).await.unwrap();
    let out = take(s).await;
    assert_eq!(
        logged(&out),
        [
            (Kind::ReceiveMessage, 1),
            (Kind::MessageUpdated, 2),
            (Kind::ReactionAdded, 3),
            (Kind::ReactionRemoved, 4),
            (Kind::MessageReadUpdate, 5),
            (Kind::MessageDeleted, 6),
        ]
    );
    for e in &out {
        match e.event_seq {
            Some(n) => assert_eq!(e.payload_value()["eventSeq"], n, "{}", e.kind),
            None => assert!(e.payload_value().get("eventSeq").is_none(), "{}", e.kind),
        }
    }

    let page = s.room_events(room, b, 0, 100).await.unwrap();
    assert!(page.recovered && !page.more);
    assert_eq!(page.last_event_seq, 6);
    let live: Vec<&Envelope> = out.iter().filter(|e| e.event_seq.is_some()).collect();
    assert_eq!(page.events.len(), live.len());
    for (replayed, sent) in page.events.iter().zip(live) {
        assert_eq!(Some(replayed.event_seq), sent.event_seq);
        assert_eq!(replayed.kind, sent.kind);
        assert_eq!(
            replayed.payload.get(),
            sent.payload.get(),
            "a replay is what was emitted"
        );
    }

    let tail = s.room_events(room, a, 4, 100).await.unwrap();
    let seqs: Vec<i64> = tail.events.iter().map(|e| e.event_seq).collect();
    assert_eq!((seqs, tail.recovered), (vec![5, 6], true));
    let paged = s.room_events(room, a, 0, 4).await.unwrap();
    assert_eq!((paged.events.len(), paged.more), (4, true));
    let current = s.room_events(room, a, 6, 100).await.unwrap();
    assert!(current.recovered && current.events.is_empty());
    let ahead = s.room_events(room, a, 7, 100).await.unwrap();
    assert!(!ahead.recovered && ahead.events.is_empty());

    assert!(matches!(
        s.room_events(room, c, 0, 100).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        s.room_events(RoomId::new(), a, 0, 100).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn concurrent_writes_get_gap_free_event_seqs_per_room(db: Db) {
    let [a, b] = users(&*db.store, ["alice", "bob"]).await;
    let r1 = room(&*db.store, "one", a, &[b]).await;
    let r2 = room(&*db.store, "two", a, &[b]).await;
    let posts = (0..40).map(|i| {
        let store = db.store.clone();
        tokio::spawn(async move {
            let (room, who) = if i % 2 == 0 { (r1, a) } else { (r2, b) };
            let id = format!("m{i}");
            store.post_message(msg(room, who, &id, "hi")).await.unwrap()
        })
    });
    for p in futures::future::join_all(posts).await {
        p.unwrap();
    }
    let out = take(&*db.store).await;
    for room in [r1, r2] {
        let seqs: Vec<i64> = out
            .iter()
            .filter(|e| e.room_id == Some(room) && e.event_seq.is_some())
            .map(|e| e.event_seq.unwrap())
            .collect();
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "in outbox order");
        let page = db.store.room_events(room, a, 0, 100).await.unwrap();
        let kept: Vec<i64> = page.events.iter().map(|e| e.event_seq).collect();
        assert_eq!(kept, seqs);
    }
}

pub async fn retention_prunes_by_count_and_age_and_a_pruned_gap_is_not_recovered(db: Db) {
    let s = &*db.store;
    let a = user(s, "alice").await;
    let room = room(s, "r", a, &[]).await;
    for i in 0..5 {
        post(s, room, a, &format!("k{i}"), "hi").await;
    }
    assert_eq!(
        s.prune_events(2, 0).await.unwrap(),
        3,
        "all but the latest two"
    );
    let gap = s.room_events(room, a, 0, 100).await.unwrap();
    assert!(!gap.recovered && gap.events.is_empty());
    let kept = s.room_events(room, a, 3, 100).await.unwrap();
    assert!(kept.recovered);
    assert_eq!(kept.events.len(), 2);

    assert_eq!(
        s.prune_events(1_000, now_ms() + 1).await.unwrap(),
        2,
        "older than now"
    );
    assert!(!s.room_events(room, a, 4, 100).await.unwrap().recovered);
    let current = s.room_events(room, a, 5, 100).await.unwrap();
    assert!(current.recovered, "nothing missed: up to date");
    post(s, room, a, "k5", "after").await;
    let next = s.room_events(room, a, 5, 100).await.unwrap();
    assert_eq!(
        (next.recovered, next.events.len(), next.last_event_seq),
        (true, 1, 6)
    );
}
