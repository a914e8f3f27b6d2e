//! Packs: a run of envelopes of one ordering key ([`Bus::publish_run`])
//! published as few JetStream messages, each stored whole or not at all.
//!
//! # Why
//! A run's promise is that a later envelope is never stored without every
//! earlier one. One message per envelope keeps it only by waiting for each
//! ack before the next publish: a JetStream ack takes a round trip, so a
//! room's events reached the bus at one per round trip, and the outbox relay
//! fell behind the API (issue #15). Pipelining those messages would not keep
//! the promise: when the connection drops, async-nats discards what it had
//! not yet written and sends what was still queued on the new connection,
//! so a later envelope can be stored without an earlier one. A pack is one
//! message: one ack for up to [`Config::pack_max`] envelopes, and nothing
//! to reorder inside it.
//!
//! # Format
//! - A run of one envelope is published as today: the envelope's JSON, its
//!   id as `Nats-Msg-Id`.
//! - A longer run is cut into packs of at most `pack_max` envelopes and
//!   [`PACK_MAX_BYTES`]; a pack's payload is the JSON array of its
//!   envelopes, with header [`PACK_HEADER`] (the count) and `Nats-Msg-Id`
//!   `<first id>+<count>`, so the relay re-publishing the same pack after a
//!   lost ack is dropped by JetStream. Packs of a run go one after the
//!   other, each once the one before was acked.
//! - A subscription unpacks a pack into one delivery per envelope, in
//!   order; the message is acked once every one of them was (a pack with an
//!   unacked delivery comes back whole after `ack_wait`, and consumers drop
//!   the envelopes they had by id, as for any redelivery).
//!
//! A node of a version before packs reads a pack as a malformed envelope
//! and skips it: in a rolling upgrade, upgrade the realtime nodes (the
//! consumers) before the API nodes, or set `pack_max = 1` until all are.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_nats::jetstream;
use async_trait::async_trait;
use bytes::Bytes;
use roomcast_bus::{Acker, BusError, Delivery};
use roomcast_core::{Encoded, Envelope};

#[cfg(doc)]
use crate::config::Config;
#[cfg(doc)]
use roomcast_bus::Bus;

/// Header of a pack: how many envelopes its payload holds.
pub const PACK_HEADER: &str = "Roomcast-Pack";

/// Largest pack payload, in bytes (the NATS server refuses a message above
/// its `max_payload`, 1 MiB by default). An envelope larger than this on
/// its own goes alone, as a plain message.
pub const PACK_MAX_BYTES: usize = 512 * 1024;

/// One message to publish: how many envelopes of the run it carries, its
/// payload, and, for a pack, its message id (a plain envelope uses its own).
pub(crate) struct Part {
    /// Envelopes in this part.
    pub count: usize,
    /// The JSON payload: an envelope's stored bytes as they are, or a pack
    /// of them.
    pub payload: Bytes,
    /// `Some(<first id>+<count>)` for a pack; `None` for one envelope.
    pub pack_id: Option<String>,
}

/// Cut `run` into parts of at most `max` envelopes and [`PACK_MAX_BYTES`],
/// using each envelope's bytes as they are (nothing is encoded again).
pub(crate) fn parts(run: &[Encoded], max: usize) -> Vec<Part> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut i = 0;
    while i < run.len() {
        let mut count = 1;
        let mut bytes = run[i].bytes.len() + 2;
        while count < max && i + count < run.len() {
            let next = run[i + count].bytes.len();
            if bytes + next + 1 > PACK_MAX_BYTES {
                break;
            }
            bytes += next + 1;
            count += 1;
        }
        let part = if count == 1 {
            Part {
                count,
                payload: run[i].bytes.clone(),
                pack_id: None,
            }
        } else {
            let mut payload = Vec::with_capacity(bytes);
            payload.push(b'[');
            for (n, e) in run[i..i + count].iter().enumerate() {
                if n > 0 {
                    payload.push(b',');
                }
                payload.extend_from_slice(&e.bytes);
            }
            payload.push(b']');
            Part {
                count,
                payload: payload.into(),
                pack_id: Some(format!("{}+{count}", run[i].id)),
            }
        };
        out.push(part);
        i += count;
    }
    out
}

/// The envelopes of a pack's payload, in order.
pub(crate) fn unpack(payload: &[u8]) -> Result<Vec<Envelope>, serde_json::Error> {
    serde_json::from_slice(payload)
}

/// Whether `msg` is a pack (carries [`PACK_HEADER`]).
pub(crate) fn is_pack(msg: &jetstream::Message) -> bool {
    msg.headers
        .as_ref()
        .is_some_and(|h| h.get(PACK_HEADER).is_some())
}

/// One delivery per envelope of a pack, sharing the pack's message: the
/// last of them to be acked acks it.
pub(crate) fn deliveries(envelopes: Vec<Envelope>, msg: jetstream::Message) -> Vec<Delivery> {
    let shared = Arc::new(Shared {
        remaining: AtomicUsize::new(envelopes.len()),
        msg,
    });
    envelopes
        .into_iter()
        .map(|e| {
            let acker: Box<dyn Acker> = Box::new(PartAcker(shared.clone()));
            Delivery::new(e, Some(acker))
        })
        .collect()
}

struct Shared {
    /// Deliveries of the pack not acked yet.
    remaining: AtomicUsize,
    /// The pack's message.
    msg: jetstream::Message,
}

/// Acks one envelope of a pack; the pack's last ack acks its message.
struct PartAcker(Arc<Shared>);

#[async_trait]
impl Acker for PartAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        if self.0.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return Ok(());
        }
        self.0
            .msg
            .ack()
            .await
            .map_err(|e| BusError::Unavailable(format!("NATS ack failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_core::{Kind, RoomId};
    use serde_json::json;

    fn run(n: usize, body: usize) -> Vec<Envelope> {
        let room = RoomId::new();
        (0..n)
            .map(|i| {
                let payload = json!({ "n": i, "b": "x".repeat(body) });
                Envelope::to_room(Kind::parse("e"), room, payload)
            })
            .collect()
    }

    fn encoded(envs: &[Envelope]) -> Vec<Encoded> {
        envs.iter().map(Envelope::encode).collect()
    }

    #[test]
    fn a_run_is_cut_into_packs_that_read_back_in_order() {
        let envs = run(10, 10);
        let parts = parts(&encoded(&envs), 4);
        assert_eq!(parts.iter().map(|p| p.count).collect::<Vec<_>>(), [4, 4, 2]);
        let mut back = Vec::new();
        for p in &parts {
            assert!(
                p.pack_id
                    .as_deref()
                    .unwrap()
                    .ends_with(&format!("+{}", p.count))
            );
            back.extend(unpack(&p.payload).unwrap());
        }
        assert_eq!(back, envs);
    }

    #[test]
    fn one_envelope_goes_as_it_always_did() {
        let envs = encoded(&run(1, 10));
        let parts = parts(&envs, 64);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].pack_id.is_none());
        assert_eq!(
            parts[0].payload, envs[0].bytes,
            "the stored bytes, unchanged"
        );
        // pack_max 1: never a pack.
        assert!(
            super::parts(&encoded(&run(3, 1)), 1)
                .iter()
                .all(|p| p.pack_id.is_none())
        );
    }

    #[test]
    fn packs_stay_under_the_byte_cap() {
        // 200 KiB each: two fit in a pack, three do not; one bigger than the
        // cap goes alone.
        let mut envs = run(5, 200 * 1024);
        envs.insert(2, run(1, PACK_MAX_BYTES)[0].clone());
        let parts = parts(&encoded(&envs), 64);
        assert_eq!(
            parts.iter().map(|p| p.count).collect::<Vec<_>>(),
            [2, 1, 2, 1]
        );
        assert!(
            parts
                .iter()
                .all(|p| p.count == 1 || p.payload.len() <= PACK_MAX_BYTES)
        );
    }
}
