//! The realtime tier: holds the sockets, consumes `chat.out` and emits to them.
//!
//! # Layout
//! - [`transport`]: the Socket.IO protocol layer behind a boundary of our own
//!   ([`transport::Handler`], [`transport::Conn`], [`transport::Transport`]).
//!   It is served by our own protocol crate, `roomcast-sio`; nothing else in
//!   the gateway names that crate.
//! - [`chat`]: the [`transport::Handler`]: authentication, `joinRoom`,
//!   `joinUser`, `leaveRoom`, the connect/disconnect hooks, dispatch.
//! - [`commands`]: `sendMessage`, `markMessageRead`, `typing`: checks, then
//!   publish; ACK after the publish.
//! - [`typing`]: per-(user, room) typing states, relays and expiry.
//! - [`rate`]: the per-socket token bucket limiting `typing`.
//! - [`admission`]: a signed token of a user who does not exist is refused
//!   at CONNECT (with a short positive cache of users who do).
//! - [`guard`]: connection attempts per address, sockets per user, and the
//!   per-user rate limits of `sendMessage` and the joins.
//! - [`presence`]: sockets per user on this node, `presenceChanged` and
//!   `nodeHeartbeat` on `chat.in`.
//! - [`membership`]: how the gateway learns whether the caller is a member;
//!   [`cache`]: the short positive cache in front of it.
//! - [`publish`]: what the gateway publishes, and to which topic.
//! - [`consumer`]: the `chat.out` consumer: drops duplicates, emits to rooms.
//! - [`replay`]: each room's recent logged events, and the seam between a
//!   rejoin's replay (`joinRoom {sinceEventSeq}`) and the live stream.
//! - [`config`]: [`ChatConfig`], the chat layer's settings.
//!
//! Socket.IO rooms are named `room:<roomId>` and `user:<userId>`.
//!
//! Background tasks (all end when the shutdown token fires): the `chat.out`
//! consumer, the presence publisher (which then announces this node's users
//! offline, bounded by [`ChatConfig::shutdown_offline_timeout`]) and the
//! heartbeat.

pub mod admission;
pub mod cache;
pub mod chat;
pub mod commands;
pub mod config;
pub mod consumer;
pub mod guard;
pub mod membership;
pub mod presence;
pub mod publish;
pub mod rate;
pub mod recovery;
pub mod replay;
pub mod transport;
pub mod typing;

#[cfg(test)]
mod test_support;

use std::sync::Arc;

use roomcast_auth::Tokens;
use roomcast_bus::{Bus, Topics};
use tokio_util::sync::CancellationToken;

pub use config::ChatConfig;
pub use guard::GuardConfig;
pub use membership::Membership;
pub use transport::{SocketIoConfig, Transport, TransportLayer};

/// Everything the gateway needs.
pub struct GatewayDeps {
    /// Token verification.
    pub tokens: Arc<Tokens>,
    /// Membership checks for `joinRoom` and the socket commands.
    pub membership: Arc<dyn Membership>,
    /// The bus: `chat.out` is consumed from it; commands, presence and
    /// typing are published on it.
    pub bus: Arc<dyn Bus>,
    /// Topic names.
    pub topics: Topics,
    /// Protocol settings.
    pub socketio: SocketIoConfig,
    /// This realtime node's unique name (its `chat.out` subscription). Its
    /// presence events name `<node>:<start time, Unix ms>`, one per process.
    pub node: String,
    /// Typing, presence and membership-cache settings.
    pub chat: ChatConfig,
    /// Caps and rate limits ([`guard`]).
    pub guard: GuardConfig,
}

/// A running gateway: the HTTP layer to mount and the handle to stop it.
pub struct Gateway {
    /// The tower layer serving `/socket.io/`.
    pub layer: TransportLayer,
    /// Emits and shutdown.
    pub transport: Transport,
    /// The background tasks (`chat.out` consumer, presence, heartbeat); they
    /// end when the shutdown token fires. Await them for a clean stop.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Build the Socket.IO layer and start consuming `chat.out`. The
    /// subscription is open when this returns, so nothing published afterwards
    /// is missed.
    pub async fn start(
        deps: GatewayDeps,
        shutdown: CancellationToken,
    ) -> Result<Self, roomcast_bus::BusError> {
        let cfg = deps.chat.sanitized();
        let publisher = publish::Publisher::new(deps.bus.clone(), deps.topics.clone());
        let cache = Arc::new(cache::MembershipCache::new(
            cfg.membership_cache_ttl,
            cfg.membership_cache_capacity,
        ));
        let commands = commands::Commands::new(
            deps.membership.clone(),
            cache.clone(),
            publisher.clone(),
            typing::TypingRelay::new(cfg.typing_timeout, cfg.typing_refresh, publisher.clone()),
            rate::RateLimits::new(cfg.typing_burst, cfg.typing_per_sec),
        );
        // Presence names this process, not just the node: after a crash and
        // restart under the same node name, the old instance's users are
        // still swept offline by the API once its heartbeats stop.
        let presence =
            presence::Presence::new(format!("{}:{}", deps.node, roomcast_core::now_ms()));
        let logs = replay::RoomLogs::new(cfg.replay_buffer, deps.socketio.recovery);
        let guard = Arc::new(guard::Guard::new(&deps.guard, presence.clone()));
        let admission = Arc::new(admission::Admission::new(deps.membership.clone()));
        let handler = Arc::new(chat::ChatHandler::new(
            deps.tokens,
            deps.membership,
            commands,
            presence.clone(),
            logs.clone(),
            guard,
            admission.clone(),
        ));
        let (layer, transport) = Transport::build(&deps.socketio, handler);
        let sub = deps
            .bus
            .subscribe(
                &deps.topics.chat_out,
                roomcast_bus::Mode::FanOut {
                    node: deps.node.clone(),
                },
            )
            .await?;
        let tasks = vec![
            tokio::spawn(consumer::run(
                sub,
                transport.clone(),
                consumer::Caches {
                    membership: cache,
                    admission,
                },
                logs,
                shutdown.clone(),
            )),
            tokio::spawn(presence.clone().run(
                publisher.clone(),
                cfg.shutdown_offline_timeout,
                shutdown.clone(),
            )),
            tokio::spawn(presence.heartbeat(publisher, cfg.heartbeat_interval, shutdown)),
        ];
        Ok(Self {
            layer,
            transport,
            tasks,
        })
    }
}
