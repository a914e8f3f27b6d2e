//! Presence: a user is online while a socket of theirs is connected on some
//! node; co-members hear of each flip.

use roomcast_core::{Kind, Presence, UserId, rfc3339_ms};
use roomcast_store::Store;

use super::{Db, room, take, targets, user, users};

fn status(user: UserId, online: bool, last_seen_ms: Option<i64>) -> Presence {
    Presence {
        user_id: user,
        online,
        last_seen_at: last_seen_ms.map(rfc3339_ms),
    }
}

/// The `presence` events queued since the last call, as `(recipient, payload)`.
async fn presence_events(s: &dyn Store) -> Vec<(UserId, Presence)> {
    let out = take(s).await;
    assert!(
        targets(&out)
            .iter()
            .all(|(k, r, _)| *k == Kind::Presence && r.is_none())
    );
    out.iter()
        .map(|e| {
            let p = serde_json::from_str(e.payload.get()).unwrap();
            (e.user_id.unwrap(), p)
        })
        .collect()
}

pub async fn presence_flips_once_across_nodes_and_ignores_older_changes(db: Db) {
    let s = &*db.store;
    let [a, b, c] = users(s, ["alice", "bob", "carol"]).await;
    let loner = user(s, "dave").await;
    let r1 = room(s, "one", a, &[b]).await;
    room(s, "two", c, &[a, b]).await;

    s.presence_changed(a, "n1", true, 10).await.unwrap();
    let online = status(a, true, None);
    assert_eq!(
        presence_events(s).await,
        [(b, online.clone()), (c, online.clone())],
        "each co-member once, however many rooms they share"
    );
    s.presence_changed(a, "n2", true, 11).await.unwrap();
    s.presence_changed(a, "n1", false, 12).await.unwrap();
    assert!(presence_events(s).await.is_empty(), "still online on n2");

    s.presence_changed(a, "n1", true, 5).await.unwrap();
    s.presence_changed(a, "n1", true, 12).await.unwrap();
    assert!(
        presence_events(s).await.is_empty(),
        "changes not newer are ignored"
    );

    s.presence_changed(a, "n2", false, 13).await.unwrap();
    let offline = status(a, false, Some(13));
    assert_eq!(
        presence_events(s).await,
        [(b, offline.clone()), (c, offline.clone())]
    );
    s.presence_changed(a, "n2", false, 14).await.unwrap();
    assert!(presence_events(s).await.is_empty(), "already offline");

    let listed = s.room_presence(r1, b).await.unwrap();
    assert_eq!(listed, [offline, status(b, false, None)]);
    s.presence_changed(loner, "n1", true, 20).await.unwrap();
    assert!(
        presence_events(s).await.is_empty(),
        "nobody shares a room with dave"
    );
    s.presence_changed(b, "n1", true, 21).await.unwrap();
    presence_events(s).await;
    let listed = s.room_presence(r1, a).await.unwrap();
    assert_eq!(listed[1], status(b, true, None));
}

pub async fn a_silent_node_is_swept_and_its_users_go_offline(db: Db) {
    let s = &*db.store;
    let [a, b, c] = users(s, ["alice", "bob", "carol"]).await;
    let r = room(s, "r", a, &[b, c]).await;
    s.node_heartbeat("n1", 100).await.unwrap();
    s.node_heartbeat("n2", 100).await.unwrap();
    s.presence_changed(a, "n1", true, 100).await.unwrap();
    s.presence_changed(b, "n1", true, 101).await.unwrap();
    s.presence_changed(b, "n2", true, 102).await.unwrap();
    s.node_heartbeat("n1", 110).await.unwrap();
    s.node_heartbeat("n1", 90).await.unwrap();
    s.node_heartbeat("n2", 200).await.unwrap();
    take(s).await;

    assert_eq!(s.sweep_nodes(110).await.unwrap(), 0, "n1 was seen at 110");
    assert_eq!(s.sweep_nodes(150).await.unwrap(), 1);
    let offline = status(a, false, Some(110));
    assert_eq!(
        presence_events(s).await,
        [(b, offline.clone()), (c, offline.clone())]
    );
    assert_eq!(
        s.room_presence(r, c).await.unwrap(),
        [offline, status(b, true, None), status(c, false, None)],
        "bob is still online on n2"
    );
    assert_eq!(s.sweep_nodes(150).await.unwrap(), 0);
    assert!(presence_events(s).await.is_empty());

    s.presence_changed(a, "n1", true, 300).await.unwrap();
    assert_eq!(
        presence_events(s).await.len(),
        2,
        "a swept node comes back with its users"
    );
    assert_eq!(s.sweep_nodes(301).await.unwrap(), 2);
    let gone = presence_events(s).await;
    assert_eq!(
        gone.iter()
            .map(|(to, p)| (*to, p.user_id, p.online))
            .collect::<Vec<_>>(),
        [(b, a, false), (c, a, false), (a, b, false), (c, b, false)]
    );
}
