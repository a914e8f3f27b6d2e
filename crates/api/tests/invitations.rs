//! Consent to be added, over HTTP, at the product's default (`invite`):
//! settings, invitations from rooms and DMs, accept and decline, and the
//! refusals.

mod common;

use axum::http::{Method, StatusCode};
use common::{Member, World, assert_error};
use roomcast_core::{AddPolicy, Kind, RoomId};
use serde_json::{Value, json};

async fn settings(w: &World, who: &Member, body: Value) -> (StatusCode, Value) {
    w.call(Method::PATCH, "/v1/me/settings", Some(who), Some(body))
        .await
}

async fn invitations(w: &World, who: &Member) -> Vec<Value> {
    let (s, v) = w
        .call(Method::GET, "/v1/invitations", Some(who), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["invitations"].as_array().unwrap().clone()
}

async fn answer(w: &World, who: &Member, room: &str, verb: &str) -> (StatusCode, Value) {
    w.call(
        Method::POST,
        &format!("/v1/invitations/{room}/{verb}"),
        Some(who),
        None,
    )
    .await
}

#[tokio::test]
async fn me_carries_the_add_policy_and_it_can_be_changed() {
    let w = World::with_policy(AddPolicy::Invite).await;
    let a = w.user("alice").await;
    let (s, v) = w.call(Method::GET, "/v1/me", Some(&a), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["settings"], json!({"addPolicy": "invite"}), "the default");

    let (s, v) = settings(&w, &a, json!({"addPolicy": "anyone"})).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"settings": {"addPolicy": "anyone"}}))
    );
    let (_, v) = w.call(Method::GET, "/v1/me", Some(&a), None).await;
    assert_eq!(v["settings"]["addPolicy"], "anyone");

    for bad in [
        json!({"addPolicy": "everyone"}),
        json!({}),
        json!({"addPolicy": "anyone", "admin": true}),
    ] {
        assert_error(
            settings(&w, &a, bad).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    let (s, _) = w
        .call(
            Method::PATCH,
            "/v1/me/settings",
            None,
            Some(json!({"addPolicy": "anyone"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_new_room_invites_and_the_invitee_accepts() {
    let w = World::with_policy(AddPolicy::Invite).await;
    let [a, b, c] = w.users(["alice", "bob", "carol"]).await;
    settings(&w, &b, json!({"addPolicy": "anyone"})).await;
    w.drain().await;

    let (s, v) = w
        .call(
            Method::POST,
            "/v1/rooms",
            Some(&a),
            Some(json!({"name": "team", "memberIds": [b.id, c.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["room"]["members"], json!([a.id, b.id]));
    assert_eq!(v["invited"], json!([c.id]));
    let room = v["room"]["id"].as_str().unwrap().to_owned();
    assert!(w.outbox_kinds().await.contains(&Kind::InvitationReceived));

    // Carol sees the invitation, not the room.
    let list = invitations(&w, &c).await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (
            &list[0]["roomId"],
            &list[0]["name"],
            &list[0]["kind"],
            &list[0]["inviterId"]
        ),
        (&json!(room), &json!("team"), &json!("group"), &json!(a.id))
    );
    let (s, _) = w
        .call(Method::GET, &format!("/v1/rooms/{room}"), Some(&c), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(invitations(&w, &b).await.is_empty());

    let (s, v) = answer(&w, &c, &room, "accept").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["room"]["members"], json!([a.id, b.id, c.id]));
    assert!(invitations(&w, &c).await.is_empty());
    let (s, _) = answer(&w, &c, &room, "accept").await;
    assert_eq!(s, StatusCode::OK, "accepting again is the same room");
}

#[tokio::test]
async fn declining_leaves_the_invitee_out_and_reveals_nothing() {
    let w = World::with_policy(AddPolicy::Invite).await;
    let [a, b, c] = w.users(["alice", "bob", "carol"]).await;
    let room = w.room(&a, &[]).await;
    let (s, v) = w
        .call(
            Method::POST,
            &format!("/v1/rooms/{room}/members"),
            Some(&a),
            Some(json!({"userIds": [b.id]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["room"]["members"].clone(), v["invited"].clone()),
        (json!([a.id]), json!([b.id]))
    );

    let room = room.to_string();
    let (s, v) = answer(&w, &b, &room, "decline").await;
    assert_eq!((s, v), (StatusCode::NO_CONTENT, Value::Null));
    assert!(invitations(&w, &b).await.is_empty());
    assert_error(
        answer(&w, &b, &room, "accept").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Carol was never invited: accepting is 404, declining the same 204.
    assert_error(
        answer(&w, &c, &room, "accept").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (s, _) = answer(&w, &c, &room, "decline").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let unknown = RoomId::new().to_string();
    let (s, _) = answer(&w, &c, &unknown, "decline").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_error(
        answer(&w, &c, "not-a-room", "accept").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let (_, v) = w
        .call(Method::GET, &format!("/v1/rooms/{room}"), Some(&a), None)
        .await;
    assert_eq!(v["room"]["members"], json!([a.id]));
}

#[tokio::test]
async fn a_dm_invites_its_peer_until_they_open_it_too() {
    let w = World::with_policy(AddPolicy::Invite).await;
    let [a, b] = w.users(["alice", "bob"]).await;
    let (s, v) = w.dm(&a, b.id).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (v["room"]["members"].clone(), v["invited"].clone()),
        (json!([a.id]), json!([b.id]))
    );
    let dm: RoomId = v["room"]["id"].as_str().unwrap().parse().unwrap();
    w.post(&a, dm, "c1", "hi, it's alice").await;

    let list = invitations(&w, &b).await;
    assert_eq!((list.len(), &list[0]["kind"]), (1, &json!("dm")));
    let (s, v) = w.dm(&b, a.id).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["room"]["members"], json!([a.id, b.id]));
    assert_eq!(v["invited"], json!([]));
    assert_eq!(v["room"]["unreadCount"], 1, "the request is unread");
    assert!(invitations(&w, &b).await.is_empty());
}

#[tokio::test]
async fn invitations_page_and_refuse_bad_limits() {
    let w = World::with_policy(AddPolicy::Invite).await;
    let [a, b] = w.users(["alice", "bob"]).await;
    for _ in 0..3 {
        w.room(&a, &[&b]).await;
    }
    let (s, v) = w
        .call(Method::GET, "/v1/invitations?limit=2", Some(&b), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["invitations"].as_array().unwrap().len(), 2);
    assert_error(
        w.call(Method::GET, "/v1/invitations?limit=0", Some(&b), None)
            .await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    let (s, _) = w.call(Method::GET, "/v1/invitations", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
