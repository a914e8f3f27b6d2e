//! The Redis Streams bus backend: [`connect`] returns a [`Bus`] whose topics
//! are Redis streams. It passes the shared conformance suite
//! ([`roomcast_bus::conformance`]) with redelivery.
//!
//! # Layout
//! - `lib.rs`: this design note and [`connect`].
//! - [`config`]: [`Config`], its defaults and derived values.
//! - [`bus`]: [`RedisBus`]: publish, subscribe, health; the shared connection.
//! - [`reader`]: what every subscription's reader task shares (own
//!   connection, reconnect, outage reporting, bounded channel).
//! - [`fanout`]: `Mode::FanOut` readers (`XREAD`).
//! - [`queue`]: `Mode::Queue` members (consumer groups, `XAUTOCLAIM`).
//! - [`entries`]: decoding stream replies, tolerating malformed entries.
//!
//! # Keys
//! A topic is the stream `<key_prefix><topic>` (default prefix `roomcast:`,
//! so `roomcast:chat.out`, `roomcast:chat.in`). Each entry has one field,
//! `envelope`, holding the envelope's JSON as it was stored ([`roomcast_core::Encoded`]).
//! Publishing is `XADD <key> MAXLEN ~ <max_len> * envelope <json>`: the
//! stream keeps roughly the newest `max_len` entries (Redis trims whole
//! macro-nodes, so a few more may stay). Nothing else is stored: no key per
//! subscriber, no key per room.
//!
//! # Modes
//! - `Mode::FanOut { node }`: every subscription follows the stream itself
//!   with `XREAD BLOCK` from its last id, starting after the newest entry at
//!   subscribe time. Acks are no-ops. See [`fanout`].
//! - `Mode::Queue { group }`: a consumer group named `<group>` on the stream;
//!   each subscription is a consumer with a unique name reading
//!   `XREADGROUP … >`; ack is `XACK`; entries left unacked longer than
//!   `claim_idle_ms` are claimed by a live member (`XAUTOCLAIM`) and delivered
//!   again. See [`queue`].
//! - A malformed entry (no `envelope` field, not an envelope) is never
//!   delivered: it is skipped with a warning, and acked in a group.
//!
//! # Ordering
//! A stream has one total order, the order in which Redis accepted the
//! `XADD`s, so envelopes published in order by one publisher arrive in that
//! order at every fan-out subscription, hence in order per room. In a queue
//! group each member sees its share in stream order, but members run in
//! parallel and redeliveries arrive late: a group keeps no order.
//!
//! # Connections and limits
//! - One shared, automatically reconnecting connection carries every short
//!   command (`XADD`, `XACK`, group creation, `PING`); each is bounded by
//!   `command_timeout_ms`.
//! - Each subscription has its **own** connection for its blocking reads
//!   (`BLOCK block_ms`), so a blocking read never stalls publishes. That is one
//!   Redis client per subscription: a node has few subscriptions (one per
//!   topic), not one per socket.
//! - Deliveries wait in a bounded channel per subscription
//!   ([`fanout::CAPACITY`], [`queue::CAPACITY`]); when it is full the reader
//!   stops reading and the entries wait in Redis. A fan-out subscriber that
//!   falls further behind than `max_len` entries misses the trimmed ones; the
//!   zero-loss work detects such gaps by per-room sequence numbers.
//!
//! # Outages
//! - At start, [`connect`] fails fast with [`BusError::Unavailable`] naming
//!   the URL (password hidden) when Redis does not answer within
//!   `connect_timeout_ms + command_timeout_ms`.
//! - Later, the shared connection reconnects in the background. A publish
//!   during an outage fails within `command_timeout_ms` with
//!   [`BusError::Unavailable`], so the outbox keeps its rows and retries; once
//!   Redis is back, publishes succeed again (the first one may still fail
//!   while the reconnect completes).
//! - Existing subscriptions survive an outage: their readers reconnect on
//!   their own (pauses from 50 ms up to 1 s) and continue where they were,
//!   after putting one `Err(BusError::Unavailable)` on the subscription. A
//!   fan-out reader resumes after its last id; a queue member resumes in its
//!   group, recreating the group if Redis lost it.
//! - What survives a Redis restart is what Redis persisted (AOF/RDB). Entries
//!   published and lost with Redis are still in the publishers' outbox only
//!   if the publish had failed; an acknowledged `XADD` that Redis then lost
//!   is gone, which is why production Redis for this bus runs with
//!   `appendonly yes`.
//! - [`Bus::healthy`] is a `PING` answered within [`bus::HEALTH_TIMEOUT`].
//!
//! # Example
//! ```no_run
//! # async fn example() -> Result<(), roomcast_bus::BusError> {
//! use roomcast_bus::Mode;
//! use roomcast_bus_redis::{Config, connect};
//! use roomcast_core::{Envelope, Kind, RoomId};
//!
//! let bus = connect(&Config::default()).await?;
//! let mut api = bus
//!     .subscribe("chat.in", Mode::Queue { group: "api".into() })
//!     .await?;
//! let env = Envelope::to_room(Kind::SendMessage, RoomId::new(), serde_json::json!({}));
//! bus.publish("chat.in", &env.encode()).await?;
//! if let Some(Ok(delivery)) = api.next().await {
//!     // handle delivery.envelope, then:
//!     delivery.ack().await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Not done here
//! - Gap detection for fan-out subscribers that fell behind (per-room
//!   sequence numbers, the zero-loss work).
//! - Dead-lettering: an entry whose handling crashes every consumer is
//!   claimed and redelivered again and again (its delivery count grows in
//!   `XPENDING`); consumers must ack what they cannot handle.
//! - Redis Cluster and Sentinel: one Redis URL only.

pub mod bus;
pub mod config;
pub mod entries;
pub mod fanout;
pub mod queue;
pub mod reader;

use std::sync::Arc;

use roomcast_bus::{Bus, BusError};

pub use bus::RedisBus;
pub use config::Config;

/// Connect to Redis as configured. Fails fast with [`BusError::Unavailable`]
/// (naming the URL) if Redis is unreachable now; reconnects by itself later.
pub async fn connect(cfg: &Config) -> Result<Arc<dyn Bus>, BusError> {
    Ok(Arc::new(RedisBus::connect(cfg).await?))
}
