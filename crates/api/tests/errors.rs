//! Error answers across the routes: every one is `{"error":{code,message}}`,
//! tokens are required everywhere, and a database failure is a 500 that
//! keeps its detail in the log.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::down::DownStore;
use common::{World, assert_error};
use roomcast_core::{MessageId, RoomId, UserId};
use serde_json::{Value, json};

/// Every `/v1` route of the chat domain, with a body it would accept.
fn routes() -> Vec<(Method, String, Option<Value>)> {
    let (r, m, u) = (RoomId::new(), MessageId::new(), UserId::new());
    let room = format!("/v1/rooms/{r}");
    let msg = format!("{room}/messages/{m}");
    vec![
        (Method::POST, "/v1/rooms".into(), Some(json!({"name": "r"}))),
        (Method::GET, "/v1/rooms".into(), None),
        (Method::GET, room.clone(), None),
        (Method::PATCH, room.clone(), Some(json!({"name": "r"}))),
        (Method::POST, "/v1/dms".into(), Some(json!({"userId": u}))),
        (
            Method::POST,
            format!("{room}/members"),
            Some(json!({"userIds": [u]})),
        ),
        (Method::DELETE, format!("{room}/members/{u}"), None),
        (
            Method::PUT,
            format!("{room}/members/{u}/role"),
            Some(json!({"role": "admin"})),
        ),
        (Method::POST, format!("{room}/leave"), None),
        (
            Method::POST,
            format!("{room}/messages"),
            Some(json!({"clientMsgId": "c", "body": "b"})),
        ),
        (Method::GET, format!("{room}/messages?beforeSeq=9"), None),
        (Method::PATCH, msg.clone(), Some(json!({"body": "b"}))),
        (Method::DELETE, msg.clone(), None),
        (Method::PUT, format!("{msg}/reactions/%F0%9F%91%8D"), None),
        (
            Method::DELETE,
            format!("{msg}/reactions/%F0%9F%91%8D"),
            None,
        ),
        (
            Method::POST,
            format!("{room}/read"),
            Some(json!({"seq": 1})),
        ),
        (Method::GET, format!("{room}/presence"), None),
        (Method::GET, "/v1/me".into(), None),
        (
            Method::PATCH,
            "/v1/me/settings".into(),
            Some(json!({"addPolicy": "anyone"})),
        ),
        (Method::GET, "/v1/invitations".into(), None),
        (Method::POST, format!("/v1/invitations/{r}/accept"), None),
        (Method::POST, format!("/v1/invitations/{r}/decline"), None),
    ]
}

#[tokio::test]
async fn every_route_wants_a_valid_token() {
    let w = World::new().await;
    let forged = common::Member {
        id: UserId::new(),
        token: "forged.token.here".into(),
    };
    for (method, path, body) in routes() {
        let got = w.call(method.clone(), &path, None, body.clone()).await;
        assert_error(got, StatusCode::UNAUTHORIZED, "unauthorized");
        let got = w.call(method, &path, Some(&forged), body).await;
        assert_error(got, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

#[tokio::test]
async fn a_database_failure_is_a_500_without_detail_on_every_route() {
    let w = World::on(Arc::new(DownStore::default()));
    let me = common::Member {
        id: UserId::new(),
        token: w.state.tokens.issue(UserId::new()),
    };
    for (method, path, body) in routes() {
        let got = w.call(method.clone(), &path, Some(&me), body).await;
        assert_eq!(
            got.1["error"]["message"], "internal error",
            "{method} {path}"
        );
        assert_error(got, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    }
}

#[tokio::test]
async fn malformed_requests_are_json_400s_and_unknown_routes_json_404s() {
    let w = World::new().await;
    let a = w.user("alice").await;
    let room = w.room(&a, &[]).await;
    for (method, path) in [
        (Method::POST, format!("/v1/rooms/{room}/messages")),
        (Method::PATCH, format!("/v1/rooms/{room}")),
        (Method::POST, format!("/v1/rooms/{room}/read")),
        (Method::POST, "/v1/dms".to_owned()),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(&path)
            .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{not json"))
            .unwrap();
        assert_error(w.send(req).await, StatusCode::BAD_REQUEST, "bad_request");
    }
    let got = w
        .call(
            Method::GET,
            &format!("/v1/rooms/{room}/nothing"),
            Some(&a),
            None,
        )
        .await;
    assert_error(got, StatusCode::NOT_FOUND, "not_found");
    let got = w
        .call(Method::PUT, &format!("/v1/rooms/{room}"), Some(&a), None)
        .await;
    assert_error(got, StatusCode::METHOD_NOT_ALLOWED, "bad_request");
    let huge = json!({"name": "x".repeat(roomcast_api::DEFAULT_MAX_BODY_BYTES)});
    let got = w
        .call(
            Method::PATCH,
            &format!("/v1/rooms/{room}"),
            Some(&a),
            Some(huge),
        )
        .await;
    assert_error(got, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}
