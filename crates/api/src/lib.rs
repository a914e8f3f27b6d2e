//! The API tier: the HTTP routes under `/v1` and the outbox relay.
//!
//! It never emits to sockets. A write stores its change and an outbox row in
//! one transaction; the [`relay`] publishes outbox rows to `chat.out`.
//!
//! # Layout
//! - `lib.rs`: [`AppState`] and [`app`], the router.
//! - [`error`]: [`ApiError`], the one error type every handler returns, and the
//!   JSON/query/path extractors that turn bad input into it.
//! - [`auth`]: register, login, `me`, and the [`auth::AuthUser`] extractor.
//! - [`commands`]: the `chat.in` consumer (socket commands).
//! - [`rooms`]: rooms and messages.
//! - [`internal`]: routes for roomcast's other tier (service tokens only).
//! - [`relay`]: the outbox relay.

pub mod auth;
pub mod commands;
pub mod error;
pub mod internal;
pub mod relay;
pub mod rooms;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use roomcast_auth::Tokens;
use roomcast_store::Store;
use tokio::sync::Notify;

pub use error::ApiError;
pub use relay::OutboxRelay;

/// Largest accepted request body by default, in bytes. Larger bodies get 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Token issuing and checking.
    pub tokens: Arc<Tokens>,
    /// Wakes the outbox relay after a write, so publishing starts at once.
    pub outbox_wake: Arc<Notify>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
}

/// The API router (`/v1/...`), with JSON 404/405 answers.
pub fn app(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/me", get(auth::me))
        .route("/v1/rooms", post(rooms::create_room).get(rooms::list_rooms))
        .route(
            "/v1/rooms/{room_id}/messages",
            post(rooms::post_message).get(rooms::list_messages),
        )
        .route("/internal/v1/access", get(internal::access))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
