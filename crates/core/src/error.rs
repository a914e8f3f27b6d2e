//! Machine-readable error codes, shared by HTTP (`{"error":{"code","message"}}`)
//! and Socket.IO ACKs (`{ok:false, error:{code,message}}`).

use serde::{Deserialize, Serialize};

/// Every error code a client can see. The wire form is the snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, a missing or invalid field.
    BadRequest,
    /// No valid token was presented, or the credentials are wrong.
    Unauthorized,
    /// The caller is authenticated but not allowed (e.g. not a room member).
    Forbidden,
    /// The thing asked for does not exist.
    NotFound,
    /// The request conflicts with existing state (e.g. a taken username).
    Conflict,
    /// The body is larger than the server accepts.
    PayloadTooLarge,
    /// Too many requests of this kind (e.g. `typing`); retry later.
    RateLimited,
    /// Something failed on our side; details are in the server log only.
    Internal,
}

impl ErrorCode {
    /// The wire name, e.g. `"not_found"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
        }
    }
}

/// The `{code, message}` object inside every error answer, with
/// `retryAfterMs` on a `rate_limited` one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation, safe to show (never internal detail).
    pub message: String,
    /// `rate_limited`: how long until the same action is allowed, ms.
    #[serde(
        rename = "retryAfterMs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after_ms: Option<u64>,
}

impl ErrorBody {
    /// Build an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// A `rate_limited` body: `message`, retry after `retry_after_ms`.
    pub fn rate_limited(message: impl Into<String>, retry_after_ms: u64) -> Self {
        Self {
            retry_after_ms: Some(retry_after_ms),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_to_their_wire_names() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::PayloadTooLarge,
            ErrorCode::RateLimited,
            ErrorCode::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::String(code.as_str().into())
            );
        }
    }
}
