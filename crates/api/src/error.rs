//! [`ApiError`]: every failure a handler can return, rendered as
//! `{"error":{"code","message"}}` with the matching 4xx/5xx status. 5xx detail
//! is logged, never sent.
//!
//! Also the extractors ([`Json`], [`Query`], [`Path`]) that reject bad input
//! with an [`ApiError`] instead of axum's plain-text answers.

use axum::extract::FromRequest;
use axum::extract::FromRequestParts;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use roomcast_core::{ErrorBody, ErrorCode};
use roomcast_store::StoreError;
use serde::Serialize;

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed input.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid token, or wrong credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// 413: body too large.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// 429: too many requests of this kind; retry after the wait given
    /// (`Retry-After`, in whole seconds, and `retryAfterMs`).
    #[error("{message}")]
    RateLimited {
        /// What was refused, to show.
        message: String,
        /// How long until it is allowed again.
        retry_after_ms: u64,
    },
    /// 500: our fault; the detail goes to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::BadRequest),
            Self::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

#[derive(Serialize)]
struct Wrapper {
    error: ErrorBody,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error answering a request");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let (error, retry_after_ms) = match self {
            Self::RateLimited { retry_after_ms, .. } => (
                ErrorBody::rate_limited(message, retry_after_ms),
                Some(retry_after_ms),
            ),
            _ => (ErrorBody::new(code, message), None),
        };
        let mut response = (status, axum::Json(Wrapper { error })).into_response();
        if let Some(ms) = retry_after_ms {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, ms.div_ceil(1000).max(1).into());
        }
        response
    }
}

impl ApiError {
    /// The answer to an action refused by `limit`, `what` saying which.
    pub fn limited(what: &str, limit: roomcast_limits::Limited) -> Self {
        Self::RateLimited {
            message: roomcast_limits::Limited::message(what),
            retry_after_ms: limit.retry_after_ms(),
        }
    }
}

/// Refusals become their 4xx answer with the store's message (written to be
/// shown); failures become a 500 whose detail is only logged.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Self::NotFound(m),
            StoreError::Forbidden(m) => Self::Forbidden(m),
            StoreError::Invalid(m) => Self::BadRequest(m),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::UsernameTaken => Self::Conflict("username already taken".into()),
            StoreError::UnknownUser(id) => Self::BadRequest(format!("no user {id}")),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Whether `e` refuses the request for good (a 4xx), as opposed to a failure
/// that may pass (the database is down).
pub fn is_refusal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::NotFound(_)
            | StoreError::Forbidden(_)
            | StoreError::Invalid(_)
            | StoreError::Conflict(_)
            | StoreError::UsernameTaken
            | StoreError::UnknownUser(_)
    )
}

/// Parse the path segment `raw` as the id called `what` (`roomId`, …): 400
/// when it is not one.
pub fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} is not a valid id")))
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::PayloadTooLarge;
        }
        Self::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

/// `axum::Json` whose rejection is an [`ApiError`].
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` whose rejection is an [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// Fallback for a known route with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
