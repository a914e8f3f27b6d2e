//! Read markers (`POST …/read`) and the presence route.

mod common;

use axum::http::{Method, StatusCode};
use common::{World, assert_error};
use roomcast_core::{Kind, RoomId, now_ms};
use serde_json::json;

#[tokio::test]
async fn the_marker_moves_forward_capped_and_announces_each_move_once() {
    let w = World::new().await;
    let [a, b] = w.users(["alice", "bob"]).await;
    let room = w.room(&a, &[&b]).await;
    for i in 1..=5 {
        w.post(&a, room, &format!("m{i}"), "hi").await;
    }
    w.drain().await;
    let path = format!("/v1/rooms/{room}/read");
    let read = |seq: i64| w.call(Method::POST, &path, Some(&b), Some(json!({"seq": seq})));

    let (s, v) = read(3).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"readSeq": 3, "unreadCount": 2}))
    );
    let out = w.outbox().await;
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].kind, Kind::MessageReadUpdate);
    assert_eq!(out[0].room_id, Some(room));
    assert_eq!(
        out[0].payload_value(),
        json!({"roomId": room, "userId": b.id, "seq": 3, "eventSeq": 6})
    );
    assert_eq!(out[0].event_seq, Some(6), "after the five messages");
    assert_eq!(
        (out[1].kind.clone(), out[1].user_id),
        (Kind::RoomUpdated, Some(b.id))
    );
    assert_eq!(out[1].payload_value()["unreadCount"], 2);
    w.drain().await;

    // Backwards and repeats change nothing.
    for seq in [3, 1, 0] {
        let (s, v) = read(seq).await;
        assert_eq!(
            (s, v),
            (StatusCode::OK, json!({"readSeq": 3, "unreadCount": 2}))
        );
    }
    assert!(w.outbox().await.is_empty());

    // Beyond the end: capped at the last seq.
    let (s, v) = read(99).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"readSeq": 5, "unreadCount": 0}))
    );
    let (_, view) = w
        .call(Method::GET, &format!("/v1/rooms/{room}"), Some(&b), None)
        .await;
    assert_eq!(
        (&view["room"]["readSeq"], &view["room"]["unreadCount"]),
        (&json!(5), &json!(0))
    );
}

#[tokio::test]
async fn marking_is_refused_to_outsiders_and_bad_input() {
    let w = World::new().await;
    let [a, b, e] = w.users(["alice", "bob", "erin"]).await;
    let room = w.room(&a, &[&b]).await;
    w.post(&a, room, "m1", "hi").await;
    w.drain().await;
    let before = w.snapshot(room, &a).await;
    let path = format!("/v1/rooms/{room}/read");

    let got = w
        .call(Method::POST, &path, Some(&e), Some(json!({"seq": 1})))
        .await;
    assert_error(got, StatusCode::FORBIDDEN, "forbidden");
    for body in [
        json!({"seq": -1}),
        json!({"seq": "1"}),
        json!({}),
        json!({"seq": 1.5}),
    ] {
        let got = w.call(Method::POST, &path, Some(&b), Some(body)).await;
        assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    }
    assert_eq!(w.snapshot(room, &a).await, before);

    let got = w
        .call(
            Method::POST,
            &format!("/v1/rooms/{}/read", RoomId::new()),
            Some(&b),
            Some(json!({"seq": 1})),
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");

    // A removed member is an outsider.
    w.remove(&a, room, &b).await;
    let got = w
        .call(Method::POST, &path, Some(&b), Some(json!({"seq": 1})))
        .await;
    assert_error(got, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn presence_lists_every_member_in_member_order() {
    let w = World::new().await;
    let [a, b, e] = w.users(["alice", "bob", "erin"]).await;
    let room = w.room(&a, &[&b]).await;
    let now = now_ms();
    w.store.node_heartbeat("rt-1", now).await.unwrap();
    w.store
        .presence_changed(b.id, "rt-1", true, now)
        .await
        .unwrap();
    let path = format!("/v1/rooms/{room}/presence");

    let (s, v) = w.call(Method::GET, &path, Some(&a), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"presence": [
            {"userId": a.id, "online": false, "lastSeenAt": null},
            {"userId": b.id, "online": true, "lastSeenAt": null},
        ]})
    );

    w.store
        .presence_changed(b.id, "rt-1", false, now + 1)
        .await
        .unwrap();
    let (_, v) = w.call(Method::GET, &path, Some(&a), None).await;
    assert_eq!(v["presence"][1]["online"], false);
    assert!(v["presence"][1]["lastSeenAt"].is_string(), "{v}");

    let got = w.call(Method::GET, &path, Some(&e), None).await;
    assert_error(got, StatusCode::FORBIDDEN, "forbidden");
    let got = w
        .call(
            Method::GET,
            &format!("/v1/rooms/{}/presence", RoomId::new()),
            Some(&a),
            None,
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");
    let got = w
        .call(Method::GET, "/v1/rooms/bad/presence", Some(&a), None)
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
}
