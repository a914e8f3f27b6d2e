//! Login sessions over HTTP: refresh rotation, reuse detection, logout, log
//! out everywhere, a password change; each end queues `sessionRevoked`.

mod common;

use axum::http::{Method, StatusCode};
use common::{World, assert_error};
use roomcast_core::Kind;
use serde_json::{Value, json};

/// Register `name` over HTTP: the answer (user, token, refreshToken, expiresIn).
async fn register(w: &World, name: &str) -> Value {
    let body = json!({"username": name, "password": "password-one"});
    let (s, v) = w
        .call(Method::POST, "/v1/auth/register", None, Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn login(w: &World, name: &str, password: &str) -> (StatusCode, Value) {
    let body = json!({"username": name, "password": password});
    w.call(Method::POST, "/v1/auth/login", None, Some(body))
        .await
}

async fn refresh(w: &World, token: &Value) -> (StatusCode, Value) {
    let body = json!({"refreshToken": token});
    w.call(Method::POST, "/v1/auth/refresh", None, Some(body))
        .await
}

/// POST `path` with the bearer token `token`.
async fn post_as(w: &World, path: &str, token: &Value, body: Option<Value>) -> (StatusCode, Value) {
    let who = common::Member {
        id: roomcast_core::UserId::default(),
        token: token.as_str().unwrap().to_owned(),
    };
    w.call(Method::POST, path, Some(&who), body).await
}

async fn revoked_events(w: &World) -> usize {
    let n = w
        .outbox()
        .await
        .iter()
        .filter(|e| e.kind == Kind::SessionRevoked)
        .count();
    w.drain().await;
    n
}

#[tokio::test]
async fn a_refresh_rotates_and_reusing_the_old_token_ends_the_session() {
    let w = World::new().await;
    let first = register(&w, "alice").await;
    assert!(first["refreshToken"].as_str().unwrap().starts_with("rt1."));
    assert!(first["expiresIn"].as_u64().unwrap() > 0);
    w.drain().await;

    let (s, second) = refresh(&w, &first["refreshToken"]).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_eq!(second["user"], first["user"]);
    assert_ne!(second["refreshToken"], first["refreshToken"]);
    let (s, _) = w
        .call(Method::GET, "/v1/me", Some(&member(&second)), None)
        .await;
    assert_eq!(s, StatusCode::OK, "the new access token works");
    assert_eq!(revoked_events(&w).await, 0);

    // The first refresh token again: reuse. The session ends, so even the
    // newest refresh token is refused after it.
    assert_error(
        refresh(&w, &first["refreshToken"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(revoked_events(&w).await, 1, "its sockets are told");
    assert_error(
        refresh(&w, &second["refreshToken"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    for bad in [json!("rt1.garbage"), json!(""), json!(7)] {
        let (s, v) = refresh(&w, &bad).await;
        assert!(
            s == StatusCode::UNAUTHORIZED || s == StatusCode::BAD_REQUEST,
            "{s} {v}"
        );
    }
    assert_eq!(revoked_events(&w).await, 0, "garbage ends nothing");
}

fn member(session: &Value) -> common::Member {
    common::Member {
        id: session["user"]["id"].as_str().unwrap().parse().unwrap(),
        token: session["token"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn logout_ends_this_session_and_logout_all_ends_every_one() {
    let w = World::new().await;
    let laptop = register(&w, "bob").await;
    let (_, phone) = login(&w, "bob", "password-one").await;
    let (_, tablet) = login(&w, "bob", "password-one").await;
    w.drain().await;

    let (s, _) = post_as(&w, "/v1/auth/logout", &phone["token"], None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(revoked_events(&w).await, 1);
    assert_error(
        refresh(&w, &phone["refreshToken"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (s, _) = refresh(&w, &laptop["refreshToken"]).await;
    assert_eq!(s, StatusCode::OK, "the laptop's session lives on");

    let (s, _) = post_as(&w, "/v1/auth/logout-all", &tablet["token"], None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(revoked_events(&w).await, 2, "the laptop's and the tablet's");
    assert_error(
        refresh(&w, &tablet["refreshToken"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (s, _) = w.call(Method::POST, "/v1/auth/logout", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions() {
    let w = World::new().await;
    let here = register(&w, "carol").await;
    let (_, elsewhere) = login(&w, "carol", "password-one").await;
    w.drain().await;
    let change = |current: &str, new: &str| json!({"currentPassword": current, "newPassword": new});

    let (s, _) = post_as(
        &w,
        "/v1/auth/password",
        &here["token"],
        Some(change("nope-nope-nope", "password-two")),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the current password is checked"
    );
    let (s, _) = post_as(
        &w,
        "/v1/auth/password",
        &here["token"],
        Some(change("password-one", "short")),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(revoked_events(&w).await, 0, "refusals end nothing");

    let (s, v) = post_as(
        &w,
        "/v1/auth/password",
        &here["token"],
        Some(change("password-one", "password-two")),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(revoked_events(&w).await, 1, "the other session");
    assert_error(
        refresh(&w, &elsewhere["refreshToken"]).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (s, _) = refresh(&w, &here["refreshToken"]).await;
    assert_eq!(s, StatusCode::OK, "this one lives on");
    assert_eq!(
        login(&w, "carol", "password-one").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(&w, "carol", "password-two").await.0, StatusCode::OK);
}
