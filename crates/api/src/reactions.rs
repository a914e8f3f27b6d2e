//! Reactions on messages, a set per (user, message, emoji):
//!
//! - `PUT /v1/rooms/{roomId}/messages/{messageId}/reactions/{emoji}` → `{changed}`
//! - `DELETE /v1/rooms/{roomId}/messages/{messageId}/reactions/{emoji}` → `{changed}`
//!
//! The emoji is URL-encoded in the path (`%F0%9F%91%8D` for 👍) and checked
//! with `validate::emoji`. Adding a reaction the caller already has, or
//! removing one they do not have, answers `{changed: false}` and queues
//! nothing; otherwise `reactionAdded` / `reactionRemoved` go to the room.
//! Members only (403); not on a deleted message (409); at most
//! `validate::MAX_REACTIONS_PER_USER` emoji per user per message (400).

use axum::extract::State;
use roomcast_core::validate;
use serde::Serialize;

use crate::auth::AuthUser;
use crate::error::{Json, Path};
use crate::messages::room_and_message;
use crate::{ApiError, AppState};

/// `{changed}`.
#[derive(Serialize)]
pub struct Changed {
    changed: bool,
}

/// `PUT …/reactions/{emoji}`: add the caller's reaction.
pub async fn add(
    state: State<AppState>,
    me: AuthUser,
    path: Path<(String, String, String)>,
) -> Result<Json<Changed>, ApiError> {
    react(state, me, path, true).await
}

/// `DELETE …/reactions/{emoji}`: remove the caller's reaction.
pub async fn remove(
    state: State<AppState>,
    me: AuthUser,
    path: Path<(String, String, String)>,
) -> Result<Json<Changed>, ApiError> {
    react(state, me, path, false).await
}

async fn react(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path((room, message, emoji)): Path<(String, String, String)>,
    add: bool,
) -> Result<Json<Changed>, ApiError> {
    let (room, message) = room_and_message(&(room, message))?;
    validate::emoji(&emoji).map_err(ApiError::BadRequest)?;
    state.limits.reaction(me)?;
    let changed = state.store.react(room, me, message, &emoji, add).await?;
    Ok(Json(Changed { changed }))
}
