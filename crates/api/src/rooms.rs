//! Rooms themselves: create, list (paged), read one, rename, and direct
//! conversations.
//!
//! - `POST /v1/rooms` `{name, memberIds?}` → 201 `{room, invited}`
//! - `GET /v1/rooms?before=<cursor>&limit=N` → `{rooms, next}`
//! - `GET /v1/rooms/{roomId}` → `{room}`
//! - `PATCH /v1/rooms/{roomId}` `{name}` → `{room}` (owner/admin; not a DM)
//! - `POST /v1/dms` `{userId}` → 201 `{room, invited}` when created, 200 when it existed
//!
//! Members named who chose `addPolicy: "invite"` are invited, not added
//! (see [`crate::invitations`]); `invited` lists them.
//!
//! Every room in an answer is a [`RoomView`]: the room as the *caller* sees it
//! (their read marker, unread count, latest message), read back from the store
//! after the write. Membership and roles are checked by the store from the
//! token's user id; a refusal changes nothing.

use axum::extract::State;
use axum::http::StatusCode;
use roomcast_core::{RoomId, RoomList, RoomView, UserId, validate};
use roomcast_store::StoreError;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::error::{Json, Path, Query, parse_id};
use crate::invitations::AddedReply;
use crate::{ApiError, AppState};

/// Body of `POST /v1/rooms`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRoom {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) member_ids: Vec<UserId>,
}

/// Body of `PATCH /v1/rooms/{roomId}`.
#[derive(Deserialize)]
pub struct Rename {
    pub(crate) name: String,
}

/// Body of `POST /v1/dms`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenDm {
    pub(crate) user_id: UserId,
}

/// `{room}`: one room as the caller sees it.
#[derive(Serialize)]
pub struct RoomReply {
    room: RoomView,
}

/// Query of `GET /v1/rooms`.
#[derive(Deserialize)]
pub struct RoomsQuery {
    pub(crate) before: Option<String>,
    pub(crate) limit: Option<i64>,
}

/// The `roomId` path segment, or 400.
pub fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    parse_id(raw, "roomId")
}

/// `{room}` for `room` as `me` sees it now.
pub async fn view(state: &AppState, room: RoomId, me: UserId) -> Result<Json<RoomReply>, ApiError> {
    let room = state.store.room(room, me).await?;
    Ok(Json(RoomReply { room }))
}

/// A `limit` query value: `default` when absent, 400 below 1, capped at `max`.
pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if n < 1 => Err(ApiError::BadRequest("limit must be 1 or more".into())),
        Some(n) => Ok(n.min(max)),
    }
}

/// `POST /v1/rooms` → 201 `{room, invited}`. The caller is its owner;
/// `memberIds` (at most [`validate::MAX_ROOM_MEMBERS`]) join as members, or
/// are invited (`invited`) if their add policy is `invite`.
pub async fn create_room(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Json(body): Json<CreateRoom>,
) -> Result<(StatusCode, Json<AddedReply>), ApiError> {
    validate::room_name(&body.name).map_err(ApiError::BadRequest)?;
    state.limits.room(me)?;
    if body.member_ids.len() > validate::MAX_ROOM_MEMBERS {
        return Err(ApiError::BadRequest(format!(
            "memberIds may list at most {} users",
            validate::MAX_ROOM_MEMBERS
        )));
    }
    let room = match state
        .store
        .create_room(body.name.trim(), me, &body.member_ids)
        .await
    {
        Ok(room) => room,
        Err(StoreError::UnknownUser(id)) => {
            return Err(ApiError::BadRequest(format!("memberIds: no user {id}")));
        }
        Err(e) => return Err(e.into()),
    };
    let reply = AddedReply::new(&state, &room, me, &body.member_ids).await?;
    Ok((StatusCode::CREATED, Json(reply)))
}

/// `GET /v1/rooms?before=<cursor>&limit=N` → the caller's rooms, latest
/// activity first; `next` is the cursor of the following page, `null` on the
/// last one. `limit` defaults to 50 and is capped at 100.
pub async fn list_rooms(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Query(q): Query<RoomsQuery>,
) -> Result<Json<RoomList>, ApiError> {
    let limit = page_limit(
        q.limit,
        validate::DEFAULT_ROOM_PAGE,
        validate::MAX_ROOM_PAGE,
    )?;
    let page = state
        .store
        .rooms_of(me, q.before.as_deref().filter(|c| !c.is_empty()), limit)
        .await?;
    Ok(Json(RoomList {
        rooms: page.rooms,
        next: page.next,
    }))
}

/// `GET /v1/rooms/{roomId}` → `{room}`; 403 for a non-member, 404 for no room.
pub async fn get_room(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<RoomReply>, ApiError> {
    view(&state, room_id(&raw)?, me).await
}

/// `PATCH /v1/rooms/{roomId}` `{name}` → `{room}`. Owner or admin only; a
/// DM cannot be renamed (400).
pub async fn rename_room(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
    Json(body): Json<Rename>,
) -> Result<Json<RoomReply>, ApiError> {
    let room = room_id(&raw)?;
    validate::room_name(&body.name).map_err(ApiError::BadRequest)?;
    state.store.rename_room(room, me, body.name.trim()).await?;
    view(&state, room, me).await
}

/// `POST /v1/dms` `{userId}` → `{room, invited}`, the DM of the caller and
/// `userId`: 201 when created now, 200 when it existed. A peer whose add
/// policy is `invite` is invited (`invited: [userId]`) until they accept or
/// open the DM themself. An unknown user is 404; oneself 400.
pub async fn open_dm(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Json(body): Json<OpenDm>,
) -> Result<(StatusCode, Json<AddedReply>), ApiError> {
    if body.user_id == me {
        return Err(ApiError::BadRequest(
            "cannot open a DM with yourself".into(),
        ));
    }
    state.limits.room(me)?;
    let (room, created) = match state.store.open_dm(me, body.user_id).await {
        Ok(opened) => opened,
        Err(StoreError::UnknownUser(id)) => {
            return Err(ApiError::NotFound(format!("no user {id}")));
        }
        Err(e) => return Err(e.into()),
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let reply = AddedReply::new(&state, &room, me, &[body.user_id]).await?;
    Ok((status, Json(reply)))
}
