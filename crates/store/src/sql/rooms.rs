//! Rooms: creating group rooms and DMs, reading one room or the room list as
//! a member sees it, renaming.

use roomcast_core::{AddPolicy, ChatOut, Role, Room, RoomId, RoomKind, RoomView, UserId, now_ms};

use super::query::Sql;
use super::{Dialect, SqlStore, invitations, load, outbox, users};
use crate::domain::{self, RoomState};
use crate::{RoomAccess, RoomPage, StoreError};

pub(super) async fn create<D: Dialect>(
    s: &SqlStore<D>,
    name: &str,
    creator: UserId,
    members: &[UserId],
) -> Result<Room, StoreError> {
    let all = domain::members_in_order(creator, members);
    let name = name.to_owned();
    let default = s.add_policy;
    s.write(move |tx| {
        Box::pin(async move {
            users::require::<D>(tx, &all[..1]).await?;
            let others = &all[1..];
            let policies = invitations::policies::<D>(tx, others, default).await?;
            let id = RoomId::new();
            insert::<D>(tx, id, RoomKind::Group, &name, creator, None).await?;
            insert_member::<D>(tx, id, creator, Role::Owner, 0).await?;
            let mut invited = Vec::new();
            for (user, policy) in others.iter().zip(policies) {
                match policy {
                    AddPolicy::Anyone => {
                        insert_member::<D>(tx, id, *user, Role::Member, 0).await?;
                    }
                    AddPolicy::Invite => invited.push(*user),
                }
            }
            let state = announce::<D>(tx, id).await?;
            for user in invited {
                let event = invitations::invite::<D>(tx, &state.room, creator, user).await?;
                outbox::queue::<D>(tx, event).await?;
            }
            Ok(state.room)
        })
    })
    .await
}

pub(super) async fn open_dm<D: Dialect>(
    s: &SqlStore<D>,
    me: UserId,
    peer: UserId,
) -> Result<(Room, bool), StoreError> {
    if me == peer {
        return Err(StoreError::Invalid(
            "a direct message is with another user".into(),
        ));
    }
    let key = domain::dm_key(me, peer);
    let default = s.add_policy;
    s.write(move |tx| Box::pin(open_dm_in::<D>(tx, me, peer, key, default)))
        .await
}

/// The DM of `me` and `peer`: created with both as members if the peer lets
/// anyone add them, else with `me` alone and the peer invited. Opening a DM
/// one is not (yet) a member of is consent: the opener joins it.
async fn open_dm_in<D: Dialect>(
    tx: &mut D::Conn,
    me: UserId,
    peer: UserId,
    key: String,
    default: AddPolicy,
) -> Result<(Room, bool), StoreError> {
    let mut names = Vec::with_capacity(2);
    for id in [me, peer] {
        let name = users::username::<D>(tx, id).await?;
        names.push(name.ok_or(StoreError::UnknownUser(id))?);
    }
    if let Some(room) = dm_of::<D>(tx, &key).await? {
        return Ok((open_existing::<D>(tx, room, me).await?, false));
    }
    let id = RoomId::new();
    let name = domain::dm_name(&names[0], &names[1]);
    // A concurrent call may have created it since: then this inserts nothing
    // (having waited for that transaction) and the room is read back.
    if insert::<D>(tx, id, RoomKind::Dm, &name, me, Some(&key)).await? == 0 {
        let room = dm_of::<D>(tx, &key).await?;
        let room = room.ok_or(sqlx::Error::RowNotFound)?;
        return Ok((open_existing::<D>(tx, room, me).await?, false));
    }
    insert_member::<D>(tx, id, me, Role::Member, 0).await?;
    let policy = invitations::policies::<D>(tx, &[peer], default).await?[0];
    if policy == AddPolicy::Anyone {
        insert_member::<D>(tx, id, peer, Role::Member, 0).await?;
    }
    let state = announce::<D>(tx, id).await?;
    if policy == AddPolicy::Invite {
        let event = invitations::invite::<D>(tx, &state.room, me, peer).await?;
        outbox::queue::<D>(tx, event).await?;
    }
    Ok((state.room, true))
}

/// An existing DM opened by `me`: as it is if they are a member, else they
/// join it (they were invited, or declined before and changed their mind).
async fn open_existing<D: Dialect>(
    tx: &mut D::Conn,
    room: Room,
    me: UserId,
) -> Result<Room, StoreError> {
    if room.members.contains(&me) {
        return Ok(room);
    }
    invitations::join::<D>(tx, &room, me).await
}

/// The DM with `key`, if any.
async fn dm_of<D: Dialect>(conn: &mut D::Conn, key: &str) -> Result<Option<Room>, StoreError> {
    let row = Sql::new("SELECT id FROM rooms WHERE dm_key = $1")
        .text(key)
        .opt::<D>(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let state = load::existing_room::<D>(conn, row.id("id")?, false).await?;
    Ok(Some(state.room))
}

/// Insert a room row; 0 if a DM with `dm_key` already exists.
async fn insert<D: Dialect>(
    conn: &mut D::Conn,
    id: RoomId,
    kind: RoomKind,
    name: &str,
    creator: UserId,
    dm_key: Option<&str>,
) -> Result<u64, StoreError> {
    Sql::new(
        "INSERT INTO rooms (id, kind, name, created_by, dm_key, last_seq, created_at, last_activity_at)
         VALUES ($1, $2, $3, $4, $5, 0, $6, $6)
         ON CONFLICT (dm_key) DO NOTHING",
    )
    .text(id)
    .text(kind.as_str())
    .text(name)
    .text(creator)
    .opt_text(dm_key)
    .int(now_ms())
    .run::<D>(conn)
    .await
}

/// Add `user` to `room` after the last member; 0 if already a member.
pub(super) async fn insert_member<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    user: UserId,
    role: Role,
    read_seq: i64,
) -> Result<u64, StoreError> {
    Sql::new(
        "INSERT INTO room_members (room_id, user_id, position, joined_at, role, read_seq)
         VALUES ($1, $2,
                 (SELECT COALESCE(max(position), -1) + 1 FROM room_members WHERE room_id = $1),
                 $3, $4, $5)
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .text(room)
    .text(user)
    .int(now_ms())
    .text(role.as_str())
    .int(read_seq)
    .run::<D>(conn)
    .await
}

/// Read `room` back after a change and queue `roomUpdated` to every member.
pub(super) async fn announce<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
) -> Result<RoomState, StoreError> {
    let state = load::existing_room::<D>(conn, room, false).await?;
    outbox::queue::<D>(conn, [state.updated_to_all()]).await?;
    Ok(state)
}

/// A change to a group room: the statement that makes it, and events to
/// queue before the `roomUpdated`s that every change sends.
pub(super) struct Change {
    sql: Sql,
    first: Vec<ChatOut>,
}

impl Change {
    pub(super) fn new(sql: Sql) -> Self {
        Self {
            sql,
            first: Vec::new(),
        }
    }

    /// Queue `event` before the `roomUpdated`s.
    pub(super) fn first(mut self, event: ChatOut) -> Self {
        self.first.push(event);
        self
    }
}

/// Change a group room on behalf of `actor`, in one transaction: lock the
/// room, refuse a missing room (NotFound), a non-member (Forbidden) or a DM
/// (Invalid), let `decide` check the rest and say what changes (`None`:
/// nothing, nothing queued), run it and queue `roomUpdated` to every member
/// after it.
pub(super) async fn change_group<D, F>(
    s: &SqlStore<D>,
    room: RoomId,
    actor: UserId,
    decide: F,
) -> Result<Room, StoreError>
where
    D: Dialect,
    F: FnOnce(&RoomState, Role) -> Result<Option<Change>, StoreError> + Send + 'static,
{
    s.write(move |tx| {
        Box::pin(async move {
            let (state, role) = lock_group::<D>(tx, room, actor).await?;
            let Some(change) = decide(&state, role)? else {
                return Ok(state.room);
            };
            change.sql.run::<D>(tx).await?;
            outbox::queue::<D>(tx, change.first).await?;
            let state = announce::<D>(tx, room).await?;
            Ok(state.room)
        })
    })
    .await
}

/// Lock `room` for a change to the room itself by `actor`: its state and
/// `actor`'s role. NotFound / Forbidden (non-member) / Invalid (a DM).
pub(super) async fn lock_group<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    actor: UserId,
) -> Result<(RoomState, Role), StoreError> {
    let state = load::existing_room::<D>(conn, room, true).await?;
    let role = state.member(actor)?;
    domain::require_group(&state.room)?;
    Ok((state, role))
}

pub(super) async fn rename<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    actor: UserId,
    name: &str,
) -> Result<Room, StoreError> {
    let name = name.to_owned();
    change_group(s, room, actor, move |state, role| {
        domain::require_manager(role)?;
        let rename = Sql::new("UPDATE rooms SET name = $1 WHERE id = $2")
            .text(&name)
            .text(room);
        Ok((state.room.name != name).then(|| Change::new(rename)))
    })
    .await
}

pub(super) async fn view<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    viewer: UserId,
) -> Result<RoomView, StoreError> {
    s.read(move |c| {
        Box::pin(async move {
            let state = load::existing_room::<D>(c, room, false).await?;
            state.member(viewer)?;
            Ok(state.view(viewer))
        })
    })
    .await
}

pub(super) async fn page<D: Dialect>(
    s: &SqlStore<D>,
    user: UserId,
    before: Option<&str>,
    limit: i64,
) -> Result<RoomPage, StoreError> {
    if limit < 1 {
        return Err(StoreError::Invalid("limit must be at least 1".into()));
    }
    // No cursor: every room is before (i64::MAX, "").
    let (ms, id) = match before {
        Some(c) => {
            let (ms, id) = domain::decode_cursor(c)?;
            (ms, id.to_string())
        }
        None => (i64::MAX, String::new()),
    };
    s.read(move |c| Box::pin(page_in::<D>(c, user, ms, id, limit)))
        .await
}

async fn page_in<D: Dialect>(
    conn: &mut D::Conn,
    user: UserId,
    ms: i64,
    id: String,
    limit: i64,
) -> Result<RoomPage, StoreError> {
    let sql = format!(
        "{} JOIN room_members me ON me.room_id = r.id AND me.user_id = $1
         WHERE r.last_activity_at < $2 OR (r.last_activity_at = $2 AND r.id < $3)
         ORDER BY r.last_activity_at DESC, r.id DESC LIMIT $4",
        load::room_select("")
    );
    let rows = Sql::new(sql)
        .text(user)
        .int(ms)
        .text(id)
        .int(limit + 1)
        .all::<D>(conn)
        .await?;
    let more = rows.len() as i64 > limit;
    let rooms = rows
        .iter()
        .take(limit as usize)
        .map(load::room_from)
        .collect::<Result<Vec<_>, _>>()?;
    let rooms = load::with_members::<D>(conn, rooms).await?;
    let next = match rooms.last() {
        Some(last) if more => Some(domain::encode_cursor(last.activity_ms, last.room.id)),
        _ => None,
    };
    Ok(RoomPage {
        rooms: rooms.iter().map(|r| r.view(user)).collect(),
        next,
    })
}

pub(super) async fn access<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    user: UserId,
) -> Result<RoomAccess, StoreError> {
    s.read(move |c| Box::pin(access_in::<D>(c, room, user)))
        .await
}

async fn access_in<D: Dialect>(
    conn: &mut D::Conn,
    room: RoomId,
    user: UserId,
) -> Result<RoomAccess, StoreError> {
    let row = Sql::new(
        "SELECT r.last_seq, r.last_event_seq,
                EXISTS(SELECT 1 FROM room_members m WHERE m.room_id = r.id AND m.user_id = $1) AS member
         FROM rooms r WHERE r.id = $2",
    )
    .text(user)
    .text(room)
    .opt::<D>(conn)
    .await?;
    Ok(match row {
        None => RoomAccess::NoRoom,
        Some(r) if r.flag("member")? => RoomAccess::Member {
            last_seq: r.int("last_seq")?,
            last_event_seq: r.int("last_event_seq")?,
        },
        Some(_) => RoomAccess::NotMember,
    })
}
