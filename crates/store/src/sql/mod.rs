//! The one implementation of [`Store`]: [`SqlStore`], generic over the SQL
//! [`Dialect`] (SQLite or PostgreSQL).
//!
//! Every statement is written once and runs on both databases (see
//! `query` for the few rules that makes necessary); what truly differs is a
//! [`Dialect`] hook: row locks, how usernames match, and who relays which
//! outbox partition. The rules themselves (permissions, events, views) are in
//! `domain`; the submodules here read rows, ask those rules, and
//! write the result with its outbox rows in one transaction:
//! - `users`: accounts;
//! - `rooms`: creating rooms and DMs, reading them, the room list, renames;
//! - `members`: adding and removing members, roles, read markers;
//! - `invitations`: add policies and invitations (consent to be added);
//! - `messages`: posting, editing, deleting, history;
//! - `post_batch`: many posts in one transaction (PostgreSQL only: it binds
//!   arrays);
//! - `reactions`: reacting, and reactions as a reader sees them;
//! - `presence`: who is online, per realtime node;
//! - `rates`: rate-limit buckets shared by every process on the database;
//! - `sessions`: login sessions and their refresh-token generations;
//! - `outbox`: queueing, claiming and deleting outbox rows, the backlog,
//!   the partition count;
//! - `events`: the room event log (positions, rows for replay, retention);
//! - `load`: reading rooms, members and messages (shared by all the above).
//!
//! Each operation is one piece of work on one connection: writes through
//! [`SqlStore::write`] (a transaction, committed only if the work succeeds),
//! reads through [`SqlStore::read`]. On PostgreSQL both take a pooled
//! connection; on SQLite the work runs whole on the store's writer thread
//! (group commit) or a reader thread, see [`crate::sqlite`].

mod events;
mod invitations;
mod load;
mod members;
pub(crate) mod messages;
pub(crate) mod outbox;
pub(crate) mod post_batch;
mod presence;
pub(crate) mod query;
mod rates;
mod reactions;
mod rooms;
mod sessions;
mod users;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use roomcast_core::{
    AddPolicy, Invitation, Message, MessageId, Presence, Role, Room, RoomEvents, RoomId, RoomView,
    SessionId, Settings, User, UserId,
};

use crate::outbox::{OutboxBacklog, OutboxItem, OutboxLease, OutboxSignal, Partitions};
use crate::{
    Credentials, HistoryPage, NewMessage, Posted, ReadMarked, RoomAccess, RoomPage, Rotated, Store,
    StoreError, StoreOptions, WriteStats,
};

/// Work on one connection, inside the transaction (or on the read
/// connection) that [`Dialect::write`] or [`Dialect::read`] gives it.
pub type Work<D, T> = Box<
    dyn for<'c> FnOnce(&'c mut <D as query::Io>::Conn) -> BoxFuture<'c, Result<T, StoreError>>
        + Send,
>;

/// What differs between the SQL databases the store speaks. Implemented for
/// [`sqlx::Postgres`] and [`crate::sqlite::Sqlite`] only.
pub trait Dialect: query::Io {
    /// How `WHERE` matches `username` to `$1` regardless of case.
    const USERNAME_EQ: &'static str;

    /// The scalar function of the larger of two values: `GREATEST` on
    /// PostgreSQL, `max` on SQLite.
    const GREATEST: &'static str;

    /// Whether a `WITH` may hold `INSERT`/`UPDATE` (PostgreSQL): hot writes
    /// then join statements into one, saving round trips.
    const WRITING_CTE: bool;

    /// The store's connections: a pool on PostgreSQL; the writer and reader
    /// threads on SQLite.
    type Db: Clone + Send + Sync + fmt::Debug + 'static;

    /// The clause that locks the selected rows of table (alias) `of` until
    /// commit: `" FOR UPDATE OF of"` on PostgreSQL, `""` on SQLite, whose one
    /// writer runs write transactions one at a time anyway.
    fn for_update(of: &str) -> String;

    /// Run `work` in a write transaction, committed if it returns `Ok` and
    /// rolled back otherwise; answers only after the commit.
    fn write<T: Send + 'static>(
        db: &Self::Db,
        work: Work<Self, T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + '_;

    /// Run `work` on a read connection; with `snapshot`, all its statements
    /// in one read transaction.
    fn read<T: Send + 'static>(
        db: &Self::Db,
        snapshot: bool,
        work: Work<Self, T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + '_;

    /// Post `msg` (see `messages::post`). By default in a write
    /// transaction of its own; PostgreSQL posts in batches, many posts per
    /// transaction (see [`post_batch`]).
    fn post<'a>(
        s: &'a SqlStore<Self>,
        msg: NewMessage<'_>,
    ) -> impl Future<Output = Result<crate::Posted, StoreError>> + Send + 'a {
        let msg = messages::Post::from(msg);
        s.write(move |tx| Box::pin(messages::post_in::<Self>(tx, msg)))
    }

    /// Keep `envs` (queued on `chat.out` by the work on `conn`) for an
    /// outbox held in memory instead of writing their rows, if `conn`
    /// collects them (SQLite's writer with [`crate::OutboxStorage::Memory`]).
    /// Returns them if it did not.
    fn hold(
        _conn: &mut Self::Conn,
        envs: Vec<roomcast_core::Encoded>,
    ) -> Option<Vec<roomcast_core::Encoded>> {
        Some(envs)
    }

    /// Delete the published outbox rows `ids` ([`Store::outbox_done`]): by
    /// default in a write transaction, in chunks; PostgreSQL deletes them in
    /// one statement of its own, one round trip.
    fn delete_outbox(
        db: &Self::Db,
        ids: Vec<i64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        let work: Work<Self, ()> =
            Box::new(move |tx| Box::pin(async move { outbox::delete::<Self>(tx, &ids).await }));
        Self::write(db, work)
    }

    /// [`Store::write_stats`] for this database.
    fn write_stats(_db: &Self::Db) -> Option<WriteStats> {
        None
    }

    /// Reclaim the space of deleted outbox rows, after every
    /// [`outbox::RECLAIM_EVERY`] deletions (one at a time, off the caller's
    /// path). PostgreSQL vacuums the table; SQLite frees a deleted row's
    /// space at once, so its default does nothing.
    fn reclaim(_db: &Self::Db) -> impl Future<Output = Result<(), StoreError>> + Send + '_ {
        std::future::ready(Ok(()))
    }

    /// [`Store::outbox_lease`] for this database.
    fn lease<'a>(
        store: &'a SqlStore<Self>,
        node: &'a str,
    ) -> impl Future<Output = Result<Box<dyn OutboxLease>, StoreError>> + Send + 'a;
}

/// The [`Store`] on an SQL database; use it as [`crate::SqliteStore`] or
/// [`crate::PostgresStore`].
pub struct SqlStore<D: Dialect> {
    pub(crate) db: D::Db,
    /// Notified after every write (see [`OutboxSignal`]).
    pub(crate) outbox: Arc<OutboxSignal>,
    /// The database's outbox partition count.
    pub(crate) partitions: u32,
    /// Outbox deletions since its space was last reclaimed.
    pub(crate) reclaim: Arc<outbox::Reclaim>,
    /// The outbox, when held in memory ([`crate::OutboxStorage::Memory`]).
    pub(crate) held: Option<Arc<crate::held::HeldOutbox>>,
    /// The add policy of users who have not chosen one.
    pub(crate) add_policy: AddPolicy,
}

impl<D: Dialect> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            outbox: self.outbox.clone(),
            partitions: self.partitions,
            reclaim: self.reclaim.clone(),
            held: self.held.clone(),
            add_policy: self.add_policy,
        }
    }
}

impl<D: Dialect> fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("db", &self.db)
            .field("partitions", &self.partitions)
            .finish()
    }
}

#[async_trait]
impl<D: Dialect> Store for SqlStore<D> {
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User, StoreError> {
        users::create(self, username, password_hash).await
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        users::credentials(self, username).await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        users::get(self, id).await
    }

    async fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StoreError> {
        users::set_password(self, user, password_hash).await
    }

    async fn settings(&self, user: UserId) -> Result<Option<Settings>, StoreError> {
        invitations::settings(self, user).await
    }

    async fn set_add_policy(&self, user: UserId, to: AddPolicy) -> Result<Settings, StoreError> {
        invitations::set_add_policy(self, user, to).await
    }

    async fn invitations(&self, user: UserId, limit: i64) -> Result<Vec<Invitation>, StoreError> {
        invitations::of_user(self, user, limit).await
    }

    async fn accept_invitation(&self, room: RoomId, user: UserId) -> Result<Room, StoreError> {
        self.wrote(invitations::accept(self, room, user).await)
    }

    async fn decline_invitation(&self, room: RoomId, user: UserId) -> Result<bool, StoreError> {
        self.wrote(invitations::decline(self, room, user).await)
    }

    async fn create_room(
        &self,
        name: &str,
        creator: UserId,
        members: &[UserId],
    ) -> Result<Room, StoreError> {
        self.wrote(rooms::create(self, name, creator, members).await)
    }

    async fn open_dm(&self, me: UserId, peer: UserId) -> Result<(Room, bool), StoreError> {
        self.wrote(rooms::open_dm(self, me, peer).await)
    }

    async fn room(&self, room: RoomId, viewer: UserId) -> Result<RoomView, StoreError> {
        rooms::view(self, room, viewer).await
    }

    async fn rooms_of(
        &self,
        user: UserId,
        before: Option<&str>,
        limit: i64,
    ) -> Result<RoomPage, StoreError> {
        rooms::page(self, user, before, limit).await
    }

    async fn access(&self, room: RoomId, user: UserId) -> Result<RoomAccess, StoreError> {
        rooms::access(self, room, user).await
    }

    async fn add_members(
        &self,
        room: RoomId,
        actor: UserId,
        users: &[UserId],
    ) -> Result<Room, StoreError> {
        self.wrote(members::add(self, room, actor, users).await)
    }

    async fn remove_member(
        &self,
        room: RoomId,
        actor: UserId,
        user: UserId,
    ) -> Result<Room, StoreError> {
        self.wrote(members::remove(self, room, actor, user).await)
    }

    async fn set_role(
        &self,
        room: RoomId,
        actor: UserId,
        user: UserId,
        role: Role,
    ) -> Result<Room, StoreError> {
        self.wrote(members::set_role(self, room, actor, user, role).await)
    }

    async fn rename_room(
        &self,
        room: RoomId,
        actor: UserId,
        name: &str,
    ) -> Result<Room, StoreError> {
        self.wrote(rooms::rename(self, room, actor, name).await)
    }

    async fn post_message(&self, msg: NewMessage<'_>) -> Result<Posted, StoreError> {
        self.wrote(messages::post(self, msg).await)
    }

    async fn edit_message(
        &self,
        room: RoomId,
        actor: UserId,
        message: MessageId,
        body: &str,
    ) -> Result<Message, StoreError> {
        self.wrote(messages::edit(self, room, actor, message, body).await)
    }

    async fn delete_message(
        &self,
        room: RoomId,
        actor: UserId,
        message: MessageId,
    ) -> Result<Message, StoreError> {
        self.wrote(messages::delete(self, room, actor, message).await)
    }

    async fn history(
        &self,
        room: RoomId,
        viewer: UserId,
        page: HistoryPage,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        messages::history(self, room, viewer, page, limit).await
    }

    async fn react(
        &self,
        room: RoomId,
        user: UserId,
        message: MessageId,
        emoji: &str,
        add: bool,
    ) -> Result<bool, StoreError> {
        self.wrote(reactions::react(self, room, user, message, emoji, add).await)
    }

    async fn mark_read(
        &self,
        room: RoomId,
        user: UserId,
        seq: i64,
    ) -> Result<ReadMarked, StoreError> {
        self.wrote(members::mark_read(self, room, user, seq).await)
    }

    async fn presence_changed(
        &self,
        user: UserId,
        node: &str,
        online: bool,
        at: i64,
    ) -> Result<(), StoreError> {
        self.wrote(presence::changed(self, user, node, online, at).await)
    }

    async fn node_heartbeat(&self, node: &str, at: i64) -> Result<(), StoreError> {
        presence::heartbeat(self, node, at).await
    }

    async fn sweep_nodes(&self, stale_before: i64) -> Result<usize, StoreError> {
        self.wrote(presence::sweep(self, stale_before).await)
    }

    async fn room_presence(
        &self,
        room: RoomId,
        viewer: UserId,
    ) -> Result<Vec<Presence>, StoreError> {
        presence::of_room(self, room, viewer).await
    }

    async fn room_events(
        &self,
        room: RoomId,
        viewer: UserId,
        after_event_seq: i64,
        limit: i64,
    ) -> Result<RoomEvents, StoreError> {
        events::since(self, room, viewer, after_event_seq, limit).await
    }

    async fn prune_events(&self, keep_per_room: i64, before_ms: i64) -> Result<u64, StoreError> {
        events::prune(self, keep_per_room, before_ms).await
    }

    async fn rate_take(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: u32,
    ) -> Result<Option<i64>, StoreError> {
        rates::take(self, key, now_ms, interval_ms, burst).await
    }

    async fn rate_prune(&self, before_ms: i64) -> Result<u64, StoreError> {
        rates::prune(self, before_ms).await
    }

    async fn create_session(
        &self,
        user: UserId,
        refresh_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<SessionId, StoreError> {
        sessions::create(self, user, refresh_hash, now_ms, expires_ms).await
    }

    async fn rotate_session(
        &self,
        session: SessionId,
        generation: i64,
        refresh_hash: &str,
        next_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<Rotated, StoreError> {
        let (hash, next) = (refresh_hash.to_owned(), next_hash.to_owned());
        self.wrote(
            sessions::rotate(self, session, generation, hash, next, now_ms, expires_ms).await,
        )
    }

    async fn revoke_session(
        &self,
        session: SessionId,
        user: UserId,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.wrote(sessions::revoke(self, session, user, now_ms).await)
    }

    async fn revoke_sessions(
        &self,
        user: UserId,
        except: Option<SessionId>,
        now_ms: i64,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.wrote(sessions::revoke_all(self, user, except, now_ms).await)
    }

    async fn session_user(
        &self,
        session: SessionId,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError> {
        sessions::live(self, session, now_ms).await
    }

    fn outbox_signal(&self) -> Arc<OutboxSignal> {
        self.outbox.clone()
    }

    fn outbox_partitions(&self) -> u32 {
        self.partitions
    }

    async fn outbox_lease(&self, node: &str) -> Result<Box<dyn OutboxLease>, StoreError> {
        D::lease(self, node).await
    }

    async fn outbox_claim(
        &self,
        parts: &Partitions,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        // Read-only: on SQLite a reader thread, so the relay never waits
        // for (or holds up) the writer to read its batch.
        if let Some(held) = &self.held {
            return Ok(held.claim(parts, limit));
        }
        let parts = parts.clone();
        self.read(move |c| Box::pin(async move { outbox::oldest::<D>(c, &parts, limit).await }))
            .await
    }

    async fn outbox_done(&self, ids: &[i64]) -> Result<(), StoreError> {
        if let Some(held) = &self.held {
            held.done(ids);
            return Ok(());
        }
        let n = ids.len();
        D::delete_outbox(&self.db, ids.to_vec()).await?;
        if self.reclaim.deleted(n) {
            let (db, reclaim) = (self.db.clone(), self.reclaim.clone());
            tokio::spawn(async move {
                if let Err(e) = D::reclaim(&db).await {
                    tracing::warn!(error = %e, "could not reclaim the outbox's space");
                }
                reclaim.finished();
            });
        }
        Ok(())
    }

    async fn outbox_backlog(&self) -> Result<OutboxBacklog, StoreError> {
        if let Some(held) = &self.held {
            return Ok(held.backlog());
        }
        self.read(|c| Box::pin(outbox::backlog::<D>(c))).await
    }

    fn write_stats(&self) -> Option<WriteStats> {
        D::write_stats(&self.db)
    }
}

impl<D: Dialect> SqlStore<D> {
    /// Pass a write's result on, waking the relay if it succeeded (it may
    /// have queued outbox rows; a wake-up with nothing to relay costs one
    /// empty read).
    fn wrote<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() {
            self.outbox.written();
        }
        result
    }

    /// A store on `db`: the outbox partition count is read from the
    /// database (written there first from `options` if it has none yet), and
    /// rows queued before partitions existed get their ordering hash.
    pub(crate) async fn new(db: D::Db, options: &StoreOptions) -> Result<Self, StoreError> {
        let wanted = options.outbox_partitions;
        let work: Work<D, u32> =
            Box::new(move |tx| Box::pin(async move { outbox::prepare::<D>(tx, wanted).await }));
        let partitions = D::write(&db, work).await?;
        Ok(Self {
            db,
            outbox: OutboxSignal::new(),
            partitions,
            reclaim: Arc::default(),
            held: None,
            add_policy: options.default_add_policy,
        })
    }

    /// Run `work` in a write transaction ([`Dialect::write`]).
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut D::Conn) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        D::write(&self.db, Box::new(work)).await
    }

    /// Run `work` on a read connection ([`Dialect::read`]).
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut D::Conn) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        D::read(&self.db, false, Box::new(work)).await
    }

    /// Run `work` on a read connection, all of it one snapshot.
    pub(crate) async fn snapshot<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut D::Conn) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        D::read(&self.db, true, Box::new(work)).await
    }
}
