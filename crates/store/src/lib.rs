//! Persistence: the [`Store`] trait, its SQLite and PostgreSQL implementations and migrations.
//!
//! # Layout
//! - `lib.rs`: the [`Store`] trait, its outcome types and [`StoreError`].
//! - `domain`: the chat rules that need no SQL: permissions, the `chat.out`
//!   envelopes each write queues, a room as one member sees it, the
//!   room-list cursor, DM keys.
//! - [`sql`]: the one implementation, [`SqlStore`], generic over the
//!   [`Dialect`]: every statement is written once and runs on both databases
//!   (submodules per concern: users, rooms, members, messages, reactions,
//!   presence, outbox).
//! - [`sqlite`]: [`SqliteStore`] (`SqlStore<Sqlite>`): opening the file, its
//!   writer thread (group commit) and reader threads on rusqlite, its
//!   dialect; migrations under `migrations/sqlite`.
//! - [`held`]: `serve`'s outbox, held in memory (its bus is in the process).
//! - [`outbox`]: what the relay sees: rows, partitions, the backlog, the
//!   wake-up signal, and the [`OutboxLease`] that says which partitions a
//!   process relays.
//! - [`postgres`]: [`PostgresStore`] (`SqlStore<Postgres>`), for several API
//!   processes sharing one database: its pool, its dialect (row locks), the
//!   post queue whose writers commit many posts per transaction
//!   (`postgres::posts`, `sql::post_batch`) and the partition leases spread
//!   over API processes; migrations under `migrations/postgres`.
//! - [`open`]: picks the implementation from a database URL.
//!
//! # Guarantees every implementation keeps
//! - A change and the outbox rows announcing it are written in **one**
//!   transaction: a stored change is always, eventually, published, and a
//!   refused or failed one publishes nothing. The store wakes its relay
//!   after each write ([`Store::outbox_signal`]).
//! - `seq` is per room, starts at 1 and has no gaps; deleting a message
//!   keeps its seq (body `""`, `deletedAt` set).
//! - `(room, sender, clientMsgId)` identifies a message: posting it again
//!   returns the stored one and writes nothing. Every other write is
//!   idempotent the same way (adding a member twice, the same reaction, the
//!   same edit, a read marker not ahead of the stored one, …): a repeat
//!   changes nothing and queues nothing.
//! - Read markers only move forward and never past the room's last seq;
//!   posting moves the sender's to the new message; a member added to an
//!   existing room starts at its last seq (older messages are not unread).
//! - One DM per pair of users, however many calls race to open it.
//! - Nobody becomes a member of a room without their consent: a user whose
//!   add policy is `invite` (the default) is invited, and joins only by
//!   accepting or by opening the DM themself.
//! - Messages in events and in write results carry no reactions (whose `me`
//!   depends on the reader), nor does a room view's `lastMessage`; history
//!   fills them per reader.
//! - Room and message ids are UUIDv7 text; times are stored as Unix ms and
//!   shown as RFC 3339.

mod domain;
pub mod held;
pub mod outbox;
pub mod postgres;
pub mod sql;
pub mod sqlite;

use async_trait::async_trait;
use roomcast_core::{
    AddPolicy, Invitation, Message, MessageId, Presence, Role, Room, RoomEvents, RoomId, RoomView,
    SessionId, Settings, User, UserId,
};

pub use outbox::{LocalLease, OutboxBacklog, OutboxItem, OutboxLease, OutboxSignal, Partitions};
pub use postgres::PostgresStore;
pub use sql::{Dialect, SqlStore};
pub use sqlite::SqliteStore;

/// Errors from the store.
///
/// The first group are refusals of the request, with a message fit to show
/// the client (the API maps them to 4xx answers and ACK errors); the rest are
/// failures (5xx, details only in the log).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The username is taken.
    #[error("username already taken")]
    UsernameTaken,
    /// A member id names no user.
    #[error("unknown user {0}")]
    UnknownUser(UserId),
    /// No such room, message, or member (→ 404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this: not a member, or not the right role (→ 403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// The request makes no sense for this room or message, e.g. renaming a
    /// DM or a `replyTo` in another room (→ 400 `bad_request`).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the state, e.g. editing a deleted message
    /// (→ 409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The database URL is not one we support.
    #[error("unsupported database URL (expected sqlite://… or postgres://…): {0}")]
    UnsupportedUrl(String),
    /// A stored value could not be decoded (corrupt row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store could not run the operation: its threads stopped, or the
    /// write batch it was committed with failed.
    #[error("store unavailable: {0}")]
    Stopped(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database's files could not be created or given their mode
    /// ([`sqlite::files`]).
    #[error("database files: {0}")]
    Files(#[from] std::io::Error),
}

/// A group-committing store's counts since it opened (see
/// [`Store::write_stats`]): `writes / batches` is how many writes share a
/// commit on average.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Transactions committed (or refused whole).
    pub batches: u64,
    /// Writes run in them.
    pub writes: u64,
}

/// A user with the stored password hash (for login only).
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user.
    pub user: User,
    /// The argon2 PHC string.
    pub password_hash: String,
}

/// What the caller is to a room: one type for every tier, defined in core.
pub use roomcast_core::RoomAccess;

/// The outcome of [`Store::rotate_session`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotated {
    /// The token was the session's current one: it is rotated, the
    /// session renewed. `generation` is the new token's.
    Rotated {
        /// The session's user.
        user: UserId,
        /// The new current generation.
        generation: i64,
    },
    /// The token was one the session had rotated away from: someone else
    /// holds a copy. The session is revoked now (it was live until then).
    Reused {
        /// The session's user.
        user: UserId,
        /// The session revoked.
        session: SessionId,
    },
    /// No such live session, a generation it never had, or the wrong
    /// secret: nothing changed.
    Invalid,
}

/// The outcome of posting a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Posted {
    /// A new message was stored (and its events queued in the outbox).
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
    /// The message this one answers; must be in the same room
    /// ([`StoreError::Invalid`] otherwise, nothing stored).
    pub reply_to: Option<MessageId>,
}

/// Which page of a room's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryPage {
    /// The oldest `limit` messages with `seq > n`.
    After(i64),
    /// The newest `limit` messages with `seq < n` (`i64::MAX`: the latest).
    Before(i64),
}

/// One page of the room list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomPage {
    /// The rooms, latest activity first.
    pub rooms: Vec<RoomView>,
    /// Cursor for the next page (pass as `before`), `None` on the last page.
    pub next: Option<String>,
}

/// The outcome of [`Store::mark_read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadMarked {
    /// Whether the marker moved (events were queued only then).
    pub moved: bool,
    /// The reader's marker now.
    pub read_seq: i64,
    /// Their unread count now.
    pub unread_count: i64,
}

/// Rooms with more members than this get no per-member `roomUpdated` for
/// each new message (that would be one outbox row per member per message);
/// their members see `receiveMessage` in rooms they joined and the counts in
/// `GET /v1/rooms`. Membership changes and read markers still send
/// `roomUpdated` whatever the size.
pub const UNREAD_FANOUT_MAX_MEMBERS: i64 = 500;

/// Most co-members told of one user's presence change (`presence` events are
/// queued to the first this many, by user id).
pub const PRESENCE_FANOUT_MAX: i64 = 1000;

/// How [`open_with`] opens a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// The outbox partition count of a **new** database (a database keeps
    /// the count it was created with; see [`outbox`]).
    pub outbox_partitions: u32,
    /// Where committed events wait for the relay.
    pub outbox: OutboxStorage,
    /// The add policy of a user who has not chosen one (the server's
    /// `rooms.default_add_policy`; `invite` by default).
    pub default_add_policy: AddPolicy,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            outbox_partitions: outbox::DEFAULT_PARTITIONS,
            outbox: OutboxStorage::Table,
            default_add_policy: AddPolicy::Invite,
        }
    }
}

/// Where committed events wait for the relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutboxStorage {
    /// The `outbox` table, in the change's transaction: for a bus outside
    /// the process. The default, and always so on PostgreSQL.
    #[default]
    Table,
    /// In memory, handed over after the change's commit (SQLite only; see
    /// [`held`]): for `roomcast serve`, whose bus is in the process.
    Memory,
}

/// The persistence interface every tier uses. Object-safe: held as `Arc<dyn Store>`.
///
/// Every write that clients must hear about queues its `chat.out` events in
/// the outbox **in the same transaction** (see `docs/protocol.md` for each
/// event's target and payload). Writes are idempotent where a retry or a
/// redelivered command can repeat them: a repeat changes nothing and queues
/// nothing. Refusals are [`StoreError::NotFound`], [`StoreError::Forbidden`],
/// [`StoreError::Invalid`] or [`StoreError::Conflict`], and change nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Create a user. [`StoreError::UsernameTaken`] if the name (case-insensitive) exists.
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User, StoreError>;
    /// Look a user up by name, with the password hash.
    async fn credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError>;
    /// Look a user up by id.
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Replace `user`'s password hash (the API ends their other sessions).
    async fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StoreError>;
    /// A user's settings (their add policy, or the default if they never
    /// chose); `None` if there is no such user.
    async fn settings(&self, user: UserId) -> Result<Option<Settings>, StoreError>;
    /// Store `user`'s choice of who may add them to rooms; their settings
    /// after it. Pending invitations stay pending.
    async fn set_add_policy(&self, user: UserId, to: AddPolicy) -> Result<Settings, StoreError>;
    /// `user`'s pending invitations, newest first, at most `limit`.
    async fn invitations(&self, user: UserId, limit: i64) -> Result<Vec<Invitation>, StoreError>;
    /// `user` accepts their invitation to `room`: they become a member
    /// (`invitationRemoved` to them, then `roomUpdated` to every member).
    /// Already a member: the room, nothing queued. No invitation:
    /// [`StoreError::NotFound`].
    async fn accept_invitation(&self, room: RoomId, user: UserId) -> Result<Room, StoreError>;
    /// `user` declines their invitation to `room` (`invitationRemoved` to
    /// them); whether there was one.
    async fn decline_invitation(&self, room: RoomId, user: UserId) -> Result<bool, StoreError>;

    /// Create a group room; `creator` is its owner, `members` (deduplicated,
    /// after the creator) plain members if their add policy is `anyone`, and
    /// invited otherwise. Queues `roomUpdated` to each member, then
    /// `invitationReceived` to each invitee. [`StoreError::UnknownUser`] if
    /// a member does not exist.
    async fn create_room(
        &self,
        name: &str,
        creator: UserId,
        members: &[UserId],
    ) -> Result<Room, StoreError>;
    /// The DM room of `me` and `peer`, created on first call (then
    /// `roomUpdated` to both) and the same room on every later call, from
    /// either side; `true` if it was created now. A peer whose add policy is
    /// `invite` is invited instead of added (the DM starts with `me` alone);
    /// opening an existing DM one is not a member of joins it (consent). [`StoreError::UnknownUser`]
    /// for a missing peer, [`StoreError::Invalid`] if `peer == me`.
    async fn open_dm(&self, me: UserId, peer: UserId) -> Result<(Room, bool), StoreError>;
    /// One room as `viewer` sees it. NotFound / Forbidden (not a member).
    async fn room(&self, room: RoomId, viewer: UserId) -> Result<RoomView, StoreError>;
    /// The rooms of `user`, latest activity first (ties by room id), at most
    /// `limit`, starting after the cursor `before` (from a previous
    /// [`RoomPage::next`]). A malformed cursor is [`StoreError::Invalid`].
    async fn rooms_of(
        &self,
        user: UserId,
        before: Option<&str>,
        limit: i64,
    ) -> Result<RoomPage, StoreError>;
    /// What `user` is to `room`.
    async fn access(&self, room: RoomId, user: UserId) -> Result<RoomAccess, StoreError>;
    /// The room's logged events after position `after_event_seq`, oldest
    /// first, at most `limit`, for `viewer` (a member:
    /// [`StoreError::NotFound`] without the room, [`StoreError::Forbidden`]
    /// for a non-member). `recovered` is `false` when retention pruned part
    /// of the gap or `after_event_seq` is ahead of the log.
    async fn room_events(
        &self,
        room: RoomId,
        viewer: UserId,
        after_event_seq: i64,
        limit: i64,
    ) -> Result<RoomEvents, StoreError>;
    /// Apply the event log's retention: delete events stored before
    /// `before_ms` (Unix ms) and all but the latest `keep_per_room` of each
    /// room. Returns how many went.
    async fn prune_events(&self, keep_per_room: i64, before_ms: i64) -> Result<u64, StoreError>;
    /// Take one action from the rate-limit bucket `key`, shared by every
    /// process on this database: one action every `interval_ms`, `burst` at
    /// once (GCRA), at `now_ms` (Unix ms, the caller's clock). `None`: allowed,
    /// and counted; `Some(ms)`: refused, nothing counted, retry after `ms`.
    /// Keys are the caller's (e.g. `login:alice|10.0.0.1`).
    async fn rate_take(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: u32,
    ) -> Result<Option<i64>, StoreError>;
    /// Delete the rate-limit buckets full again at `before_ms` (their state
    /// is the same as none); how many went.
    async fn rate_prune(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// Start a session of `user` whose generation-0 refresh secret hashes to
    /// `refresh_hash`, live until `expires_ms` (Unix ms).
    async fn create_session(
        &self,
        user: UserId,
        refresh_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<SessionId, StoreError>;
    /// Present generation `generation` of `session`'s refresh token, whose
    /// secret hashes to `refresh_hash`: the current one is rotated to
    /// generation + 1 with `next_hash` and the session renewed until
    /// `expires_ms`; an earlier one revokes the session (reuse); anything
    /// else changes nothing. See [`Rotated`].
    async fn rotate_session(
        &self,
        session: SessionId,
        generation: i64,
        refresh_hash: &str,
        next_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<Rotated, StoreError>;
    /// End `session` of `user` (logout); whether it was live.
    async fn revoke_session(
        &self,
        session: SessionId,
        user: UserId,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// End every live session of `user` but `except` (log out everywhere, a
    /// password change); the sessions ended.
    async fn revoke_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now_ms: i64,
    ) -> Result<Vec<SessionId>, StoreError>;
    /// The user of `session` if it is live at `now_ms`.
    async fn session_user(
        &self,
        session: SessionId,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError>;
    /// Add members (owner/admin only; not in a DM). Users already members
    /// are skipped; those whose add policy is `invite` are invited
    /// (`invitationReceived`, once per pending invitation); if anyone was
    /// added, `roomUpdated` goes to every member.
    async fn add_members(
        &self,
        room: RoomId,
        actor: UserId,
        users: &[UserId],
    ) -> Result<Room, StoreError>;
    /// Remove `user` from `room`; `actor == user` is leaving. The owner
    /// removes admins and members, an admin removes members, anyone leaves;
    /// nobody removes the owner, and the owner cannot leave while others
    /// remain ([`StoreError::Conflict`]). Not in a DM. Queues `roomRemoved`
    /// (room + user target) for `user` first, then `roomUpdated` to each
    /// remaining member. A user who is not a member: [`StoreError::NotFound`].
    async fn remove_member(
        &self,
        room: RoomId,
        actor: UserId,
        user: UserId,
    ) -> Result<Room, StoreError>;
    /// Make `user` an `admin` or a `member` (owner only; never `owner`).
    /// `roomUpdated` to every member if it changed.
    async fn set_role(
        &self,
        room: RoomId,
        actor: UserId,
        user: UserId,
        role: Role,
    ) -> Result<Room, StoreError>;
    /// Rename a group room (owner/admin). `roomUpdated` to every member if it changed.
    async fn rename_room(
        &self,
        room: RoomId,
        actor: UserId,
        name: &str,
    ) -> Result<Room, StoreError>;

    /// Store a message (idempotent on `clientMsgId`) and queue its events, in
    /// one transaction: `receiveMessage` to the room, then `roomUpdated` to
    /// each member (see [`UNREAD_FANOUT_MAX_MEMBERS`]). The sender's read
    /// marker moves to the new message.
    async fn post_message(&self, msg: NewMessage<'_>) -> Result<Posted, StoreError>;
    /// Edit a message's body (its sender only). `messageUpdated` to the room;
    /// the same body again changes nothing. A deleted message: Conflict.
    async fn edit_message(
        &self,
        room: RoomId,
        actor: UserId,
        message: MessageId,
        body: &str,
    ) -> Result<Message, StoreError>;
    /// Delete a message (its sender, or an owner/admin): body cleared,
    /// `deletedAt` set, seq kept, its reactions removed; `messageDeleted` to
    /// the room. Deleting it again changes nothing.
    async fn delete_message(
        &self,
        room: RoomId,
        actor: UserId,
        message: MessageId,
    ) -> Result<Message, StoreError>;
    /// A page of history, ascending by seq, at most `limit`, with reactions
    /// as `viewer` sees them. NotFound / Forbidden (not a member).
    async fn history(
        &self,
        room: RoomId,
        viewer: UserId,
        page: HistoryPage,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError>;
    /// Add (`add`) or remove `user`'s `emoji` on a message; `true` if that
    /// changed anything (then `reactionAdded` / `reactionRemoved` to the
    /// room). Not on a deleted message (Conflict); at most
    /// `validate::MAX_REACTIONS_PER_USER` emoji per user per message (Invalid).
    async fn react(
        &self,
        room: RoomId,
        user: UserId,
        message: MessageId,
        emoji: &str,
        add: bool,
    ) -> Result<bool, StoreError>;
    /// Move `user`'s read marker in `room` forward to `seq` (capped at the
    /// room's last seq; never backwards). If it moved: `messageReadUpdate` to
    /// the room and `roomUpdated` to the reader. Forbidden for a non-member.
    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: i64,
    ) -> Result<ReadMarked, StoreError>;

    /// Record that `user`'s sockets on `node` are all gone (`online: false`)
    /// or that the first one connected (`true`), as of the node's clock `at`
    /// (Unix ms). A change not newer than the stored one for (user, node) is
    /// ignored. When the user's overall status flips (online on some node ↔
    /// on none), `presence` is queued to each co-member's `user:<id>` (see
    /// [`PRESENCE_FANOUT_MAX`]) and, going offline, `lastSeenAt` is stored.
    async fn presence_changed(
        &self,
        user: UserId,
        node: &str,
        online: bool,
        at: i64,
    ) -> Result<(), StoreError>;
    /// Record that `node` is alive at `at` (Unix ms).
    async fn node_heartbeat(&self, node: &str, at: i64) -> Result<(), StoreError>;
    /// Take every node whose latest heartbeat is older than `stale_before`
    /// (Unix ms) as gone: its users go offline as in
    /// [`Store::presence_changed`]. Returns how many nodes were swept.
    async fn sweep_nodes(&self, stale_before: i64) -> Result<usize, StoreError>;
    /// Presence of every member of `room`, in member order. NotFound / Forbidden.
    async fn room_presence(
        &self,
        room: RoomId,
        viewer: UserId,
    ) -> Result<Vec<Presence>, StoreError>;

    /// The outbox's wake-up signal, notified after every write (see [`OutboxSignal`]).
    fn outbox_signal(&self) -> std::sync::Arc<OutboxSignal>;
    /// The database's outbox partition count.
    fn outbox_partitions(&self) -> u32;
    /// Join the relay as process `node`: the outbox partitions it may
    /// relay, for as long as it holds them (see [`OutboxLease`]).
    async fn outbox_lease(&self, node: &str) -> Result<Box<dyn OutboxLease>, StoreError>;
    /// The oldest `limit` rows of the partitions `parts`, in id order: the
    /// batch the relay publishes, then hands to [`Store::outbox_done`]. A
    /// table row is claimed again until it is done; an outbox held in memory
    /// ([`OutboxStorage::Memory`]) hands each event over once ([`held`]).
    async fn outbox_claim(
        &self,
        parts: &Partitions,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    /// The oldest `limit` rows of every partition, in id order.
    async fn outbox_pending(&self, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        self.outbox_claim(&Partitions::all(self.outbox_partitions()), limit)
            .await
    }
    /// Delete published outbox rows.
    async fn outbox_done(&self, ids: &[i64]) -> Result<(), StoreError>;
    /// How many rows wait, and for how long the oldest has.
    async fn outbox_backlog(&self) -> Result<OutboxBacklog, StoreError>;
    /// What a store that group-commits has committed so far: SQLite's
    /// writer thread (every write), PostgreSQL's post writers (posts only).
    fn write_stats(&self) -> Option<WriteStats> {
        None
    }
}

/// Open the store named by `url` and bring its schema up to date:
/// `sqlite:…` opens a [`SqliteStore`], `postgres://…` or `postgresql://…` a
/// [`PostgresStore`].
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    open_with(url, &StoreOptions::default()).await
}

/// [`open`] with `options`.
pub async fn open_with(
    url: &str,
    options: &StoreOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(
            SqliteStore::open_with(url, options).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(
            PostgresStore::open_with(url, options).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}
