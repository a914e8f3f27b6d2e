//! Persistence: the [`Store`] trait, its SQLite and PostgreSQL implementations and migrations.
//!
//! # Layout
//! - `lib.rs`: the [`Store`] trait, its outcome types and [`StoreError`].
//! - [`sqlite`]: [`SqliteStore`], with migrations under `migrations/sqlite`.
//! - [`postgres`]: [`PostgresStore`], for several API processes sharing one
//!   database, with migrations under `migrations/postgres`.
//! - [`open`]: picks the implementation from a database URL.
//!
//! # Guarantees every implementation keeps
//! - A message and the outbox row announcing it are written in **one**
//!   transaction: a stored message is always, eventually, published.
//! - `seq` is per room, starts at 1 and has no gaps.
//! - `(room, sender, clientMsgId)` identifies a message: posting it again
//!   returns the stored one and writes nothing.

pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use roomcast_core::{Envelope, Message, Room, RoomId, User, UserId};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The username is taken.
    #[error("username already taken")]
    UsernameTaken,
    /// A member id names no user.
    #[error("unknown user {0}")]
    UnknownUser(UserId),
    /// The database URL is not one we support.
    #[error("unsupported database URL (expected sqlite://… or postgres://…): {0}")]
    UnsupportedUrl(String),
    /// A stored value could not be decoded (corrupt row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A user with the stored password hash (for login only).
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// The argon2 PHC string.
    pub password_hash: String,
}

/// What the caller is to a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No such room.
    NoRoom,
    /// The room exists; the caller is not a member.
    NotMember,
    /// The caller is a member; `last_seq` is the room's latest message seq.
    Member {
        /// Latest seq in the room (0 if empty).
        last_seq: i64,
    },
}

/// The outcome of posting a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Posted {
    /// A new message was stored (and its `receiveMessage` queued in the outbox).
    Created(Message),
    /// The same `clientMsgId` was posted before: the stored message, unchanged.
    Existing(Message),
    /// No such room.
    NoRoom,
    /// The sender is not a member.
    NotMember,
}

/// A new message to post.
#[derive(Clone, Debug)]
pub struct NewMessage<'a> {
    /// Target room.
    pub room_id: RoomId,
    /// Author, from the token.
    pub sender_id: UserId,
    /// Idempotency key chosen by the client.
    pub client_msg_id: &'a str,
    /// Text.
    pub body: &'a str,
}

/// One outbox row waiting to be published.
#[derive(Clone, Debug)]
pub struct OutboxItem {
    /// Row id; rows are published in id order.
    pub id: i64,
    /// Logical topic (`chat.out`, `chat.in`).
    pub topic: String,
    /// What to publish.
    pub envelope: Envelope,
}

/// Where [`Store::outbox_relay`] sends outbox rows (the bus, for the relay).
#[async_trait]
pub trait OutboxSink: Send + Sync {
    /// Publish one row; `Err` stops the pass and keeps this row and the rest.
    async fn publish(&self, item: &OutboxItem) -> Result<(), String>;
}

/// The result of one [`Store::outbox_relay`] pass.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RelayPass {
    /// Rows published and deleted.
    pub published: usize,
    /// The sink's error, if a publish failed (those rows stay).
    pub failure: Option<String>,
}

/// The persistence interface every tier uses. Object-safe: held as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Create a user. [`StoreError::UsernameTaken`] if the name (case-insensitive) exists.
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User, StoreError>;
    /// Look a user up by name, with the password hash.
    async fn credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError>;
    /// Look a user up by id.
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Create a room with `creator` and `members` (deduplicated, creator first),
    /// queueing `roomUpdated` to each member. [`StoreError::UnknownUser`] if a member does not exist.
    async fn create_room(
        &self,
        name: &str,
        creator: UserId,
        members: &[UserId],
    ) -> Result<Room, StoreError>;
    /// The rooms `user` belongs to, latest activity first.
    async fn rooms_of(&self, user: UserId) -> Result<Vec<Room>, StoreError>;
    /// What `user` is to `room`.
    async fn access(&self, room: RoomId, user: UserId) -> Result<Access, StoreError>;
    /// Store a message (idempotent on `clientMsgId`) and queue its event, in one transaction.
    async fn post_message(&self, msg: NewMessage<'_>) -> Result<Posted, StoreError>;
    /// Messages of a room with `seq > after_seq`, ascending, at most `limit`.
    async fn messages_after(
        &self,
        room: RoomId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError>;
    /// The oldest `limit` unpublished outbox rows, in id order.
    async fn outbox_pending(&self, limit: i64) -> Result<Vec<OutboxItem>, StoreError>;
    /// Delete published outbox rows.
    async fn outbox_done(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Publish up to `limit` outbox rows through `sink`, oldest first, and
    /// delete those published. Stops at the first failure.
    ///
    /// The default suits a store with one relay per database (SQLite): rows
    /// are read, published, then deleted, so a crash between publish and
    /// delete republishes them (consumers drop duplicates). A store shared by
    /// several API processes (PostgreSQL) overrides this so that only one
    /// process relays at a time, keeping order and never publishing a row twice
    /// while both are healthy.
    async fn outbox_relay(
        &self,
        limit: i64,
        sink: &dyn OutboxSink,
    ) -> Result<RelayPass, StoreError> {
        let items = self.outbox_pending(limit).await?;
        let mut done = Vec::with_capacity(items.len());
        let mut failure = None;
        for item in &items {
            match sink.publish(item).await {
                Ok(()) => done.push(item.id),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if !done.is_empty() {
            self.outbox_done(&done).await?;
        }
        Ok(RelayPass {
            published: done.len(),
            failure,
        })
    }
}

/// Open the store named by `url` and bring its schema up to date:
/// `sqlite:…` opens a [`SqliteStore`], `postgres://…` or `postgresql://…` a
/// [`PostgresStore`].
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}
