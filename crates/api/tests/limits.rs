//! The HTTP rate limits: each refusal is a 429 with `Retry-After` and
//! `{"error":{"code":"rate_limited","message","retryAfterMs"}}`, and
//! nothing is stored for it. Login is limited per address and per account
//! and address, so guessing from one address never locks the owner out
//! from another.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::World;
use http_body_util::BodyExt;
use roomcast_limits::{Rate, Rates};
use roomcast_sio::ClientIp;
use serde_json::{Value, json};
use tower::ServiceExt;

/// One action, then one more a minute later: the second is refused.
const ONCE: Rate = Rate::new(1, 60_000);

/// A request from `ip` with a JSON `body`; the status, `Retry-After` and body.
async fn from(
    world: &World,
    ip: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Option<u64>, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .extension(ClientIp(ip.parse().unwrap()))
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = roomcast_api::app(world.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let retry = res
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, retry, serde_json::from_slice(&bytes).unwrap())
}

fn assert_limited(status: StatusCode, retry: Option<u64>, body: &Value) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let ms = body["error"]["retryAfterMs"]
        .as_u64()
        .expect("retryAfterMs");
    assert!(ms > 1000 && ms <= 60_000, "{body}");
    assert_eq!(retry, Some(ms.div_ceil(1000)), "Retry-After in seconds");
}

#[tokio::test]
async fn login_guessing_backs_off_for_that_address_only() {
    let world = World::limited(&Rates {
        login_account_ip: Rate::new(3, 60_000),
        ..Rates::default()
    })
    .await;
    world.user("victim").await;
    let guess = || json!({"username": "victim", "password": "wrong-password-1"});
    // Usernames match regardless of case: so does the bucket.
    for name in ["victim", "VICTIM", "Victim"] {
        let body = json!({"username": name, "password": "wrong-password-1"});
        let (s, _, b) = from(&world, "6.6.6.6", Method::POST, "/v1/auth/login", body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    }
    let (s, retry, b) = from(&world, "6.6.6.6", Method::POST, "/v1/auth/login", guess()).await;
    assert_limited(s, retry, &b);
    // The owner, elsewhere, is still heard (and told the password is wrong,
    // not to wait).
    let (s, _, b) = from(&world, "1.2.3.4", Method::POST, "/v1/auth/login", guess()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
}

#[tokio::test]
async fn login_attempts_per_address_are_limited_across_accounts() {
    let world = World::limited(&Rates {
        login_ip: Rate::new(2, 60_000),
        ..Rates::default()
    })
    .await;
    for name in ["a1", "a2"] {
        let body = json!({"username": name, "password": "whatever-password"});
        let (s, _, b) = from(&world, "6.6.6.6", Method::POST, "/v1/auth/login", body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    }
    let body = json!({"username": "a3", "password": "whatever-password"});
    let (s, retry, b) = from(&world, "6.6.6.6", Method::POST, "/v1/auth/login", body).await;
    assert_limited(s, retry, &b);
}

#[tokio::test]
async fn registrations_per_address_are_limited_and_the_refused_one_is_not_stored() {
    let world = World::limited(&Rates {
        register_ip: ONCE,
        ..Rates::default()
    })
    .await;
    let reg = |name: &str| json!({"username": name, "password": "correct-horse-battery"});
    let (s, _, b) = from(
        &world,
        "6.6.6.6",
        Method::POST,
        "/v1/auth/register",
        reg("first"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, retry, b) = from(
        &world,
        "6.6.6.6",
        Method::POST,
        "/v1/auth/register",
        reg("second"),
    )
    .await;
    assert_limited(s, retry, &b);
    assert!(world.store.credentials("second").await.unwrap().is_none());
    let (s, _, b) = from(
        &world,
        "1.2.3.4",
        Method::POST,
        "/v1/auth/register",
        reg("third"),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "another address: {b}");
}

#[tokio::test]
async fn rooms_messages_and_reactions_per_user_are_limited_and_nothing_is_stored() {
    let world = World::limited(&Rates {
        rooms_user: ONCE,
        messages_user: Rate::new(3, 60_000),
        reactions_user: ONCE,
        ..Rates::default()
    })
    .await;
    let [alice, bob] = world.users(["alice", "bob"]).await;
    let room = world.room(&alice, &[&bob]).await;

    // A second room, or a DM, is refused.
    let (s, b) = world
        .call(
            Method::POST,
            "/v1/rooms",
            Some(&alice),
            Some(json!({"name": "two"})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    let (s, b) = world.dm(&alice, bob.id).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    let (_, list) = world
        .call(Method::GET, "/v1/rooms", Some(&alice), None)
        .await;
    assert_eq!(list["rooms"].as_array().unwrap().len(), 1, "{list}");

    // Posts, edits and deletes share one bucket of 3.
    let m = world.post(&alice, room, "c1", "one").await;
    let path = format!("/v1/rooms/{room}/messages/{}", m["id"].as_str().unwrap());
    let (s, b) = world
        .call(
            Method::PATCH,
            &path,
            Some(&alice),
            Some(json!({"body": "one!"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    world.post(&alice, room, "c2", "two").await;
    let before = world.snapshot(room, &alice).await;
    let (s, b) = world
        .call(
            Method::POST,
            &format!("/v1/rooms/{room}/messages"),
            Some(&alice),
            Some(json!({"clientMsgId": "c3", "body": "three"})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert_eq!(b["error"]["code"], "rate_limited");
    let (s, _) = world.call(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(world.snapshot(room, &alice).await, before, "nothing stored");
    // Bob has his own bucket.
    world.post(&bob, room, "b1", "hi").await;

    // Reactions.
    let react = format!("{path}/reactions/%F0%9F%91%8D");
    let (s, b) = world.call(Method::PUT, &react, Some(&alice), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = world.call(Method::DELETE, &react, Some(&alice), None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
}
