//! Messages: post, read history, edit, delete.
//!
//! - `POST /v1/rooms/{roomId}/messages` `{clientMsgId, body, replyTo?}` →
//!   201 `{message}`, or 200 with the stored message when the same
//!   `clientMsgId` was posted before (nothing is stored again)
//! - `GET /v1/rooms/{roomId}/messages?afterSeq=N | beforeSeq=N &limit=M` →
//!   `{messages}` ascending
//! - `PATCH /v1/rooms/{roomId}/messages/{messageId}` `{body}` → `{message}` (sender only)
//! - `DELETE /v1/rooms/{roomId}/messages/{messageId}` → `{message}` (sender or owner/admin)
//!
//! The sender of a message is always the caller. Every route is for members
//! only (403, nothing changed); editing a deleted message is 409.

use axum::extract::State;
use axum::http::StatusCode;
use roomcast_core::{Check, Message, MessageId, RoomId, SendMessage, validate};
use roomcast_store::{HistoryPage, NewMessage, Posted};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::error::{Json, Path, Query, parse_id};
use crate::rooms::{page_limit, room_id};
use crate::{ApiError, AppState};

/// Body of `POST /v1/rooms/{roomId}/messages`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostMessage {
    pub(crate) client_msg_id: String,
    pub(crate) body: String,
    #[serde(default)]
    pub(crate) reply_to: Option<MessageId>,
}

/// Body of `PATCH /v1/rooms/{roomId}/messages/{messageId}`.
#[derive(Deserialize)]
pub struct EditMessage {
    pub(crate) body: String,
}

/// `{message}`.
#[derive(Serialize)]
pub struct MessageReply {
    message: Message,
}

/// Query of `GET /v1/rooms/{roomId}/messages`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub(crate) after_seq: Option<i64>,
    pub(crate) before_seq: Option<i64>,
    pub(crate) limit: Option<i64>,
}

/// `{messages}`.
#[derive(Serialize)]
pub struct MessagesReply {
    messages: Vec<Message>,
}

/// The `{roomId}/messages/{messageId}` path segments, or 400.
pub fn room_and_message(raw: &(String, String)) -> Result<(RoomId, MessageId), ApiError> {
    Ok((room_id(&raw.0)?, parse_id(&raw.1, "messageId")?))
}

impl History {
    /// The page asked for: `afterSeq` or `beforeSeq` (not both), each ≥ 0;
    /// neither is `afterSeq=0`.
    pub(crate) fn page(&self) -> Result<HistoryPage, ApiError> {
        match (self.after_seq, self.before_seq) {
            (Some(_), Some(_)) => Err(ApiError::BadRequest(
                "give afterSeq or beforeSeq, not both".into(),
            )),
            (Some(n), None) if n < 0 => {
                Err(ApiError::BadRequest("afterSeq must be 0 or more".into()))
            }
            (None, Some(n)) if n < 0 => {
                Err(ApiError::BadRequest("beforeSeq must be 0 or more".into()))
            }
            (Some(n), None) => Ok(HistoryPage::After(n)),
            (None, Some(n)) => Ok(HistoryPage::Before(n)),
            (None, None) => Ok(HistoryPage::After(0)),
        }
    }
}

/// `POST /v1/rooms/{roomId}/messages` → 201 `{message}` (new) or 200 (repeat
/// of a `clientMsgId`). A `replyTo` outside the room is 400.
pub async fn post_message(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
    Json(body): Json<PostMessage>,
) -> Result<(StatusCode, Json<MessageReply>), ApiError> {
    let cmd = SendMessage {
        room_id: room_id(&raw)?,
        client_msg_id: body.client_msg_id,
        body: body.body,
        reply_to: body.reply_to,
    };
    cmd.check().map_err(ApiError::BadRequest)?;
    state.limits.message(me)?;
    let posted = state
        .store
        .post_message(NewMessage {
            room_id: cmd.room_id,
            sender_id: me,
            client_msg_id: &cmd.client_msg_id,
            body: &cmd.body,
            reply_to: cmd.reply_to,
        })
        .await?;
    match posted {
        Posted::Created(message) => Ok((StatusCode::CREATED, Json(MessageReply { message }))),
        Posted::Existing(message) => Ok((StatusCode::OK, Json(MessageReply { message }))),
        Posted::NoRoom => Err(ApiError::NotFound("no such room".into())),
        Posted::NotMember => Err(ApiError::Forbidden(
            "you are not a member of this room".into(),
        )),
    }
}

/// `GET /v1/rooms/{roomId}/messages` → with `afterSeq=N` the oldest messages
/// with `seq > N`, with `beforeSeq=N` the newest with `seq < N`; ascending
/// either way. `limit` defaults to 50 and is capped at 200.
pub async fn list_messages(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
    Query(q): Query<History>,
) -> Result<Json<MessagesReply>, ApiError> {
    let room = room_id(&raw)?;
    let page = q.page()?;
    let limit = page_limit(q.limit, validate::DEFAULT_PAGE, validate::MAX_PAGE)?;
    let messages = state.store.history(room, me, page, limit).await?;
    Ok(Json(MessagesReply { messages }))
}

/// `PATCH /v1/rooms/{roomId}/messages/{messageId}` `{body}` → `{message}`.
/// Its sender only; the same body again changes nothing.
pub async fn edit_message(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<(String, String)>,
    Json(body): Json<EditMessage>,
) -> Result<Json<MessageReply>, ApiError> {
    let (room, id) = room_and_message(&raw)?;
    validate::body(&body.body).map_err(ApiError::BadRequest)?;
    state.limits.message(me)?;
    let message = state.store.edit_message(room, me, id, &body.body).await?;
    Ok(Json(MessageReply { message }))
}

/// `DELETE /v1/rooms/{roomId}/messages/{messageId}` → `{message}` (body `""`,
/// `deletedAt` set, seq kept). Its sender, or an owner/admin; again is a no-op.
pub async fn delete_message(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<(String, String)>,
) -> Result<Json<MessageReply>, ApiError> {
    let (room, id) = room_and_message(&raw)?;
    state.limits.message(me)?;
    let message = state.store.delete_message(room, me, id).await?;
    Ok(Json(MessageReply { message }))
}
