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
//! shared with nothing; about 0.5 KiB each for a chat message), for rooms
//! that had events since the node started. Rooms are not evicted yet.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use roomcast_core::{RoomEvent, RoomEvents, RoomId};

use crate::transport::ConnId;

/// Longest gap replayed on one rejoin; a client further behind reloads.
pub const MAX_REPLAY: i64 = 1000;

/// A room's recent logged events on this node.
#[derive(Default)]
struct RoomLog {
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

/// Every room's log on this node.
pub struct RoomLogs {
    rooms: Mutex<HashMap<RoomId, RoomLog>>,
    capacity: usize,
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
    /// Buffers of `capacity` events per room (at least 1).
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            rooms: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, RoomLog>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record and emit one logged event of `room` with `emit` (the event,
    /// and the sockets to skip: those held back past it), unless this node
    /// already emitted it. Events arrive in `eventSeq` order per room (the
    /// bus keeps per-room order); after a gap (events this node never saw,
    /// e.g. published before it subscribed) the buffer restarts.
    pub fn emit(&self, room: RoomId, event: RoomEvent, emit: impl FnOnce(&RoomEvent, &[ConnId])) {
        let mut rooms = self.lock();
        let log = rooms.entry(room).or_default();
        if event.event_seq <= log.last {
            return;
        }
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
        emit(&event, &skip);
        log.held.retain(|(_, upto)| *upto > seq);
        log.last = seq;
        log.recent.push_back(event);
        while log.recent.len() > self.capacity {
            log.recent.pop_front();
        }
    }

    /// The highest `eventSeq` emitted to `room` here (0: none yet).
    pub fn last(&self, room: RoomId) -> i64 {
        self.lock().get(&room).map_or(0, |l| l.last)
    }

    /// Under the lock: if the buffer holds everything after `since`, write
    /// it with `send` and `join` the socket; else leave the socket alone.
    pub fn rejoin(
        &self,
        room: RoomId,
        since: i64,
        send: impl Fn(&RoomEvent),
        join: impl FnOnce(),
    ) -> Seam {
        let rooms = self.lock();
        let Some(events) = rooms.get(&room).and_then(|l| l.after(since)) else {
            return Seam::Fetch;
        };
        for e in &events {
            send(e);
        }
        join();
        Seam::Joined(events.len())
    }

    /// Under the lock, after a fetch from the store that ended at `upto`
    /// (the last position it returned, or the position asked for if it
    /// returned none): write the fetched events, then the buffered ones after
    /// them, and join. If this node has not emitted up to `upto` yet, the
    /// socket is held back until it has. `None` when the buffer has moved
    /// past `upto` without holding what follows it (fetch again from there).
    pub fn rejoin_after_fetch(
        &self,
        room: RoomId,
        conn: ConnId,
        fetched: &[RoomEvent],
        upto: i64,
        send: impl Fn(&RoomEvent),
        join: impl FnOnce(),
    ) -> Option<usize> {
        let mut rooms = self.lock();
        let log = rooms.entry(room).or_default();
        let tail = if log.last < upto {
            log.held.push((conn, upto));
            Vec::new()
        } else {
            log.after(upto)?
        };
        for e in fetched.iter().chain(&tail) {
            send(e);
        }
        join();
        Some(fetched.len() + tail.len())
    }

    /// After a plain join whose client takes the room as of `upto` (from
    /// REST): skip the socket for this room's events up to `upto` that this
    /// node has not emitted yet.
    pub fn hold_back(&self, room: RoomId, conn: ConnId, upto: i64) {
        let mut rooms = self.lock();
        let log = rooms.entry(room).or_default();
        if log.last < upto {
            log.held.push((conn, upto));
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use serde_json::json;

    use super::*;

    fn ev(seq: i64) -> RoomEvent {
        RoomEvent {
            event_seq: seq,
            kind: "receiveMessage".into(),
            payload: json!({ "eventSeq": seq }),
        }
    }

    fn seqs(v: &StdMutex<Vec<i64>>) -> Vec<i64> {
        v.lock().unwrap().clone()
    }

    #[test]
    fn emits_each_event_once_and_keeps_the_latest() {
        let logs = RoomLogs::new(3);
        let room = RoomId::new();
        let out = StdMutex::new(Vec::new());
        for s in [1, 2, 2, 1, 3, 4, 5] {
            logs.emit(room, ev(s), |e, _| out.lock().unwrap().push(e.event_seq));
        }
        assert_eq!(seqs(&out), [1, 2, 3, 4, 5], "redeliveries are dropped");
        assert_eq!(logs.last(room), 5);
        let got = StdMutex::new(Vec::new());
        let joined = StdMutex::new(false);
        let send = |e: &RoomEvent| got.lock().unwrap().push(e.event_seq);
        assert!(matches!(
            logs.rejoin(room, 2, send, || *joined.lock().unwrap() = true),
            Seam::Joined(3)
        ));
        assert_eq!((seqs(&got), *joined.lock().unwrap()), (vec![3, 4, 5], true));
        assert!(matches!(
            logs.rejoin(room, 5, |_| {}, || {}),
            Seam::Joined(0)
        ));
        assert!(
            matches!(logs.rejoin(room, 1, |_| {}, || {}), Seam::Fetch),
            "3..5 only"
        );
        assert!(
            matches!(logs.rejoin(room, 9, |_| {}, || {}), Seam::Fetch),
            "ahead"
        );
        assert!(matches!(
            logs.rejoin(RoomId::new(), 0, |_| {}, || {}),
            Seam::Fetch
        ));
    }

    #[test]
    fn a_gap_restarts_the_buffer() {
        let logs = RoomLogs::new(10);
        let room = RoomId::new();
        for s in [1, 2, 5, 6] {
            logs.emit(room, ev(s), |_, _| {});
        }
        assert!(matches!(logs.rejoin(room, 3, |_| {}, || {}), Seam::Fetch));
        assert!(matches!(
            logs.rejoin(room, 4, |_| {}, || {}),
            Seam::Joined(2)
        ));
    }

    #[test]
    fn a_fetch_is_continued_from_the_buffer() {
        let logs = RoomLogs::new(2);
        let room = RoomId::new();
        for s in 1..=6 {
            logs.emit(room, ev(s), |_, _| {});
        }
        let got = StdMutex::new(Vec::new());
        let send = |e: &RoomEvent| got.lock().unwrap().push(e.event_seq);
        let fetched = [ev(2), ev(3), ev(4)];
        let conn = ConnId(1);
        assert_eq!(
            logs.rejoin_after_fetch(room, conn, &fetched, 4, send, || {}),
            Some(5)
        );
        assert_eq!(seqs(&got), [2, 3, 4, 5, 6]);
        assert_eq!(
            logs.rejoin_after_fetch(room, conn, &[ev(2)], 2, |_| {}, || {}),
            None,
            "the buffer moved past 2"
        );
    }

    #[test]
    fn a_socket_ahead_of_this_node_is_skipped_until_the_node_catches_up() {
        let logs = RoomLogs::new(4);
        let room = RoomId::new();
        let (ahead, plain) = (ConnId(1), ConnId(2));
        logs.emit(room, ev(1), |_, _| {});
        // The store had 1..=3; this node has emitted 1 only.
        assert_eq!(
            logs.rejoin_after_fetch(room, ahead, &[ev(2), ev(3)], 3, |_| {}, || {}),
            Some(2)
        );
        logs.hold_back(room, plain, 2);
        logs.hold_back(room, plain, 1);
        let skipped = StdMutex::new(Vec::new());
        for s in 2..=4 {
            logs.emit(room, ev(s), |e, skip| {
                skipped.lock().unwrap().push((e.event_seq, skip.to_vec()))
            });
        }
        assert_eq!(
            *skipped.lock().unwrap(),
            [(2, vec![ahead, plain]), (3, vec![ahead]), (4, vec![])]
        );
    }
}
