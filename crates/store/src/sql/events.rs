//! The room event log: positions (`eventSeq`) for the logged events a
//! write queues, the rows kept for replay, reading them back, and pruning.
//!
//! - **Positions** are assigned by [`log`], which [`super::outbox::queue`]
//!   calls for every write, so no write path can forget it: for each room
//!   among the logged events ([`Kind::is_logged`]) that have none yet,
//!   one `UPDATE rooms SET last_event_seq = last_event_seq + n … RETURNING`
//!   takes the next `n` positions, in the writer's transaction. (Posting
//!   takes its message's position in the `UPDATE` that takes its `seq`.)
//!   The row update locks the room's row until commit (on PostgreSQL), so
//!   positions are gap-free and in commit order per room, whatever process
//!   writes.
//! - **Rows**: each logged event is stored with its payload as emitted
//!   (`eventSeq` included) — the same text as in its envelope, encoded once —
//!   so a replay sends exactly what the live stream sent.
//! - **Retention** ([`prune`]) is by count per room and by age; the API tier
//!   runs it periodically (`event_log` in the config).

use roomcast_core::{ChatOut, Envelope, Kind, RoomEvent, RoomEvents, RoomId, UserId, now_ms};
use serde_json::value::RawValue;

use super::query::{Arg, Sql, value_rows_from};
use super::{Dialect, SqlStore, load};
use crate::StoreError;

/// Rows per `INSERT` (five arguments a row).
const CHUNK: usize = 100;

/// A `chat.out` event a write queues, with its log position once it has
/// one (posting takes its message's position itself; [`log`] gives the
/// others theirs).
#[derive(Debug)]
pub(crate) struct Queued {
    /// The event.
    pub event: ChatOut,
    /// Its position in its room's log, if it is logged and placed.
    pub event_seq: Option<i64>,
}

impl From<ChatOut> for Queued {
    fn from(event: ChatOut) -> Self {
        Self {
            event,
            event_seq: None,
        }
    }
}

impl Queued {
    /// Logged, without a position yet: its room.
    fn unplaced(&self) -> Option<RoomId> {
        match self.event.targets() {
            (Some(room), _) if self.event.is_logged() && self.event_seq.is_none() => Some(room),
            _ => None,
        }
    }
}

/// Give the logged events among `events` their positions (their rows are
/// written with the outbox's, see [`rows`]).
pub(super) async fn log<D: Dialect>(
    conn: &mut D::Conn,
    events: &mut [Queued],
) -> Result<(), StoreError> {
    let mut rooms: Vec<(RoomId, i64)> = Vec::new();
    for room in events.iter().filter_map(Queued::unplaced) {
        match rooms.iter_mut().find(|(r, _)| *r == room) {
            Some((_, n)) => *n += 1,
            None => rooms.push((room, 1)),
        }
    }
    for (room, n) in rooms {
        let last = Sql::new(
            "UPDATE rooms SET last_event_seq = last_event_seq + $1 WHERE id = $2
             RETURNING last_event_seq",
        )
        .int(n)
        .text(room)
        .opt::<D>(conn)
        .await?;
        let Some(last) = last else { continue };
        let first = last.int("last_event_seq")? - n + 1;
        let slots = events.iter_mut().filter(|e| e.unplaced() == Some(room));
        for (slot, seq) in slots.zip(first..) {
            slot.event_seq = Some(seq);
        }
    }
    Ok(())
}

/// The `room_events` rows of the logged events among `envs` (placed by
/// [`log`]), each bound as five arguments from `$first`: the multi-row
/// `VALUES` list and its arguments, in chunks of [`CHUNK`] rows. The payload
/// is the envelope's text, not encoded again.
pub(super) fn rows(envs: &[Envelope], first: usize) -> Vec<(String, Vec<Arg>)> {
    let now = now_ms();
    let rows: Vec<_> = logged(envs).collect();
    rows.chunks(CHUNK)
        .map(|chunk| {
            let values = value_rows_from(first, chunk.len(), 5);
            let args = chunk
                .iter()
                .flat_map(|(room, seq, kind, payload)| {
                    [
                        Arg::Text(Some(room.to_string())),
                        Arg::Int(Some(*seq)),
                        Arg::Text(Some(kind.to_string())),
                        Arg::Text(Some((*payload).to_owned())),
                        Arg::Int(Some(now)),
                    ]
                })
                .collect();
            (values, args)
        })
        .collect()
}

/// The logged events among `envs` (placed by [`log`]) as their
/// `room_events` rows: room, position, kind, payload text (not encoded
/// again).
pub(super) fn logged(envs: &[Envelope]) -> impl Iterator<Item = (RoomId, i64, &Kind, &str)> {
    envs.iter()
        .filter(|e| e.is_logged())
        .filter_map(|e| Some((e.room_id?, e.event_seq?, &e.kind, e.payload.get())))
}

/// The `INSERT` of `room_events` rows, given their `VALUES` list.
pub(super) fn insert(values: &str) -> String {
    format!(
        "INSERT INTO room_events (room_id, event_seq, kind, payload, created_at) VALUES {values}"
    )
}

/// The logged events of `room` after `after`, oldest first, at most `limit`,
/// for `viewer` (a member).
pub(super) async fn since<D: Dialect>(
    s: &SqlStore<D>,
    room: RoomId,
    viewer: UserId,
    after: i64,
    limit: i64,
) -> Result<RoomEvents, StoreError> {
    // One transaction: the room's last position and the rows are one snapshot.
    s.snapshot(move |c| Box::pin(since_in::<D>(c, room, viewer, after, limit)))
        .await
}

async fn since_in<D: Dialect>(
    tx: &mut D::Conn,
    room: RoomId,
    viewer: UserId,
    after: i64,
    limit: i64,
) -> Result<RoomEvents, StoreError> {
    load::member_role::<D>(tx, room, viewer).await?;
    let last_event_seq = Sql::new("SELECT last_event_seq FROM rooms WHERE id = $1")
        .text(room)
        .one::<D>(tx)
        .await?
        .int("last_event_seq")?;
    let rows = Sql::new(
        "SELECT event_seq, kind, payload FROM room_events
         WHERE room_id = $1 AND event_seq > $2 ORDER BY event_seq LIMIT $3",
    )
    .text(room)
    .int(after)
    .int(limit)
    .all::<D>(tx)
    .await?;
    let events = rows
        .iter()
        .map(|r| {
            // Checked as JSON here, then kept as the text it is.
            let payload = RawValue::from_string(r.text("payload")?)
                .map_err(|e| StoreError::Corrupt(format!("room event payload: {e}")))?;
            Ok(RoomEvent {
                event_seq: r.int("event_seq")?,
                kind: Kind::parse(&r.text("kind")?),
                payload,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(RoomEvents::new(after, last_event_seq, events, limit))
}

/// Delete events older than `before_ms`, and all but the latest
/// `keep_per_room` of each room. Returns how many rows went.
pub(super) async fn prune<D: Dialect>(
    s: &SqlStore<D>,
    keep_per_room: i64,
    before_ms: i64,
) -> Result<u64, StoreError> {
    s.write(move |tx| Box::pin(prune_in::<D>(tx, keep_per_room, before_ms)))
        .await
}

async fn prune_in<D: Dialect>(
    conn: &mut D::Conn,
    keep_per_room: i64,
    before_ms: i64,
) -> Result<u64, StoreError> {
    let old = Sql::new("DELETE FROM room_events WHERE created_at < $1")
        .int(before_ms)
        .run::<D>(conn)
        .await?;
    let over = Sql::new(
        "DELETE FROM room_events WHERE event_seq <=
            (SELECT r.last_event_seq FROM rooms r WHERE r.id = room_events.room_id) - $1",
    )
    .int(keep_per_room)
    .run::<D>(conn)
    .await?;
    Ok(old + over)
}
