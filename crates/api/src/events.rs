//! The room event log over HTTP, and its retention.
//!
//! - `GET /v1/rooms/{roomId}/events?afterEventSeq=N&limit=M` → a
//!   [`RoomEvents`]: the room's logged events after position `N` (default
//!   0), oldest first, at most `M` (default 100, at most 1000), each exactly
//!   as it was emitted live; `recovered: false` (and no events) when
//!   retention has pruned part of the gap or `N` is ahead of the room's log,
//!   in which case the client reloads the room through the other routes.
//!   Members only (403); `afterEventSeq < 0` is 400.
//! - [`Pruner`]: every `event_log.prune_interval_secs`, deletes events older
//!   than `event_log.max_age_secs` and all but the latest
//!   `event_log.keep_per_room` of each room. Several API processes may prune
//!   the same database: pruning is idempotent.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use roomcast_core::RoomEvents;
use roomcast_store::{Store, StoreError};
use serde::Deserialize;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::auth::AuthUser;
use crate::error::{Json, Path, Query};
use crate::rooms::{page_limit, room_id};
use crate::{ApiError, AppState};

/// Events per page when the client does not say.
pub const DEFAULT_EVENTS_PAGE: i64 = 100;
/// Most events per page.
pub const MAX_EVENTS_PAGE: i64 = 1000;

/// Query of `GET /v1/rooms/{roomId}/events`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    pub(crate) after_event_seq: Option<i64>,
    pub(crate) limit: Option<i64>,
}

/// The position asked for (default 0) and the page size.
pub fn page(after_event_seq: Option<i64>, limit: Option<i64>) -> Result<(i64, i64), ApiError> {
    let after = after_event_seq.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::BadRequest(
            "afterEventSeq must be 0 or more".into(),
        ));
    }
    let limit = page_limit(limit, DEFAULT_EVENTS_PAGE, MAX_EVENTS_PAGE)?;
    Ok((after, limit))
}

/// `GET /v1/rooms/{roomId}/events`.
pub async fn list_events(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(raw): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<RoomEvents>, ApiError> {
    let room = room_id(&raw)?;
    let (after, limit) = page(q.after_event_seq, q.limit)?;
    Ok(Json(state.store.room_events(room, me, after, limit).await?))
}

/// Applies the event log's retention.
pub struct Pruner {
    /// Where the log lives.
    pub store: Arc<dyn Store>,
    /// Events kept per room at most.
    pub keep_per_room: i64,
    /// Events older than this go.
    pub max_age: Duration,
    /// Time between passes.
    pub interval: Duration,
}

impl Pruner {
    /// Prune once, now: how many events went.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let age = i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX);
        let before = roomcast_core::now_ms().saturating_sub(age);
        let gone = self.store.prune_events(self.keep_per_room, before).await?;
        if gone > 0 {
            tracing::debug!(events = gone, "event log: pruned");
        }
        Ok(gone)
    }

    /// Prune every `interval` (the first right away) until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.prune().await {
                tracing::warn!(error = %e, "event log: pruning failed; next time");
            }
        }
    }
}
