//! Room membership: adding and removing members, leaving, and roles.
//!
//! - `POST /v1/rooms/{roomId}/members` `{userIds}` (1 to 1000) → `{room, invited}`
//!   (owner/admin; users whose add policy is `invite` are invited, see
//!   [`crate::invitations`])
//! - `DELETE /v1/rooms/{roomId}/members/{userId}` → `{room}` (remove), or 204
//!   when `userId` is the caller (= leave)
//! - `POST /v1/rooms/{roomId}/leave` → 204
//! - `PUT /v1/rooms/{roomId}/members/{userId}/role` `{role}` → `{room}` (owner only)
//!
//! Who may do what is the store's rule (see `roomcast_core::Role`): a refusal
//! is 403 and changes nothing; the owner leaving a room with other members is
//! 409; a DM's membership never changes (400). Every change queues its
//! `roomRemoved` / `roomUpdated` events in the outbox (the store wakes the relay).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roomcast_core::{Role, RoomId, UserId, validate};
use roomcast_store::StoreError;
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::{Json, Path, parse_id};
use crate::invitations::AddedReply;
use crate::rooms::{RoomReply, room_id, view};
use crate::{ApiError, AppState};

/// Body of `POST /v1/rooms/{roomId}/members`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddMembers {
    pub(crate) user_ids: Vec<UserId>,
}

/// Body of `PUT /v1/rooms/{roomId}/members/{userId}/role`.
#[derive(Deserialize)]
pub struct SetRole {
    pub(crate) role: String,
}

/// The `{roomId}/…/{userId}` path segments, or 400.
fn room_and_user(raw: &(String, String)) -> Result<(RoomId, UserId), ApiError> {
    Ok((room_id(&raw.0)?, parse_id(&raw.1, "userId")?))
}

/// `POST /v1/rooms/{roomId}/members` `{userIds}` → `{room, invited}`. Users
/// already members are skipped, those whose add policy is `invite` are
/// invited; an id naming no user is 400 and nothing is added.
pub async fn add_members(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
    Json(body): Json<AddMembers>,
) -> Result<Json<AddedReply>, ApiError> {
    let room = room_id(&raw)?;
    if body.user_ids.is_empty() || body.user_ids.len() > validate::MAX_ROOM_MEMBERS {
        return Err(ApiError::BadRequest(format!(
            "userIds must list 1 to {} users",
            validate::MAX_ROOM_MEMBERS
        )));
    }
    let room = match state.store.add_members(room, me, &body.user_ids).await {
        Ok(room) => room,
        Err(StoreError::UnknownUser(id)) => {
            return Err(ApiError::BadRequest(format!("userIds: no user {id}")));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Json(
        AddedReply::new(&state, &room, me, &body.user_ids).await?,
    ))
}

/// `DELETE /v1/rooms/{roomId}/members/{userId}` → `{room}` after removing
/// `userId`, or 204 when the caller names themself (they left, and can no
/// longer see the room).
pub async fn remove_member(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (room, user) = room_and_user(&raw)?;
    state.store.remove_member(room, me, user).await?;
    if user == me {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(view(&state, room, me).await?.into_response())
}

/// `POST /v1/rooms/{roomId}/leave` → 204. The owner cannot leave while other
/// members remain (409).
pub async fn leave(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let room = room_id(&raw)?;
    state.store.remove_member(room, me, me).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/rooms/{roomId}/members/{userId}/role` `{role: "admin"|"member"}`
/// → `{room}`. Owner only; nobody is made owner.
pub async fn set_role(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<(String, String)>,
    Json(body): Json<SetRole>,
) -> Result<Json<RoomReply>, ApiError> {
    let (room, user) = room_and_user(&raw)?;
    let role = match Role::parse(&body.role) {
        Some(role @ (Role::Admin | Role::Member)) => role,
        _ => {
            return Err(ApiError::BadRequest(
                "role must be \"admin\" or \"member\"".into(),
            ));
        }
    };
    state.store.set_role(room, me, user, role).await?;
    view(&state, room, me).await
}
