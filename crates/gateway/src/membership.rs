//! How the gateway learns whether a user may join a room.
//!
//! [`Membership`] is a trait so the split deployment can answer it without the
//! API's database. In `roomcast serve` the store answers it directly.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_core::{ErrorBody, ErrorCode, RoomEvents, RoomId, RoomList, UserId};
use roomcast_store::{Access, Store};

/// A membership check that could not be answered (database or API unreachable).
#[derive(Debug, thiserror::Error)]
#[error("membership check failed: {0}")]
pub struct MembershipError(pub String);

/// Answers "what is `user` to `room`?".
#[async_trait]
pub trait Membership: Send + Sync + 'static {
    /// The caller's access to a room, with the room's latest seq for members.
    async fn access(&self, room: RoomId, user: UserId) -> Result<Access, MembershipError>;
    /// The room's logged events after position `after`, at most `limit`, as
    /// `user` (a member) reads them (see `Store::room_events`): what a
    /// rejoin replays when this node's buffer does not reach back. The
    /// default has no event log: such a rejoin is answered `internal`, and a
    /// plain join's ACK carries no `eventSeq`.
    async fn events(
        &self,
        _room: RoomId,
        _user: UserId,
        _after: i64,
        _limit: i64,
    ) -> Result<RoomEvents, MembershipError> {
        Err(MembershipError("no room event log here".into()))
    }

    /// The first page (at most `limit`) of `user`'s room list, as `GET
    /// /v1/rooms` answers it: what `joinUser {rooms: true}` and a recovered
    /// session's refresh send. The default cannot say.
    async fn rooms(&self, _user: UserId, _limit: i64) -> Result<RoomList, MembershipError> {
        Err(MembershipError("no room list here".into()))
    }
}

/// A membership answer as a socket command sees it: a member's room seq, or
/// the error to ACK (`forbidden`, `not_found`, or `internal` when the check
/// failed; the failure is logged).
pub fn member_seq(answer: Result<Access, MembershipError>) -> Result<i64, ErrorBody> {
    match answer {
        Ok(Access::Member { last_seq, .. }) => Ok(last_seq),
        Ok(Access::NotMember) => Err(ErrorBody::new(
            ErrorCode::Forbidden,
            "you are not a member of this room",
        )),
        Ok(Access::NoRoom) => Err(ErrorBody::new(ErrorCode::NotFound, "no such room")),
        Err(e) => {
            tracing::error!(error = %e, "membership check failed");
            Err(ErrorBody::new(ErrorCode::Internal, "internal error"))
        }
    }
}

/// Membership straight from the store (same process as the API).
pub struct StoreMembership(pub Arc<dyn Store>);

#[async_trait]
impl Membership for StoreMembership {
    async fn access(&self, room: RoomId, user: UserId) -> Result<Access, MembershipError> {
        self.0
            .access(room, user)
            .await
            .map_err(|e| MembershipError(e.to_string()))
    }

    async fn events(
        &self,
        room: RoomId,
        user: UserId,
        after: i64,
        limit: i64,
    ) -> Result<RoomEvents, MembershipError> {
        self.0
            .room_events(room, user, after, limit)
            .await
            .map_err(|e| MembershipError(e.to_string()))
    }

    async fn rooms(&self, user: UserId, limit: i64) -> Result<RoomList, MembershipError> {
        let page = self
            .0
            .rooms_of(user, None, limit)
            .await
            .map_err(|e| MembershipError(e.to_string()))?;
        Ok(RoomList {
            rooms: page.rooms,
            next: page.next,
        })
    }
}

/// Membership from the API tier's internal route (the split deployment): the
/// realtime node holds no database connection.
///
/// Each check is one `GET {api_url}/internal/v1/access` with a fresh service
/// token, bounded by [`HTTP_TIMEOUT`]. Answers are not cached: `joinRoom` needs
/// the room's latest seq as of the join, and a removed member must not pass.
pub struct HttpMembership {
    http: reqwest::Client,
    api_url: String,
    tokens: Arc<roomcast_auth::Tokens>,
    node: String,
}

/// Longest wait for one membership answer.
pub const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl HttpMembership {
    /// Ask the API at `api_url` (e.g. `http://api.internal:3000`), as service `node`.
    pub fn new(api_url: &str, tokens: Arc<roomcast_auth::Tokens>, node: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .build()
                .expect("a plain HTTP client builds"),
            api_url: api_url.trim_end_matches('/').to_owned(),
            tokens,
            node: node.to_owned(),
        }
    }
}

impl HttpMembership {
    /// `GET {api_url}{path}?{query}` with a fresh service token, as JSON.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, MembershipError> {
        let unavailable = |e: String| MembershipError(format!("API {}: {e}", self.api_url));
        let res = self
            .http
            .get(format!("{}{path}", self.api_url))
            .query(query)
            .bearer_auth(self.tokens.issue_service(&self.node))
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unavailable(format!("status {}", res.status())));
        }
        res.json().await.map_err(|e| unavailable(e.to_string()))
    }
}

#[async_trait]
impl Membership for HttpMembership {
    async fn access(&self, room: RoomId, user: UserId) -> Result<Access, MembershipError> {
        let query = [("roomId", room.to_string()), ("userId", user.to_string())];
        let answer: roomcast_core::RoomAccess = self.get("/internal/v1/access", &query).await?;
        Ok(match answer {
            roomcast_core::RoomAccess::NoRoom => Access::NoRoom,
            roomcast_core::RoomAccess::NotMember => Access::NotMember,
            roomcast_core::RoomAccess::Member {
                last_seq,
                last_event_seq,
            } => Access::Member {
                last_seq,
                last_event_seq,
            },
        })
    }

    async fn events(
        &self,
        room: RoomId,
        user: UserId,
        after: i64,
        limit: i64,
    ) -> Result<RoomEvents, MembershipError> {
        let query = [
            ("roomId", room.to_string()),
            ("userId", user.to_string()),
            ("afterEventSeq", after.to_string()),
            ("limit", limit.to_string()),
        ];
        self.get("/internal/v1/events", &query).await
    }

    async fn rooms(&self, user: UserId, limit: i64) -> Result<RoomList, MembershipError> {
        let query = [("userId", user.to_string()), ("limit", limit.to_string())];
        self.get("/internal/v1/rooms", &query).await
    }
}
