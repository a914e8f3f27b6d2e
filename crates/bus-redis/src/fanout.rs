//! [`Mode::FanOut`](roomcast_bus::Mode::FanOut) subscriptions: a reader task
//! that follows the stream with `XREAD BLOCK` from its own last id, so every
//! subscription sees every entry after its subscription point, in stream
//! order.
//!
//! There is no server-side state per subscriber: the position lives in the
//! reader task (the `node` name is only used in logs). Acks are no-ops. After
//! a reconnect the reader continues from the last id it handed over, so an
//! outage loses nothing that is still in the stream. What is no longer in the
//! stream is lost to this subscriber: a reader that falls further behind than
//! `max_len` entries (slow consumer, long outage) silently skips the trimmed
//! ones. The zero-loss work detects such gaps by per-room sequence numbers and
//! refetches from the store; this backend does not.
//!
//! Limits and what happens at them:
//! - One `XREAD` returns at most [`READ_COUNT`] entries.
//! - The channel to the subscription holds [`CAPACITY`] deliveries; when it
//!   is full the reader waits (see [`crate::reader`]).
//! - A malformed entry is skipped with a warning and never delivered.

use redis::Client;
use roomcast_bus::{Delivery, Subscription};

use crate::Config;
use crate::entries::{self, Entry};
use crate::reader::{self, Link};

/// Entries fetched by one `XREAD` of a fan-out subscription.
pub const READ_COUNT: usize = 256;
/// Deliveries buffered between a fan-out reader and its subscription.
pub const CAPACITY: usize = 1024;

/// Start the reader of a fan-out subscription to `key` that delivers the
/// entries after `after`.
pub(crate) fn spawn(
    cfg: &Config,
    client: Client,
    key: String,
    node: String,
    after: String,
) -> Subscription {
    let (tx, subscription) = reader::channel(CAPACITY);
    let what = format!("{key} (fan-out, node {node})");
    let link = Link::new(client, cfg, tx.clone(), what);
    let block_ms = cfg.block().as_millis();
    let reader = FanOut {
        link,
        key,
        last_id: after,
        block_ms,
    };
    tokio::spawn(async move {
        reader::until_dropped(&tx, reader.run()).await;
    });
    subscription
}

struct FanOut {
    link: Link,
    key: String,
    /// Id of the last entry handed over (or the subscription point).
    last_id: String,
    block_ms: u128,
}

impl FanOut {
    /// Read and hand over until the subscription is dropped.
    async fn run(mut self) {
        loop {
            let cmd = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(self.block_ms.to_string())
                .arg("STREAMS")
                .arg(&self.key)
                .arg(&self.last_id)
                .to_owned();
            match self.link.query(&cmd).await {
                Ok(reply) => {
                    for entry in entries::read_reply(reply) {
                        if !self.hand_over(entry).await {
                            return;
                        }
                    }
                }
                Err(e) => self.link.failed(&e).await,
            }
        }
    }

    /// Deliver one entry (or skip it if malformed) and move past it.
    /// `false` once the subscription is gone.
    async fn hand_over(&mut self, entry: Entry) -> bool {
        self.last_id = entry.id;
        match entry.envelope {
            Ok(envelope) => self.link.deliver(Delivery::new(envelope, None)).await,
            Err(why) => {
                tracing::warn!(
                    subscription = %self.link.what(),
                    id = %self.last_id,
                    %why,
                    "skipping malformed stream entry"
                );
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_bus::Subscription;
    use roomcast_core::{Envelope, Kind, RoomId};

    fn reader(capacity: usize) -> (FanOut, Subscription) {
        let cfg = Config::default();
        let client = Client::open(cfg.url.as_str()).unwrap();
        let (tx, sub) = reader::channel(capacity);
        let link = Link::new(client, &cfg, tx, "k (fan-out, node test)".into());
        let reader = FanOut {
            link,
            key: "k".into(),
            last_id: "0-0".into(),
            block_ms: 1,
        };
        (reader, sub)
    }

    fn good(id: &str) -> (Entry, Envelope) {
        let env = Envelope::to_room(Kind::parse("t"), RoomId::new(), serde_json::Value::Null);
        let entry = Entry {
            id: id.into(),
            envelope: Ok(env.clone()),
        };
        (entry, env)
    }

    #[tokio::test]
    async fn entries_are_handed_over_in_order_and_the_position_follows() {
        let (mut r, mut sub) = reader(8);
        let (a, env_a) = good("1-0");
        let (b, env_b) = good("2-0");
        assert!(r.hand_over(a).await);
        assert!(r.hand_over(b).await);
        assert_eq!(r.last_id, "2-0");
        assert_eq!(sub.next().await.unwrap().unwrap().envelope, env_a);
        let d = sub.next().await.unwrap().unwrap();
        assert_eq!(d.envelope, env_b);
        d.ack().await.expect("fan-out acks are no-ops");
    }

    #[tokio::test]
    async fn a_malformed_entry_is_passed_over_not_delivered() {
        let (mut r, mut sub) = reader(8);
        let bad = Entry {
            id: "1-0".into(),
            envelope: Err("no `envelope` field".into()),
        };
        assert!(r.hand_over(bad).await);
        assert_eq!(r.last_id, "1-0", "the reader does not read it again");
        let (next, env) = good("2-0");
        assert!(r.hand_over(next).await);
        assert_eq!(sub.next().await.unwrap().unwrap().envelope, env);
    }

    #[tokio::test]
    async fn handing_over_to_a_dropped_subscription_stops_the_reader() {
        let (mut r, sub) = reader(8);
        drop(sub);
        assert!(!r.hand_over(good("1-0").0).await);
    }
}
