//! The SQLite store (the embedded default).
//!
//! Two pools over one WAL-mode database file:
//! - a **write pool of one connection**: SQLite has a single writer anyway, and
//!   queueing writers in the pool (instead of racing for the file lock) keeps
//!   every write transaction free of `SQLITE_BUSY` and makes `seq` assignment
//!   trivially serial;
//! - a **read pool** of [`READ_CONNECTIONS`] connections for queries.
//!
//! An in-memory URL (`sqlite::memory:`) uses the one write connection for reads too.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use roomcast_core::{
    Envelope, Message, MessageId, Room, RoomId, User, UserId, events, now_ms, rfc3339_ms, topics,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::{Access, Credentials, NewMessage, OutboxItem, Posted, Store, StoreError};

/// Connections in the read pool.
pub const READ_CONNECTIONS: u32 = 4;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite [`Store`].
#[derive(Clone, Debug)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url` and run migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        MIGRATOR.run(&write).await?;
        let read = if in_memory {
            write.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .connect_with(opts.read_only(true))
                .await?
        };
        Ok(Self { write, read })
    }
}

fn parse<T: FromStr>(s: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad id {s:?}")))
}

fn message_from(row: &sqlx::sqlite::SqliteRow) -> Result<Message, StoreError> {
    Ok(Message {
        id: parse::<MessageId>(row.try_get("id")?)?,
        room_id: parse::<RoomId>(row.try_get("room_id")?)?,
        seq: row.try_get("seq")?,
        sender_id: parse::<UserId>(row.try_get("sender_id")?)?,
        body: row.try_get("body")?,
        client_msg_id: row.try_get("client_msg_id")?,
        created_at: rfc3339_ms(row.try_get("created_at")?),
    })
}

const MESSAGE_COLUMNS: &str = "id, room_id, seq, sender_id, body, client_msg_id, created_at";

async fn insert_outbox(
    tx: &mut sqlx::SqliteConnection,
    topic: &str,
    env: &Envelope,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO outbox (topic, envelope, created_at) VALUES (?, ?, ?)")
        .bind(topic)
        .bind(String::from_utf8(env.to_bytes()).expect("JSON is UTF-8"))
        .bind(now_ms())
        .execute(tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User, StoreError> {
        let id = UserId::new();
        let res = sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(username)
        .bind(password_hash)
        .bind(now_ms())
        .execute(&self.write)
        .await;
        match res {
            Ok(_) => Ok(User {
                id,
                username: username.to_owned(),
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::UsernameTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        let row = sqlx::query("SELECT id, username, password_hash FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            Ok(Credentials {
                user: User {
                    id: parse(r.try_get("id")?)?,
                    username: r.try_get("username")?,
                },
                password_hash: r.try_get("password_hash")?,
            })
        })
        .transpose()
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT username FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            Ok(User {
                id,
                username: r.try_get("username")?,
            })
        })
        .transpose()
    }

    async fn create_room(
        &self,
        name: &str,
        creator: UserId,
        members: &[UserId],
    ) -> Result<Room, StoreError> {
        let mut all = vec![creator];
        for m in members {
            if !all.contains(m) {
                all.push(*m);
            }
        }
        let id = RoomId::new();
        let now = now_ms();
        let mut tx = self.write.begin().await?;
        for m in &all {
            let exists = sqlx::query("SELECT 1 FROM users WHERE id = ?")
                .bind(m.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::UnknownUser(*m));
            }
        }
        sqlx::query(
            "INSERT INTO rooms (id, name, created_by, last_seq, created_at, last_activity_at)
             VALUES (?, ?, ?, 0, ?, ?)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(creator.to_string())
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (pos, m) in all.iter().enumerate() {
            sqlx::query(
                "INSERT INTO room_members (room_id, user_id, position, joined_at) VALUES (?, ?, ?, ?)",
            )
            .bind(id.to_string())
            .bind(m.to_string())
            .bind(pos as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let room = Room {
            id,
            name: name.to_owned(),
            members: all.clone(),
            last_seq: 0,
            created_at: rfc3339_ms(now),
        };
        let payload = serde_json::to_value(&room).expect("room serializes");
        for m in &all {
            let env = Envelope::to_user(events::ROOM_UPDATED, *m, payload.clone());
            insert_outbox(&mut tx, topics::CHAT_OUT, &env).await?;
        }
        tx.commit().await?;
        Ok(room)
    }

    async fn rooms_of(&self, user: UserId) -> Result<Vec<Room>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, r.last_seq, r.created_at, m2.user_id
             FROM room_members m
             JOIN rooms r ON r.id = m.room_id
             JOIN room_members m2 ON m2.room_id = r.id
             WHERE m.user_id = ?
             ORDER BY r.last_activity_at DESC, r.id, m2.position",
        )
        .bind(user.to_string())
        .fetch_all(&self.read)
        .await?;
        let mut rooms: Vec<Room> = Vec::new();
        for r in rows {
            let id: RoomId = parse(r.try_get("id")?)?;
            let member: UserId = parse(r.try_get("user_id")?)?;
            match rooms.last_mut() {
                Some(room) if room.id == id => room.members.push(member),
                _ => rooms.push(Room {
                    id,
                    name: r.try_get("name")?,
                    members: vec![member],
                    last_seq: r.try_get("last_seq")?,
                    created_at: rfc3339_ms(r.try_get("created_at")?),
                }),
            }
        }
        Ok(rooms)
    }

    async fn access(&self, room: RoomId, user: UserId) -> Result<Access, StoreError> {
        let row = sqlx::query(
            "SELECT r.last_seq,
                    EXISTS(SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = ?) AS member
             FROM rooms r WHERE r.id = ?",
        )
        .bind(user.to_string())
        .bind(room.to_string())
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            None => Access::NoRoom,
            Some(r) if r.try_get::<bool, _>("member")? => Access::Member {
                last_seq: r.try_get("last_seq")?,
            },
            Some(_) => Access::NotMember,
        })
    }

    async fn post_message(&self, msg: NewMessage<'_>) -> Result<Posted, StoreError> {
        let room = msg.room_id.to_string();
        let sender = msg.sender_id.to_string();
        let mut tx = self.write.begin().await?;
        let access = sqlx::query(
            "SELECT EXISTS(SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = ?) AS member
             FROM rooms r WHERE r.id = ?",
        )
        .bind(&sender)
        .bind(&room)
        .fetch_optional(&mut *tx)
        .await?;
        match access {
            None => return Ok(Posted::NoRoom),
            Some(r) if !r.try_get::<bool, _>("member")? => return Ok(Posted::NotMember),
            Some(_) => {}
        }
        let existing = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE room_id = ? AND sender_id = ? AND client_msg_id = ?"
        ))
        .bind(&room)
        .bind(&sender)
        .bind(msg.client_msg_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            return Ok(Posted::Existing(message_from(&row)?));
        }
        let now = now_ms();
        let seq: i64 = sqlx::query_scalar(
            "UPDATE rooms SET last_seq = last_seq + 1, last_activity_at = ? WHERE id = ? RETURNING last_seq",
        )
        .bind(now)
        .bind(&room)
        .fetch_one(&mut *tx)
        .await?;
        let message = Message {
            id: MessageId::new(),
            room_id: msg.room_id,
            seq,
            sender_id: msg.sender_id,
            body: msg.body.to_owned(),
            client_msg_id: msg.client_msg_id.to_owned(),
            created_at: rfc3339_ms(now),
        };
        sqlx::query(&format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(message.id.to_string())
        .bind(&room)
        .bind(seq)
        .bind(&sender)
        .bind(msg.body)
        .bind(msg.client_msg_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let env = Envelope::to_room(
            events::RECEIVE_MESSAGE,
            msg.room_id,
            serde_json::to_value(&message).expect("message serializes"),
        );
        insert_outbox(&mut tx, topics::CHAT_OUT, &env).await?;
        tx.commit().await?;
        Ok(Posted::Created(message))
    }

    async fn messages_after(
        &self,
        room: RoomId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(room.to_string())
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(message_from).collect()
    }

    async fn outbox_pending(&self, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let rows = sqlx::query("SELECT id, topic, envelope FROM outbox ORDER BY id LIMIT ?")
            .bind(limit)
            .fetch_all(&self.write)
            .await?;
        rows.iter()
            .map(|r| {
                let text: String = r.try_get("envelope")?;
                Ok(OutboxItem {
                    id: r.try_get("id")?,
                    topic: r.try_get("topic")?,
                    envelope: Envelope::from_bytes(text.as_bytes())
                        .map_err(|e| StoreError::Corrupt(format!("outbox envelope: {e}")))?,
                })
            })
            .collect()
    }

    async fn outbox_done(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.write.begin().await?;
        for id in ids {
            sqlx::query("DELETE FROM outbox WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
