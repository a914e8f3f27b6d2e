//! Rooms and messages: `POST/GET /v1/rooms`, `POST/GET /v1/rooms/{roomId}/messages`.
//!
//! Membership is checked from the token's user id on every route; a posted
//! message's sender is always the caller.

use axum::extract::State;
use axum::http::StatusCode;
use roomcast_core::{Message, Room, RoomId, UserId, validate};
use roomcast_store::{Access, NewMessage, Posted, StoreError};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::error::{Json, Path, Query};
use crate::{ApiError, AppState};

/// Body of `POST /v1/rooms`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRoom {
    name: String,
    #[serde(default)]
    member_ids: Vec<UserId>,
}

/// `{room}`.
#[derive(Serialize)]
pub struct RoomReply {
    room: Room,
}

/// `{rooms}`.
#[derive(Serialize)]
pub struct RoomsReply {
    rooms: Vec<Room>,
}

/// Body of `POST /v1/rooms/{roomId}/messages`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostMessage {
    client_msg_id: String,
    body: String,
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
    #[serde(default)]
    after_seq: i64,
    limit: Option<i64>,
}

/// `{messages}`.
#[derive(Serialize)]
pub struct MessagesReply {
    messages: Vec<Message>,
}

fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest("roomId is not a valid id".into()))
}

/// `POST /v1/rooms` → 201 `{room}`. The caller is always a member.
pub async fn create_room(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Json(body): Json<CreateRoom>,
) -> Result<(StatusCode, Json<RoomReply>), ApiError> {
    validate::room_name(&body.name).map_err(ApiError::BadRequest)?;
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
    state.outbox_wake.notify_one();
    Ok((StatusCode::CREATED, Json(RoomReply { room })))
}

/// `GET /v1/rooms` → the caller's rooms, latest activity first.
pub async fn list_rooms(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
) -> Result<Json<RoomsReply>, ApiError> {
    let rooms = state.store.rooms_of(me).await?;
    Ok(Json(RoomsReply { rooms }))
}

/// `POST /v1/rooms/{roomId}/messages` → 201 `{message}`, or 200 with the stored
/// message when the same `clientMsgId` was posted before.
pub async fn post_message(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
    Json(body): Json<PostMessage>,
) -> Result<(StatusCode, Json<MessageReply>), ApiError> {
    let room = room_id(&raw)?;
    validate::client_msg_id(&body.client_msg_id).map_err(ApiError::BadRequest)?;
    validate::body(&body.body).map_err(ApiError::BadRequest)?;
    let posted = state
        .store
        .post_message(NewMessage {
            room_id: room,
            sender_id: me,
            client_msg_id: &body.client_msg_id,
            body: &body.body,
        })
        .await?;
    match posted {
        Posted::Created(message) => {
            state.outbox_wake.notify_one();
            Ok((StatusCode::CREATED, Json(MessageReply { message })))
        }
        Posted::Existing(message) => Ok((StatusCode::OK, Json(MessageReply { message }))),
        Posted::NoRoom => Err(ApiError::NotFound("no such room".into())),
        Posted::NotMember => Err(ApiError::Forbidden(
            "you are not a member of this room".into(),
        )),
    }
}

/// `GET /v1/rooms/{roomId}/messages?afterSeq=N&limit=M` → messages with
/// `seq > N`, ascending; `limit` defaults to 50 and is capped at 200.
pub async fn list_messages(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
    Query(q): Query<History>,
) -> Result<Json<MessagesReply>, ApiError> {
    let room = room_id(&raw)?;
    if q.after_seq < 0 {
        return Err(ApiError::BadRequest("afterSeq must be 0 or more".into()));
    }
    let limit = q.limit.unwrap_or(validate::DEFAULT_PAGE);
    if limit < 1 {
        return Err(ApiError::BadRequest("limit must be 1 or more".into()));
    }
    match state.store.access(room, me).await? {
        Access::NoRoom => Err(ApiError::NotFound("no such room".into())),
        Access::NotMember => Err(ApiError::Forbidden(
            "you are not a member of this room".into(),
        )),
        Access::Member { .. } => {
            let messages = state
                .store
                .messages_after(room, q.after_seq, limit.min(validate::MAX_PAGE))
                .await?;
            Ok(Json(MessagesReply { messages }))
        }
    }
}
