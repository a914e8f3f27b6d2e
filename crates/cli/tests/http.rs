//! The HTTP API of `roomcast serve`, against a real server bound to 127.0.0.1:0.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::assert_error;
use reqwest::{Method, StatusCode};
use roomcast::{Config, Server};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

type TestServer = common::Running;

impl TestServer {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(Arc::new(tempfile::tempdir().unwrap()), tweak).await
    }

    /// A server whose SQLite database is `t.db` in `dir`.
    async fn start_in(dir: Arc<tempfile::TempDir>, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: format!("sqlite://{}/t.db", dir.path().display()),
            ..Config::default()
        };
        // These tests add members directly (consent: e2e/tests/invitations).
        config.rooms.default_add_policy = roomcast_core::AddPolicy::Anyone;
        tweak(&mut config);
        let shutdown = CancellationToken::new();
        let server = Server::build(&config, shutdown.clone()).await.unwrap();
        Self::spawn(server, shutdown, config.listen, false, dir)
    }
}

#[tokio::test]
async fn register_login_me() {
    let t = TestServer::start().await;
    let (id, token) = t.register("alice").await;

    let (s, v) = t.call(Method::GET, "/v1/me", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"user": {"id": id, "username": "alice"}, "settings": {"addPolicy": "anyone"}}),
        "anyone: this server's rooms.default_add_policy"
    );

    let (s, v) = t
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": "password-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["user"]["id"], id.as_str());
    let (s, _) = t
        .call(Method::GET, "/v1/me", v["token"].as_str(), None)
        .await;
    assert_eq!(s, StatusCode::OK, "the login token works");

    let (s, v) = t
        .call(
            Method::POST,
            "/v1/auth/register",
            None,
            Some(json!({"username": "ALICE", "password": "password-2"})),
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "conflict");
    t.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let t = TestServer::start().await;
    t.register("alice").await;
    let (s1, v1) = t
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": "nope-nope"})),
        )
        .await;
    let (s2, v2) = t
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"username": "nobody", "password": "nope-nope"})),
        )
        .await;
    assert_error(s1, &v1, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!((s1, v1), (s2, v2));
    t.stop().await;
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let t = TestServer::start().await;
    let (s, v) = t.call(Method::GET, "/v1/me", None, None).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, v) = t
        .call(Method::GET, "/v1/rooms", Some("forged.token.here"), None)
        .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    t.stop().await;
}

#[tokio::test]
async fn rooms_are_listed_for_their_members_only() {
    let t = TestServer::start().await;
    let (a, ta) = t.register("alice").await;
    let (b, tb) = t.register("bob").await;
    let (_, tc) = t.register("carol").await;
    let room = t.room(&ta, &[&b]).await;

    for token in [&ta, &tb] {
        let (s, v) = t.call(Method::GET, "/v1/rooms", Some(token), None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["rooms"].as_array().unwrap().len(), 1);
        assert_eq!(v["rooms"][0]["id"], room.as_str());
        assert_eq!(v["rooms"][0]["members"], json!([a, b]));
    }
    let (_, v) = t.call(Method::GET, "/v1/rooms", Some(&tc), None).await;
    assert_eq!(v, json!({"rooms": [], "next": null}));
    t.stop().await;
}

#[tokio::test]
async fn messages_get_gap_free_seqs_and_reposts_are_idempotent() {
    let t = TestServer::start().await;
    let (a, ta) = t.register("alice").await;
    let room = t.room(&ta, &[]).await;
    let path = format!("/v1/rooms/{room}/messages");

    let posts = (0..20).map(|i| {
        let body = json!({"clientMsgId": format!("m{i}"), "body": format!("hello {i}")});
        t.call(Method::POST, &path, Some(&ta), Some(body))
    });
    let mut seqs = Vec::new();
    for (s, v) in futures_join(posts).await {
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["message"]["senderId"], a.as_str());
        assert_eq!(v["message"]["roomId"], room.as_str());
        seqs.push(v["message"]["seq"].as_i64().unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());

    let (s1, first) = t
        .call(
            Method::POST,
            &path,
            Some(&ta),
            Some(json!({"clientMsgId": "once", "body": "x"})),
        )
        .await;
    let (s2, again) = t
        .call(
            Method::POST,
            &path,
            Some(&ta),
            Some(json!({"clientMsgId": "once", "body": "x"})),
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first, again);
    assert_eq!(first["message"]["seq"], 21);

    let (s, v) = t
        .call(
            Method::GET,
            &format!("{path}?afterSeq=18&limit=2"),
            Some(&ta),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let got: Vec<i64> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![19, 20]);
    let (_, v) = t.call(Method::GET, &path, Some(&ta), None).await;
    assert_eq!(
        v["messages"].as_array().unwrap().len(),
        21,
        "default limit covers all 21"
    );
    t.stop().await;
}

#[tokio::test]
async fn non_members_unknown_rooms_and_bad_input_are_refused() {
    let t = TestServer::start().await;
    let (_, ta) = t.register("alice").await;
    let (_, tb) = t.register("bob").await;
    let room = t.room(&ta, &[]).await;
    let path = format!("/v1/rooms/{room}/messages");
    let msg = json!({"clientMsgId": "1", "body": "hi"});

    let (s, v) = t.call(Method::GET, &path, Some(&tb), None).await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = t
        .call(Method::POST, &path, Some(&tb), Some(msg.clone()))
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (_, v) = t.call(Method::GET, &path, Some(&ta), None).await;
    assert_eq!(v["messages"], json!([]), "the refused post stored nothing");

    let unknown = "/v1/rooms/01900000-0000-7000-8000-000000000000/messages";
    let (s, v) = t
        .call(Method::POST, unknown, Some(&ta), Some(msg.clone()))
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = t.call(Method::GET, unknown, Some(&ta), None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = t
        .call(Method::GET, "/v1/rooms/not-an-id/messages", Some(&ta), None)
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_request");

    for bad in [
        json!({"body": "no id"}),
        json!({"clientMsgId": "x"}),
        json!({"clientMsgId": "x", "body": "  "}),
        json!([1]),
    ] {
        let (s, v) = t.call(Method::POST, &path, Some(&ta), Some(bad)).await;
        assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_request");
    }
    let (s, v) = t
        .call(Method::GET, &format!("{path}?limit=0"), Some(&ta), None)
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_request");
    let (s, v) = t
        .call(
            Method::GET,
            &format!("{path}?afterSeq=abc"),
            Some(&ta),
            None,
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_request");
    let (s, v) = t
        .call(
            Method::POST,
            "/v1/rooms",
            Some(&ta),
            Some(json!({"name": "x", "memberIds": ["01900000-0000-7000-8000-000000000000"]})),
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_request");
    let (s, v) = t
        .call(
            Method::POST,
            "/v1/auth/register",
            None,
            Some(json!({"username": "a b", "password": "password-1"})),
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_request");
    let (s, v) = t
        .call(
            Method::POST,
            "/v1/auth/register",
            None,
            Some(json!({"username": "dave", "password": "short"})),
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_request");
    t.stop().await;
}

#[tokio::test]
async fn malformed_json_too_large_bodies_and_unknown_routes_answer_json_errors() {
    let t = TestServer::start().await;
    let raw = |body: &'static str| {
        t.http
            .post(format!("{}/v1/auth/register", t.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let res = raw("{\"username\":").await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_request");

    let huge = "x".repeat(100 * 1024);
    let res = t
        .http
        .post(format!("{}/v1/auth/register", t.base))
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{huge}\",\"password\":\"p\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");

    let (s, v) = t.call(Method::GET, "/v1/nothing-here", None, None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, v) = t.call(Method::DELETE, "/v1/rooms", None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(v["error"]["code"], "bad_request");

    let (s, v) = t.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    // serve's SQLite writer reports how many writes shared its commits.
    let (batches, writes) = (&v["store"]["writeBatches"], &v["store"]["writes"]);
    assert!(
        batches.as_u64().is_some_and(|b| b >= 1) && writes.as_u64() >= batches.as_u64(),
        "{v}"
    );
    t.stop().await;
}

#[tokio::test]
async fn the_demo_page_is_served_at_the_root_unless_switched_off() {
    let t = TestServer::start().await;
    for (path, ctype) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/client.js", "text/javascript"),
        ("/vendor/socket.io.esm.min.js", "text/javascript"),
    ] {
        let res = t
            .http
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let got = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(got.starts_with(ctype), "{path}: {got}");
    }
    t.stop().await;

    let t = TestServer::start_with(|c| c.http.demo_page = false).await;
    let (s, v) = t.call(Method::GET, "/", None, None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
    let (s, _) = t.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn tokens_survive_a_restart_on_the_same_database() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let first = TestServer::start_in(dir.clone(), |_| {}).await;
    let (_, token) = first.register("alice").await;
    first.stop().await;
    let second = TestServer::start_in(dir, |_| {}).await;
    let (s, v) = second.call(Method::GET, "/v1/me", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["username"], "alice");
    second.stop().await;
}

async fn futures_join<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(futs).await
}

#[tokio::test]
async fn cors_admits_only_the_configured_origin() {
    let app = "https://chat.example.com";
    let t = TestServer::start_with(|c| c.http.cors_origins = vec![app.to_owned()]).await;
    for path in ["/v1/rooms", "/socket.io/?EIO=4&transport=polling"] {
        for (origin, allowed) in [(app, true), ("https://evil.example.net", false)] {
            let res = t
                .http
                .request(Method::OPTIONS, format!("{}{path}", t.base))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type",
                )
                .send()
                .await
                .unwrap();
            let allow = res
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned());
            if allowed {
                assert_eq!(allow.as_deref(), Some(app), "{path} from {origin}");
            } else {
                assert_eq!(allow, None, "{path} from {origin}");
            }
        }
    }
    // Without configuration, no origin is admitted cross-origin.
    let closed = TestServer::start().await;
    let res = closed
        .http
        .get(format!("{}/healthz", closed.base))
        .header("origin", app)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    closed.stop().await;
    t.stop().await;
}

#[tokio::test]
async fn split_tiers_refuse_the_in_process_bus_and_a_missing_secret() {
    for role in [roomcast::Role::Api, roomcast::Role::Realtime] {
        let err = Server::build_role(role, &Config::default(), CancellationToken::new())
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("bus.kind"), "{err}");
        let bus: Arc<dyn roomcast_bus::Bus> = Arc::new(roomcast_bus::MemoryBus::new());
        let err = Server::build_with_bus(role, &Config::default(), bus, CancellationToken::new())
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("jwt_secret"), "{err}");
        let mut config = Config::default();
        config.auth.jwt_secret = "user-token-secret".into();
        let bus: Arc<dyn roomcast_bus::Bus> = Arc::new(roomcast_bus::MemoryBus::new());
        let err = Server::build_with_bus(role, &config, bus, CancellationToken::new())
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("internal.secret"), "{err}");
    }
}
