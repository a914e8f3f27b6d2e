//! Reactions: a set per (message, user, emoji), counted per reader.

use roomcast_core::{Kind, MessageId, ReactionCount, ReactionEvent, validate};
use roomcast_store::HistoryPage;

use super::rooms::next_ms;
use super::{Db, post, refused, room, take, targets, user, users};

fn counts(list: &[(&str, i64, bool)]) -> Vec<ReactionCount> {
    list.iter()
        .map(|(emoji, count, me)| ReactionCount {
            emoji: (*emoji).into(),
            count: *count,
            me: *me,
        })
        .collect()
}

pub async fn reactions_are_idempotent_and_counted_per_reader(db: Db) {
    let s = &*db.store;
    let [a, b] = users(s, ["alice", "bob"]).await;
    let room = room(s, "r", a, &[b]).await;
    let m = post(s, room, a, "k", "react to me").await;
    take(s).await;

    assert!(s.react(room, a, m.id, "👍", true).await.unwrap());
    let out = take(s).await;
    assert_eq!(targets(&out), [(Kind::ReactionAdded, Some(room), None)]);
    let ev: ReactionEvent = serde_json::from_str(out[0].payload.get()).unwrap();
    assert_eq!(
        ev,
        ReactionEvent {
            room_id: room,
            message_id: m.id,
            seq: m.seq,
            user_id: a,
            emoji: "👍".into()
        }
    );
    assert!(!s.react(room, a, m.id, "👍", true).await.unwrap());
    assert!(
        take(s).await.is_empty(),
        "the same reaction again changes nothing"
    );

    // Each later than the last: emoji groups are ordered by first reaction.
    next_ms().await;
    assert!(s.react(room, b, m.id, "❤️", true).await.unwrap());
    next_ms().await;
    assert!(s.react(room, b, m.id, "👍", true).await.unwrap());
    take(s).await;
    let seen = |viewer| async move {
        let page = s
            .history(room, viewer, HistoryPage::After(0), 10)
            .await
            .unwrap();
        page[0].reactions.clone()
    };
    assert_eq!(seen(a).await, counts(&[("👍", 2, true), ("❤️", 1, false)]));
    assert_eq!(seen(b).await, counts(&[("👍", 2, true), ("❤️", 1, true)]));

    assert!(s.react(room, a, m.id, "👍", false).await.unwrap());
    assert_eq!(
        targets(&take(s).await),
        [(Kind::ReactionRemoved, Some(room), None)]
    );
    assert!(!s.react(room, a, m.id, "👍", false).await.unwrap());
    assert!(!s.react(room, a, m.id, "🎉", false).await.unwrap());
    assert!(
        take(s).await.is_empty(),
        "removing what is not there changes nothing"
    );
    assert_eq!(
        seen(a).await,
        counts(&[("❤️", 1, false), ("👍", 1, false)]),
        "👍 now dates from bob's, after his ❤️"
    );
}

pub async fn reactions_are_refused_on_deleted_messages_and_beyond_the_limit(db: Db) {
    let s = &*db.store;
    let [a, b] = users(s, ["alice", "bob"]).await;
    let outsider = user(s, "carol").await;
    let room = room(s, "r", a, &[b]).await;
    let m = post(s, room, a, "k1", "many").await;
    let gone = post(s, room, a, "k2", "gone").await;
    s.react(room, b, gone.id, "👍", true).await.unwrap();
    take(s).await;

    let emoji: Vec<String> = (0..=validate::MAX_REACTIONS_PER_USER)
        .map(|i| char::from_u32(0x1F600 + i as u32).unwrap().to_string())
        .collect();
    let (last, allowed) = emoji.split_last().unwrap();
    for e in allowed {
        assert!(s.react(room, b, m.id, e, true).await.unwrap());
    }
    take(s).await;
    refused(s, s.react(room, b, m.id, last, true).await, "invalid").await;
    assert!(
        !s.react(room, b, m.id, &allowed[0], true).await.unwrap(),
        "a repeat is fine"
    );
    assert!(
        s.react(room, a, m.id, last, true).await.unwrap(),
        "the limit is per user"
    );
    take(s).await;

    refused(s, s.react(room, b, m.id, "smile", true).await, "invalid").await;
    refused(
        s,
        s.react(room, outsider, m.id, "👍", true).await,
        "forbidden",
    )
    .await;
    refused(
        s,
        s.react(room, b, MessageId::new(), "👍", true).await,
        "not_found",
    )
    .await;

    s.delete_message(room, a, gone.id).await.unwrap();
    take(s).await;
    refused(s, s.react(room, b, gone.id, "🎉", true).await, "conflict").await;
    refused(s, s.react(room, b, gone.id, "👍", false).await, "conflict").await;
    let history = s.history(room, b, HistoryPage::After(1), 10).await.unwrap();
    assert!(
        history[0].reactions.is_empty(),
        "deleting removed its reactions"
    );
}
