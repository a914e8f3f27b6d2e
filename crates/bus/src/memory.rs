//! The in-process bus: topics are maps of bounded channels inside one process.
//!
//! Used by `roomcast serve`, where the API and the gateway share a process but
//! still talk only through the bus, exactly as the split deployment does.
//!
//! Limits and what happens at them:
//! - Each subscription has a channel of [`SUBSCRIPTION_CAPACITY`] envelopes.
//!   When it is full, [`Bus::publish`] **waits** for room: back-pressure reaches
//!   the publisher (the outbox relay), whose rows stay in the outbox meanwhile,
//!   so nothing is dropped.
//! - A subscription whose receiver was dropped is removed at the next publish.
//! - An envelope published to a topic with no subscription is discarded, like
//!   a real pub/sub topic without subscriptions.
//!
//! The channels carry the envelopes' bytes ([`Encoded`], shared, not
//! copied, between subscriptions); each subscription decodes what it
//! receives, on its consumer's task.
//!
//! Acks are no-ops: within one process a delivered envelope cannot be lost to
//! the network, and nothing survives the process anyway (the outbox does).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::StreamExt;
use roomcast_core::{Encoded, Envelope};
use tokio::sync::mpsc;

use crate::{Bus, BusError, Delivery, Mode, Subscription};

/// Envelopes buffered per subscription before `publish` waits.
pub const SUBSCRIPTION_CAPACITY: usize = 1024;

#[derive(Default)]
struct Topic {
    fan_out: Vec<mpsc::Sender<Encoded>>,
    groups: HashMap<String, Group>,
}

#[derive(Default)]
struct Group {
    members: Vec<mpsc::Sender<Encoded>>,
    next: usize,
}

/// The in-process [`Bus`].
#[derive(Default)]
pub struct MemoryBus {
    topics: Mutex<HashMap<String, Topic>>,
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// The channels one envelope must go to, pruning closed ones.
    fn targets(&self, topic: &str) -> Vec<mpsc::Sender<Encoded>> {
        let mut topics = self.topics.lock().expect("bus lock");
        let Some(t) = topics.get_mut(topic) else {
            return Vec::new();
        };
        t.fan_out.retain(|tx| !tx.is_closed());
        let mut out = t.fan_out.clone();
        t.groups.retain(|_, g| {
            g.members.retain(|tx| !tx.is_closed());
            if g.members.is_empty() {
                return false;
            }
            let i = g.next % g.members.len();
            g.next = g.next.wrapping_add(1);
            out.push(g.members[i].clone());
            true
        });
        out
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, topic: &str, envelope: &Encoded) -> Result<(), BusError> {
        for tx in self.targets(topic) {
            // A receiver dropped between `targets` and here just misses it:
            // that subscription is gone.
            let _ = tx.send(envelope.clone()).await;
        }
        Ok(())
    }

    /// Each envelope moves to its last target (its bytes shared with each
    /// other one).
    async fn publish_run(&self, topic: &str, run: Vec<Encoded>) -> (usize, Option<BusError>) {
        let targets = self.targets(topic);
        let n = run.len();
        for envelope in run {
            if let Some((last, others)) = targets.split_last() {
                for tx in others {
                    let _ = tx.send(envelope.clone()).await;
                }
                let _ = last.send(envelope).await;
            }
        }
        (n, None)
    }

    async fn subscribe(&self, topic: &str, mode: Mode) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        {
            let mut topics = self.topics.lock().expect("bus lock");
            let t = topics.entry(topic.to_owned()).or_default();
            match mode {
                Mode::FanOut { .. } => t.fan_out.push(tx),
                Mode::Queue { group } => t.groups.entry(group).or_default().members.push(tx),
            }
        }
        let stream = tokio_stream(rx).map(|enc| {
            Envelope::from_bytes(&enc.bytes)
                .map(|env| Delivery::new(env, None))
                .map_err(|e| BusError::Malformed(e.to_string()))
        });
        Ok(Subscription::new(stream.boxed()))
    }

    async fn healthy(&self) -> bool {
        true
    }
}

fn tokio_stream(mut rx: mpsc::Receiver<Encoded>) -> impl futures::Stream<Item = Encoded> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_core::Kind;
    use std::sync::Arc;

    #[tokio::test]
    async fn memory_bus_passes_the_conformance_suite() {
        let caps = crate::conformance::Capabilities { redelivery: false };
        crate::conformance::run_all(caps, || async {
            Arc::new(MemoryBus::new()) as Arc<dyn Bus>
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_subscription_makes_publish_wait_instead_of_dropping() {
        let bus = Arc::new(MemoryBus::new());
        let mut sub = bus
            .subscribe("t", Mode::FanOut { node: "n".into() })
            .await
            .unwrap();
        let env = Envelope::to_user(
            Kind::parse("x"),
            roomcast_core::UserId::new(),
            serde_json::Value::Null,
        );
        for _ in 0..SUBSCRIPTION_CAPACITY {
            bus.publish("t", &env.encode()).await.unwrap();
        }
        let b2 = bus.clone();
        let env2 = env.clone();
        let mut blocked = tokio::spawn(async move { b2.publish("t", &env2.encode()).await });
        // With time paused, the publish can only finish if it does not wait.
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(1), &mut blocked)
                .await
                .is_err(),
            "publish must wait while the subscription is full"
        );
        sub.next().await.unwrap().unwrap();
        blocked.await.unwrap().unwrap();
        for _ in 0..SUBSCRIPTION_CAPACITY {
            sub.next().await.unwrap().unwrap();
        }
    }
}
