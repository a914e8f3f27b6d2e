//! Rooms: create, list (paged), read one, rename, DMs — every answer and
//! every refusal.

mod common;

use axum::http::{Method, StatusCode};
use common::{World, assert_error, pct};
use roomcast_core::{Kind, RoomId, UserId, now_ms};
use serde_json::json;

#[tokio::test]
async fn creating_a_room_answers_it_as_the_creator_sees_it_and_tells_every_member() {
    let w = World::new().await;
    let [a, b] = w.users(["alice", "bob"]).await;
    let (s, v) = w
        .call(
            Method::POST,
            "/v1/rooms",
            Some(&a),
            Some(json!({"name": "  general ", "memberIds": [b.id, b.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let room = &v["room"];
    assert_eq!(room["name"], "general");
    assert_eq!(room["kind"], "group");
    assert_eq!(room["members"], json!([a.id, b.id]));
    assert_eq!(room["roles"][a.id.to_string()], "owner");
    assert_eq!(room["roles"][b.id.to_string()], "member");
    assert_eq!(
        (&room["lastSeq"], &room["readSeq"], &room["unreadCount"]),
        (&json!(0), &json!(0), &json!(0))
    );
    assert!(room["lastMessage"].is_null());

    let told: Vec<_> = w
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.kind == Kind::RoomUpdated)
        .map(|e| e.user_id.unwrap())
        .collect();
    assert_eq!(told.len(), 2);
    assert!(told.contains(&a.id) && told.contains(&b.id));
}

#[tokio::test]
async fn bad_room_bodies_are_400_and_create_nothing() {
    let w = World::new().await;
    let a = w.user("alice").await;
    let too_many: Vec<UserId> = (0..1001).map(|_| UserId::new()).collect();
    for body in [
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(101)}),
        json!({"name": 7}),
        json!({}),
        json!({"name": "r", "memberIds": "bob"}),
        json!({"name": "r", "memberIds": ["not-an-id"]}),
        json!({"name": "r", "memberIds": [UserId::new()]}),
        json!({"name": "r", "memberIds": too_many}),
    ] {
        let got = w
            .call(Method::POST, "/v1/rooms", Some(&a), Some(body.clone()))
            .await;
        assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    }
    let (s, v) = w.call(Method::GET, "/v1/rooms", Some(&a), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"rooms": [], "next": null}));
    assert!(w.outbox().await.is_empty());
}

#[tokio::test]
async fn the_room_list_is_paged_latest_activity_first() {
    let w = World::new().await;
    let [a, b] = w.users(["alice", "bob"]).await;
    let first = w.room(&a, &[]).await;
    let second = w.room(&a, &[&b]).await;
    let third = w.room(&a, &[]).await;
    // Activity is kept in milliseconds: post in a later one than the
    // creations, so the order does not hang on the id tie-break.
    next_millisecond().await;
    w.post(&a, first, "m1", "bump").await;

    let (s, page1) = w
        .call(Method::GET, "/v1/rooms?limit=2", Some(&a), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{page1}");
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&page1), [first.to_string(), third.to_string()]);
    assert_eq!(page1["rooms"][0]["lastMessage"]["body"], "bump");
    let next = page1["next"].as_str().expect("a next cursor").to_owned();

    let (s, page2) = w
        .call(
            Method::GET,
            &format!("/v1/rooms?limit=2&before={}", pct(&next)),
            Some(&a),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page2}");
    assert_eq!(ids(&page2), [second.to_string()]);
    assert!(page2["next"].is_null());

    // Default and capped limits answer; bob only sees his room.
    let (_, all) = w.call(Method::GET, "/v1/rooms", Some(&a), None).await;
    assert_eq!(all["rooms"].as_array().unwrap().len(), 3);
    let (s, _) = w
        .call(Method::GET, "/v1/rooms?limit=100000", Some(&a), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, bobs) = w.call(Method::GET, "/v1/rooms", Some(&b), None).await;
    assert_eq!(ids(&bobs), [second.to_string()]);
}

#[tokio::test]
async fn bad_room_list_queries_are_400() {
    let w = World::new().await;
    let a = w.user("alice").await;
    w.room(&a, &[]).await;
    for q in [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "before=%%%",
        "before=garbage",
    ] {
        let got = w
            .call(Method::GET, &format!("/v1/rooms?{q}"), Some(&a), None)
            .await;
        assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    }
    let got = w.call(Method::GET, "/v1/rooms", None, None).await;
    assert_error(got, StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn one_room_is_shown_to_its_members_with_their_own_counts() {
    let w = World::new().await;
    let [a, b, c] = w.users(["alice", "bob", "carol"]).await;
    let room = w.room(&a, &[&b]).await;
    w.post(&a, room, "m1", "one").await;
    w.post(&a, room, "m2", "two").await;
    let path = format!("/v1/rooms/{room}");

    let (s, v) = w.call(Method::GET, &path, Some(&b), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["room"]["lastSeq"], 2);
    assert_eq!(
        (&v["room"]["readSeq"], &v["room"]["unreadCount"]),
        (&json!(0), &json!(2))
    );
    assert_eq!(v["room"]["lastMessage"]["body"], "two");
    let (_, v) = w.call(Method::GET, &path, Some(&a), None).await;
    assert_eq!(
        (&v["room"]["readSeq"], &v["room"]["unreadCount"]),
        (&json!(2), &json!(0)),
        "posting moves the sender's marker"
    );

    let got = w.call(Method::GET, &path, Some(&c), None).await;
    assert_error(got, StatusCode::FORBIDDEN, "forbidden");
    let got = w
        .call(
            Method::GET,
            &format!("/v1/rooms/{}", RoomId::new()),
            Some(&a),
            None,
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");
    let got = w
        .call(Method::GET, "/v1/rooms/not-an-id", Some(&a), None)
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");

    // A removed member no longer sees it.
    w.remove(&a, room, &b).await;
    let got = w.call(Method::GET, &path, Some(&b), None).await;
    assert_error(got, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn owners_and_admins_rename_and_everyone_hears_of_it() {
    let w = World::new().await;
    let [a, b, c] = w.users(["alice", "bob", "carol"]).await;
    let room = w.room(&a, &[&b, &c]).await;
    let path = format!("/v1/rooms/{room}");
    w.drain().await;

    let (s, v) = w
        .call(
            Method::PATCH,
            &path,
            Some(&a),
            Some(json!({"name": " random "})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["room"]["name"], "random");
    assert_eq!(w.outbox_kinds().await, vec![Kind::RoomUpdated; 3]);
    w.drain().await;

    // The same name again changes nothing.
    let (s, _) = w
        .call(
            Method::PATCH,
            &path,
            Some(&a),
            Some(json!({"name": "random"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(w.outbox().await.is_empty());

    // An admin may.
    w.set_role(&a, room, &b, "admin").await;
    let (s, v) = w
        .call(
            Method::PATCH,
            &path,
            Some(&b),
            Some(json!({"name": "by bob"})),
        )
        .await;
    assert_eq!((s, &v["room"]["name"]), (StatusCode::OK, &json!("by bob")));
}

#[tokio::test]
async fn renaming_is_refused_to_members_outsiders_and_dms() {
    let w = World::new().await;
    let [a, b, c] = w.users(["alice", "bob", "carol"]).await;
    let room = w.room(&a, &[&b]).await;
    let path = format!("/v1/rooms/{room}");
    let rename = Some(json!({"name": "mine"}));
    let before = w.snapshot(room, &a).await;
    for who in [&b, &c] {
        let got = w
            .call(Method::PATCH, &path, Some(who), rename.clone())
            .await;
        assert_error(got, StatusCode::FORBIDDEN, "forbidden");
    }
    for body in [
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({}),
    ] {
        let got = w.call(Method::PATCH, &path, Some(&a), Some(body)).await;
        assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    }
    assert_eq!(w.snapshot(room, &a).await, before);

    let got = w
        .call(
            Method::PATCH,
            &format!("/v1/rooms/{}", RoomId::new()),
            Some(&a),
            rename.clone(),
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");

    let (_, dm) = w.dm(&a, c.id).await;
    let dm = dm["room"]["id"].as_str().unwrap().to_owned();
    let got = w
        .call(Method::PATCH, &format!("/v1/rooms/{dm}"), Some(&a), rename)
        .await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn a_dm_is_created_once_and_found_from_either_side() {
    let w = World::new().await;
    let [a, b] = w.users(["alice", "bob"]).await;
    let (s, v) = w.dm(&a, b.id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let room = &v["room"];
    assert_eq!(room["kind"], "dm");
    assert_eq!(room["members"].as_array().unwrap().len(), 2);
    assert_eq!(room["roles"][a.id.to_string()], "member");
    assert_eq!(room["roles"][b.id.to_string()], "member");
    let told = w.outbox_kinds().await;
    assert_eq!(told, vec![Kind::RoomUpdated; 2]);
    w.drain().await;

    for who in [&a, &b] {
        let peer = if who.id == a.id { b.id } else { a.id };
        let (s, again) = w.dm(who, peer).await;
        assert_eq!(s, StatusCode::OK, "{again}");
        assert_eq!(again["room"]["id"], room["id"]);
    }
    assert!(w.outbox().await.is_empty(), "an existing DM queues nothing");
}

#[tokio::test]
async fn bad_dm_requests_are_refused() {
    let w = World::new().await;
    let a = w.user("alice").await;
    let got = w.dm(&a, a.id).await;
    assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    let got = w.dm(&a, UserId::new()).await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");
    for body in [json!({"userId": "nope"}), json!({})] {
        let got = w.call(Method::POST, "/v1/dms", Some(&a), Some(body)).await;
        assert_error(got, StatusCode::BAD_REQUEST, "bad_request");
    }
    let got = w
        .call(Method::POST, "/v1/dms", None, Some(json!({"userId": a.id})))
        .await;
    assert_error(got, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(w.outbox().await.is_empty());
}

/// Return once the wall clock has moved to the next millisecond.
async fn next_millisecond() {
    let start = now_ms();
    while now_ms() == start {
        tokio::task::yield_now().await;
    }
}
