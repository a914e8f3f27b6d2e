//! Accounts: `POST /v1/auth/register`, `POST /v1/auth/login`, `GET /v1/me`,
//! and [`AuthUser`], the extractor that turns `Authorization: Bearer <token>`
//! into the caller's id (or a 401).

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use roomcast_core::{Settings, User, UserId, validate};
use roomcast_store::StoreError;
use serde::{Deserialize, Serialize};

use crate::error::Json;
use crate::limits::ClientAddr;
use crate::sessions::{self, Session};
use crate::{ApiError, AppState};

/// The authenticated caller, from a verified bearer token.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser(pub UserId);

/// The bearer token of a request, or 401.
pub fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <token>".into()))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::Unauthorized("Authorization must be 'Bearer <token>'".into()))
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        state
            .tokens
            .verify(token)
            .map(AuthUser)
            .map_err(|_| ApiError::Unauthorized("invalid or expired token".into()))
    }
}

/// Body of register and login.
#[derive(Deserialize)]
pub struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// Answer of `GET /v1/me`.
#[derive(Serialize)]
pub struct Me {
    user: User,
    settings: Settings,
}

/// `POST /v1/auth/register` → 201 `{user, token, refreshToken, expiresIn}`
/// (a new session, [`crate::sessions`]); 409 if the name is taken; 429 past
/// `register_ip`.
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Json(body): Json<Credentials>,
) -> Result<(StatusCode, Json<Session>), ApiError> {
    state.limits.register(ip)?;
    validate::username(&body.username).map_err(ApiError::BadRequest)?;
    validate::password(&body.password).map_err(ApiError::BadRequest)?;
    let hash = roomcast_auth::hash_password(body.password)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let user = match state.store.create_user(&body.username, &hash).await {
        Ok(user) => user,
        Err(StoreError::UsernameTaken) => {
            return Err(ApiError::Conflict("username already taken".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let session = sessions::start(&state, user).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

/// `POST /v1/auth/login` → 200 `{user, token, refreshToken, expiresIn}` (a
/// new session); 401 for a wrong password or
/// an unknown user, with the same answer and the same work for both; 429
/// past `login_ip` or `login_account_ip`, before any password is checked.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    Json(body): Json<Credentials>,
) -> Result<Json<Session>, ApiError> {
    state.limits.login(ip, &body.username).await?;
    if body.password.len() > validate::MAX_PASSWORD_BYTES {
        return Err(ApiError::Unauthorized("wrong username or password".into()));
    }
    let creds = state.store.credentials(&body.username).await?;
    let hash = creds.as_ref().map(|c| c.password_hash.clone());
    if !roomcast_auth::verify_password(body.password, hash).await {
        return Err(ApiError::Unauthorized("wrong username or password".into()));
    }
    let user = creds.expect("verified implies known").user;
    Ok(Json(sessions::start(&state, user).await?))
}

/// `GET /v1/me` → `{user}`.
pub async fn me(
    State(state): State<AppState>,
    AuthUser(id): AuthUser,
) -> Result<Json<Me>, ApiError> {
    let gone = || ApiError::Unauthorized("the token's user no longer exists".into());
    let user = state.store.user(id).await?.ok_or_else(gone)?;
    let settings = state.store.settings(id).await?.ok_or_else(gone)?;
    Ok(Json(Me { user, settings }))
}
