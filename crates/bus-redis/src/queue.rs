//! [`Mode::Queue`](roomcast_bus::Mode::Queue) subscriptions: members of a
//! Redis consumer group, so each entry goes to exactly one member, and an
//! entry whose member died before acking goes to another one.
//!
//! - The group `<group>` is created on the stream at subscribe time
//!   (`XGROUP CREATE <key> <group> $ MKSTREAM`; `BUSYGROUP` means it exists).
//!   Should it vanish (Redis restarted without persistence), the reader
//!   recreates it from the stream's start (`0`): whatever is in the new stream
//!   was published after the loss.
//! - Each subscription is its own consumer, named `<uuid v7>`, and reads new
//!   entries with `XREADGROUP … >`. The entry stays in the group's pending list
//!   until [`Delivery::ack`] runs `XACK`.
//! - Every `claim_idle_ms / 2` (at least [`MIN_CLAIM_PERIOD`]) the reader runs
//!   `XAUTOCLAIM … <claim_idle_ms>`: entries pending for longer than that,
//!   whichever member holds them, are taken over and delivered again here. A
//!   consumer slower than `claim_idle_ms` per delivery therefore sees its
//!   entries handled twice (at-least-once; consumers drop duplicate ids).
//! - Consumers with nothing pending are removed from the group when their
//!   subscription is dropped, and, when idle for [`PRUNE_FACTOR`] times
//!   `max(claim_idle_ms, block_ms)`, by any live member (crashed processes).
//!   Removal is one Lua script that checks the consumer's pending list first,
//!   so an entry is never dropped from the pending list with its consumer.
//! - A malformed entry is acked and skipped with a warning.
//!
//! Order: one member gets entries in stream order, but members run in
//! parallel and redelivered entries come late, so the group as a whole keeps
//! no order.
//!
//! Limits and what happens at them:
//! - One `XREADGROUP`/`XAUTOCLAIM` takes at most [`READ_COUNT`] entries.
//! - The channel to the subscription holds [`CAPACITY`] deliveries; when it
//!   is full the reader waits and takes no new entries, leaving them to the
//!   other members. It is small because buffered entries are already pending
//!   on this consumer and age towards being claimed by another.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::Client;
use redis::streams::StreamInfoConsumersReply;
use roomcast_bus::{Acker, BusError, Delivery, Subscription};
use tokio::time::Instant;

use crate::Config;
use crate::bus::{Commands, busygroup_ok};
use crate::entries::{self, Entry};
use crate::reader::{self, Link, is_code};

/// Entries taken by one `XREADGROUP` or `XAUTOCLAIM` of a queue member.
pub const READ_COUNT: usize = 32;
/// Deliveries buffered between a queue member's reader and its subscription.
pub const CAPACITY: usize = 32;
/// Shortest period between two `XAUTOCLAIM` rounds of one member.
pub const MIN_CLAIM_PERIOD: Duration = Duration::from_millis(100);
/// A consumer idle this many times `max(claim_idle_ms, block_ms)` with
/// nothing pending is removed from its group.
pub const PRUNE_FACTOR: u32 = 4;
/// `XAUTOCLAIM` calls per round at most (each scans up to 10 × [`READ_COUNT`]
/// pending entries); the next round continues from the cursor.
const CLAIM_CALLS_PER_ROUND: usize = 8;

/// Delete consumer `ARGV[2]` of group `ARGV[1]` on stream `KEYS[1]` only if
/// nothing is pending on it. Returns `-1` when it was kept.
const DELETE_IF_IDLE: &str = "\
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1";

/// Create consumer group `group` on `key` starting after `start`, creating
/// the stream if needed; an existing group is fine.
pub(crate) async fn create_group(
    commands: &Commands,
    key: &str,
    group: &str,
    start: &str,
) -> Result<(), BusError> {
    let cmd = group_create(key, group, start);
    busygroup_ok(commands.raw(&cmd).await)
        .map_err(|e| commands.unavailable(&format!("XGROUP CREATE {key} {group}"), &e))
}

fn group_create(key: &str, group: &str, start: &str) -> redis::Cmd {
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(group)
        .arg(start)
        .arg("MKSTREAM")
        .to_owned()
}

/// Start a new member of `group` on `key`.
pub(crate) fn spawn(
    cfg: &Config,
    client: Client,
    commands: Commands,
    key: String,
    group: String,
) -> Subscription {
    let (tx, subscription) = reader::channel(CAPACITY);
    let consumer = uuid::Uuid::now_v7().to_string();
    let what = format!("{key} (group {group}, consumer {consumer})");
    let target = Arc::new(Target {
        commands,
        key,
        group,
    });
    let claim_idle = cfg.claim_idle();
    let reader = Member {
        link: Link::new(client, cfg, tx.clone(), what),
        target: target.clone(),
        consumer: consumer.clone(),
        block: cfg.block(),
        claim_idle,
        claim_period: (claim_idle / 2).max(MIN_CLAIM_PERIOD),
        prune_idle: claim_idle.max(cfg.block()) * PRUNE_FACTOR,
        cursor: "0-0".into(),
    };
    tokio::spawn(async move {
        reader::until_dropped(&tx, reader.run()).await;
        // The reader (and its connection) is gone: leave the group.
        target.delete_if_idle(&consumer).await;
    });
    subscription
}

/// Where a member's commands go, shared with its ackers.
struct Target {
    commands: Commands,
    key: String,
    group: String,
}

impl Target {
    async fn ack(&self, id: &str) -> Result<(), BusError> {
        let cmd = redis::cmd("XACK")
            .arg(&self.key)
            .arg(&self.group)
            .arg(id)
            .to_owned();
        let what = format!("XACK {} {}", self.key, self.group);
        self.commands.run(&cmd, &what).await.map(drop)
    }

    /// Remove `consumer` from the group if nothing is pending on it.
    async fn delete_if_idle(&self, consumer: &str) {
        let cmd = redis::cmd("EVAL")
            .arg(DELETE_IF_IDLE)
            .arg(1)
            .arg(&self.key)
            .arg(&self.group)
            .arg(consumer)
            .to_owned();
        match self.commands.raw(&cmd).await {
            Ok(redis::Value::Int(-1)) => {
                tracing::debug!(consumer, "consumer kept: entries pending on it")
            }
            Ok(_) => tracing::debug!(consumer, key = %self.key, "consumer left its group"),
            Err(e) => tracing::debug!(consumer, error = %e, "consumer not removed"),
        }
    }
}

/// Acks one queue delivery with `XACK`.
struct XAck {
    target: Arc<Target>,
    id: String,
}

#[async_trait]
impl Acker for XAck {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.target.ack(&self.id).await
    }
}

struct Member {
    link: Link,
    target: Arc<Target>,
    consumer: String,
    block: Duration,
    claim_idle: Duration,
    claim_period: Duration,
    prune_idle: Duration,
    /// Where the next `XAUTOCLAIM` continues in the pending list.
    cursor: String,
}

impl Member {
    /// Claim and read until the subscription is dropped.
    async fn run(mut self) {
        let mut next_claim = Instant::now();
        loop {
            if Instant::now() >= next_claim {
                if !self.claim_round().await {
                    return;
                }
                next_claim = Instant::now() + self.claim_period;
            }
            let until_claim = next_claim.saturating_duration_since(Instant::now());
            let block = self.block.min(until_claim).max(Duration::from_millis(1));
            let cmd = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.target.group)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(block.as_millis().to_string())
                .arg("STREAMS")
                .arg(&self.target.key)
                .arg(">")
                .to_owned();
            match self.link.query(&cmd).await {
                Ok(reply) => {
                    if !self.hand_over_all(entries::read_reply(reply)).await {
                        return;
                    }
                }
                Err(e) => self.recover(&e).await,
            }
        }
    }

    /// Take over entries idle longer than `claim_idle` (at most
    /// [`CLAIM_CALLS_PER_ROUND`] calls), then prune dead consumers.
    /// `false` once the subscription is gone.
    async fn claim_round(&mut self) -> bool {
        for _ in 0..CLAIM_CALLS_PER_ROUND {
            let cmd = redis::cmd("XAUTOCLAIM")
                .arg(&self.target.key)
                .arg(&self.target.group)
                .arg(&self.consumer)
                .arg(self.claim_idle.as_millis().to_string())
                .arg(&self.cursor)
                .arg("COUNT")
                .arg(READ_COUNT)
                .to_owned();
            let (cursor, claimed) = match self.link.query(&cmd).await {
                Ok(reply) => entries::autoclaim_reply(reply),
                Err(e) => {
                    self.recover(&e).await;
                    return true;
                }
            };
            self.cursor = cursor;
            if !claimed.is_empty() {
                tracing::info!(
                    subscription = %self.link.what(),
                    count = claimed.len(),
                    "claimed entries left unacked by another consumer"
                );
            }
            if !self.hand_over_all(claimed).await {
                return false;
            }
            if self.cursor == "0-0" {
                break;
            }
        }
        self.prune().await;
        true
    }

    /// Remove other consumers that have been idle long with nothing pending.
    async fn prune(&mut self) {
        let cmd = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&self.target.key)
            .arg(&self.target.group)
            .to_owned();
        let Ok(reply) = self.link.query(&cmd).await else {
            return; // the next read reports and recovers
        };
        let Ok(info) = redis::from_redis_value::<StreamInfoConsumersReply>(reply) else {
            return;
        };
        let idle_ms = self.prune_idle.as_millis();
        for c in info.consumers {
            if c.name != self.consumer && c.pending == 0 && c.idle as u128 >= idle_ms {
                self.target.delete_if_idle(&c.name).await;
            }
        }
    }

    /// Deliver entries, acking and skipping malformed ones.
    /// `false` once the subscription is gone.
    async fn hand_over_all(&mut self, batch: Vec<Entry>) -> bool {
        for entry in batch {
            match entry.envelope {
                Ok(envelope) => {
                    let acker = XAck {
                        target: self.target.clone(),
                        id: entry.id,
                    };
                    if !self
                        .link
                        .deliver(Delivery::new(envelope, Some(Box::new(acker))))
                        .await
                    {
                        return false;
                    }
                }
                Err(why) => {
                    tracing::warn!(
                        subscription = %self.link.what(),
                        id = %entry.id,
                        %why,
                        "acking and skipping malformed stream entry"
                    );
                    if let Err(e) = self.target.ack(&entry.id).await {
                        tracing::warn!(error = %e, "could not ack malformed entry");
                    }
                }
            }
        }
        true
    }

    /// After a failed command: recreate a vanished group, else back off.
    async fn recover(&mut self, err: &redis::RedisError) {
        if is_code(err, "NOGROUP") {
            tracing::warn!(
                subscription = %self.link.what(),
                "consumer group missing (Redis lost its data?); recreating it"
            );
            let cmd = group_create(&self.target.key, &self.target.group, "0");
            match busygroup_ok(self.link.query(&cmd).await) {
                Ok(()) => return,
                Err(e) => return self.link.failed(&e).await,
            }
        }
        self.link.failed(err).await;
    }
}
