//! The NATS JetStream bus backend: [`connect`] returns a [`Bus`] whose topics
//! are JetStream streams. It passes the shared conformance suite
//! ([`roomcast_bus::conformance`]) with redelivery.
//!
//! # Layout
//! - `lib.rs`: this design note and [`connect`].
//! - [`config`]: [`Config`], its defaults, and the names derived from topics.
//! - [`bus`]: [`NatsBus`]: connecting, publishing, health.
//! - `topology`: creating streams and consumers idempotently; the bounded,
//!   acked publish.
//! - [`subscription`]: reading a consumer into deliveries, dead-lettering,
//!   reopening after errors.
//! - [`pack`]: a run of one room's envelopes as few messages (one ack each),
//!   and reading them back.
//!
//! # Streams
//! One stream per topic, created (or reconciled) on first use by `publish` or
//! `subscribe`, named from the topic: `ROOMCAST_` + the topic upper-cased with
//! every character other than letters, digits, `-`, `_` turned into `_`
//! (`chat.out` → `ROOMCAST_CHAT_OUT`). Its subjects are the topic and its
//! dead-letter subject `<topic>.dlq`; a topic ending in `.dlq` lives in the
//! stream of the topic it belongs to. Each message is the envelope's JSON
//! ([`roomcast_core::Envelope::to_bytes`]) with the envelope id as
//! `Nats-Msg-Id`, so a re-publish of the same envelope (the outbox retrying
//! after a lost ack) within `duplicate_window_secs` is dropped by JetStream.
//! Streams are file-backed, limits-retention: a message stays until it is
//! older than `max_age_secs` or the stream holds more than `max_msgs`
//! messages (then the oldest goes, consumed or not), acked or not.
//!
//! Two topics that differ only in characters mapped to `_` (`a.b`, `a_b`)
//! would share a name; the second one is refused with an error rather than
//! merged. A topic must not be the prefix of another topic's `.dlq`.
//!
//! Several processes may create the same stream at once: an identical create
//! succeeds, and a stream that exists with other settings keeps its subjects
//! and storage and gets the configured limits.
//!
//! # Consumers
//! Every subscription reads a durable **pull** consumer, explicit ack, with
//! `ack_wait_ms` and `max_ack_pending`, filtered on the topic:
//! - `Mode::FanOut { node }`: consumer `fanout_<node>`, deliver policy *new*:
//!   everything published after the subscribe. A delivery not acked within
//!   `ack_wait_ms` is delivered again, at most `max_deliver` times in all. A
//!   consumer nobody pulls from for `inactive_threshold_secs` is deleted by
//!   the server, so nodes that went away leave nothing behind. A node that
//!   comes back before that resumes its consumer (gets what it missed).
//! - `Mode::Queue { group }`: consumer `queue_<group>`, shared by all members
//!   of the group, so each message goes to one member; deliver policy *all*,
//!   so commands published before the group first subscribed (within
//!   `max_age_secs`) are handled too. An unacked delivery is delivered again
//!   after `ack_wait_ms` to whichever member pulls. A message delivered
//!   `max_deliver` times without an ack is, at its next delivery, published to
//!   `<topic>.dlq` (with headers `Roomcast-Dead-Letter-Deliveries` and
//!   `Roomcast-Dead-Letter-Topic`, same payload) and acked. JetStream's own
//!   `max_deliver` is left unlimited for queue consumers, so a message whose
//!   dead-lettering failed (engine down) is retried, never stranded. Read the
//!   dead letters by subscribing to `<topic>.dlq`.
//! - A payload that is not an envelope is acked and skipped with a warning.
//!
//! # Limits and what happens at them
//! - Per stream: `max_msgs` messages and `max_age_secs` of age; beyond
//!   either, the oldest messages are dropped, consumed or not (a queue group
//!   down for longer than `max_age_secs` loses the older commands).
//! - Per consumer: `max_ack_pending` unacked deliveries; at the cap the
//!   server holds further messages back until acks arrive.
//! - Per subscription: at most `pull_batch` messages wait in the client; a
//!   slow application slows the pulls, the rest waits in the stream.
//! - Per connection: [`bus::CLIENT_CAPACITY`] outgoing commands; when full (an
//!   outage) publishes wait, bounded by `request_timeout_ms`. Each NATS
//!   subscription buffers [`bus::SUBSCRIPTION_CAPACITY`] messages, far above
//!   `pull_batch`; what async-nats would drop beyond it is redelivered.
//! - Every JetStream request (create, publish + ack) is bounded by
//!   `request_timeout_ms`; connecting by `connect_timeout_ms`.
//!
//! # Ordering
//! A stream has one order, the order in which JetStream accepted the
//! publishes. One consumer delivers in that order, so a fan-out subscription
//! sees one publisher's envelopes in publish order (each publish waits for its
//! ack), hence in order per room — except redeliveries, which come after
//! newer messages. A queue group keeps no order: members run in parallel.
//!
//! # Outages
//! - At start, [`connect`] fails with [`BusError::Unavailable`] naming the URL
//!   (`cannot connect to NATS at nats://…: <reason>`) when the server or its
//!   JetStream does not answer within `connect_timeout_ms`. No retry.
//! - Later, async-nats reconnects by itself (pauses up to 4 s). A publish
//!   during an outage fails within `request_timeout_ms`, so the outbox keeps
//!   its rows and retries. A publish that timed out may still reach the server
//!   after the reconnect; the outbox's retry of it is then dropped as a
//!   duplicate (same `Nats-Msg-Id`).
//! - Subscriptions survive an outage: the pull stream reports the missing
//!   heartbeats as one `Err(BusError::Unavailable)` per attempt, then the
//!   subscription re-creates stream and consumer if needed and pulls again
//!   from the consumer's position. Streams and durable consumers are on disk,
//!   so a server restart keeps everything acked-by-JetStream; deliveries that
//!   were in flight come again (at-least-once, drop duplicates by id).
//! - [`Bus::healthy`] is the client's connection state being `Connected`.
//!
//! # Example
//! ```no_run
//! # async fn example() -> Result<(), roomcast_bus::BusError> {
//! let bus = roomcast_bus_nats::connect(&roomcast_bus_nats::Config::default()).await?;
//! assert_eq!(bus.name(), "nats");
//! # Ok(())
//! # }
//! ```

pub mod bus;
pub mod config;
pub mod pack;
pub mod subscription;
mod topology;

use std::sync::Arc;

use roomcast_bus::{Bus, BusError};

pub use bus::NatsBus;
pub use config::Config;

/// Connect to NATS JetStream at `cfg.url`; see [`NatsBus::connect`].
pub async fn connect(cfg: &Config) -> Result<Arc<dyn Bus>, BusError> {
    let bus: Arc<dyn Bus> = NatsBus::connect(cfg).await?;
    Ok(bus)
}
