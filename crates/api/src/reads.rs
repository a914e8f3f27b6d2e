//! Who has read what, and who is online:
//!
//! - `POST /v1/rooms/{roomId}/read` `{seq}` (≥ 0) → `{readSeq, unreadCount}`:
//!   moves the caller's read marker forward to `seq`, capped at the room's
//!   latest seq, never backwards (an older `seq` answers the marker as it is
//!   and queues nothing). When it moves, `messageReadUpdate` goes to the room
//!   and `roomUpdated` to the reader.
//! - `GET /v1/rooms/{roomId}/presence` → `{presence: [Presence]}`: every
//!   member's presence, in member order.
//!
//! Members only (403); unknown room 404.

use axum::extract::State;
use roomcast_core::Presence;
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::error::{Json, Path};
use crate::rooms::room_id;
use crate::{ApiError, AppState};

/// Body of `POST /v1/rooms/{roomId}/read`.
#[derive(Deserialize)]
pub struct MarkRead {
    pub(crate) seq: i64,
}

/// `{readSeq, unreadCount}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadReply {
    read_seq: i64,
    unread_count: i64,
}

/// `{presence}`.
#[derive(Serialize)]
pub struct PresenceReply {
    presence: Vec<Presence>,
}

/// `POST /v1/rooms/{roomId}/read` `{seq}` → the caller's marker and unread
/// count after the move.
pub async fn mark_read(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
    Json(body): Json<MarkRead>,
) -> Result<Json<ReadReply>, ApiError> {
    let room = room_id(&raw)?;
    if body.seq < 0 {
        return Err(ApiError::BadRequest("seq must be 0 or more".into()));
    }
    let marked = state.store.mark_read(room, me, body.seq).await?;
    Ok(Json(ReadReply {
        read_seq: marked.read_seq,
        unread_count: marked.unread_count,
    }))
}

/// `GET /v1/rooms/{roomId}/presence` → `{presence}`.
pub async fn presence(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<PresenceReply>, ApiError> {
    let presence = state.store.room_presence(room_id(&raw)?, me).await?;
    Ok(Json(PresenceReply { presence }))
}
