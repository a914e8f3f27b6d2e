//! Typing indicators: per-(user, room) state on this node, relayed to the
//! room through `chat.out` so sockets on every realtime node see them.
//!
//! Rules (`docs/protocol.md`, "Typing"):
//! - `typing:true` when the user was not typing in the room: relayed at once.
//! - `typing:true` while typing: accepted; relayed again only if the last
//!   relay is at least `typing_refresh` (1 s) old.
//! - The state ends `typing_timeout` (5 s) after the last `typing:true`: the
//!   gateway then relays `typing:false` itself.
//! - `typing:false` relays only if the user was typing.
//! - A socket's disconnect ends the states it last refreshed (relays false).
//!
//! Ordering: the decision and the publish for one (user, room) happen under
//! that pair's async lock (FIFO), so its `true`/`false` relays reach the bus
//! in the order they were decided; different pairs proceed in parallel.
//!
//! Bounds: each entry has at most one timer task, which lives until
//! `timeout` after the pair's last `typing:true` (it is not cancelled by an
//! earlier `typing:false`; a new typing period reuses it). An entry exists
//! while its timer lives or an operation on it is in flight, and is removed
//! when idle: at most the pairs that sent `typing:true` within the last
//! `timeout`, which the per-socket rate limit bounds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomcast_bus::BusError;
use roomcast_core::{RoomId, UserId};
use tokio::time::Instant;

use crate::publish::Publisher;
use crate::transport::ConnId;

/// What a typing event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Relayed to the room.
    Relayed,
    /// A refresh within `typing_refresh` of the last relay: state kept fresh,
    /// nothing relayed.
    Suppressed,
    /// `typing:false` from a user who was not typing: nothing to do.
    Unchanged,
}

type Key = (UserId, RoomId);

struct State {
    typing: bool,
    /// The socket that sent the latest `typing:true`.
    owner: Option<ConnId>,
    last_true: Instant,
    last_relay: Instant,
    /// The pair's timer task is alive (it holds a clone of the slot).
    timer: bool,
}

struct Slot {
    state: tokio::sync::Mutex<State>,
}

/// The typing states of this node.
pub struct TypingRelay {
    timeout: Duration,
    refresh: Duration,
    publisher: Publisher,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
}

impl TypingRelay {
    /// States expiring after `timeout`, refreshes relayed at most every
    /// `refresh`, relays published with `publisher`.
    pub fn new(timeout: Duration, refresh: Duration, publisher: Publisher) -> Arc<Self> {
        Arc::new(Self {
            timeout,
            refresh,
            publisher,
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// Apply `typing` from socket `conn` of `user` in `room` (already checked:
    /// a member, within the rate limit). An error means the relay could not be
    /// published and the state is as before.
    pub async fn set(
        self: &Arc<Self>,
        conn: ConnId,
        user: UserId,
        room: RoomId,
        typing: bool,
    ) -> Result<Outcome, BusError> {
        let key = (user, room);
        let slot = self.slot(key);
        let outcome = {
            let mut st = slot.state.lock().await;
            if typing {
                self.start(&mut st, &slot, key, conn).await
            } else if st.typing {
                self.publisher.typing(room, user, false).await?;
                stop(&mut st);
                Ok(Outcome::Relayed)
            } else {
                Ok(Outcome::Unchanged)
            }
        };
        self.release(key, slot);
        outcome
    }

    /// Socket `conn` of `user` is gone: end the states it last refreshed,
    /// in the background (one short task per state of `user` on this node).
    pub fn disconnected(self: &Arc<Self>, conn: ConnId, user: UserId) {
        // The transport may report a disconnect from a drop outside the
        // runtime; the states then simply expire.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mine: Vec<(Key, Arc<Slot>)> = self
            .lock()
            .iter()
            .filter(|((u, _), _)| *u == user)
            .map(|(k, s)| (*k, s.clone()))
            .collect();
        for (key, slot) in mine {
            let this = self.clone();
            runtime.spawn(async move {
                {
                    let mut st = slot.state.lock().await;
                    if st.typing && st.owner == Some(conn) {
                        if let Err(e) = this.publisher.typing(key.1, key.0, false).await {
                            tracing::warn!(error = %e, "could not relay typing:false for a closed socket");
                        }
                        stop(&mut st);
                    }
                }
                this.release(key, slot);
            });
        }
    }

    /// (user, room) pairs with an entry (typing, or an operation in flight).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// No entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn start(
        self: &Arc<Self>,
        st: &mut State,
        slot: &Arc<Slot>,
        key: Key,
        conn: ConnId,
    ) -> Result<Outcome, BusError> {
        let now = Instant::now();
        if st.typing && now.saturating_duration_since(st.last_relay) < self.refresh {
            st.last_true = now;
            st.owner = Some(conn);
            return Ok(Outcome::Suppressed);
        }
        self.publisher.typing(key.1, key.0, true).await?;
        st.last_true = now;
        st.last_relay = now;
        st.owner = Some(conn);
        st.typing = true;
        if !st.timer {
            st.timer = true;
            tokio::spawn(self.clone().expire(key, slot.clone()));
        }
        Ok(Outcome::Relayed)
    }

    /// The pair's one timer: relays `typing:false` once `timeout` has passed
    /// since the last `typing:true`, and exits once the pair is not typing.
    async fn expire(self: Arc<Self>, key: Key, slot: Arc<Slot>) {
        let mut deadline = Instant::now() + self.timeout;
        loop {
            tokio::time::sleep_until(deadline).await;
            let mut st = slot.state.lock().await;
            if st.typing {
                deadline = st.last_true + self.timeout;
                if Instant::now() < deadline {
                    continue;
                }
                if let Err(e) = self.publisher.typing(key.1, key.0, false).await {
                    tracing::warn!(error = %e, "could not relay typing:false on expiry");
                }
                stop(&mut st);
            }
            st.timer = false;
            break;
        }
        self.release(key, slot);
    }

    /// The slot for `key`, made if missing. Clones are only taken here, under
    /// the map lock, which makes the idle check in `release` exact.
    fn slot(&self, key: Key) -> Arc<Slot> {
        self.lock()
            .entry(key)
            .or_insert_with(|| {
                let now = Instant::now();
                Arc::new(Slot {
                    state: tokio::sync::Mutex::new(State {
                        typing: false,
                        owner: None,
                        last_true: now,
                        last_relay: now,
                        timer: false,
                    }),
                })
            })
            .clone()
    }

    /// Done with `slot`: remove it from the map if nobody else holds it and
    /// it is not typing.
    fn release(&self, key: Key, slot: Arc<Slot>) {
        let mut slots = self.lock();
        let idle =
            Arc::strong_count(&slot) == 2 && slot.state.try_lock().is_ok_and(|st| !st.typing);
        if idle && slots.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
            slots.remove(&key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Slot>>> {
        self.slots.lock().expect("typing lock")
    }
}

/// End a typing period (its timer exits at its next wake-up).
fn stop(st: &mut State) {
    st.typing = false;
    st.owner = None;
}

#[cfg(test)]
#[path = "typing_tests.rs"]
mod tests;
