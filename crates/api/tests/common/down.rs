//! [`DownStore`]: a store whose database is unreachable. Every call fails
//! with a database error (not a refusal), as a real store does while
//! PostgreSQL restarts. It records the cut-offs `sweep_nodes` was called
//! with, so the sweeper's timing can be tested without any I/O.

use std::sync::Mutex;

use async_trait::async_trait;
use roomcast_core::{
    AddPolicy, Invitation, Message, MessageId, Presence, Role, Room, RoomEvents, RoomId, RoomView,
    SessionId, Settings, User, UserId,
};
use roomcast_store::{
    Credentials, HistoryPage, NewMessage, OutboxBacklog, OutboxItem, OutboxLease, OutboxSignal,
    Partitions, Posted, ReadMarked, RoomAccess, RoomPage, Rotated, Store, StoreError,
};

/// Fails every call with `StoreError::Db`.
#[derive(Default)]
pub struct DownStore {
    /// The `stale_before` of every `sweep_nodes` call, in order.
    pub sweeps: Mutex<Vec<i64>>,
}

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::Db(sqlx::Error::PoolTimedOut))
}

#[async_trait]
impl Store for DownStore {
    async fn create_user(&self, _: &str, _: &str) -> Result<User, StoreError> {
        down()
    }
    async fn credentials(&self, _: &str) -> Result<Option<Credentials>, StoreError> {
        down()
    }
    async fn user(&self, _: UserId) -> Result<Option<User>, StoreError> {
        down()
    }
    async fn set_password(&self, _: UserId, _: &str) -> Result<(), StoreError> {
        down()
    }
    async fn settings(&self, _: UserId) -> Result<Option<Settings>, StoreError> {
        down()
    }
    async fn set_add_policy(&self, _: UserId, _: AddPolicy) -> Result<Settings, StoreError> {
        down()
    }
    async fn invitations(&self, _: UserId, _: i64) -> Result<Vec<Invitation>, StoreError> {
        down()
    }
    async fn accept_invitation(&self, _: RoomId, _: UserId) -> Result<Room, StoreError> {
        down()
    }
    async fn decline_invitation(&self, _: RoomId, _: UserId) -> Result<bool, StoreError> {
        down()
    }
    async fn create_room(&self, _: &str, _: UserId, _: &[UserId]) -> Result<Room, StoreError> {
        down()
    }
    async fn open_dm(&self, _: UserId, _: UserId) -> Result<(Room, bool), StoreError> {
        down()
    }
    async fn room(&self, _: RoomId, _: UserId) -> Result<RoomView, StoreError> {
        down()
    }
    async fn rooms_of(&self, _: UserId, _: Option<&str>, _: i64) -> Result<RoomPage, StoreError> {
        down()
    }
    async fn access(&self, _: RoomId, _: UserId) -> Result<RoomAccess, StoreError> {
        down()
    }
    async fn room_events(
        &self,
        _: RoomId,
        _: UserId,
        _: i64,
        _: i64,
    ) -> Result<RoomEvents, StoreError> {
        down()
    }
    async fn prune_events(&self, _: i64, _: i64) -> Result<u64, StoreError> {
        down()
    }
    async fn rate_take(&self, _: &str, _: i64, _: i64, _: u32) -> Result<Option<i64>, StoreError> {
        down()
    }
    async fn rate_prune(&self, _: i64) -> Result<u64, StoreError> {
        down()
    }
    async fn create_session(
        &self,
        _: UserId,
        _: &str,
        _: i64,
        _: i64,
    ) -> Result<SessionId, StoreError> {
        down()
    }
    async fn rotate_session(
        &self,
        _: SessionId,
        _: i64,
        _: &str,
        _: &str,
        _: i64,
        _: i64,
    ) -> Result<Rotated, StoreError> {
        down()
    }
    async fn revoke_session(&self, _: SessionId, _: UserId, _: i64) -> Result<bool, StoreError> {
        down()
    }
    async fn revoke_sessions(
        &self,
        _: UserId,
        _: Option<SessionId>,
        _: i64,
    ) -> Result<Vec<SessionId>, StoreError> {
        down()
    }
    async fn session_user(&self, _: SessionId, _: i64) -> Result<Option<UserId>, StoreError> {
        down()
    }
    async fn add_members(&self, _: RoomId, _: UserId, _: &[UserId]) -> Result<Room, StoreError> {
        down()
    }
    async fn remove_member(&self, _: RoomId, _: UserId, _: UserId) -> Result<Room, StoreError> {
        down()
    }
    async fn set_role(&self, _: RoomId, _: UserId, _: UserId, _: Role) -> Result<Room, StoreError> {
        down()
    }
    async fn rename_room(&self, _: RoomId, _: UserId, _: &str) -> Result<Room, StoreError> {
        down()
    }
    async fn post_message(&self, _: NewMessage<'_>) -> Result<Posted, StoreError> {
        down()
    }
    async fn edit_message(
        &self,
        _: RoomId,
        _: UserId,
        _: MessageId,
        _: &str,
    ) -> Result<Message, StoreError> {
        down()
    }
    async fn delete_message(
        &self,
        _: RoomId,
        _: UserId,
        _: MessageId,
    ) -> Result<Message, StoreError> {
        down()
    }
    async fn history(
        &self,
        _: RoomId,
        _: UserId,
        _: HistoryPage,
        _: i64,
    ) -> Result<Vec<Message>, StoreError> {
        down()
    }
    async fn react(
        &self,
        _: RoomId,
        _: UserId,
        _: MessageId,
        _: &str,
        _: bool,
    ) -> Result<bool, StoreError> {
        down()
    }
    async fn mark_read(&self, _: RoomId, _: UserId, _: i64) -> Result<ReadMarked, StoreError> {
        down()
    }
    async fn presence_changed(
        &self,
        _: UserId,
        _: &str,
        _: bool,
        _: i64,
    ) -> Result<(), StoreError> {
        down()
    }
    async fn node_heartbeat(&self, _: &str, _: i64) -> Result<(), StoreError> {
        down()
    }
    async fn sweep_nodes(&self, stale_before: i64) -> Result<usize, StoreError> {
        self.sweeps.lock().unwrap().push(stale_before);
        down()
    }
    async fn room_presence(&self, _: RoomId, _: UserId) -> Result<Vec<Presence>, StoreError> {
        down()
    }
    fn outbox_signal(&self) -> std::sync::Arc<OutboxSignal> {
        OutboxSignal::new()
    }
    fn outbox_partitions(&self) -> u32 {
        1
    }
    async fn outbox_lease(&self, _: &str) -> Result<Box<dyn OutboxLease>, StoreError> {
        down()
    }
    async fn outbox_claim(&self, _: &Partitions, _: i64) -> Result<Vec<OutboxItem>, StoreError> {
        down()
    }
    async fn outbox_done(&self, _: &[i64]) -> Result<(), StoreError> {
        down()
    }
    async fn outbox_backlog(&self) -> Result<OutboxBacklog, StoreError> {
        down()
    }
}
