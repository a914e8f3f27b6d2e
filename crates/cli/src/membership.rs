//! Membership straight from the store, for `roomcast serve`, where the
//! gateway and the store share one process (the split deployment's realtime
//! tier asks the API over HTTP instead: `roomcast_gateway::membership::HttpMembership`).

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_core::{RoomAccess, RoomEvents, RoomId, RoomList, SessionId, UserId};
use roomcast_gateway::membership::{Admitted, Membership, MembershipError};
use roomcast_store::Store;

/// Membership straight from the store (same process as the API).
pub struct StoreMembership(pub Arc<dyn Store>);

#[async_trait]
impl Membership for StoreMembership {
    async fn access(&self, room: RoomId, user: UserId) -> Result<RoomAccess, MembershipError> {
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

    async fn admit(
        &self,
        user: UserId,
        session: Option<SessionId>,
    ) -> Result<Admitted, MembershipError> {
        roomcast_api::internal::admit(&*self.0, user, session)
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
