//! Consent to be added to rooms: the caller's settings and invitations.
//!
//! - `PATCH /v1/me/settings` `{addPolicy: "anyone"|"invite"}` → `{settings}`
//! - `GET /v1/invitations?limit=N` → `{invitations}`, newest first (default
//!   50, at most 100)
//! - `POST /v1/invitations/{roomId}/accept` → `{room}`: the caller is a
//!   member now (also when they already were); 404 without an invitation
//! - `POST /v1/invitations/{roomId}/decline` → 204, whether or not an
//!   invitation was pending (declining reveals nothing about other rooms)
//!
//! `GET /v1/me` carries `settings` too (see [`crate::auth::me`]). Adding a
//! user whose policy is `invite` (`POST /v1/rooms`, `…/members`,
//! `POST /v1/dms`) invites them instead: those answers list them in
//! `invited`, and the invitee's sockets hear `invitationReceived`.

use axum::extract::State;
use axum::http::StatusCode;
use roomcast_core::{AddPolicy, Invitation, Room, Settings, UserId};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::error::{Json, Path, Query};
use crate::rooms::{RoomReply, page_limit, room_id, view};
use crate::{ApiError, AppState};

/// Default and largest page of `GET /v1/invitations`.
pub const DEFAULT_PAGE: i64 = 50;
/// See [`DEFAULT_PAGE`].
pub const MAX_PAGE: i64 = 100;

/// Body of `PATCH /v1/me/settings`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSettings {
    pub(crate) add_policy: AddPolicy,
}

/// `{settings}`.
#[derive(Serialize)]
pub struct SettingsReply {
    settings: Settings,
}

/// Query of `GET /v1/invitations`.
#[derive(Deserialize)]
pub struct InvitationsQuery {
    pub(crate) limit: Option<i64>,
}

/// `{invitations}`.
#[derive(Serialize)]
pub struct InvitationList {
    invitations: Vec<Invitation>,
}

/// `{room, invited}`: a room after an add, as the caller sees it, and who of
/// those named was invited rather than added (their add policy is
/// `invite`; including anyone invited earlier and still pending).
#[derive(Serialize)]
pub struct AddedReply {
    #[serde(flatten)]
    room: RoomReply,
    invited: Vec<UserId>,
}

impl AddedReply {
    /// The answer after adding `named` to `room`: those of them who are not
    /// members now were invited (the store refuses unknown users).
    pub async fn new(
        state: &AppState,
        room: &Room,
        me: UserId,
        named: &[UserId],
    ) -> Result<Self, ApiError> {
        let mut invited: Vec<UserId> = named
            .iter()
            .copied()
            .filter(|u| *u != me && !room.members.contains(u))
            .collect();
        invited.sort_unstable();
        invited.dedup();
        let Json(room) = view(state, room.id, me).await?;
        Ok(Self { room, invited })
    }
}

/// `PATCH /v1/me/settings` `{addPolicy}` → `{settings}`.
pub async fn update_settings(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Json(body): Json<UpdateSettings>,
) -> Result<Json<SettingsReply>, ApiError> {
    let settings = state.store.set_add_policy(me, body.add_policy).await?;
    Ok(Json(SettingsReply { settings }))
}

/// `GET /v1/invitations?limit=N` → the caller's pending invitations.
pub async fn list(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Query(q): Query<InvitationsQuery>,
) -> Result<Json<InvitationList>, ApiError> {
    let limit = page_limit(q.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let invitations = state.store.invitations(me, limit).await?;
    Ok(Json(InvitationList { invitations }))
}

/// `POST /v1/invitations/{roomId}/accept` → `{room}`.
pub async fn accept(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<RoomReply>, ApiError> {
    let room = room_id(&raw)?;
    state.store.accept_invitation(room, me).await?;
    view(&state, room, me).await
}

/// `POST /v1/invitations/{roomId}/decline` → 204.
pub async fn decline(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let room = room_id(&raw)?;
    state.store.decline_invitation(room, me).await?;
    Ok(StatusCode::NO_CONTENT)
}
