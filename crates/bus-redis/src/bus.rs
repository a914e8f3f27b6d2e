//! [`RedisBus`]: the [`Bus`] implementation. It owns the shared, reconnecting
//! connection used for every short command (publish, ack, group creation,
//! health) and starts the reader task of each subscription.
//!
//! Short commands go through one `ConnectionManager` (a multiplexed connection
//! that reconnects by itself in the background) and are each bounded by
//! [`Config::command_timeout_ms`], waiting for a reconnect included. A command
//! that fails because the connection dropped is tried once more on the fresh
//! connection (a duplicate `XADD` is possible then, and harmless: delivery is
//! at-least-once and consumers drop duplicate envelope ids).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisError, Value};
use roomcast_bus::{Bus, BusError, Mode, Subscription};
use roomcast_core::Encoded;

use crate::entries::{self, FIELD};
use crate::reader::is_code;
use crate::{Config, fanout, queue};

/// How long [`Bus::healthy`] waits for `PING`.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnect attempts of the shared connection per outage before it gives up
/// until the next command (which starts a new round). Pauses grow from 100 ms
/// to 1 s, so one round lasts about ten seconds.
const MANAGER_RETRIES: usize = 12;
/// `XADD`s per `MULTI`/`EXEC` transaction of [`Bus::publish_run`].
pub const RUN_CHUNK: usize = 128;

/// The Redis Streams [`Bus`]. Made by [`crate::connect`].
pub struct RedisBus {
    cfg: Config,
    client: Client,
    commands: Commands,
}

/// The shared connection for short commands, with its time bound.
#[derive(Clone)]
pub(crate) struct Commands {
    manager: ConnectionManager,
    timeout: Duration,
    url: String,
}

impl Commands {
    /// Run `cmd`, bounded by the command timeout; one retry if the connection
    /// had dropped.
    pub async fn raw(&self, cmd: &Cmd) -> Result<Value, RedisError> {
        self.bounded(|mut conn| async move { cmd.query_async::<Value>(&mut conn).await })
            .await
    }

    /// `query` on the shared connection, bounded by the command timeout;
    /// once more if the connection had dropped.
    async fn bounded<F, Fut>(&self, query: F) -> Result<Value, RedisError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<Value, RedisError>>,
    {
        let attempt = async {
            match query(self.manager.clone()).await {
                Err(e) if e.is_connection_dropped() || e.is_unrecoverable_error() => {
                    query(self.manager.clone()).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} ms", self.timeout.as_millis()),
            ))),
        }
    }

    /// [`Commands::raw`], with errors as [`BusError::Unavailable`] naming
    /// what was attempted (`what`, e.g. `XADD roomcast:chat.out`) and where.
    pub async fn run(&self, cmd: &Cmd, what: &str) -> Result<Value, BusError> {
        self.raw(cmd).await.map_err(|e| self.unavailable(what, &e))
    }

    /// Run the transaction `pipe`, bounded like [`Commands::raw`] (with the
    /// same one retry after a dropped connection: a transaction whose
    /// answer was lost may be added twice, harmless as for `XADD`).
    pub async fn pipeline(&self, pipe: &Pipeline, what: &str) -> Result<Value, BusError> {
        self.bounded(|mut conn| async move { pipe.query_async::<Value>(&mut conn).await })
            .await
            .map_err(|e| self.unavailable(what, &e))
    }

    /// The error for a failed `what`.
    pub fn unavailable(&self, what: &str, err: &RedisError) -> BusError {
        BusError::Unavailable(format!("redis {what} at {}: {err}", self.url))
    }
}

impl RedisBus {
    /// `XADD` of `envelope` to the stream `key`, trimmed to about `max_len`.
    fn xadd(&self, key: &str, envelope: &Encoded) -> Cmd {
        redis::cmd("XADD")
            .arg(key)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.cfg.max_len)
            .arg("*")
            .arg(FIELD)
            .arg(&envelope.bytes[..])
            .to_owned()
    }

    /// Connect, failing fast if Redis does not answer `PING` within
    /// [`Config::connect_timeout_ms`] + [`Config::command_timeout_ms`].
    pub async fn connect(cfg: &Config) -> Result<Self, BusError> {
        let url = cfg.redacted_url();
        let client = Client::open(cfg.url.as_str())
            .map_err(|e| BusError::Unavailable(format!("invalid redis url {url}: {e}")))?;
        let unreachable =
            |why: String| BusError::Unavailable(format!("redis at {url} is unreachable: {why}"));
        let bound = cfg.connect_timeout() + cfg.command_timeout();
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.connect_timeout()))
            .set_response_timeout(Some(cfg.command_timeout()))
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(MANAGER_RETRIES);
        let start = async {
            // One plain attempt first: the manager would retry for seconds.
            let probe_config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(cfg.connect_timeout()))
                .set_response_timeout(Some(cfg.command_timeout()));
            let mut probe = client
                .get_multiplexed_async_connection_with_config(&probe_config)
                .await?;
            redis::cmd("PING").query_async::<Value>(&mut probe).await?;
            ConnectionManager::new_with_config(client.clone(), manager_config).await
        };
        let manager = match tokio::time::timeout(bound, start).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {} ms",
                    bound.as_millis()
                )));
            }
        };
        tracing::info!(url = %url, prefix = %cfg.key_prefix, "redis bus connected");
        Ok(Self {
            cfg: cfg.clone(),
            client,
            commands: Commands {
                manager,
                timeout: cfg.command_timeout(),
                url,
            },
        })
    }

    /// The id of the newest entry of `key` (`0-0` for an empty or missing
    /// stream): a fan-out subscription reads what comes after it.
    async fn newest_id(&self, key: &str) -> Result<String, BusError> {
        let cmd = redis::cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .to_owned();
        let reply = self.commands.run(&cmd, &format!("XREVRANGE {key}")).await?;
        Ok(entries::newest_id(reply).unwrap_or_else(|| "0-0".into()))
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, topic: &str, envelope: &Encoded) -> Result<(), BusError> {
        let key = self.cfg.stream_key(topic);
        let cmd = self.xadd(&key, envelope);
        self.commands.run(&cmd, &format!("XADD {key}")).await?;
        Ok(())
    }

    /// The run in `MULTI`/`EXEC` transactions of at most [`RUN_CHUNK`]
    /// `XADD`s, each once the one before was answered: Redis runs a
    /// transaction whole, after every command queued before it, so what was
    /// added is always a prefix of the run, in order, at one round trip per
    /// chunk instead of one per envelope.
    async fn publish_run(&self, topic: &str, run: Vec<Encoded>) -> (usize, Option<BusError>) {
        let key = self.cfg.stream_key(topic);
        let mut accepted = 0;
        for chunk in run.chunks(RUN_CHUNK) {
            let result = if chunk.len() == 1 {
                let cmd = self.xadd(&key, &chunk[0]);
                self.commands.run(&cmd, &format!("XADD {key}")).await
            } else {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for envelope in chunk {
                    pipe.add_command(self.xadd(&key, envelope));
                }
                self.commands
                    .pipeline(&pipe, &format!("MULTI XADD×{} {key}", chunk.len()))
                    .await
            };
            if let Err(e) = result {
                return (accepted, Some(e));
            }
            accepted += chunk.len();
        }
        (accepted, None)
    }

    async fn subscribe(&self, topic: &str, mode: Mode) -> Result<Subscription, BusError> {
        let key = self.cfg.stream_key(topic);
        match mode {
            Mode::FanOut { node } => {
                // Read the newest id first, then XREAD after it: whatever is
                // published once this returns has a greater id (`$` without
                // the race of a first blocking read that starts late).
                let after = self.newest_id(&key).await?;
                Ok(fanout::spawn(
                    &self.cfg,
                    self.client.clone(),
                    key,
                    node,
                    after,
                ))
            }
            Mode::Queue { group } => {
                queue::create_group(&self.commands, &key, &group, "$").await?;
                Ok(queue::spawn(
                    &self.cfg,
                    self.client.clone(),
                    self.commands.clone(),
                    key,
                    group,
                ))
            }
        }
    }

    async fn healthy(&self) -> bool {
        let ping = async {
            let mut conn = self.commands.manager.clone();
            redis::cmd("PING").query_async::<Value>(&mut conn).await
        };
        matches!(tokio::time::timeout(HEALTH_TIMEOUT, ping).await, Ok(Ok(_)))
    }
}

/// Tolerate `BUSYGROUP` (the group already exists) as success.
pub(crate) fn busygroup_ok(result: Result<Value, RedisError>) -> Result<(), RedisError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_code(&e, "BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}
