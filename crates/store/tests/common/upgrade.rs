//! A database made by the first migration, with rows in it, upgraded by the
//! store: existing rooms become group rooms, creators owners.

use roomcast_core::{Role, RoomId, RoomKind, UserId};
use roomcast_store::{HistoryPage, Store};
use sqlx::migrate::Migrator;

/// Users, a room and messages as the first schema stored them.
pub const LEGACY_ROWS: &[&str] = &[
    "INSERT INTO users (id, username, password_hash, created_at) VALUES
        ('00000000-0000-7000-8000-00000000000a', 'alice', 'h', 1000),
        ('00000000-0000-7000-8000-00000000000b', 'bob', 'h', 1000)",
    "INSERT INTO rooms (id, name, created_by, last_seq, created_at, last_activity_at) VALUES
        ('00000000-0000-7000-8000-0000000000f0', 'old', '00000000-0000-7000-8000-00000000000a', 2, 1000, 3000)",
    "INSERT INTO room_members (room_id, user_id, position, joined_at) VALUES
        ('00000000-0000-7000-8000-0000000000f0', '00000000-0000-7000-8000-00000000000a', 0, 1000),
        ('00000000-0000-7000-8000-0000000000f0', '00000000-0000-7000-8000-00000000000b', 1, 1000)",
    "INSERT INTO messages (id, room_id, seq, sender_id, body, client_msg_id, created_at) VALUES
        ('00000000-0000-7000-8000-000000000101', '00000000-0000-7000-8000-0000000000f0', 1,
         '00000000-0000-7000-8000-00000000000b', 'first', 'k1', 2000),
        ('00000000-0000-7000-8000-000000000102', '00000000-0000-7000-8000-0000000000f0', 2,
         '00000000-0000-7000-8000-00000000000a', 'second', 'k2', 3000)",
];

/// A migrator of the first migration of `all` only: the schema as it was.
pub fn first_schema(all: Migrator) -> Migrator {
    Migrator {
        migrations: vec![all.migrations[0].clone()].into(),
        ..Migrator::DEFAULT
    }
}

/// Check `s`, opened on a database holding [`LEGACY_ROWS`].
pub async fn check_upgraded(s: &dyn Store) {
    let a: UserId = "00000000-0000-7000-8000-00000000000a".parse().unwrap();
    let b: UserId = "00000000-0000-7000-8000-00000000000b".parse().unwrap();
    let room: RoomId = "00000000-0000-7000-8000-0000000000f0".parse().unwrap();
    let view = s.room(room, b).await.unwrap();
    assert_eq!(view.room.kind, RoomKind::Group);
    assert_eq!(
        view.room.roles,
        [(a, Role::Owner), (b, Role::Member)].into()
    );
    assert_eq!(
        (view.read_seq, view.unread_count),
        (1, 1),
        "read up to their own post"
    );
    assert_eq!(view.last_message.unwrap().body, "second");
    assert_eq!(s.room(room, a).await.unwrap().unread_count, 0);
    let history = s.history(room, a, HistoryPage::After(0), 10).await.unwrap();
    assert!(
        history
            .iter()
            .all(|m| m.deleted_at.is_none() && m.reply_to.is_none())
    );
    assert_eq!(super::post(s, room, b, "k3", "third").await.seq, 3);
    s.rename_room(room, a, "renamed by the owner")
        .await
        .unwrap();
    let presence = s.room_presence(room, a).await.unwrap();
    assert!(
        presence
            .iter()
            .all(|p| !p.online && p.last_seen_at.is_none())
    );
}
