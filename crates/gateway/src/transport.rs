//! The Socket.IO protocol boundary. The chat layer implements [`Handler`] and
//! talks to sockets only through [`Conn`], [`Ack`] and [`Transport`]; this file
//! is the only one that knows the protocol is served by socketioxide.
//!
//! Guarantees this layer gives the chat layer:
//! - [`Handler::authenticate`] runs **before** the CONNECT reply is sent; a
//!   refusal becomes a `connect_error` whose message is the refusal's text.
//! - The event dispatcher is attached during authentication, also before the
//!   CONNECT reply, so an event sent the instant the client sees `connect` is
//!   never dropped for lack of a handler (a race measured with socketioxide
//!   when handlers are registered in an async connect handler).
//!
//! Limits: each socket has an outgoing buffer of [`SocketIoConfig::max_buffer_size`]
//! packets. When it is full an emit to that socket fails, is logged, and the
//! socket is disconnected so that its client reconnects and reloads (rather
//! than silently missing a message).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use roomcast_core::UserId;
use serde_json::Value;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{SendError, SocketError, SocketIo, TransportType};

/// The tower layer that serves `/socket.io/`.
pub type TransportLayer = SocketIoLayer;

/// Protocol settings.
#[derive(Clone, Debug)]
pub struct SocketIoConfig {
    /// Engine.IO ping interval.
    pub ping_interval: Duration,
    /// How long to wait for a pong before closing.
    pub ping_timeout: Duration,
    /// Largest accepted incoming packet, bytes.
    pub max_payload: u64,
    /// Packets buffered per socket before emits to it fail.
    pub max_buffer_size: usize,
    /// How long a client may take to send CONNECT after the handshake.
    pub connect_timeout: Duration,
    /// Allow HTTP long-polling (otherwise websocket only).
    pub polling: bool,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 100_000,
            max_buffer_size: 1024,
            connect_timeout: Duration::from_secs(45),
            polling: true,
        }
    }
}

/// What the chat layer plugs into the protocol layer.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Decide who a connecting client is from its CONNECT `auth` payload.
    /// `Err(text)` refuses the connection with `text` as the `connect_error` message.
    fn authenticate(&self, auth: Option<&Value>) -> Result<UserId, String>;

    /// Handle one event. `ack` is `Some` when the client asked for an ACK.
    async fn on_event(&self, conn: Conn, event: String, data: Option<Value>, ack: Option<Ack>);
}

/// One connected socket, as the chat layer sees it.
#[derive(Clone)]
pub struct Conn {
    socket: SocketRef,
    user: UserId,
}

impl Conn {
    /// The authenticated user (from the token, never from a payload).
    pub fn user(&self) -> UserId {
        self.user
    }

    /// Join a named room on this node.
    pub fn join(&self, room: String) {
        self.socket.join(room);
    }

    /// Leave a named room.
    pub fn leave(&self, room: String) {
        self.socket.leave(room);
    }
}

/// The reply to one event.
pub struct Ack(AckSender);

impl Ack {
    /// Send the ACK payload (one argument).
    pub fn send(self, payload: &Value) {
        if let Err(e) = self.0.send(payload) {
            tracing::debug!(error = %e, "could not send ack");
        }
    }
}

/// Emitting to this node's sockets, and shutting them down.
#[derive(Clone)]
pub struct Transport {
    io: SocketIo,
}

impl Transport {
    /// Build the layer and the handle, wiring `handler` in.
    pub fn build(cfg: &SocketIoConfig, handler: Arc<dyn Handler>) -> (TransportLayer, Self) {
        let mut builder = SocketIo::builder()
            .ping_interval(cfg.ping_interval)
            .ping_timeout(cfg.ping_timeout)
            .max_payload(cfg.max_payload)
            .max_buffer_size(cfg.max_buffer_size)
            .connect_timeout(cfg.connect_timeout);
        if !cfg.polling {
            builder = builder.transports([TransportType::Websocket]);
        }
        let (layer, io) = builder.build_layer();
        io.ns(
            "/",
            connected.with(move |s: SocketRef, TryData(auth): TryData<Value>| {
                let handler = handler.clone();
                async move { authenticate(s, auth.ok(), handler) }
            }),
        );
        (layer, Self { io })
    }

    /// Emit `event` with `payload` to every socket of this node in `room`.
    /// A socket whose buffer is full is disconnected (see the module docs).
    pub fn emit(&self, room: String, event: &str, payload: &Value) {
        for socket in self.io.to(room).sockets() {
            match socket.emit(event, payload) {
                Ok(()) => {}
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    tracing::warn!(sid = %socket.id, event, "socket buffer full; disconnecting it so the client reconnects and reloads");
                    let _ = socket.disconnect();
                }
                Err(e) => {
                    tracing::debug!(sid = %socket.id, event, error = %e, "emit to a closing socket")
                }
            }
        }
    }

    /// Disconnect every socket (they reconnect elsewhere or later).
    pub async fn close(&self) {
        self.io.close().await;
    }

    /// Sockets connected to this node now.
    pub fn connected(&self) -> usize {
        self.io.sockets().len()
    }
}

async fn connected(_s: SocketRef) {}

fn authenticate(
    socket: SocketRef,
    auth: Option<Value>,
    handler: Arc<dyn Handler>,
) -> Result<(), String> {
    let user = handler.authenticate(auth.as_ref())?;
    // The closure is stored in the socket, so it must not hold the socket
    // (that would be a reference cycle, leaking every connection): it takes
    // the socket from each event instead.
    socket.on_fallback(
        move |socket: SocketRef,
              Event(event): Event,
              TryData(data): TryData<Value>,
              ack: AckSender| {
            let handler = handler.clone();
            let conn = Conn { socket, user };
            async move {
                handler
                    .on_event(conn, event, data.ok(), Some(Ack(ack)))
                    .await;
            }
        },
    );
    Ok(())
}
