//! What every subscription's reader task shares: its own connection to Redis,
//! reconnecting with capped backoff; how an outage shows on the subscription;
//! and the bounded channel between the reader task and the [`Subscription`].
//!
//! Each subscription owns a dedicated connection (`Link`) because a blocking
//! `XREAD`/`XREADGROUP` holds its connection for up to `block_ms`: sharing the
//! publishers' connection would stall every publish behind it.
//!
//! Limits and what happens at them:
//! - The channel to the subscription holds `capacity` deliveries (set per
//!   mode, see [`crate::fanout`] and [`crate::queue`]). When it is full the
//!   reader **waits** and stops reading: the entries stay in the stream, so
//!   nothing is dropped by the reader (a fan-out reader that stays behind for
//!   more than `max_len` entries loses the trimmed ones, see [`crate`]).
//! - An outage puts **one** `Err(BusError::Unavailable)` on the subscription,
//!   and only if the channel has room for it (a consumer that is not reading
//!   does not need the news); the reader then retries with a pause growing
//!   from [`RECONNECT_MIN_DELAY`] to [`RECONNECT_MAX_DELAY`], forever, until
//!   the subscription is dropped.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, RedisError, Value};
use roomcast_bus::{BusError, Delivery, Subscription};
use tokio::sync::mpsc;

use crate::Config;

/// First pause after a failed read or connect of a subscription.
pub const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// Longest pause between two attempts of a subscription to reach Redis again.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// What travels from a reader task to its subscription.
pub(crate) type Item = Result<Delivery, BusError>;

/// A bounded channel of `capacity` items and the [`Subscription`] reading it.
pub(crate) fn channel(capacity: usize) -> (mpsc::Sender<Item>, Subscription) {
    let (tx, mut rx) = mpsc::channel(capacity);
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (tx, Subscription::new(stream.boxed()))
}

/// Run `reader` until it ends or the subscription fed by `tx` is dropped,
/// whichever comes first (a reader blocked in Redis is cancelled at once).
pub(crate) async fn until_dropped(tx: &mpsc::Sender<Item>, reader: impl Future<Output = ()>) {
    tokio::select! {
        _ = tx.closed() => {}
        _ = reader => {}
    }
}

/// A subscription's own connection, its outage state, and its channel.
pub(crate) struct Link {
    client: Client,
    conn_config: AsyncConnectionConfig,
    conn: Option<MultiplexedConnection>,
    tx: mpsc::Sender<Item>,
    /// `stream key (mode)`, for logs and errors.
    what: String,
    url: String,
    down: bool,
    delay: Duration,
}

impl Link {
    /// A link that connects on first use.
    pub fn new(client: Client, cfg: &Config, tx: mpsc::Sender<Item>, what: String) -> Self {
        let conn_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(cfg.connect_timeout()))
            .set_response_timeout(Some(cfg.blocking_response_timeout()));
        Self {
            client,
            conn_config,
            conn: None,
            tx,
            what,
            url: cfg.redacted_url(),
            down: false,
            delay: RECONNECT_MIN_DELAY,
        }
    }

    /// Run one command on this link's connection, connecting first if needed.
    /// On error the caller decides: a known server reply it can fix, or
    /// [`Link::failed`].
    pub async fn query(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let c = self
                    .client
                    .get_multiplexed_async_connection_with_config(&self.conn_config)
                    .await?;
                self.conn.insert(c)
            }
        };
        let value = cmd.query_async::<Value>(conn).await?;
        if self.down {
            tracing::info!(subscription = %self.what, "redis reachable again; reading resumes");
            self.down = false;
        }
        self.delay = RECONNECT_MIN_DELAY;
        Ok(value)
    }

    /// Handle a failed command: drop the connection (a fresh one is made on
    /// the next [`Link::query`]), report the outage once, and pause.
    pub async fn failed(&mut self, err: &RedisError) {
        self.conn = None;
        if self.down {
            tracing::debug!(subscription = %self.what, error = %err, "redis still failing");
        } else {
            self.down = true;
            tracing::warn!(
                subscription = %self.what,
                url = %self.url,
                error = %err,
                "redis read failed; retrying until it answers"
            );
            let report = BusError::Unavailable(format!(
                "redis at {} failed for {}: {err}",
                self.url, self.what
            ));
            // Full channel: the consumer has deliveries to handle first and
            // will see the gap in time anyway; the report is dropped.
            let _ = self.tx.try_send(Err(report));
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(RECONNECT_MAX_DELAY);
    }

    /// Hand one delivery to the subscription, waiting while its channel is
    /// full. `false` once the subscription is gone.
    pub async fn deliver(&self, delivery: Delivery) -> bool {
        self.tx.send(Ok(delivery)).await.is_ok()
    }

    /// `stream key (mode)`, for logs.
    pub fn what(&self) -> &str {
        &self.what
    }
}

/// Is this the server's reply `code …` (e.g. `NOGROUP`, `BUSYGROUP`)?
pub(crate) fn is_code(err: &RedisError, code: &str) -> bool {
    err.code() == Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomcast_core::{Envelope, Kind, UserId};

    fn delivery() -> Delivery {
        Delivery::new(
            Envelope::to_user(Kind::parse("t"), UserId::new(), serde_json::Value::Null),
            None,
        )
    }

    fn link(tx: mpsc::Sender<Item>) -> Link {
        let cfg = Config {
            url: "redis://127.0.0.1:1".into(),
            ..Config::default()
        };
        let client = Client::open(cfg.url.as_str()).unwrap();
        Link::new(client, &cfg, tx, "k (test)".into())
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_reported_once_and_retries_back_off_to_the_cap() {
        let (tx, mut sub) = channel(8);
        let mut link = link(tx);
        let err = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        for _ in 0..10 {
            link.failed(&err).await;
        }
        assert_eq!(link.delay, RECONNECT_MAX_DELAY);
        let first = sub.next().await.unwrap();
        assert!(matches!(first, Err(BusError::Unavailable(m)) if m.contains("127.0.0.1:1")));
        assert!(link.deliver(delivery()).await);
        assert!(sub.next().await.unwrap().is_ok(), "no second outage report");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_channel_drops_the_outage_report_not_deliveries() {
        let (tx, mut sub) = channel(1);
        let mut link = link(tx);
        assert!(link.deliver(delivery()).await);
        let err = RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        link.failed(&err).await;
        assert!(sub.next().await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_dropped_subscription_ends_the_reader() {
        let (tx, sub) = channel(1);
        let probe = tx.clone();
        drop(sub);
        until_dropped(&tx, futures::future::pending()).await;
        assert!(!link(probe).deliver(delivery()).await);
    }
}
