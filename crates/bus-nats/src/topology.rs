//! What exists on the server and how it comes to exist: [`Shared`] holds the
//! connection and creates, idempotently and race-free, one stream per topic
//! and one durable pull consumer per subscriber (fan-out) or group (queue). It
//! also owns the bounded, acked JetStream publish that `publish` and
//! dead-lettering share.
//!
//! Several processes create the same stream or consumer at once: JetStream
//! answers an identical create with success, and a stream that exists with a
//! different configuration is reconciled (subjects kept, limits updated)
//! instead of failing.

use std::collections::HashSet;
use std::sync::Mutex;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::{CreateStreamErrorKind, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, stream::ConsumerErrorKind};
use roomcast_bus::{BusError, Mode};

use crate::config::{self, Config};

/// The connection and what it knows about the server's streams.
pub(crate) struct Shared {
    /// The NATS client (reconnects by itself).
    pub client: async_nats::Client,
    /// JetStream on that client; every request is bounded by the config's
    /// `request_timeout_ms`.
    pub js: jetstream::Context,
    /// The settings.
    pub cfg: Config,
    /// Base topics whose stream is known to exist, so publishes skip the
    /// create request. A topic is forgotten when the server says its stream
    /// is gone.
    known: Mutex<HashSet<String>>,
}

fn unavailable(what: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(what.to_string())
}

impl Shared {
    pub(crate) fn new(client: async_nats::Client, js: jetstream::Context, cfg: Config) -> Self {
        Self {
            client,
            js,
            cfg,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// Names of the streams this connection created or found.
    pub(crate) fn known_streams(&self) -> Vec<String> {
        let known = self.known.lock().expect("streams lock");
        let mut names: Vec<_> = known.iter().map(|t| config::stream_name(t)).collect();
        names.sort();
        names
    }

    /// Forget that `topic`'s stream exists (the next use creates it again).
    pub(crate) fn forget(&self, topic: &str) {
        self.known
            .lock()
            .expect("streams lock")
            .remove(config::base_topic(topic));
    }

    fn stream_config(&self, name: &str, topic: &str) -> stream::Config {
        let base = config::base_topic(topic);
        stream::Config {
            name: name.to_owned(),
            description: Some(format!("roomcast topic {base}")),
            subjects: vec![base.to_owned(), config::dead_letter_subject(base)],
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            storage: StorageType::File,
            max_age: self.cfg.max_age(),
            max_messages: self.cfg.max_msgs,
            duplicate_window: self.cfg.duplicate_window(),
            ..Default::default()
        }
    }

    /// Make sure the stream of `topic` exists; returns its name.
    pub(crate) async fn ensure_stream(&self, topic: &str) -> Result<String, BusError> {
        let name = config::stream_name(topic);
        let base = config::base_topic(topic);
        if self.known.lock().expect("streams lock").contains(base) {
            return Ok(name);
        }
        let wanted = self.stream_config(&name, topic);
        match self.js.create_stream(wanted.clone()).await {
            Ok(_) => {}
            Err(e) => match e.kind() {
                CreateStreamErrorKind::JetStream(js)
                    if js.error_code() == ErrorCode::STREAM_NAME_EXIST =>
                {
                    self.reconcile(topic, wanted).await?;
                }
                _ => {
                    return Err(unavailable(format!(
                        "creating stream {name} for {topic}: {e}"
                    )));
                }
            },
        }
        self.known
            .lock()
            .expect("streams lock")
            .insert(base.to_owned());
        Ok(name)
    }

    /// The stream exists with another configuration (another version, or a
    /// changed config): keep what it has, add our subjects and limits.
    async fn reconcile(&self, topic: &str, wanted: stream::Config) -> Result<(), BusError> {
        let name = wanted.name.clone();
        let existing = self
            .js
            .get_stream(&name)
            .await
            .map_err(|e| unavailable(format!("reading stream {name}: {e}")))?
            .cached_info()
            .config
            .clone();
        let base = config::base_topic(topic);
        if !existing.subjects.iter().any(|s| s == base) {
            return Err(unavailable(format!(
                "stream {name} exists for subjects {:?}, not for topic {topic}: rename one of the topics",
                existing.subjects
            )));
        }
        let mut merged = existing.clone();
        for subject in wanted.subjects {
            if !merged.subjects.contains(&subject) {
                merged.subjects.push(subject);
            }
        }
        merged.max_age = wanted.max_age;
        merged.max_messages = wanted.max_messages;
        merged.duplicate_window = wanted.duplicate_window;
        if merged != existing {
            // Another process may hold other limits; the stream is usable
            // either way, so a failed update is only worth a warning.
            if let Err(e) = self.js.update_stream(&merged).await {
                tracing::warn!(stream = %name, error = %e, "could not update stream limits");
            }
        }
        Ok(())
    }

    fn consumer_config(&self, topic: &str, mode: &Mode) -> consumer::pull::Config {
        let common = consumer::pull::Config {
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.cfg.ack_wait(),
            filter_subject: topic.to_owned(),
            max_ack_pending: self.cfg.max_ack_pending.max(1),
            ..Default::default()
        };
        match mode {
            Mode::FanOut { node } => consumer::pull::Config {
                durable_name: Some(config::fan_out_consumer(node)),
                deliver_policy: DeliverPolicy::New,
                max_deliver: self.cfg.max_deliver(),
                inactive_threshold: self.cfg.inactive_threshold(),
                ..common
            },
            Mode::Queue { group } => consumer::pull::Config {
                durable_name: Some(config::queue_consumer(group)),
                deliver_policy: DeliverPolicy::All,
                // The subscription dead-letters after `max_deliver` itself
                // (see `subscription`), so the server keeps delivering until
                // that worked; a dead-letter topic has no dead-letter topic.
                max_deliver: if config::is_dead_letter(topic) {
                    self.cfg.max_deliver()
                } else {
                    -1
                },
                ..common
            },
        }
    }

    /// The durable pull consumer for one subscription, created if missing.
    pub(crate) async fn consumer(
        &self,
        topic: &str,
        mode: &Mode,
    ) -> Result<PullConsumer, BusError> {
        let config = self.consumer_config(topic, mode);
        let consumer_name = config.durable_name.clone().unwrap_or_default();
        let mut stream = self.ensure_stream(topic).await?;
        let mut recreated = false;
        loop {
            let err = match self
                .js
                .create_consumer_on_stream(config.clone(), &stream)
                .await
            {
                Ok(c) => return Ok(c),
                Err(e) => e,
            };
            let code = match err.kind() {
                ConsumerErrorKind::JetStream(js) => Some(js.error_code()),
                _ => None,
            };
            if recreated || code.is_none() {
                return Err(unavailable(format!(
                    "creating consumer {consumer_name} on stream {stream} for {topic}: {err}"
                )));
            }
            recreated = true;
            if code == Some(ErrorCode::STREAM_NOT_FOUND) {
                // Deleted behind our back (or the server lost its store).
                self.forget(topic);
                stream = self.ensure_stream(topic).await?;
            } else if matches!(mode, Mode::FanOut { .. }) {
                // A leftover consumer of this node with a configuration that
                // cannot be updated: it only holds what this node missed
                // while away, which a fan-out subscriber does not promise.
                tracing::info!(consumer = %consumer_name, error = %err, "replacing fan-out consumer");
                let _ = self
                    .js
                    .delete_consumer_from_stream(&consumer_name, &stream)
                    .await;
            } else {
                // A queue consumer holds the group's progress: never replace it.
                return Err(unavailable(format!(
                    "consumer {consumer_name} on stream {stream} exists with a configuration that cannot be updated: {err}"
                )));
            }
        }
    }

    /// Publish to JetStream and wait for the stream's ack, both within
    /// `request_timeout_ms`.
    pub(crate) async fn publish_acked(
        &self,
        subject: &str,
        message: Publish,
    ) -> Result<PublishAck, BusError> {
        let limit = self.cfg.request_timeout();
        let attempt = async {
            let ack = self.js.send_publish(subject.to_owned(), message).await?;
            ack.await
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(e)) => {
                if e.kind() == PublishErrorKind::StreamNotFound {
                    self.forget(subject);
                }
                Err(unavailable(format!(
                    "NATS publish to {subject} failed: {e}"
                )))
            }
            Err(_) => Err(unavailable(format!(
                "NATS publish to {subject} not acked within {} ms",
                limit.as_millis()
            ))),
        }
    }
}
