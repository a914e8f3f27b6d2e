//! Test helpers: an in-process bus that can be told to fail, a way to read
//! what was published without waiting (so paused-clock tests never advance
//! time by accident), and a membership oracle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::FutureExt;
use roomcast_bus::{Bus, BusError, MemoryBus, Mode, Subscription, Topics};
use roomcast_core::RoomAccess;
use roomcast_core::{Encoded, Envelope, RoomId, UserId};

use crate::membership::{Membership, MembershipError};
use crate::publish::Publisher;

/// A [`MemoryBus`] whose publishes fail while `fail` is set.
#[derive(Default)]
pub struct FlakyBus {
    inner: MemoryBus,
    /// Make every publish fail.
    pub fail: AtomicBool,
    /// Make every publish wait forever.
    pub hang: AtomicBool,
}

#[async_trait]
impl Bus for FlakyBus {
    fn name(&self) -> &'static str {
        "flaky-memory"
    }
    async fn publish(&self, topic: &str, envelope: &Encoded) -> Result<(), BusError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable("test says no".into()));
        }
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.publish(topic, envelope).await
    }
    async fn subscribe(&self, topic: &str, mode: Mode) -> Result<Subscription, BusError> {
        self.inner.subscribe(topic, mode).await
    }
    async fn healthy(&self) -> bool {
        !self.fail.load(Ordering::SeqCst)
    }
}

/// A bus, a publisher on it, and subscriptions to both topics.
pub struct Wire {
    /// The bus.
    pub bus: Arc<FlakyBus>,
    /// Publishes on `bus` with the default topic names.
    pub publisher: Publisher,
    /// Everything published to `chat.in`.
    pub chat_in: Subscription,
    /// Everything published to `chat.out`.
    pub chat_out: Subscription,
}

impl Wire {
    /// A fresh bus with both topics observed.
    pub async fn new() -> Self {
        let bus = Arc::new(FlakyBus::default());
        let topics = Topics::default();
        let chat_in = bus
            .subscribe(&topics.chat_in, Mode::FanOut { node: "obs".into() })
            .await
            .unwrap();
        let chat_out = bus
            .subscribe(&topics.chat_out, Mode::FanOut { node: "obs".into() })
            .await
            .unwrap();
        Self {
            publisher: Publisher::new(bus.clone(), topics),
            bus,
            chat_in,
            chat_out,
        }
    }

    /// Make publishes fail (`true`) or succeed again.
    pub fn fail(&self, fail: bool) {
        self.bus.fail.store(fail, Ordering::SeqCst);
    }
}

/// The envelopes already delivered to `sub`, without waiting for more.
pub fn drain(sub: &mut Subscription) -> Vec<Envelope> {
    let mut out = Vec::new();
    while let Some(Some(Ok(d))) = sub.next().now_or_never() {
        out.push(d.envelope);
    }
    out
}

/// Membership from a table: (room, user) pairs listed are members, rooms
/// listed are rooms; counts the questions.
#[derive(Default)]
pub struct Table {
    /// Members.
    pub members: Mutex<HashMap<(RoomId, UserId), i64>>,
    /// Rooms with no (listed) member.
    pub rooms: Mutex<Vec<RoomId>>,
    /// Questions asked.
    pub asked: AtomicUsize,
    /// Answer every question with an error.
    pub broken: AtomicBool,
}

impl Table {
    /// `user` is a member of `room`.
    pub fn add(&self, room: RoomId, user: UserId) {
        self.members.lock().unwrap().insert((room, user), 0);
    }
    /// `user` is no longer a member of `room` (which still exists).
    pub fn remove(&self, room: RoomId, user: UserId) {
        self.members.lock().unwrap().remove(&(room, user));
        self.rooms.lock().unwrap().push(room);
    }
}

#[async_trait]
impl Membership for Table {
    async fn access(&self, room: RoomId, user: UserId) -> Result<RoomAccess, MembershipError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if self.broken.load(Ordering::SeqCst) {
            return Err(MembershipError("store down".into()));
        }
        if let Some(seq) = self.members.lock().unwrap().get(&(room, user)) {
            return Ok(RoomAccess::Member {
                last_seq: *seq,
                last_event_seq: 0,
            });
        }
        let room_exists = self.rooms.lock().unwrap().contains(&room)
            || self.members.lock().unwrap().keys().any(|(r, _)| *r == room);
        Ok(if room_exists {
            RoomAccess::NotMember
        } else {
            RoomAccess::NoRoom
        })
    }
}
