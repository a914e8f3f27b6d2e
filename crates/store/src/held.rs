//! The outbox held in memory: `roomcast serve`'s, whose bus is in the same
//! process ([`OutboxStorage::Memory`](crate::OutboxStorage::Memory)).
//!
//! # Why it is safe there
//! The outbox table exists so that an event committed with its change
//! reaches a bus that lives longer than the process, or that is down now.
//! In `serve` the bus is the process: if it dies, every socket dies with
//! it, and what the clients missed comes back from what *is* stored with
//! the change in the same transaction: the room event log (a reconnecting
//! client is recovered or replays with `sinceEventSeq`) and the rows
//! themselves (a recovered client gets its room list afresh). The rows of
//! the table cost a post two inserts, a read, a JSON parse and two deletes
//! (about a fifth of serve's CPU per post, measured); held in memory they
//! cost two clones.
//!
//! # How
//! The writer thread's connection collects the events that a piece of work
//! queues ([`Pending`]); a piece that fails drops its own, a batch that
//! fails drops them all, and after a batch commits they are appended here,
//! in commit order, before any caller of the batch is answered. The relay
//! claims and deletes them through the same [`Store`](crate::Store) calls
//! as table rows, so its order and retry rules are unchanged.
//!
//! # Bound
//! At most [`HELD_MAX`] events wait. When that many do, the writer thread
//! waits for the relay to take some before it appends, so writes slow down
//! and nothing is dropped. (The in-process bus accepts at once, so the
//! relay falls behind only when the process is short of CPU.)

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use roomcast_core::{Encoded, now_ms};

use crate::outbox::{OutboxBacklog, OutboxItem, Partitions};

/// Events held at most before the writer waits for the relay.
pub const HELD_MAX: usize = 65_536;

/// The events committed and not yet published.
#[derive(Debug)]
pub struct HeldOutbox {
    inner: Mutex<Inner>,
    space: Condvar,
    max: usize,
}

#[derive(Debug)]
struct Inner {
    next_id: i64,
    rows: VecDeque<Held>,
}

#[derive(Debug)]
struct Held {
    id: i64,
    topic: String,
    /// `None` once claimed: handed over, not copied.
    envelope: Option<Encoded>,
    created_ms: i64,
    okey: i64,
}

impl HeldOutbox {
    /// An empty outbox holding at most `max` events before appends wait.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                next_id: 1,
                rows: VecDeque::new(),
            }),
            space: Condvar::new(),
            max: max.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append `events` (topic, envelope), committed in this order. Waits
    /// (blocking the thread: only the writer thread and the store's opening
    /// call this) while the outbox is full.
    pub fn append(&self, events: Vec<(String, Encoded)>) {
        if events.is_empty() {
            return;
        }
        let mut inner = self.lock();
        while inner.rows.len() >= self.max {
            inner = self.space.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
        let now = now_ms();
        for (topic, envelope) in events {
            let id = inner.next_id;
            inner.next_id += 1;
            let okey = envelope.ordering_hash();
            inner.rows.push_back(Held {
                id,
                topic,
                envelope: Some(envelope),
                created_ms: now,
                okey,
            });
        }
    }

    /// The oldest `limit` events of `parts`, in order, handed over (moved,
    /// not copied); each stays counted in the backlog until
    /// [`HeldOutbox::done`]. Unlike a table row, a claimed event is not
    /// claimed again: the in-process bus accepts whatever it is given, so
    /// the relay marks every claimed event done. One claimed earlier and
    /// never marked done (a relay stopped between the two) is dropped here
    /// with an error logged: its clients recover it from the room event log
    /// when they reconnect.
    pub fn claim(&self, parts: &Partitions, limit: i64) -> Vec<OutboxItem> {
        let limit = usize::try_from(limit).unwrap_or(0);
        let mut inner = self.lock();
        let mut out = Vec::new();
        let mut lost = 0;
        for h in inner.rows.iter_mut() {
            if out.len() >= limit {
                break;
            }
            if !parts.owned.contains(&parts.of(h.okey)) {
                continue;
            }
            match h.envelope.take() {
                Some(envelope) => out.push(OutboxItem {
                    id: h.id,
                    topic: std::mem::take(&mut h.topic),
                    envelope,
                }),
                None => lost += 1,
            }
        }
        if lost > 0 {
            tracing::error!(
                events = lost,
                "held outbox: events claimed before were never marked done; dropped"
            );
            inner
                .rows
                .retain(|h| h.envelope.is_some() || out.iter().any(|i| i.id == h.id));
        }
        out
    }

    /// Drop the events `ids` (published).
    pub fn done(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        inner.rows.retain(|h| sorted.binary_search(&h.id).is_err());
        drop(inner);
        self.space.notify_all();
    }

    /// How many wait, and how old the oldest is.
    pub fn backlog(&self) -> OutboxBacklog {
        let inner = self.lock();
        OutboxBacklog {
            rows: inner.rows.len() as i64,
            oldest_age_ms: inner
                .rows
                .front()
                .map_or(0, |h| (now_ms() - h.created_ms).max(0)),
        }
    }
}

/// The events the pieces of the writer's current batch queued, kept until
/// the batch's fate is known.
#[derive(Debug)]
pub struct Pending {
    outbox: Arc<HeldOutbox>,
    events: Vec<(String, Encoded)>,
}

impl Pending {
    /// Collect for `outbox`.
    pub fn new(outbox: Arc<HeldOutbox>) -> Self {
        Self {
            outbox,
            events: Vec::new(),
        }
    }

    /// Queue `envelope` on `topic` (the current piece of work).
    pub fn push(&mut self, topic: &str, envelope: Encoded) {
        self.events.push((topic.to_owned(), envelope));
    }

    /// Where the next piece of work starts.
    pub fn mark(&self) -> usize {
        self.events.len()
    }

    /// Drop what was queued since `mark` (the piece failed).
    pub fn undo(&mut self, mark: usize) {
        self.events.truncate(mark);
    }

    /// The batch committed (`true`: hand its events to the outbox) or
    /// failed (drop them).
    pub fn settle(&mut self, committed: bool) {
        let events = std::mem::take(&mut self.events);
        if committed {
            self.outbox.append(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_core::{Envelope, Kind, RoomId};
    use serde_json::json;

    fn env(room: RoomId, n: i64) -> (String, Encoded) {
        let env = Envelope::to_room(Kind::ReceiveMessage, room, json!({ "n": n }));
        ("chat.out".into(), env.encode())
    }

    fn n(item: &OutboxItem) -> serde_json::Value {
        item.envelope.decode().unwrap().payload_value()["n"].clone()
    }

    #[test]
    fn claimed_events_are_handed_over_in_order_and_counted_until_done() {
        let held = HeldOutbox::new(10);
        let room = RoomId::new();
        held.append((0..3).map(|n| env(room, n)).collect());
        let all = Partitions::all(16);
        let first = held.claim(&all, 2);
        assert_eq!(first.iter().map(|i| i.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(held.backlog().rows, 3, "claimed events wait until done");
        held.done(&[1, 2]);
        let rest = held.claim(&all, 10);
        assert_eq!(rest.iter().map(|i| i.id).collect::<Vec<_>>(), [3]);
        assert_eq!(n(&rest[0]), 2);
        assert_eq!(held.backlog().rows, 1);
        held.done(&[3]);
        assert_eq!(held.backlog(), OutboxBacklog::default());
    }

    #[test]
    fn a_failed_piece_or_batch_hands_nothing_over() {
        let held = HeldOutbox::new(10);
        let room = RoomId::new();
        let mut pending = Pending::new(held.clone());
        pending.push("chat.out", env(room, 0).1);
        let mark = pending.mark();
        pending.push("chat.out", env(room, 1).1);
        pending.undo(mark); // the second piece failed
        pending.settle(true);
        assert_eq!(held.backlog().rows, 1);
        pending.push("chat.out", env(room, 2).1);
        pending.settle(false); // the batch failed
        assert_eq!(held.backlog().rows, 1);
    }

    #[test]
    fn a_full_outbox_makes_the_writer_wait_for_the_relay() {
        let held = HeldOutbox::new(2);
        let room = RoomId::new();
        held.append(vec![env(room, 0), env(room, 1)]);
        let writer = {
            let held = held.clone();
            std::thread::spawn(move || held.append(vec![env(room, 2)]))
        };
        // The relay publishes the first two; the writer then appends.
        let ids: Vec<i64> = held
            .claim(&Partitions::all(1), 2)
            .iter()
            .map(|i| i.id)
            .collect();
        held.done(&ids);
        writer.join().unwrap();
        let left = held.claim(&Partitions::all(1), 10);
        assert_eq!(left.len(), 1);
        assert_eq!(n(&left[0]), 2);
    }
}
