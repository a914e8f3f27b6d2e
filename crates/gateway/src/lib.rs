//! The realtime tier: holds the sockets, consumes `chat.out` and emits to them.
//!
//! # Layout
//! - [`transport`]: the Socket.IO protocol layer behind a boundary of our own
//!   ([`transport::Handler`], [`transport::Conn`], [`transport::Transport`]).
//!   Today it wraps socketioxide; nothing else in roomcast names socketioxide,
//!   so the layer can be replaced without touching the chat logic.
//! - [`chat`]: the chat handlers (`joinRoom`, `joinUser`) and their ACKs.
//! - [`membership`]: how `joinRoom` learns whether the caller is a member.
//! - [`consumer`]: the `chat.out` consumer: drops duplicates, emits to rooms.
//!
//! Socket.IO rooms are named `room:<roomId>` and `user:<userId>`.

pub mod chat;
pub mod consumer;
pub mod membership;
pub mod transport;

use std::sync::Arc;

use roomcast_auth::Tokens;
use roomcast_bus::{Bus, Topics};
use tokio_util::sync::CancellationToken;

pub use membership::Membership;
pub use transport::{SocketIoConfig, Transport, TransportLayer};

/// Everything the gateway needs.
pub struct GatewayDeps {
    /// Token verification.
    pub tokens: Arc<Tokens>,
    /// Membership checks for `joinRoom`.
    pub membership: Arc<dyn Membership>,
    /// The bus to consume `chat.out` from.
    pub bus: Arc<dyn Bus>,
    /// Topic names.
    pub topics: Topics,
    /// Protocol settings.
    pub socketio: SocketIoConfig,
    /// This realtime node's unique name (its `chat.out` subscription).
    pub node: String,
}

/// A running gateway: the HTTP layer to mount and the handle to stop it.
pub struct Gateway {
    /// The tower layer serving `/socket.io/`.
    pub layer: TransportLayer,
    /// Emits and shutdown.
    pub transport: Transport,
    /// The `chat.out` consumer task; ends when the shutdown token fires.
    pub consumer: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Build the Socket.IO layer and start consuming `chat.out`. The
    /// subscription is open when this returns, so nothing published afterwards
    /// is missed.
    pub async fn start(
        deps: GatewayDeps,
        shutdown: CancellationToken,
    ) -> Result<Self, roomcast_bus::BusError> {
        let handler = Arc::new(chat::ChatHandler::new(deps.tokens, deps.membership));
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
        let consumer = tokio::spawn(consumer::run(sub, transport.clone(), shutdown));
        Ok(Self {
            layer,
            transport,
            consumer,
        })
    }
}
