//! Replay on `joinRoom {roomId, sinceEventSeq}`: the room's logged events
//! after `sinceEventSeq`, then the live stream, with no gap and no duplicate
//! at the seam (issue #7).
//!
//! # How
//! - Each room with traffic on this node has a [`RoomLog`]: the highest
//!   `eventSeq` this node emitted to the room, and the latest
//!   [`RoomLogs::capacity`] logged events (`realtime.replay_buffer`, 256 by
//!   default). The `chat.out` consumer emits every logged event through
//!   [`RoomLogs::emit`], which drops an event at or below the room's highest
//!   (a redelivery: each socket gets each event once), records it, and
//!   emits it — under the lock.
//! - A rejoin takes the same lock, writes the events after `sinceEventSeq`
//!   to the socket, and joins the socket to the room before letting go: an
//!   event emitted after that reaches the socket live and was not replayed;
//!   every event before it was replayed. That is the seam.
//! - When the buffer does not reach back to `sinceEventSeq`, the missing
//!   events come from the store (in `serve`) or the API tier's
//!   `/internal/v1/events` (split), up to [`MAX_REPLAY`] events; then the
//!   buffer continues from where they end. If this node has not emitted
//!   that far yet (its `chat.out` consumer lags, or it just started), the
//!   socket is held back: the consumer skips it for this room's events up to
//!   where the fetch ended, which it already has.
//! - `recovered: false` (the socket joins, nothing is replayed) when the
//!   store no longer has the gap (retention) or the gap is longer than
//!   [`MAX_REPLAY`]: the client reloads the room through REST.
//!
//! Memory: a room's buffer holds up to `capacity` events (their payloads are
//! shared with nothing; about 0.5 KiB each for a chat message). A room that
//! had no event while this node emitted [`IDLE_EVENTS`] others loses its
//! buffer (checked every [`EVICT_EVERY`] events); it keeps its position
//! (about 100 bytes), so redeliveries are still dropped, and a rejoin into
//! it reads from the store instead.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use roomcast_core::{ErrorBody, ErrorCode, RoomEvent, RoomEvents, RoomId, UserId};

use crate::consumer::room_channel;
use crate::membership::Membership;
use crate::recovery::Offset;
use crate::transport::{Conn, ConnId};

/// Longest gap replayed on one rejoin; a client further behind reloads.
pub const MAX_REPLAY: i64 = 1000;

/// A room's buffer is dropped once this node emitted this many events of
/// other rooms since the room's last one.
pub const IDLE_EVENTS: u64 = 65_536;

/// How often (in events emitted) idle buffers are looked for.
pub const EVICT_EVERY: u64 = 4_096;

/// A room's recent logged events on this node.
#[derive(Default)]
struct RoomLog {
    /// [`State::emitted`] at this room's latest event.
    touched: u64,
    /// Highest `eventSeq` emitted here (0: none yet).
    last: i64,
    /// The latest events, consecutive, ending at `last`.
    recent: VecDeque<RoomEvent>,
    /// Sockets that already have this room's events up to a position this
    /// node has not emitted yet; skipped by the consumer until it passes it.
    held: Vec<(ConnId, i64)>,
}

impl RoomLog {
    /// The buffered events after `since`, if the buffer holds all of them.
    fn after(&self, since: i64) -> Option<Vec<RoomEvent>> {
        if since == self.last {
            return Some(Vec::new());
        }
        let first = self.recent.front()?.event_seq;
        (since < self.last && since + 1 >= first).then(|| {
            self.recent
                .iter()
                .filter(|e| e.event_seq > since)
                .cloned()
                .collect()
        })
    }
}

/// Every room's log on this node, and (with connection state recovery) what
/// each socket has of them.
pub struct RoomLogs {
    state: Mutex<State>,
    capacity: usize,
    recovery: bool,
}

#[derive(Default)]
struct State {
    /// Logged events emitted by this node (a clock for eviction).
    emitted: u64,
    rooms: HashMap<RoomId, RoomLog>,
    /// With recovery on: each socket's logged rooms, for its offsets.
    sockets: HashMap<ConnId, Joined>,
}

/// A socket's rooms as its recovery offsets name them.
struct Joined {
    user: UserId,
    /// Joined its `user:<id>` channel.
    user_channel: bool,
    /// Each room, and the position the socket had when it joined it (the
    /// room's position for it is at least that, see [`State::position`]).
    rooms: Vec<(RoomId, i64)>,
}

/// A socket, as the logs track it.
#[derive(Clone, Copy, Debug)]
pub struct SocketRef {
    /// Its id on this node.
    pub conn: ConnId,
    /// Its user.
    pub user: UserId,
}

impl SocketRef {
    /// The socket behind `conn`.
    pub fn of(conn: &Conn) -> Self {
        Self {
            conn: conn.id(),
            user: conn.user(),
        }
    }
}

/// Builds the recovery offset of any socket (under the logs' lock).
pub struct Offsets<'a> {
    state: Option<&'a State>,
}

impl Offsets<'_> {
    /// The offset to append to an event for `conn` (`None`: recovery off, or
    /// a socket that joined nothing).
    pub fn of(&self, conn: ConnId) -> Option<String> {
        self.state?.offset(conn, None)
    }
}

impl State {
    /// What `conn` has of `room`: where it joined, or what this node emitted
    /// since, or what it was given ahead of this node.
    fn position(&self, conn: ConnId, room: RoomId, floor: i64) -> i64 {
        let Some(log) = self.rooms.get(&room) else {
            return floor;
        };
        let held = log.held.iter().filter(|(c, _)| *c == conn).map(|(_, u)| *u);
        held.fold(floor.max(log.last), i64::max)
    }

    /// `conn`'s offset; `at` overrides one room's position (a replay in
    /// progress, which may not be in the list yet).
    fn offset(&self, conn: ConnId, at: Option<(RoomId, i64)>) -> Option<String> {
        let joined = self.sockets.get(&conn);
        if joined.is_none() && at.is_none() {
            return None;
        }
        let mut rooms: Vec<(RoomId, i64)> = joined
            .map(|j| {
                j.rooms
                    .iter()
                    .map(|&(room, floor)| match at {
                        Some((r, p)) if r == room => (room, p),
                        _ => (room, self.position(conn, room, floor)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Some((r, p)) = at
            && !rooms.iter().any(|(room, _)| *room == r)
        {
            rooms.push((r, p));
        }
        let offset = Offset {
            user: joined.is_some_and(|j| j.user_channel),
            rooms,
        };
        Some(offset.encode())
    }

    /// Drop the buffers of rooms idle for [`IDLE_EVENTS`] (positions and
    /// hold-backs stay).
    fn evict_idle(&mut self) {
        let horizon = self.emitted.saturating_sub(IDLE_EVENTS);
        for log in self.rooms.values_mut() {
            if log.touched < horizon && !log.recent.is_empty() {
                log.recent = VecDeque::new();
            }
        }
    }

    fn joined(&mut self, who: SocketRef) -> &mut Joined {
        self.sockets.entry(who.conn).or_insert_with(|| Joined {
            user: who.user,
            user_channel: false,
            rooms: Vec::new(),
        })
    }

    /// Record that `who` has `room` up to `upto` (recovery on).
    fn record(&mut self, who: SocketRef, room: RoomId, upto: i64) {
        let rooms = &mut self.joined(who).rooms;
        match rooms.iter_mut().find(|(r, _)| *r == room) {
            Some(entry) => entry.1 = upto,
            None => rooms.push((room, upto)),
        }
    }
}

/// What a rejoin found under the lock.
pub enum Seam {
    /// Joined; these events were written first (possibly none).
    Joined(usize),
    /// The buffer does not reach back to the position: fetch from the store
    /// from `since`.
    Fetch,
}

impl RoomLogs {
    /// Buffers of `capacity` events per room (at least 1); `recovery`
    /// tracks each socket's rooms for connection state recovery offsets.
    pub fn new(capacity: usize, recovery: bool) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
            recovery,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record and emit one logged event of `room` with `emit` (the event,
    /// the sockets to skip: those held back past it, and every socket's
    /// offset), unless this node already emitted it. Events arrive in
    /// `eventSeq` order per room (the bus keeps per-room order); after a gap
    /// (events this node never saw, e.g. published before it subscribed)
    /// the buffer restarts.
    pub fn emit(
        &self,
        room: RoomId,
        event: RoomEvent,
        emit: impl FnOnce(&RoomEvent, &[ConnId], &Offsets<'_>),
    ) {
        let mut st = self.lock();
        st.emitted += 1;
        let now = st.emitted;
        if now.is_multiple_of(EVICT_EVERY) {
            st.evict_idle();
        }
        let log = st.rooms.entry(room).or_default();
        if event.event_seq <= log.last {
            return;
        }
        log.touched = now;
        if event.event_seq != log.last + 1 {
            log.recent.clear();
        }
        let seq = event.event_seq;
        let skip: Vec<ConnId> = log
            .held
            .iter()
            .filter(|(_, upto)| *upto >= seq)
            .map(|(c, _)| *c)
            .collect();
        log.held.retain(|(_, upto)| *upto > seq);
        log.last = seq;
        log.recent.push_back(event);
        while log.recent.len() > self.capacity {
            log.recent.pop_front();
        }
        let st = &*st;
        let offsets = Offsets {
            state: self.recovery.then_some(st),
        };
        if let Some(event) = st.rooms.get(&room).and_then(|l| l.recent.back()) {
            emit(event, &skip, &offsets);
        }
    }

    /// The highest `eventSeq` emitted to `room` here (0: none yet).
    pub fn last(&self, room: RoomId) -> i64 {
        self.lock().rooms.get(&room).map_or(0, |l| l.last)
    }

    /// Whether the buffer holds everything after `since` in `room`.
    pub fn covers(&self, room: RoomId, since: i64) -> bool {
        self.lock()
            .rooms
            .get(&room)
            .is_some_and(|l| l.after(since).is_some())
    }

    /// Under the lock: if the buffer holds everything after `since`, write
    /// it with `send` (each event with `who`'s offset as of it) and `join`
    /// the socket; else leave the socket alone.
    pub fn rejoin(
        &self,
        room: RoomId,
        who: SocketRef,
        since: i64,
        send: impl Fn(&RoomEvent, Option<String>),
        join: impl FnOnce(),
    ) -> Seam {
        let mut st = self.lock();
        let Some(events) = st.rooms.get(&room).and_then(|l| l.after(since)) else {
            return Seam::Fetch;
        };
        Seam::Joined(self.replay(&mut st, room, who, &events, since, send, join))
    }

    /// Under the lock, after a fetch from the store that ended at `upto`
    /// (the last position it returned, or the position asked for if it
    /// returned none): write the fetched events, then the buffered ones after
    /// them, and join. If this node has not emitted up to `upto` yet, the
    /// socket is held back until it has. `None` when the buffer has moved
    /// past `upto` without holding what follows it (fetch again from there).
    #[allow(clippy::too_many_arguments)]
    pub fn rejoin_after_fetch(
        &self,
        room: RoomId,
        who: SocketRef,
        fetched: &[RoomEvent],
        upto: i64,
        send: impl Fn(&RoomEvent, Option<String>),
        join: impl FnOnce(),
    ) -> Option<usize> {
        let mut st = self.lock();
        let log = st.rooms.entry(room).or_default();
        let tail = if log.last < upto {
            log.held.push((who.conn, upto));
            Vec::new()
        } else {
            log.after(upto)?
        };
        let events = fetched.iter().chain(&tail);
        Some(self.replay(&mut st, room, who, events, upto, send, join))
    }

    /// Write `events` to `who` with their offsets, join, and record where
    /// the socket stands (`floor` if there were no events). Returns how many
    /// were written.
    #[allow(clippy::too_many_arguments)]
    fn replay<'e>(
        &self,
        st: &mut State,
        room: RoomId,
        who: SocketRef,
        events: impl IntoIterator<Item = &'e RoomEvent>,
        floor: i64,
        send: impl Fn(&RoomEvent, Option<String>),
        join: impl FnOnce(),
    ) -> usize {
        let (mut n, mut upto) = (0, floor);
        for e in events {
            let offset = self
                .recovery
                .then(|| st.offset(who.conn, Some((room, e.event_seq))))
                .flatten();
            send(e, offset);
            (n, upto) = (n + 1, e.event_seq);
        }
        join();
        if self.recovery {
            st.record(who, room, upto);
        }
        n
    }

    /// After a plain join whose client takes the room as of `upto` (from
    /// REST): skip the socket for this room's events up to `upto` that this
    /// node has not emitted yet.
    pub fn hold_back(&self, room: RoomId, who: SocketRef, upto: i64) {
        let mut st = self.lock();
        let log = st.rooms.entry(room).or_default();
        if log.last < upto {
            log.held.push((who.conn, upto));
        }
        if self.recovery {
            st.record(who, room, upto);
        }
    }

    /// `who` joined its user channel; returns its offset now (recovery on).
    pub fn user_joined(&self, who: SocketRef) -> Option<String> {
        if !self.recovery {
            return None;
        }
        let mut st = self.lock();
        st.joined(who).user_channel = true;
        st.offset(who.conn, None)
    }

    /// `conn` left `room`; returns its offset now (recovery on).
    pub fn left(&self, conn: ConnId, room: RoomId) -> Option<String> {
        if !self.recovery {
            return None;
        }
        let mut st = self.lock();
        if let Some(j) = st.sockets.get_mut(&conn) {
            j.rooms.retain(|(r, _)| *r != room);
        }
        st.offset(conn, None)
    }

    /// `who`'s offset now (recovery on, and it joined something).
    pub fn offset(&self, conn: ConnId) -> Option<String> {
        if !self.recovery {
            return None;
        }
        self.lock().offset(conn, None)
    }

    /// Every socket of `user` left `room` (removed from it).
    pub fn removed(&self, user: UserId, room: RoomId) {
        if !self.recovery {
            return;
        }
        for j in self.lock().sockets.values_mut() {
            if j.user == user {
                j.rooms.retain(|(r, _)| *r != room);
            }
        }
    }

    /// `conn` disconnected.
    pub fn forget(&self, conn: ConnId) {
        if self.recovery {
            self.lock().sockets.remove(&conn);
        }
    }
}

/// The store's page as far as a rejoin can use it: the events and the
/// position they end at, or `None` when it cannot recover the gap.
pub fn usable(page: &RoomEvents, since: i64) -> Option<(&[RoomEvent], i64)> {
    if !page.recovered || page.more {
        return None;
    }
    let upto = page.events.last().map_or(since, |e| e.event_seq);
    Some((&page.events, upto))
}

/// Fetches from the store per rejoin at most (the buffer may move on
/// between a fetch and the seam).
const REJOIN_ATTEMPTS: usize = 3;

/// Replay `room` after `since` to `conn` and join it, with no gap and no
/// duplicate at the seam: `(true, position reached)`, or `(false, the
/// room's latest position)` when the gap cannot be replayed (the socket
/// is joined anyway; the client reloads the room).
pub async fn rejoin(
    logs: &RoomLogs,
    membership: &dyn Membership,
    conn: &Conn,
    room: RoomId,
    since: i64,
) -> Result<(bool, i64), ErrorBody> {
    let who = SocketRef::of(conn);
    let send =
        |e: &RoomEvent, offset: Option<String>| conn.emit(e.kind.as_str(), &e.payload, offset);
    let join = || conn.join(room_channel(room));
    if let Seam::Joined(n) = logs.rejoin(room, who, since, send, join) {
        return Ok((true, since + n as i64));
    }
    let mut last = since;
    for _ in 0..REJOIN_ATTEMPTS {
        let page = membership
            .events(room, who.user, since, MAX_REPLAY)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "replay: reading the room's events failed");
                ErrorBody::new(ErrorCode::Internal, "internal error")
            })?;
        last = page.last_event_seq;
        let Some((fetched, upto)) = usable(&page, since) else {
            break;
        };
        if let Some(n) = logs.rejoin_after_fetch(room, who, fetched, upto, send, join) {
            return Ok((true, since + n as i64));
        }
    }
    conn.join(room_channel(room));
    logs.hold_back(room, who, last);
    Ok((false, last))
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
