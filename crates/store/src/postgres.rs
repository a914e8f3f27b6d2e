//! The PostgreSQL store, for several API processes sharing one database.
//!
//! # Connections
//! One pool per [`PostgresStore`] (so one per process). Its size is
//! [`POOL_CONNECTIONS`] unless the URL says otherwise with a
//! `max_connections` query parameter, e.g.
//! `postgres://roomcast@db/roomcast?max_connections=32`; that parameter is
//! taken out before the rest of the URL goes to sqlx, and every other
//! parameter (`sslmode`, `application_name`, …) means what it means to sqlx.
//! Migrations (under `migrations/postgres`) run at [`PostgresStore::open`];
//! sqlx holds an advisory lock while migrating, so processes starting together
//! do not race.
//!
//! All transactions use PostgreSQL's default isolation, READ COMMITTED: each
//! statement sees every transaction committed before it started, which the
//! two mechanisms below rely on.
//!
//! # Posting: gap-free `seq` and idempotency across processes
//! [`Store::post_message`] runs one transaction: membership check,
//! `clientMsgId` lookup, `UPDATE rooms SET last_seq = last_seq + 1 …
//! RETURNING last_seq`, message insert, outbox insert. The `UPDATE` takes the
//! room's row lock until commit, so posts to one room are serial whichever
//! process makes them: `seq` is gap-free (a rolled-back post rolls its
//! increment back too), and the room's outbox rows get ids — and become
//! visible — in `seq` order.
//!
//! Two processes posting the same `(room, sender, clientMsgId)` at once may
//! both miss it in the lookup; the second then waits on the row lock and its
//! insert hits the unique constraint `messages_client_msg_id` once the first
//! commits. That violation is caught: the transaction is rolled back (its
//! `last_seq` increment with it) and the stored message is read and returned
//! as [`Posted::Existing`]. Never an error, never a duplicate.
//!
//! # Relaying the outbox: one process at a time
//! [`Store::outbox_relay`] is overridden so that, with several processes on one
//! database, one relays at a time under an advisory lock and rows go out in id
//! order; see [`outbox`] for the exact pass and what a crash mid-pass does.
//!
//! # Usernames
//! Unique regardless of case through a unique index on `lower(username)`;
//! lookups compare `lower()` too. (PostgreSQL folds case by the database's
//! locale, so beyond ASCII it may fold more than SQLite's `NOCASE`.)

pub mod outbox;

use std::str::FromStr;

use async_trait::async_trait;
use roomcast_core::{Envelope, Message, MessageId, Room, RoomId, User, UserId, events, topics};
use roomcast_core::{now_ms, rfc3339_ms};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use crate::{
    Access, Credentials, NewMessage, OutboxItem, OutboxSink, Posted, RelayPass, Store, StoreError,
};

pub use outbox::RELAY_LOCK_KEY;

/// Pool size when the URL has no `max_connections` parameter.
pub const POOL_CONNECTIONS: u32 = 10;

/// The URL query parameter that sets the pool size.
pub const POOL_SIZE_PARAM: &str = "max_connections";

/// The unique constraint on `(room_id, sender_id, client_msg_id)`.
const CLIENT_MSG_ID_KEY: &str = "messages_client_msg_id";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL [`Store`].
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connect to the database at `url` (`postgres://` or `postgresql://`)
    /// and run migrations. See the module docs for `max_connections`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let (url, size) = split_pool_size(url)?;
        let opts = PgConnectOptions::from_str(&url)?;
        let pool = PgPoolOptions::new()
            .max_connections(size)
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Close the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Take the `max_connections` parameter out of `url`: the URL for sqlx, and
/// the pool size.
fn split_pool_size(url: &str) -> Result<(String, u32), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), POOL_CONNECTIONS));
    };
    let mut size = POOL_CONNECTIONS;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some((POOL_SIZE_PARAM, value)) => {
                size = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    sqlx::Error::Configuration(
                        format!("{POOL_SIZE_PARAM} must be a positive integer, not {value:?}")
                            .into(),
                    )
                })?;
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, size))
}

fn parse<T: FromStr>(s: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad id {s:?}")))
}

fn message_from(row: &PgRow) -> Result<Message, StoreError> {
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

impl PostgresStore {
    /// The stored message with `msg`'s `(room, sender, clientMsgId)`.
    async fn find_message(
        &self,
        conn: &mut PgConnection,
        msg: &NewMessage<'_>,
    ) -> Result<Option<Message>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE room_id = $1 AND sender_id = $2 AND client_msg_id = $3"
        ))
        .bind(msg.room_id.to_string())
        .bind(msg.sender_id.to_string())
        .bind(msg.client_msg_id)
        .fetch_optional(conn)
        .await?;
        row.as_ref().map(message_from).transpose()
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User, StoreError> {
        let id = UserId::new();
        let res = sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.to_string())
        .bind(username)
        .bind(password_hash)
        .bind(now_ms())
        .execute(&self.pool)
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
        let row = sqlx::query(
            "SELECT id, username, password_hash FROM users WHERE lower(username) = lower($1)",
        )
        .bind(username)
        .fetch_optional(&self.pool)
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
        let row = sqlx::query("SELECT username FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        for m in &all {
            let exists = sqlx::query("SELECT 1 FROM users WHERE id = $1")
                .bind(m.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::UnknownUser(*m));
            }
        }
        sqlx::query(
            "INSERT INTO rooms (id, name, created_by, last_seq, created_at, last_activity_at)
             VALUES ($1, $2, $3, 0, $4, $4)",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(creator.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (pos, m) in all.iter().enumerate() {
            sqlx::query(
                "INSERT INTO room_members (room_id, user_id, position, joined_at)
                 VALUES ($1, $2, $3, $4)",
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
            outbox::insert(&mut tx, topics::CHAT_OUT, &env).await?;
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
             WHERE m.user_id = $1
             ORDER BY r.last_activity_at DESC, r.id, m2.position",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
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
                    EXISTS(SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = $1) AS member
             FROM rooms r WHERE r.id = $2",
        )
        .bind(user.to_string())
        .bind(room.to_string())
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let access = sqlx::query(
            "SELECT EXISTS(SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = $1) AS member
             FROM rooms r WHERE r.id = $2",
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
        if let Some(existing) = self.find_message(&mut tx, &msg).await? {
            return Ok(Posted::Existing(existing));
        }
        let now = now_ms();
        // Takes the room's row lock until commit: posts to one room are serial.
        let seq: i64 = sqlx::query_scalar(
            "UPDATE rooms SET last_seq = last_seq + 1, last_activity_at = $1
             WHERE id = $2 RETURNING last_seq",
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
        let inserted = sqlx::query(&format!(
            "INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(message.id.to_string())
        .bind(&room)
        .bind(seq)
        .bind(&sender)
        .bind(msg.body)
        .bind(msg.client_msg_id)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // Another process stored this clientMsgId after our lookup.
            Err(sqlx::Error::Database(e)) if e.constraint() == Some(CLIENT_MSG_ID_KEY) => {
                tx.rollback().await?;
                let mut conn = self.pool.acquire().await?;
                return match self.find_message(&mut conn, &msg).await? {
                    Some(existing) => Ok(Posted::Existing(existing)),
                    None => Err(sqlx::Error::Database(e).into()),
                };
            }
            Err(e) => return Err(e.into()),
        }
        let env = Envelope::to_room(
            events::RECEIVE_MESSAGE,
            msg.room_id,
            serde_json::to_value(&message).expect("message serializes"),
        );
        outbox::insert(&mut tx, topics::CHAT_OUT, &env).await?;
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
            "SELECT {MESSAGE_COLUMNS} FROM messages
             WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(room.to_string())
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message_from).collect()
    }

    async fn outbox_pending(&self, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        outbox::oldest(&mut conn, limit).await
    }

    async fn outbox_done(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        outbox::delete(&mut conn, ids).await
    }

    async fn outbox_relay(
        &self,
        limit: i64,
        sink: &dyn OutboxSink,
    ) -> Result<RelayPass, StoreError> {
        outbox::relay(&self.pool, limit, sink).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_size_comes_out_of_the_url() {
        let (url, size) = split_pool_size("postgres://u@h/db").unwrap();
        assert_eq!(
            (url.as_str(), size),
            ("postgres://u@h/db", POOL_CONNECTIONS)
        );
        let (url, size) =
            split_pool_size("postgres://u@h/db?sslmode=disable&max_connections=3").unwrap();
        assert_eq!(
            (url.as_str(), size),
            ("postgres://u@h/db?sslmode=disable", 3)
        );
        let (url, size) = split_pool_size("postgres://u@h/db?max_connections=7").unwrap();
        assert_eq!((url.as_str(), size), ("postgres://u@h/db", 7));
        assert!(split_pool_size("postgres://u@h/db?max_connections=0").is_err());
        assert!(split_pool_size("postgres://u@h/db?max_connections=x").is_err());
    }
}
