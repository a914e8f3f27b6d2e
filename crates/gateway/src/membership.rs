//! How the gateway learns whether a user may join a room.
//!
//! [`Membership`] is a trait so the split deployment can answer it without the
//! API's database. In `roomcast serve` the store answers it directly.

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_core::{RoomId, UserId};
use roomcast_store::{Access, Store, StoreError};

/// Answers "what is `user` to `room`?".
#[async_trait]
pub trait Membership: Send + Sync + 'static {
    /// The caller's access to a room, with the room's latest seq for members.
    async fn access(&self, room: RoomId, user: UserId) -> Result<Access, StoreError>;
}

/// Membership straight from the store (same process as the API).
pub struct StoreMembership(pub Arc<dyn Store>);

#[async_trait]
impl Membership for StoreMembership {
    async fn access(&self, room: RoomId, user: UserId) -> Result<Access, StoreError> {
        self.0.access(room, user).await
    }
}
