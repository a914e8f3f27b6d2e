//! Publishing: how an envelope's bytes ([`Encoded`]) become a Pub/Sub message (data,
//! attributes, ordering key), and the one bounded publish call.
//!
//! Each publish is one `Publish` RPC (`publish_immediately`), awaited until
//! Pub/Sub returns the message id. The client's batching publisher is not
//! used: it queues messages in unbounded channels and wakes its workers every
//! flush interval, and roomcast's publishers (the outbox relay) send one
//! envelope at a time anyway, waiting for each before the next — which is also
//! what keeps a room's envelopes in order (Pub/Sub orders messages of one
//! ordering key in the order it receives them).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use gcloud_pubsub::client::Client;
use gcloud_pubsub::publisher::{Publisher, PublisherConfig};
use google_cloud_googleapis::pubsub::v1::PubsubMessage;
use roomcast_bus::BusError;
use roomcast_core::Encoded;

use crate::resources::{bounded, ensure_topic, unavailable};

/// The ordering key of an envelope: its room id, else its user id, else none
/// (no order among such envelopes).
pub fn ordering_key(envelope: &Encoded) -> String {
    envelope.key.map(|k| k.to_string()).unwrap_or_default()
}

/// The Pub/Sub message for `envelope`: its stored JSON as data, attributes `id` and
/// `type` (so tools can filter or inspect without parsing), and the
/// [`ordering_key`].
pub fn message(envelope: &Encoded) -> PubsubMessage {
    PubsubMessage {
        data: envelope.bytes.to_vec(),
        attributes: HashMap::from([
            ("id".to_owned(), envelope.id.to_string()),
            ("type".to_owned(), envelope.kind.to_string()),
        ]),
        ordering_key: ordering_key(envelope),
        ..PubsubMessage::default()
    }
}

/// One handle per topic, made (and the topic created if missing) on first
/// use. The map holds one entry per topic name published to.
pub(crate) struct Publishers {
    by_topic: Mutex<HashMap<String, Publisher>>,
    limit: Duration,
}

impl Publishers {
    /// No handles yet; each call is bounded by `limit`.
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            by_topic: Mutex::new(HashMap::new()),
            limit,
        }
    }

    /// Publish `envelope` to `topic` and wait for its message id, at most
    /// `limit` (plus topic creation the first time). On error or timeout the
    /// envelope may or may not have been published; the caller retries, and
    /// consumers drop the duplicate.
    pub(crate) async fn publish(
        &self,
        client: &Client,
        topic: &str,
        envelopes: &[&Encoded],
    ) -> Result<(), BusError> {
        if envelopes.is_empty() {
            return Ok(());
        }
        let publisher = self.handle(client, topic).await?;
        let what = format!("publish to {topic}");
        let messages = envelopes.iter().map(|e| message(e)).collect();
        let call = publisher.publish_immediately(messages, None);
        match bounded(self.limit, &what, call).await? {
            Ok(ids) if ids.len() == envelopes.len() => Ok(()),
            Ok(ids) => Err(unavailable(
                &what,
                format!("{} message ids for {} messages", ids.len(), envelopes.len()),
            )),
            Err(e) => Err(unavailable(&what, e)),
        }
    }

    async fn handle(&self, client: &Client, topic: &str) -> Result<Publisher, BusError> {
        if let Some(p) = self.lock().get(topic) {
            return Ok(p.clone());
        }
        // Not holding the lock across the call: two first publishes may both
        // create the topic, which Pub/Sub answers with "already exists".
        ensure_topic(client, topic, self.limit).await?;
        // The handle's own batching workers stay idle (see the module docs);
        // one worker pair that wakes once a second is the least it allows.
        let config = PublisherConfig {
            workers: 1,
            flush_interval: Duration::from_secs(1),
            ..PublisherConfig::default()
        };
        let p = client.topic(topic).new_publisher(Some(config));
        Ok(self.lock().entry(topic.to_owned()).or_insert(p).clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Publisher>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.by_topic
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use roomcast_core::{Envelope, Kind, RoomId, UserId};
    use serde_json::json;

    use super::*;

    #[test]
    fn a_room_envelope_is_keyed_by_its_room() {
        let room = RoomId::new();
        let env = Envelope::to_room(Kind::ReceiveMessage, room, json!({"n": 1}));
        let m = message(&env.encode());
        assert_eq!(m.ordering_key, room.to_string());
        assert_eq!(m.attributes["id"], env.id.to_string());
        assert_eq!(m.attributes["type"], "receiveMessage");
        assert_eq!(Envelope::from_bytes(&m.data).unwrap(), env);
    }

    #[test]
    fn a_user_envelope_is_keyed_by_its_user() {
        let user = UserId::new();
        let env = Envelope::to_user(Kind::RoomUpdated, user, json!({}));
        assert_eq!(ordering_key(&env.encode()), user.to_string());
    }

    #[test]
    fn an_envelope_for_nobody_in_particular_has_no_key() {
        let mut env = Envelope::to_user(Kind::parse("x"), UserId::new(), json!({}));
        env.user_id = None;
        assert_eq!(ordering_key(&env.encode()), "");
    }
}
