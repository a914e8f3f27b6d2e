//! Login sessions: rotation, reuse detection, logout, log out everywhere,
//! expiry. Times are the caller's (Unix ms), driven by each case.

use roomcast_core::SessionId;
use roomcast_store::Rotated;

use roomcast_core::Kind;

use super::{Db, take, targets, users};

const DAY: i64 = 86_400_000;

pub async fn a_refresh_rotates_and_a_rotated_token_revokes_the_session(db: Db) {
    let s = &*db.store;
    let [a] = users(s, ["alice"]).await;
    let sid = s.create_session(a, "h0", 1_000, 1_000 + DAY).await.unwrap();
    assert_eq!(s.session_user(sid, 2_000).await.unwrap(), Some(a));

    let r = s
        .rotate_session(sid, 0, "h0", "h1", 2_000, 2_000 + DAY)
        .await
        .unwrap();
    assert_eq!(
        r,
        Rotated::Rotated {
            user: a,
            generation: 1
        }
    );
    // The same token again, or a wrong secret for the current generation, or
    // a generation the session never had: nothing happens.
    let wrong = s
        .rotate_session(sid, 1, "nope", "x", 3_000, 3_000 + DAY)
        .await
        .unwrap();
    assert_eq!(wrong, Rotated::Invalid);
    let ahead = s
        .rotate_session(sid, 5, "h1", "x", 3_000, 3_000 + DAY)
        .await
        .unwrap();
    assert_eq!(ahead, Rotated::Invalid);
    assert_eq!(
        s.session_user(sid, 3_000).await.unwrap(),
        Some(a),
        "still live"
    );

    let r = s
        .rotate_session(sid, 1, "h1", "h2", 3_000, 3_000 + DAY)
        .await
        .unwrap();
    assert_eq!(
        r,
        Rotated::Rotated {
            user: a,
            generation: 2
        }
    );
    // Generation 0 was rotated away twice ago: reuse, the session ends.
    let reused = s
        .rotate_session(sid, 0, "h0", "x", 4_000, 4_000 + DAY)
        .await
        .unwrap();
    assert_eq!(
        reused,
        Rotated::Reused {
            user: a,
            session: sid
        }
    );
    assert_eq!(s.session_user(sid, 4_000).await.unwrap(), None);
    let after = s
        .rotate_session(sid, 2, "h2", "h3", 5_000, 5_000 + DAY)
        .await
        .unwrap();
    assert_eq!(after, Rotated::Invalid, "the current token is dead too");
    let unknown = SessionId::new();
    assert_eq!(
        s.rotate_session(unknown, 0, "h0", "x", 5_000, 5_000 + DAY)
            .await
            .unwrap(),
        Rotated::Invalid
    );
    let told = take(s).await;
    assert_eq!(
        targets(&told),
        [(Kind::SessionRevoked, None, Some(a))],
        "the reuse ended the session: told once, before any refusal after it"
    );
}

pub async fn logout_ends_one_session_and_everywhere_ends_the_others(db: Db) {
    let s = &*db.store;
    let [a, b] = users(s, ["alice", "bob"]).await;
    let phone = s.create_session(a, "p", 0, DAY).await.unwrap();
    let laptop = s.create_session(a, "l", 0, DAY).await.unwrap();
    let tablet = s.create_session(a, "t", 0, DAY).await.unwrap();
    let bobs = s.create_session(b, "b", 0, DAY).await.unwrap();

    assert!(
        !s.revoke_session(phone, b, 1).await.unwrap(),
        "not bob's to end"
    );
    assert!(s.revoke_session(phone, a, 1).await.unwrap());
    assert!(
        !s.revoke_session(phone, a, 2).await.unwrap(),
        "ended already"
    );
    assert_eq!(s.session_user(phone, 2).await.unwrap(), None);

    let ended = s.revoke_sessions(a, Some(laptop), 3).await.unwrap();
    assert_eq!(ended, [tablet], "every other live one");
    let told = take(s).await;
    let sessions: Vec<_> = told
        .iter()
        .map(|e| e.payload_value()["sessionId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        sessions,
        [phone.to_string(), tablet.to_string()],
        "one sessionRevoked per session ended"
    );
    assert!(
        told.iter()
            .all(|e| e.kind == Kind::SessionRevoked && e.user_id == Some(a))
    );
    assert_eq!(s.session_user(laptop, 3).await.unwrap(), Some(a));
    assert_eq!(s.revoke_sessions(a, None, 4).await.unwrap(), [laptop]);
    assert_eq!(
        s.session_user(bobs, 4).await.unwrap(),
        Some(b),
        "bob's untouched"
    );
}

pub async fn a_session_ends_when_it_expires_and_a_refresh_extends_it(db: Db) {
    let s = &*db.store;
    let [a] = users(s, ["alice"]).await;
    let sid = s.create_session(a, "h0", 0, 1_000).await.unwrap();
    assert_eq!(s.session_user(sid, 999).await.unwrap(), Some(a));
    let r = s
        .rotate_session(sid, 0, "h0", "h1", 999, 5_000)
        .await
        .unwrap();
    assert!(matches!(r, Rotated::Rotated { .. }));
    assert_eq!(
        s.session_user(sid, 4_000).await.unwrap(),
        Some(a),
        "extended"
    );
    assert_eq!(s.session_user(sid, 5_000).await.unwrap(), None, "expired");
    let late = s
        .rotate_session(sid, 1, "h1", "h2", 5_000, 9_000)
        .await
        .unwrap();
    assert_eq!(late, Rotated::Invalid);
}
