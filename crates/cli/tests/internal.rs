//! The internal routes of `roomcast api` (`/internal/v1/*`), served on the
//! internal listener only, behind service tokens signed with
//! `internal.secret` (their own audience): the public port has none, and
//! user tokens or service tokens signed with another secret are refused.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{Running, assert_error};
use reqwest::{Method, StatusCode};
use roomcast::{Config, Role, Server};
use roomcast_auth::ServiceTokens;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const JWT: &str = "user-token-secret";
const INTERNAL: &str = "internal-route-secret";

/// `roomcast api` on an in-process bus, with its internal listener.
async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: format!("sqlite://{}/t.db", dir.path().display()),
        ..Config::default()
    };
    config.auth.jwt_secret = JWT.into();
    config.internal.secret = INTERNAL.into();
    let shutdown = CancellationToken::new();
    let bus: Arc<dyn roomcast_bus::Bus> = Arc::new(roomcast_bus::MemoryBus::new());
    let server = Server::build_with_bus(Role::Api, &config, bus, shutdown.clone())
        .await
        .unwrap();
    Running::spawn(server, shutdown, config.listen, true, dir)
}

#[tokio::test]
async fn the_internal_listener_answers_healthz() {
    let t = start().await;
    let internal = t.internal.as_deref().unwrap();
    let res = t
        .http
        .get(format!("{internal}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn the_internal_access_route_takes_service_tokens_only() {
    let t = start().await;
    let (alice, ta) = t.register("alice").await;
    let (bob, _) = t.register("bob").await;
    let room = t.room(&ta, &[]).await;
    let service = ServiceTokens::new(INTERNAL.as_bytes()).issue("rt-test");
    let path = |user: &str| format!("/internal/v1/access?roomId={room}&userId={user}");

    let (s, v) = t
        .call(Method::GET, &path(&alice), Some(&service), None)
        .await;
    assert_eq!(
        (s, v),
        (
            StatusCode::OK,
            json!({"access": "member", "lastSeq": 0, "lastEventSeq": 0})
        )
    );
    let (_, v) = t.call(Method::GET, &path(&bob), Some(&service), None).await;
    assert_eq!(v, json!({"access": "not_member"}));
    let other =
        format!("/internal/v1/access?roomId=01900000-0000-7000-8000-000000000000&userId={alice}");
    let (_, v) = t.call(Method::GET, &other, Some(&service), None).await;
    assert_eq!(v, json!({"access": "no_room"}));

    // A user's token, or none, does not open the internal route.
    let (s, v) = t.call(Method::GET, &path(&alice), Some(&ta), None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, v) = t.call(Method::GET, &path(&alice), None, None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    // A service token signed with any other secret (the user tokens' one,
    // say) does not either.
    let forged = ServiceTokens::new(JWT.as_bytes()).issue("rt-test");
    let (s, v) = t
        .call(Method::GET, &path(&alice), Some(&forged), None)
        .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    // The public port has no internal routes at all.
    let res = t
        .http
        .get(format!("{}{}", t.base, path(&alice)))
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // And a service token is not a user token.
    let (s, v) = t.call(Method::GET, "/v1/me", Some(&service), None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    t.stop().await;
}

#[tokio::test]
async fn the_internal_events_route_answers_as_the_user_would_see_the_log() {
    let t = start().await;
    let (alice, ta) = t.register("alice").await;
    let (bob, _) = t.register("bob").await;
    let room = t.room(&ta, &[]).await;
    for body in ["one", "two"] {
        let (s, _) = t
            .call(
                Method::POST,
                &format!("/v1/rooms/{room}/messages"),
                Some(&ta),
                Some(json!({"clientMsgId": body, "body": body})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let service = ServiceTokens::new(INTERNAL.as_bytes()).issue("rt-test");
    let path = |user: &str, after: i64| {
        format!("/internal/v1/events?roomId={room}&userId={user}&afterEventSeq={after}")
    };
    let (s, v) = t
        .call(Method::GET, &path(&alice, 1), Some(&service), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (
            &v["events"][0]["eventSeq"],
            &v["events"][0]["type"],
            &v["events"][0]["payload"]["body"]
        ),
        (&json!(2), &json!("receiveMessage"), &json!("two"))
    );
    assert_eq!(
        (&v["lastEventSeq"], &v["recovered"]),
        (&json!(2), &json!(true))
    );
    let (s, v) = t
        .call(Method::GET, &path(&bob, 0), Some(&service), None)
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = t.call(Method::GET, &path(&alice, 0), Some(&ta), None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, v) = t
        .call(Method::GET, &path(&alice, -1), Some(&service), None)
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_request");

    // The room list, as `GET /v1/rooms` answers it, for `joinUser {rooms}`.
    let rooms = |user: &str, limit: i64| format!("/internal/v1/rooms?userId={user}&limit={limit}");
    let (s, v) = t
        .call(Method::GET, &rooms(&alice, 10), Some(&service), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["rooms"][0]["id"], &v["rooms"][0]["lastSeq"], &v["next"]),
        (&json!(room), &json!(2), &Value::Null)
    );
    let (s, v) = t
        .call(Method::GET, &rooms(&bob, 10), Some(&service), None)
        .await;
    assert_eq!(
        (s, &v["rooms"]),
        (StatusCode::OK, &json!([])),
        "bob has none"
    );
    let (s, v) = t
        .call(Method::GET, &rooms(&alice, 10), Some(&ta), None)
        .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, v) = t
        .call(Method::GET, &rooms(&alice, 0), Some(&service), None)
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_request");
    t.stop().await;
}

#[tokio::test]
async fn the_internal_admit_route_says_whether_a_token_may_connect() {
    let t = start().await;
    let (alice, ta) = t.register("alice").await;
    let service = ServiceTokens::new(INTERNAL.as_bytes()).issue("rt-test");
    let ask = |query: String| {
        let (t, service) = (&t, service.clone());
        async move {
            let path = format!("/internal/v1/admit?{query}");
            t.call(Method::GET, &path, Some(&service), None).await
        }
    };
    let (s, v) = ask(format!("userId={alice}")).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"admit": "yes"})));
    let ghost = "01900000-0000-7000-8000-000000000000";
    let (_, v) = ask(format!("userId={ghost}")).await;
    assert_eq!(v, json!({"admit": "unknown_user"}));
    let (_, v) = ask(format!("userId={alice}&sessionId={ghost}")).await;
    assert_eq!(v, json!({"admit": "session_ended"}), "no such session");
    let path = format!("/internal/v1/admit?userId={alice}");
    let (s, _) = t.call(Method::GET, &path, Some(&ta), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a user's token is refused");
    t.stop().await;
}
