//! Presence on this node: sockets are counted per user, and the API tier is
//! told on `chat.in` when a user's first socket here connects
//! (`presenceChanged {node, online:true, at}`) and when their last one is
//! gone (`online:false`); a heartbeat (`nodeHeartbeat {node, at}`) says the
//! node is alive, so the API can take a silent node's users offline.
//!
//! Counting is synchronous ([`Presence::connected`] / [`Presence::disconnected`],
//! called from the transport's connect and disconnect hooks); publishing is
//! done by one task, [`Presence::run`], which publishes the *current* state of
//! each user whose count crossed zero since its last pass:
//! - memory is one entry per user with sockets here (or a change not yet
//!   published), no queue: a burst of connects and disconnects collapses
//!   into at most one publish per user per pass;
//! - a user's changes are published in order, each with a strictly
//!   increasing `at` (the API ignores a change older than the stored one);
//! - up to [`PUBLISH_CONCURRENCY`] users are published at once;
//! - a failed publish is retried after [`RETRY_AFTER`].
//!
//! At shutdown the task publishes `online:false` for every user it had
//! announced online (best effort, bounded by `shutdown_offline_timeout`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use roomcast_core::{ChatIn, NodeHeartbeat, PresenceChanged, UserId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::publish::Publisher;

/// Users published at once by one pass.
pub const PUBLISH_CONCURRENCY: usize = 64;
/// Pause before retrying after a failed publish.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Entry {
    sockets: usize,
    /// The last state the bus accepted for this user (false: never published).
    published: bool,
}

#[derive(Default)]
struct Inner {
    users: HashMap<UserId, Entry>,
    /// Users whose online state may differ from `published`.
    dirty: HashSet<UserId>,
    last_at: i64,
}

/// Socket counts of this node's users.
pub struct Presence {
    node: String,
    inner: Mutex<Inner>,
    wake: Notify,
}

impl Presence {
    /// Presence for realtime node `node` (the `node` of its payloads).
    pub fn new(node: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            node: node.into(),
            inner: Mutex::new(Inner::default()),
            wake: Notify::new(),
        })
    }

    /// A socket of `user` connected.
    pub fn connected(&self, user: UserId) {
        let mut inner = self.lock();
        let entry = inner.users.entry(user).or_default();
        entry.sockets += 1;
        if entry.sockets == 1 {
            inner.dirty.insert(user);
            self.wake.notify_one();
        }
    }

    /// A socket of `user` disconnected.
    pub fn disconnected(&self, user: UserId) {
        let mut inner = self.lock();
        let Some(entry) = inner.users.get_mut(&user) else {
            return;
        };
        entry.sockets = entry.sockets.saturating_sub(1);
        if entry.sockets == 0 {
            inner.dirty.insert(user);
            self.wake.notify_one();
        }
    }

    /// Sockets of `user` on this node.
    pub fn sockets(&self, user: UserId) -> usize {
        self.lock().users.get(&user).map_or(0, |e| e.sockets)
    }

    /// Users with an entry (sockets here, or a change not yet published).
    pub fn tracked(&self) -> usize {
        self.lock().users.len()
    }

    /// Publish changes until `shutdown`, then announce this node's users
    /// offline (bounded by `offline_timeout`).
    pub async fn run(
        self: Arc<Self>,
        publisher: Publisher,
        offline_timeout: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
            }
            if !self.flush(&publisher).await {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(RETRY_AFTER) => self.wake.notify_one(),
                }
            }
        }
        if tokio::time::timeout(offline_timeout, self.all_offline(&publisher))
            .await
            .is_err()
        {
            tracing::warn!(
                ?offline_timeout,
                "shutdown: gave up publishing users offline; the API's node sweep will"
            );
        }
    }

    /// Publish `nodeHeartbeat` every `interval` (the first at once) until `shutdown`.
    pub async fn heartbeat(
        self: Arc<Self>,
        publisher: Publisher,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let beat = ChatIn::NodeHeartbeat(NodeHeartbeat {
                node: self.node.clone(),
                at: self.next_at(),
            });
            tokio::select! {
                _ = shutdown.cancelled() => return,
                res = publisher.command(&beat) => if let Err(e) = res {
                    tracing::warn!(error = %e, "could not publish the node heartbeat");
                }
            }
        }
    }

    /// One pass: publish the current state of every dirty user. False if a
    /// publish failed (those users stay dirty).
    async fn flush(&self, publisher: &Publisher) -> bool {
        let todo: Vec<(UserId, bool, i64)> = {
            let mut inner = self.lock();
            let dirty: Vec<UserId> = inner.dirty.drain().collect();
            let mut todo = Vec::new();
            for user in dirty {
                let Some(entry) = inner.users.get(&user) else {
                    continue;
                };
                let online = entry.sockets > 0;
                if online != entry.published {
                    let at = next_at(&mut inner.last_at);
                    todo.push((user, online, at));
                } else if !online {
                    inner.users.remove(&user);
                }
            }
            todo
        };
        let results: Vec<(UserId, bool, bool)> = futures::stream::iter(todo)
            .map(|(user, online, at)| async move {
                let ok = self.publish(publisher, user, online, at).await;
                (user, online, ok)
            })
            .buffer_unordered(PUBLISH_CONCURRENCY)
            .collect()
            .await;
        let mut inner = self.lock();
        let mut all_ok = true;
        for (user, online, ok) in results {
            if !ok {
                all_ok = false;
                inner.dirty.insert(user);
                continue;
            }
            let Some(entry) = inner.users.get_mut(&user) else {
                continue;
            };
            entry.published = online;
            if entry.sockets == 0 && !online {
                inner.users.remove(&user);
            }
        }
        all_ok
    }

    /// Shutdown: `online:false` for everyone announced online.
    async fn all_offline(&self, publisher: &Publisher) {
        let todo: Vec<(UserId, i64)> = {
            let mut inner = self.lock();
            let users: Vec<UserId> = inner
                .users
                .iter()
                .filter(|(_, e)| e.published)
                .map(|(u, _)| *u)
                .collect();
            users
                .into_iter()
                .map(|u| (u, next_at(&mut inner.last_at)))
                .collect()
        };
        futures::stream::iter(todo)
            .for_each_concurrent(PUBLISH_CONCURRENCY, |(user, at)| async move {
                if self.publish(publisher, user, false, at).await
                    && let Some(e) = self.lock().users.get_mut(&user)
                {
                    e.published = false;
                }
            })
            .await;
    }

    async fn publish(&self, publisher: &Publisher, user: UserId, online: bool, at: i64) -> bool {
        let cmd = ChatIn::PresenceChanged {
            user,
            cmd: PresenceChanged {
                node: self.node.clone(),
                online,
                at,
            },
        };
        match publisher.command(&cmd).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, %user, online, "could not publish presenceChanged");
                false
            }
        }
    }

    fn next_at(&self) -> i64 {
        next_at(&mut self.lock().last_at)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("presence lock")
    }
}

/// The node clock in Unix ms, strictly increasing across calls.
fn next_at(last: &mut i64) -> i64 {
    *last = roomcast_core::now_ms().max(*last + 1);
    *last
}

#[cfg(test)]
#[path = "presence_tests.rs"]
mod tests;
