//! The outbox as the relay sees it: rows ([`OutboxItem`]), partitions
//! ([`Partitions`]), the backlog ([`OutboxBacklog`]), the store's wake-up
//! signal ([`OutboxSignal`]) and who relays which partition
//! ([`OutboxLease`]).
//!
//! # Partitions
//! Every outbox row carries the [`Encoded::ordering_hash`] of its envelope
//! (its room, else its user). Partition `p` of `n` holds the rows whose hash
//! is `p` modulo `n`, so all of a room's rows are in one partition, in id
//! order, which is the order they were stored in. The relay of a partition
//! publishes a room's rows one after the other and different rooms at once;
//! so a room's events reach the bus in `eventSeq` order, and nothing is
//! promised across rooms.
//!
//! The count is kept in the database (`settings.outbox_partitions`), written
//! by the first process that opens it ([`crate::StoreOptions`]), so every
//! process sharing the database partitions alike.
//!
//! # Leases
//! A process relays only the partitions its [`OutboxLease`] holds. On
//! SQLite the one process holds them all ([`LocalLease`]). On PostgreSQL
//! the partitions are spread over the live API processes and move when one
//! comes or goes (see [`crate::postgres::lease`]).

use std::sync::Arc;

use async_trait::async_trait;
use roomcast_core::Encoded;
use tokio::sync::Notify;

use crate::StoreError;

/// The partition count of a new database unless [`crate::StoreOptions`] says otherwise.
pub const DEFAULT_PARTITIONS: u32 = 16;

/// The largest partition count.
pub const MAX_PARTITIONS: u32 = 256;

/// One outbox row waiting to be published.
#[derive(Clone, Debug)]
pub struct OutboxItem {
    /// Row id; a partition's rows are published in id order.
    pub id: i64,
    /// Logical topic (`chat.out`, `chat.in`).
    pub topic: String,
    /// What to publish: the envelope's bytes as stored, published unchanged.
    pub envelope: Encoded,
}

/// Which outbox partitions a process relays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partitions {
    /// How many partitions the outbox has.
    pub count: u32,
    /// The ones held, ascending.
    pub owned: Vec<u32>,
}

impl Partitions {
    /// Every partition of `count`.
    pub fn all(count: u32) -> Self {
        Self {
            count,
            owned: (0..count).collect(),
        }
    }

    /// None of `count`.
    pub fn none(count: u32) -> Self {
        Self {
            count,
            owned: Vec::new(),
        }
    }

    /// Whether every partition is held.
    pub fn is_all(&self) -> bool {
        self.owned.len() as u32 == self.count
    }

    /// The partition of a row with ordering hash `hash`.
    pub fn of(&self, hash: i64) -> u32 {
        (hash.rem_euclid(i64::from(self.count.max(1)))) as u32
    }
}

/// How far the relay is behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// Rows waiting.
    pub rows: i64,
    /// Age of the oldest, milliseconds (0 when empty).
    pub oldest_age_ms: i64,
}

/// The store's wake-up signal: notified after every write that may have
/// queued outbox rows, so the relay starts at once. Owned by the store;
/// handlers never touch it.
#[derive(Debug, Default)]
pub struct OutboxSignal {
    notify: Notify,
}

impl OutboxSignal {
    /// A new signal.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Rows may have been written (a permit is kept if nobody waits).
    pub fn written(&self) {
        self.notify.notify_one();
    }

    /// Wait for the next [`OutboxSignal::written`] (or one kept from before).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

/// The partitions one process relays, for as long as it holds them.
///
/// Call [`OutboxLease::renew`] at least every [`OutboxLease::renew_every`]
/// and between relay passes only, never during one: a partition is given
/// up or taken there, so a pass never runs on a partition this process
/// does not hold.
#[async_trait]
pub trait OutboxLease: Send {
    /// The partitions held now.
    fn partitions(&self) -> &Partitions;
    /// How often [`OutboxLease::renew`] must run.
    fn renew_every(&self) -> std::time::Duration;
    /// Keep what is held, and take or give up partitions so that the live
    /// processes hold about the same number each. An error means the lease
    /// is lost: [`OutboxLease::partitions`] is then empty until a later
    /// renew succeeds.
    async fn renew(&mut self) -> Result<(), StoreError>;
    /// Wait until another process says it wrote outbox rows (never returns
    /// where there is no other process).
    async fn remote_write(&mut self);
    /// Tell the other processes' relays that this one wrote rows, for
    /// partitions they may hold.
    async fn announce(&mut self) -> Result<(), StoreError>;
    /// Give every partition up (at shutdown, after the last pass).
    async fn release(&mut self);
}

/// The lease of a store with one process: every partition, always.
#[derive(Debug)]
pub struct LocalLease {
    partitions: Partitions,
}

impl LocalLease {
    /// Every partition of `count`.
    pub fn new(count: u32) -> Self {
        Self {
            partitions: Partitions::all(count),
        }
    }
}

#[async_trait]
impl OutboxLease for LocalLease {
    fn partitions(&self) -> &Partitions {
        &self.partitions
    }

    fn renew_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(3600)
    }

    async fn renew(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn remote_write(&mut self) {
        std::future::pending::<()>().await;
    }

    async fn announce(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_every_hash() {
        let all = Partitions::all(16);
        assert!(all.is_all());
        assert_eq!(all.owned.len(), 16);
        assert!(!Partitions::none(16).is_all());
        assert_eq!(all.of(0), 0);
        assert_eq!(all.of(17), 1);
        assert_eq!(all.of(i64::from(i32::MAX)), (i32::MAX % 16) as u32);
    }
}
