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
//! - [`sessions`]: login sessions: refresh, logout, log out everywhere, a
//!   password change.
//! - [`limits`]: the rate limits of the routes ([`limits::ApiLimits`]) and
//!   the client address they are keyed by.
//! - [`rooms`]: rooms: create, list, read, rename, DMs.
//! - [`members`]: adding and removing members, leaving, roles.
//! - [`invitations`]: consent to be added: the caller's add policy, and
//!   their invitations (list, accept, decline).
//! - [`messages`]: post, history, edit, delete.
//! - [`reactions`]: reactions on messages.
//! - [`reads`]: read markers and the presence route.
//! - [`events`]: the room event log (replay after a position) and its pruner.
//! - [`commands`]: the `chat.in` consumer (socket commands).
//! - [`internal`]: routes for roomcast's other tier, on their own listener
//!   ([`internal::routes`]; service tokens only).
//! - [`relay`]: the outbox relay.
//! - [`presence`]: the sweeper that takes silent realtime nodes as gone.
//! - [`web`]: the demo page (`web/`), embedded, served at `/`.
//! - [`fuzz`]: the request bodies' fuzzing entry point.

pub mod auth;
pub mod commands;
pub mod error;
pub mod events;
pub mod fuzz;
pub mod internal;
pub mod invitations;
pub mod limits;
pub mod members;
pub mod messages;
pub mod presence;
pub mod reactions;
pub mod reads;
pub mod relay;
pub mod rooms;
pub mod sessions;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put};
use roomcast_auth::Tokens;
use roomcast_store::Store;

pub use error::ApiError;
pub use presence::Sweeper;
pub use relay::{OutboxRelay, RelayStatus};

/// Largest accepted request body by default, in bytes. Larger bodies get 413.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// Token issuing and checking.
    pub tokens: Arc<Tokens>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Rate limits of the routes.
    pub limits: Arc<limits::ApiLimits>,
    /// How long a session lives without a refresh
    /// ([`sessions::DEFAULT_REFRESH_TTL`] by default).
    pub refresh_ttl: std::time::Duration,
}

/// The API router (`/v1/...`), with JSON 404/405 answers.
pub fn app(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(sessions::refresh))
        .route("/v1/auth/logout", post(sessions::logout))
        .route("/v1/auth/logout-all", post(sessions::logout_all))
        .route("/v1/auth/password", post(sessions::change_password))
        .route("/v1/me", get(auth::me))
        .route("/v1/me/settings", patch(invitations::update_settings))
        .route("/v1/invitations", get(invitations::list))
        .route(
            "/v1/invitations/{room_id}/accept",
            post(invitations::accept),
        )
        .route(
            "/v1/invitations/{room_id}/decline",
            post(invitations::decline),
        )
        .route("/v1/rooms", post(rooms::create_room).get(rooms::list_rooms))
        .route(
            "/v1/rooms/{room_id}",
            get(rooms::get_room).patch(rooms::rename_room),
        )
        .route("/v1/dms", post(rooms::open_dm))
        .route("/v1/rooms/{room_id}/members", post(members::add_members))
        .route(
            "/v1/rooms/{room_id}/members/{user_id}",
            delete(members::remove_member),
        )
        .route(
            "/v1/rooms/{room_id}/members/{user_id}/role",
            put(members::set_role),
        )
        .route("/v1/rooms/{room_id}/leave", post(members::leave))
        .route(
            "/v1/rooms/{room_id}/messages",
            post(messages::post_message).get(messages::list_messages),
        )
        .route(
            "/v1/rooms/{room_id}/messages/{message_id}",
            patch(messages::edit_message).delete(messages::delete_message),
        )
        .route(
            "/v1/rooms/{room_id}/messages/{message_id}/reactions/{emoji}",
            put(reactions::add).delete(reactions::remove),
        )
        .route("/v1/rooms/{room_id}/events", get(events::list_events))
        .route("/v1/rooms/{room_id}/read", post(reads::mark_read))
        .route("/v1/rooms/{room_id}/presence", get(reads::presence))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
