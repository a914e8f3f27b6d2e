//! Login sessions: what register and login start, and what renews and ends
//! them.
//!
//! - register / login answer `{user, token, refreshToken, expiresIn}`:
//!   `token` is the access token (a JWT naming the session in `sid`, valid
//!   `auth.token_ttl_secs`), `refreshToken` renews it.
//! - `POST /v1/auth/refresh` `{refreshToken}` → `{user, token, refreshToken,
//!   expiresIn}`: the refresh token is rotated (the one sent is used up) and
//!   the session extended by `auth.refresh_ttl_secs`. Sending a rotated
//!   refresh token again is reuse: the session ends (401 `unauthorized`,
//!   and its sockets are disconnected).
//! - `POST /v1/auth/logout` → 204: the caller's session ends.
//! - `POST /v1/auth/logout-all` → 204: every session of the caller ends.
//! - `POST /v1/auth/password` `{currentPassword, newPassword}` → 204: the
//!   password changes and every other session ends.
//!
//! A session that ends queues `sessionRevoked` (the store does, in the same
//! transaction): the realtime tier disconnects its sockets, and refuses
//! their reconnection (`session_ended`). Its access tokens stay valid for
//! HTTP until they expire (`auth.token_ttl_secs`).

use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use roomcast_auth::RefreshToken;
use roomcast_core::{SessionId, User, UserId, now_ms, validate};
use roomcast_store::Rotated;
use serde::{Deserialize, Serialize};

use crate::auth::bearer;
use crate::error::Json;
use crate::{ApiError, AppState};

/// Default life of a session without a refresh (30 days).
pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Answer of register, login and refresh.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    user: User,
    /// The access token.
    token: String,
    refresh_token: String,
    /// Seconds the access token lives.
    expires_in: u64,
}

/// Body of `POST /v1/auth/refresh`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refresh {
    pub(crate) refresh_token: String,
}

/// Body of `POST /v1/auth/password`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangePassword {
    pub(crate) current_password: String,
    pub(crate) new_password: String,
}

/// The caller and the session of their access token (`None` for a token of
/// no session).
pub struct AuthSession {
    user: UserId,
    session: Option<SessionId>,
}

impl FromRequestParts<AppState> for AuthSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let v = state
            .tokens
            .verify_full(token)
            .map_err(|_| ApiError::Unauthorized("invalid or expired token".into()))?;
        Ok(Self {
            user: v.user,
            session: v.session,
        })
    }
}

fn expires(state: &AppState, now: i64) -> i64 {
    let ttl = i64::try_from(state.refresh_ttl.as_millis()).unwrap_or(i64::MAX);
    now.saturating_add(ttl)
}

/// Start a session of `user`: its first tokens.
pub async fn start(state: &AppState, user: User) -> Result<Session, ApiError> {
    let now = now_ms();
    // The id is the store's; the secret is ours: make the token after.
    let first = RefreshToken::generate(SessionId::new(), 0);
    let session = state
        .store
        .create_session(user.id, &first.hash(), now, expires(state, now))
        .await?;
    let refresh = first.of_session(session);
    Ok(issue(state, user, &refresh))
}

fn issue(state: &AppState, user: User, refresh: &RefreshToken) -> Session {
    Session {
        token: state.tokens.issue_in(user.id, refresh.session),
        refresh_token: refresh.encode(),
        expires_in: state.tokens.ttl().as_secs(),
        user,
    }
}

fn invalid() -> ApiError {
    ApiError::Unauthorized("invalid or expired refresh token: sign in again".into())
}

/// `POST /v1/auth/refresh` `{refreshToken}` → 200 `{user, token,
/// refreshToken, expiresIn}`; 401 for anything but the session's current
/// refresh token (a rotated one also ends the session).
pub async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<Refresh>,
) -> Result<Json<Session>, ApiError> {
    let presented = RefreshToken::parse(&body.refresh_token).ok_or_else(invalid)?;
    let next = RefreshToken::generate(presented.session, presented.generation + 1);
    let now = now_ms();
    let rotated = state
        .store
        .rotate_session(
            presented.session,
            presented.generation,
            &presented.hash(),
            &next.hash(),
            now,
            expires(&state, now),
        )
        .await?;
    match rotated {
        Rotated::Rotated { user, generation } => {
            debug_assert_eq!(generation, next.generation);
            let user = state.store.user(user).await?.ok_or_else(invalid)?;
            Ok(Json(issue(&state, user, &next)))
        }
        Rotated::Reused { user, session } => {
            tracing::warn!(%user, %session, "a rotated refresh token was used again: session ended");
            Err(ApiError::Unauthorized(
                "this refresh token was already used: the session has ended; sign in again".into(),
            ))
        }
        Rotated::Invalid => Err(invalid()),
    }
}

/// `POST /v1/auth/logout` → 204: the caller's session ends (a token of no
/// session: nothing to end, 204 too).
pub async fn logout(
    State(state): State<AppState>,
    who: AuthSession,
) -> Result<StatusCode, ApiError> {
    if let Some(session) = who.session {
        state
            .store
            .revoke_session(session, who.user, now_ms())
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/logout-all` → 204: every session of the caller ends,
/// theirs too.
pub async fn logout_all(
    State(state): State<AppState>,
    who: AuthSession,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .revoke_sessions(who.user, None, now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/auth/password` `{currentPassword, newPassword}` → 204: a wrong
/// current password is 401 (limited as logins are), a new one that breaks
/// the rules 400; then every other session ends.
pub async fn change_password(
    State(state): State<AppState>,
    crate::limits::ClientAddr(ip): crate::limits::ClientAddr,
    who: AuthSession,
    Json(body): Json<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    validate::password(&body.new_password).map_err(ApiError::BadRequest)?;
    let user = state
        .store
        .user(who.user)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the token's user no longer exists".into()))?;
    state.limits.login(ip, &user.username).await?;
    let creds = state.store.credentials(&user.username).await?;
    let stored = creds.map(|c| c.password_hash);
    if body.current_password.len() > validate::MAX_PASSWORD_BYTES
        || !roomcast_auth::verify_password(body.current_password, stored).await
    {
        return Err(ApiError::Unauthorized("wrong password".into()));
    }
    let hash = roomcast_auth::hash_password(body.new_password)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    state.store.set_password(who.user, &hash).await?;
    state
        .store
        .revoke_sessions(who.user, who.session, now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
