//! Routes between roomcast's own tiers, under `/internal/v1`, served by
//! [`routes`] on the API node's internal listener only (`internal.listen`,
//! `--internal-listen`; never on the public port), authenticated with a
//! service token signed with the internal secret and carrying its own
//! audience ([`roomcast_auth::ServiceTokens`]). User tokens are refused here.
//!
//! - `GET /healthz` → 200 `{"status":"ok"}`: the realtime tier's
//!   readiness check of the API tier.
//! - `GET /internal/v1/access?roomId=…&userId=…` → `{"access":"member","lastSeq":N}`,
//!   `{"access":"not_member"}` or `{"access":"no_room"}`: how the realtime tier
//!   checks `joinRoom` without reaching into the database.
//! - `GET /internal/v1/events?roomId=…&userId=…&afterEventSeq=N&limit=M` →
//!   the [`roomcast_core::RoomEvents`] that `userId` would get from
//!   `GET /v1/rooms/{roomId}/events` (403 / 404 alike): how the realtime
//!   tier replays a room to a rejoining socket when its own buffer does not
//!   reach back far enough.
//! - `GET /internal/v1/rooms?userId=…&limit=M` → the first page of
//!   `userId`'s room list (a [`roomcast_core::RoomList`], as `GET /v1/rooms`
//!   answers it): what a `joinUser {rooms: true}` ACK and a recovered
//!   session's refresh carry.
//! - `GET /internal/v1/admit?userId=…&sessionId=…` → `{"admit": "yes" |
//!   "unknown_user" | "session_ended"}`: whether a token's user exists and
//!   its login session (if it names one) is live, asked before a socket's
//!   CONNECT is accepted.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::routing::get;
use roomcast_auth::ServiceTokens;
use roomcast_core::{
    Admitted, RoomAccess, RoomEvents, RoomId, RoomList, SessionId, UserId, validate,
};
use roomcast_store::StoreError;
use serde::Deserialize;

use crate::error::{Json, Query};
use crate::{ApiError, AppState};

/// What the internal routes reach: the API's state and the service tokens.
#[derive(Clone)]
pub struct InternalState {
    /// The API's state (the store).
    pub app: AppState,
    /// Verifies the callers' service tokens.
    pub service: Arc<ServiceTokens>,
}

impl FromRef<InternalState> for AppState {
    fn from_ref(s: &InternalState) -> Self {
        s.app.clone()
    }
}

/// The internal router: `/internal/v1/*` and `/healthz`, for the internal
/// listener.
pub fn routes(app: AppState, service: Arc<ServiceTokens>) -> Router {
    Router::new()
        .route("/internal/v1/access", get(access))
        .route("/internal/v1/events", get(events))
        .route("/internal/v1/rooms", get(rooms))
        .route("/internal/v1/admit", get(admit_route))
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .fallback(crate::error::not_found)
        .method_not_allowed_fallback(crate::error::method_not_allowed)
        .with_state(InternalState { app, service })
}

/// A verified service caller (the name in its token).
pub struct Service(pub String);

impl FromRequestParts<InternalState> for Service {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &InternalState,
    ) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::Unauthorized("missing service token".into()))?;
        state
            .service
            .verify(token.trim())
            .map(Service)
            .map_err(|_| ApiError::Unauthorized("invalid service token".into()))
    }
}

/// Query of the access route.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessQuery {
    room_id: RoomId,
    user_id: UserId,
}

/// `GET /internal/v1/access`.
pub async fn access(
    State(state): State<AppState>,
    _caller: Service,
    Query(q): Query<AccessQuery>,
) -> Result<Json<RoomAccess>, ApiError> {
    Ok(Json(state.store.access(q.room_id, q.user_id).await?))
}

/// Query of the events route.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    room_id: RoomId,
    user_id: UserId,
    after_event_seq: Option<i64>,
    limit: Option<i64>,
}

/// `GET /internal/v1/events`.
pub async fn events(
    State(state): State<AppState>,
    _caller: Service,
    Query(q): Query<EventsQuery>,
) -> Result<Json<RoomEvents>, ApiError> {
    let (after, limit) = crate::events::page(q.after_event_seq, q.limit)?;
    Ok(Json(
        state
            .store
            .room_events(q.room_id, q.user_id, after, limit)
            .await?,
    ))
}

/// Query of the admit route.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmitQuery {
    user_id: UserId,
    session_id: Option<SessionId>,
}

/// `{admit}`.
#[derive(serde::Serialize)]
pub struct AdmitAnswer {
    admit: Admitted,
}

/// `GET /internal/v1/admit`.
pub async fn admit_route(
    State(state): State<AppState>,
    _caller: Service,
    Query(q): Query<AdmitQuery>,
) -> Result<Json<AdmitAnswer>, ApiError> {
    let admit = admit(&*state.store, q.user_id, q.session_id).await?;
    Ok(Json(AdmitAnswer { admit }))
}

/// May a token of `user` in `session` connect a socket? (Also what
/// `roomcast serve` asks its store directly.) One read when the answer is
/// yes: a live session of `user` means `user` exists.
pub async fn admit(
    store: &dyn roomcast_store::Store,
    user: UserId,
    session: Option<SessionId>,
) -> Result<Admitted, StoreError> {
    let live = match session {
        Some(session) => store.session_user(session, roomcast_core::now_ms()).await?,
        None => None,
    };
    if session.is_some() && live == Some(user) {
        return Ok(Admitted::Yes);
    }
    Ok(match (store.user(user).await?, session) {
        (None, _) => Admitted::UnknownUser,
        (Some(_), None) => Admitted::Yes,
        (Some(_), Some(_)) => Admitted::SessionEnded,
    })
}

/// Query of the rooms route.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomsQuery {
    user_id: UserId,
    limit: Option<i64>,
}

/// `GET /internal/v1/rooms`.
pub async fn rooms(
    State(state): State<AppState>,
    _caller: Service,
    Query(q): Query<RoomsQuery>,
) -> Result<Json<RoomList>, ApiError> {
    let limit = crate::rooms::page_limit(
        q.limit,
        validate::DEFAULT_ROOM_PAGE,
        validate::MAX_ROOM_PAGE,
    )?;
    let page = state.store.rooms_of(q.user_id, None, limit).await?;
    Ok(Json(RoomList {
        rooms: page.rooms,
        next: page.next,
    }))
}
