//! The configuration tree. Every key has a documented default
//! ([`DEFAULT_TOML`], printed by `roomcast config`); sources are merged in
//! this order, later winning:
//! 1. the defaults,
//! 2. the TOML file given with `--config`,
//! 3. environment variables `ROOMCAST_<KEY>`, with `__` between nested keys
//!    (`ROOMCAST_LISTEN`, `ROOMCAST_DATABASE_URL`, `ROOMCAST_AUTH__JWT_SECRET`),
//! 4. command-line flags.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the HTTP + Socket.IO server listens on.
    pub listen: SocketAddr,
    /// Database URL (`sqlite://FILE`, `sqlite::memory:`).
    pub database_url: String,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log: String,
    /// Tokens.
    pub auth: AuthConfig,
    /// HTTP.
    pub http: HttpConfig,
    /// Socket.IO.
    pub socketio: SocketIoSection,
    /// The bus between tiers.
    pub bus: BusConfig,
    /// The outbox relay.
    pub outbox: OutboxConfig,
    /// Chat behaviour of the realtime tier (typing).
    pub chat: ChatSection,
    /// Online/offline tracking.
    pub presence: PresenceConfig,
    /// The room event log's retention (replay after a reconnect).
    pub event_log: EventLogConfig,
    /// The realtime tier of the split deployment.
    pub realtime: RealtimeConfig,
    /// Caps and rate limits against abuse (docs/security.md).
    pub limits: LimitsConfig,
    /// The API tier's internal listener, for the realtime tier.
    pub internal: InternalConfig,
    /// Rooms: who may add whom.
    pub rooms: RoomsConfig,
}

/// `[rooms]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomsConfig {
    /// API: the add policy of users who have not chosen one (`invite`: an
    /// add becomes an invitation they accept or decline; `anyone`: an add
    /// makes them a member at once, for closed team deployments).
    pub default_add_policy: roomcast_core::AddPolicy,
}

/// `[internal]`: the routes the realtime tier calls on the API tier
/// (membership, replay, room lists), served on their own listener only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InternalConfig {
    /// `api`: the address of the internal listener (`--internal-listen`).
    /// Required by `api`; `serve` never opens one.
    pub listen: String,
    /// `api` and `realtime`: HS256 secret of the service tokens, the same
    /// on every node and different from `auth.jwt_secret`.
    pub secret: String,
}

/// `[limits]`: caps per address and per user. The HTTP phase's own bounds
/// (`http.header_read_timeout_ms`, `http.max_header_bytes`) are not here:
/// they stay on whatever `enabled` says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// false turns every cap and rate limit below off at once: for load
    /// tests and benchmarks only, unsafe in production.
    pub enabled: bool,
    /// Open TCP connections per client address (trusted proxies exempt).
    pub connections_per_ip: usize,
    /// Engine.IO sessions per client address that have not connected a
    /// socket yet.
    pub pending_sessions_per_ip: usize,
    /// Sockets one user may have on one realtime node.
    pub sockets_per_user: usize,
    /// The rate limits, `[limits.<name>]` each (`burst`, `refill_ms`).
    #[serde(flatten)]
    pub rates: roomcast_limits::Rates,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            connections_per_ip: 256,
            pending_sessions_per_ip: 16,
            sockets_per_user: 20,
            rates: roomcast_limits::Rates::default(),
        }
    }
}

/// `[realtime]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RealtimeConfig {
    /// This node's unique name (names its `chat.out` subscription). Empty: `rt-<pid>`.
    pub node_id: String,
    /// Base URL of the API tier's internal listener (`internal.listen`), for
    /// membership checks, replay and room lists.
    pub api_url: String,
    /// `serve` and `realtime`: on shutdown, the sockets are closed spread
    /// evenly over this many milliseconds (their clients reconnect
    /// elsewhere without all arriving at once); `chat.out` keeps being
    /// delivered to those not closed yet. 0: all at once.
    pub drain_window_ms: u64,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            api_url: "http://127.0.0.1:3001".into(),
            drain_window_ms: 2000,
        }
    }
}

/// `[auth]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// HS256 secret for access tokens. Empty: `serve` generates one and keeps
    /// it beside the SQLite database, in `<database file>.secret`.
    pub jwt_secret: String,
    /// Token lifetime, seconds.
    pub token_ttl_secs: u64,
    /// How long a login session lives without a refresh, seconds: each
    /// `POST /v1/auth/refresh` extends it by this much.
    pub refresh_ttl_secs: u64,
}

/// `[http]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Origins allowed to call the API and Socket.IO from a browser on another
    /// origin (exact match, e.g. `https://chat.example.com`). Empty: same-origin only.
    pub cors_origins: Vec<String>,
    /// Largest request body, bytes; larger answers 413.
    pub max_body_bytes: usize,
    /// Longest wait for in-flight requests at shutdown, milliseconds.
    pub shutdown_grace_ms: u64,
    /// `serve` and `api`: answer the demo page (a browser chat on the
    /// client library) at `/`.
    pub demo_page: bool,
    /// A request head must arrive within this; also how long a keep-alive
    /// connection may wait idle for its next request, milliseconds.
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers), bytes, at least
    /// 8192; larger answers 431.
    pub max_header_bytes: usize,
    /// Reverse proxies in front of roomcast, addresses or networks: their
    /// `X-Forwarded-For` names the client, and their connections are not
    /// capped per address.
    pub trusted_proxies: Vec<ProxyNet>,
}

/// A trusted proxy: an address (`10.0.0.5`) or a network (`10.0.0.0/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProxyNet(pub ipnet::IpNet);

impl TryFrom<String> for ProxyNet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse::<ipnet::IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(Self)
            .map_err(|_| format!("{s:?} is not an IP address or network (10.0.0.5, 10.0.0.0/8)"))
    }
}

impl From<ProxyNet> for String {
    fn from(p: ProxyNet) -> String {
        p.0.to_string()
    }
}

/// `[socketio]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SocketIoSection {
    /// Engine.IO ping interval, milliseconds.
    pub ping_interval_ms: u64,
    /// Close a connection whose pong is this late, milliseconds.
    pub ping_timeout_ms: u64,
    /// Largest incoming packet, bytes.
    pub max_payload_bytes: u64,
    /// Outgoing packets buffered per socket; a socket that falls this far
    /// behind is disconnected (its client reconnects and reloads).
    pub max_buffer_size: usize,
    /// Time a client has to send CONNECT after the handshake, milliseconds.
    pub connect_timeout_ms: u64,
    /// Allow HTTP long-polling (false: websocket only).
    pub polling: bool,
    /// Offer connection state recovery to `socket.io-client` (≥ 4.6),
    /// backed by the room event log: a client that drops and reconnects to
    /// any realtime node gets its rooms and missed events back with
    /// `socket.recovered === true` (docs/delivery.md).
    pub connection_state_recovery: bool,
}

/// `bus.kind`: which bus carries `chat.out` and `chat.in`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// In-process; `serve` only.
    #[default]
    Memory,
    /// NATS JetStream (`[bus.nats]`).
    Nats,
    /// Redis Streams (`[bus.redis]`).
    Redis,
    /// Google Cloud Pub/Sub (`[bus.gcp]`).
    Gcp,
}

impl std::fmt::Display for BusKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory => "memory",
            Self::Nats => "nats",
            Self::Redis => "redis",
            Self::Gcp => "gcp",
        })
    }
}

/// `[bus]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BusConfig {
    /// Backend: `memory` (in-process; `serve` only), `nats`, `redis`, `gcp`.
    pub kind: BusKind,
    /// Name of the backend → realtime topic.
    pub chat_out: String,
    /// Name of the realtime → backend topic.
    pub chat_in: String,
    /// `[bus.gcp]`: Google Cloud Pub/Sub (`kind = "gcp"`).
    pub gcp: roomcast_bus_gcp::Config,
    /// `[bus.nats]`: NATS JetStream (`kind = "nats"`).
    pub nats: roomcast_bus_nats::Config,
    /// `[bus.redis]`: Redis Streams (`kind = "redis"`).
    pub redis: roomcast_bus_redis::Config,
}

/// `[outbox]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboxConfig {
    /// Rows claimed and published per batch.
    pub batch: i64,
    /// Longest pause between passes when no write wakes the relay, milliseconds.
    pub poll_interval_ms: u64,
    /// Partitions of the outbox in a **new** database (1..=256); a database
    /// keeps the count it was created with.
    pub partitions: u32,
}

/// `[presence]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PresenceConfig {
    /// API: a realtime node silent (no heartbeat) this long is taken as gone,
    /// its users offline, seconds.
    pub node_timeout_secs: u64,
    /// API: how often silent nodes are looked for, seconds.
    pub sweep_interval_secs: u64,
    /// Realtime: how often a node publishes its `nodeHeartbeat`, seconds.
    pub heartbeat_secs: u64,
}

/// `[event_log]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventLogConfig {
    /// API: events kept per room at most (older ones are pruned); a client
    /// further behind than this reloads instead of replaying.
    pub keep_per_room: i64,
    /// API: events older than this are pruned, seconds.
    pub max_age_secs: u64,
    /// API: how often retention runs, seconds.
    pub prune_interval_secs: u64,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        Self {
            keep_per_room: 10_000,
            max_age_secs: 7 * 24 * 3600,
            prune_interval_secs: 60,
        }
    }
}

/// `[chat]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatSection {
    /// Realtime: a typing indicator ends this long after the user's last
    /// `typing:true` (the gateway then relays `typing:false`), milliseconds.
    pub typing_timeout_ms: u64,
    /// Realtime: the latest logged events kept per room for replay on
    /// `joinRoom {sinceEventSeq}` (older gaps are read from the store).
    pub replay_buffer: usize,
}

impl Default for ChatSection {
    fn default() -> Self {
        Self {
            typing_timeout_ms: 5000,
            replay_buffer: 256,
        }
    }
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            node_timeout_secs: 30,
            sweep_interval_secs: 10,
            heartbeat_secs: 10,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            database_url: "sqlite://roomcast.db".into(),
            log: "info".into(),
            auth: AuthConfig::default(),
            http: HttpConfig::default(),
            socketio: SocketIoSection::default(),
            bus: BusConfig::default(),
            outbox: OutboxConfig::default(),
            chat: ChatSection::default(),
            presence: PresenceConfig::default(),
            event_log: EventLogConfig::default(),
            realtime: RealtimeConfig::default(),
            limits: LimitsConfig::default(),
            internal: InternalConfig::default(),
            rooms: RoomsConfig::default(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: String::new(),
            token_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cors_origins: Vec::new(),
            max_body_bytes: roomcast_api::DEFAULT_MAX_BODY_BYTES,
            shutdown_grace_ms: 10_000,
            demo_page: true,
            header_read_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for SocketIoSection {
    fn default() -> Self {
        Self {
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            max_payload_bytes: 100_000,
            max_buffer_size: 1024,
            connect_timeout_ms: 45_000,
            polling: true,
            connection_state_recovery: true,
        }
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            kind: BusKind::Memory,
            chat_out: roomcast_core::topics::CHAT_OUT.into(),
            chat_in: roomcast_core::topics::CHAT_IN.into(),
            gcp: roomcast_bus_gcp::Config::default(),
            nats: roomcast_bus_nats::Config::default(),
            redis: roomcast_bus_redis::Config::default(),
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            batch: 256,
            poll_interval_ms: 1000,
            partitions: roomcast_store::outbox::DEFAULT_PARTITIONS,
        }
    }
}

/// The default configuration as a commented TOML file (`roomcast config`).
pub const DEFAULT_TOML: &str = include_str!("default_config.toml");

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file names keys that are not in the tree (see [`crate::strict`]).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    UnknownKeys(Vec<crate::strict::UnknownKey>),
    /// A file that cannot be read or parsed, or a value of the wrong type
    /// (the message names the key and the source).
    #[error(transparent)]
    Invalid(#[from] Box<figment::Error>),
}

impl Config {
    /// Load: defaults, then `file` (if any), then `ROOMCAST_…` variables.
    /// A key of the file that is not in the tree is an error
    /// ([`ConfigError::UnknownKeys`]); for the environment, see
    /// [`crate::strict::unknown_env`].
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            let dict: figment::value::Dict = Figment::from(Toml::file_exact(f))
                .extract()
                .map_err(Box::new)?;
            let unknown = crate::strict::unknown_in(&dict, &f.display().to_string());
            if !unknown.is_empty() {
                return Err(ConfigError::UnknownKeys(unknown));
            }
            fig = fig.merge(Toml::file_exact(f));
        }
        Ok(fig
            .merge(Env::prefixed("ROOMCAST_").split("__"))
            .extract()
            .map_err(Box::new)?)
    }

    /// The bounds of every connection's HTTP phase.
    pub fn serve(&self) -> roomcast_sio::ServeConfig {
        roomcast_sio::ServeConfig {
            header_read_timeout: Duration::from_millis(self.http.header_read_timeout_ms.max(1)),
            max_header_bytes: self.http.max_header_bytes,
            max_connections_per_ip: self.cap(self.limits.connections_per_ip),
            trusted_proxies: self.http.trusted_proxies.iter().map(|p| p.0).collect(),
        }
    }

    /// `n`, or 0 (no cap) with `limits.enabled = false`.
    fn cap(&self, n: usize) -> usize {
        if self.limits.enabled { n } else { 0 }
    }

    /// The Socket.IO settings for the gateway.
    pub fn socketio(&self) -> roomcast_gateway::SocketIoConfig {
        let s = &self.socketio;
        roomcast_gateway::SocketIoConfig {
            ping_interval: Duration::from_millis(s.ping_interval_ms),
            ping_timeout: Duration::from_millis(s.ping_timeout_ms),
            max_payload: usize::try_from(s.max_payload_bytes).unwrap_or(usize::MAX),
            max_buffer_size: s.max_buffer_size,
            connect_timeout: Duration::from_millis(s.connect_timeout_ms),
            polling: s.polling,
            recovery: s.connection_state_recovery,
            max_pending_per_ip: self.cap(self.limits.pending_sessions_per_ip),
            ..roomcast_gateway::SocketIoConfig::default()
        }
    }

    /// The realtime tier's caps and rate limits.
    pub fn guard(&self) -> roomcast_gateway::GuardConfig {
        roomcast_gateway::GuardConfig {
            enabled: self.limits.enabled,
            sockets_per_user: self.limits.sockets_per_user,
            rates: self.limits.rates,
        }
    }

    /// The API's rate limits.
    pub fn api_limits(&self) -> roomcast_api::limits::ApiLimits {
        roomcast_api::limits::ApiLimits::new(&self.limits.rates, self.limits.enabled)
    }

    /// The gateway's chat settings (`[chat]`, `[presence]`; the rest at
    /// their defaults).
    pub fn chat(&self) -> roomcast_gateway::ChatConfig {
        roomcast_gateway::ChatConfig {
            typing_timeout: Duration::from_millis(self.chat.typing_timeout_ms),
            heartbeat_interval: Duration::from_secs(self.presence.heartbeat_secs),
            replay_buffer: self.chat.replay_buffer,
            ..roomcast_gateway::ChatConfig::default()
        }
    }

    /// The topic names.
    pub fn topics(&self) -> roomcast_bus::Topics {
        roomcast_bus::Topics {
            chat_out: self.bus.chat_out.clone(),
            chat_in: self.bus.chat_in.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_defaults_are_the_real_defaults() {
        let parsed: Config = Figment::new()
            .merge(Toml::string(DEFAULT_TOML))
            .extract()
            .unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn every_key_of_the_tree_is_documented() {
        fn walk(path: &str, value: &serde_json::Value) {
            for (key, v) in value.as_object().unwrap() {
                let full = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if v.is_object() {
                    assert!(
                        DEFAULT_TOML.contains(&format!("[{full}]")),
                        "section [{full}]"
                    );
                    walk(&full, v);
                } else {
                    assert!(DEFAULT_TOML.contains(&format!("\n{key} = ")), "{full}");
                }
            }
        }
        walk("", &serde_json::to_value(Config::default()).unwrap());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its large error
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "rc.toml",
                "listen = \"0.0.0.0:4000\"\n[auth]\ntoken_ttl_secs = 60\n",
            )?;
            jail.set_env("ROOMCAST_DATABASE_URL", "sqlite::memory:");
            jail.set_env("ROOMCAST_AUTH__JWT_SECRET", "s3cret");
            let c = Config::load(Some(Path::new("rc.toml"))).unwrap();
            assert_eq!(c.listen.port(), 4000);
            assert_eq!(c.auth.token_ttl_secs, 60);
            assert_eq!(c.auth.jwt_secret, "s3cret");
            assert_eq!(c.database_url, "sqlite::memory:");
            assert_eq!(c.log, "info");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its large error
    fn an_unknown_key_in_the_file_is_an_error_naming_the_closest_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "rc.toml",
                "listn = \"0.0.0.0:4000\"\n[http]\ndemo_pag = false\n",
            )?;
            let e = Config::load(Some(Path::new("rc.toml")))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("unknown key `listn` in rc.toml; did you mean `listen`?"),
                "{e}"
            );
            assert!(
                e.contains("`http.demo_pag`") && e.contains("`http.demo_page`"),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its large error
    fn trusted_proxies_are_addresses_or_networks() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "ROOMCAST_HTTP__TRUSTED_PROXIES",
                "[\"10.0.0.5\", \"172.16.0.0/12\"]",
            );
            let nets = Config::load(None).unwrap().serve().trusted_proxies;
            assert_eq!(nets.len(), 2);
            assert!(nets[0].contains(&"10.0.0.5".parse::<std::net::IpAddr>().unwrap()));
            assert!(nets[1].contains(&"172.20.1.1".parse::<std::net::IpAddr>().unwrap()));
            jail.set_env("ROOMCAST_HTTP__TRUSTED_PROXIES", "[\"10.0.0\"]");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("not an IP address or network"), "{e}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its large error
    fn the_bus_kind_is_one_of_four() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ROOMCAST_BUS__KIND", "nats");
            assert_eq!(Config::load(None).unwrap().bus.kind, BusKind::Nats);
            jail.set_env("ROOMCAST_BUS__KIND", "natz");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(
                e.contains("natz") && e.to_lowercase().contains("bus.kind"),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its large error
    fn users_are_invited_unless_the_server_lets_anyone_add_them() {
        use roomcast_core::AddPolicy;
        figment::Jail::expect_with(|jail| {
            let policy = || Config::load(None).map(|c| c.rooms.default_add_policy);
            assert_eq!(policy().unwrap(), AddPolicy::Invite);
            jail.set_env("ROOMCAST_ROOMS__DEFAULT_ADD_POLICY", "anyone");
            assert_eq!(policy().unwrap(), AddPolicy::Anyone);
            jail.set_env("ROOMCAST_ROOMS__DEFAULT_ADD_POLICY", "everyone");
            let e = policy().unwrap_err().to_string();
            assert!(e.contains("everyone"), "{e}");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API returns its large error
    fn a_bad_value_is_an_error_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ROOMCAST_LISTEN", "not an address");
            let e = Config::load(None).unwrap_err();
            assert!(e.to_string().to_lowercase().contains("listen"), "{e}");
            Ok(())
        });
    }
}
