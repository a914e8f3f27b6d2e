//! The test world of the API suites: an in-memory SQLite store, the router,
//! users with tokens, a JSON caller, and a snapshot of everything a refused
//! request must leave unchanged.

#![allow(dead_code)] // each suite uses its own part of the helpers

pub mod down;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use roomcast_api::{AppState, app};
use roomcast_auth::Tokens;
use roomcast_core::{AddPolicy, Envelope, Kind, RoomId, UserId};
use roomcast_store::{SqliteStore, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

/// A registered user and their bearer token.
#[derive(Clone, Debug)]
pub struct Member {
    /// Id.
    pub id: UserId,
    /// Bearer token.
    pub token: String,
}

/// A fresh `sqlite::memory:` store.
async fn memory(default_add_policy: AddPolicy) -> Arc<dyn Store> {
    let options = roomcast_store::StoreOptions {
        default_add_policy,
        ..Default::default()
    };
    Arc::new(
        SqliteStore::open_with("sqlite::memory:", &options)
            .await
            .unwrap(),
    )
}

/// The API over a fresh in-memory store.
pub struct World {
    /// What the handlers see.
    pub state: AppState,
    /// The store, for direct checks.
    pub store: Arc<dyn Store>,
    app: Router,
}

impl World {
    /// A world on a fresh `sqlite::memory:` store whose users let anyone
    /// add them (the tests written before consent add members directly).
    pub async fn new() -> Self {
        Self::with_policy(AddPolicy::Anyone).await
    }

    /// A world on a fresh `sqlite::memory:` store where users who never
    /// chose have add policy `default` (the product's is `invite`).
    pub async fn with_policy(default: AddPolicy) -> Self {
        Self::on(memory(default).await)
    }

    /// A world on `store`, with no rate limits.
    pub fn on(store: Arc<dyn Store>) -> Self {
        Self::with_limits(store, roomcast_api::limits::ApiLimits::off())
    }

    /// A world on a fresh in-memory store with the rate limits of `rates`.
    pub async fn limited(rates: &roomcast_limits::Rates) -> Self {
        let store = memory(AddPolicy::Anyone).await;
        Self::with_limits(store, roomcast_api::limits::ApiLimits::new(rates, true))
    }

    fn with_limits(store: Arc<dyn Store>, limits: roomcast_api::limits::ApiLimits) -> Self {
        let state = AppState {
            store: store.clone(),
            tokens: Arc::new(Tokens::new(b"api-tests-secret", Duration::from_secs(3600))),
            max_body_bytes: roomcast_api::DEFAULT_MAX_BODY_BYTES,
            limits: Arc::new(limits),
            refresh_ttl: roomcast_api::sessions::DEFAULT_REFRESH_TTL,
        };
        Self {
            app: app(state.clone()),
            state,
            store,
        }
    }

    /// A new user called `name`, with a token (no password hashing).
    pub async fn user(&self, name: &str) -> Member {
        let id = self.store.create_user(name, "not-a-hash").await.unwrap().id;
        Member {
            id,
            token: self.state.tokens.issue(id),
        }
    }

    /// Call the router; the answer's status and JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        who: Option<&Member>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(m) = who {
            req = req.header(header::AUTHORIZATION, format!("Bearer {}", m.token));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    /// Send a prepared request; the status and JSON body (`Null` when empty).
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("{status}: not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, value)
    }

    /// New users with these names.
    pub async fn users<const N: usize>(&self, names: [&str; N]) -> [Member; N] {
        let mut users = Vec::with_capacity(N);
        for name in names {
            users.push(self.user(name).await);
        }
        users.try_into().expect("N users")
    }

    /// `POST /v1/dms {userId: peer}` as `me`.
    pub async fn dm(&self, me: &Member, peer: UserId) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/v1/dms",
            Some(me),
            Some(json!({"userId": peer})),
        )
        .await
    }

    /// `actor` sets `user`'s role in `room` over HTTP (must succeed).
    pub async fn set_role(&self, actor: &Member, room: RoomId, user: &Member, role: &str) {
        let (s, v) = self
            .call(
                Method::PUT,
                &format!("/v1/rooms/{room}/members/{}/role", user.id),
                Some(actor),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// `actor` removes `user` from `room` over HTTP (must succeed).
    pub async fn remove(&self, actor: &Member, room: RoomId, user: &Member) {
        let (s, v) = self
            .call(
                Method::DELETE,
                &format!("/v1/rooms/{room}/members/{}", user.id),
                Some(actor),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    /// A group room created over HTTP by `owner` with `members`; its id.
    pub async fn room(&self, owner: &Member, members: &[&Member]) -> RoomId {
        let ids: Vec<_> = members.iter().map(|m| m.id).collect();
        let (s, v) = self
            .call(
                Method::POST,
                "/v1/rooms",
                Some(owner),
                Some(json!({"name": "general", "memberIds": ids})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["room"]["id"].as_str().unwrap().parse().unwrap()
    }

    /// Post `body` as `who` (clientMsgId `cmid`) over HTTP; the message.
    pub async fn post(&self, who: &Member, room: RoomId, cmid: &str, body: &str) -> Value {
        let (s, v) = self
            .call(
                Method::POST,
                &format!("/v1/rooms/{room}/messages"),
                Some(who),
                Some(json!({"clientMsgId": cmid, "body": body})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["message"].clone()
    }

    /// The pending outbox rows' envelopes, oldest first.
    pub async fn outbox(&self) -> Vec<Envelope> {
        let rows = self.store.outbox_pending(100_000).await.unwrap();
        rows.into_iter()
            .flat_map(|r| {
                r.envelope
                    .decode()
                    .expect("an outbox row is an envelope")
                    .expand()
            })
            .collect()
    }

    /// The outbox's event names, oldest first.
    pub async fn outbox_kinds(&self) -> Vec<Kind> {
        self.outbox().await.into_iter().map(|e| e.kind).collect()
    }

    /// Empty the outbox (as if the relay had published it).
    pub async fn drain(&self) {
        let rows = self.store.outbox_pending(100_000).await.unwrap();
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        self.store.outbox_done(&ids).await.unwrap();
    }

    /// Everything about `room` that a refused request must leave as it is:
    /// the room and its history as `viewer` sees them, every member's room
    /// view, and the outbox.
    pub async fn snapshot(&self, room: RoomId, viewer: &Member) -> Value {
        let (_, view) = self
            .call(
                Method::GET,
                &format!("/v1/rooms/{room}"),
                Some(viewer),
                None,
            )
            .await;
        let (_, history) = self
            .call(
                Method::GET,
                &format!("/v1/rooms/{room}/messages"),
                Some(viewer),
                None,
            )
            .await;
        let mut views = Vec::new();
        for m in view["room"]["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let id: UserId = m.as_str().unwrap().parse().unwrap();
            views.push(format!("{:?}", self.store.room(room, id).await.ok()));
        }
        let outbox: Vec<Value> = self
            .outbox()
            .await
            .into_iter()
            .map(|e| json!([e.kind, e.payload]))
            .collect();
        json!({"view": view, "history": history, "views": views, "outbox": outbox})
    }
}

/// One room with every rank: alice (owner), bob (admin), carol and dave
/// (members); erin is outside it. The outbox is drained.
pub struct Cast {
    /// The world.
    pub w: World,
    /// The room.
    pub room: RoomId,
    /// alice.
    pub owner: Member,
    /// bob.
    pub admin: Member,
    /// A member.
    pub carol: Member,
    /// Another member.
    pub dave: Member,
    /// Not a member.
    pub erin: Member,
}

/// A fresh [`Cast`].
pub async fn cast() -> Cast {
    let w = World::new().await;
    let [owner, admin, carol, dave, erin] =
        w.users(["alice", "bob", "carol", "dave", "erin"]).await;
    let room = w.room(&owner, &[&admin, &carol, &dave]).await;
    w.set_role(&owner, room, &admin, "admin").await;
    w.drain().await;
    Cast {
        w,
        room,
        owner,
        admin,
        carol,
        dave,
        erin,
    }
}

/// A `chat.in` command envelope from `user` (the realtime tier's shape).
pub fn command(kind: Kind, user: Option<UserId>, payload: Value) -> Envelope {
    let payload = serde_json::value::to_raw_value(&payload).unwrap();
    Envelope::new(kind, None, user, payload)
}

/// Assert an error answer: the status, and `{"error":{"code":code,"message":…}}`.
#[track_caller]
pub fn assert_error(got: (StatusCode, Value), status: StatusCode, code: &str) {
    let (s, v) = got;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

/// Percent-encode `s` for a URL path segment or query value.
pub fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
