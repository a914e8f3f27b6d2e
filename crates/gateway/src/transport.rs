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
//! - [`Handler::on_connect`] runs once per accepted socket, also during
//!   authentication (so before any of its events is dispatched), and
//!   [`Handler::on_disconnect`] runs exactly once for each socket that saw
//!   `on_connect`, always after it: from the disconnect callback, or, if the
//!   socket is torn down without one (its CONNECT reply could not be sent),
//!   when the socket is dropped.
//! - Events of one socket may be handled concurrently (socketioxide spawns a
//!   task per event), and one may still be in flight after `on_disconnect`.
//!
//! Limits: each socket has an outgoing buffer of [`SocketIoConfig::max_buffer_size`]
//! packets. When it is full an emit to that socket fails, is logged, and the
//! socket is disconnected so that its client reconnects and reloads (rather
//! than silently missing a message).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

    /// A socket was accepted (see the module docs for when). Runs inside the
    /// protocol layer: must not block or await; hand slow work to a task.
    fn on_connect(&self, _conn: &Conn) {}

    /// The socket `id` of `user` is gone; runs exactly once per
    /// [`Handler::on_connect`], after it. Must not block or await.
    fn on_disconnect(&self, _id: ConnId, _user: UserId) {}

    /// Handle one event. `ack` is `Some` when the client asked for an ACK.
    async fn on_event(&self, conn: Conn, event: String, data: Option<Value>, ack: Option<Ack>);
}

/// A socket's id on this node, unique for the life of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// A fresh id.
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One connected socket, as the chat layer sees it.
#[derive(Clone)]
pub struct Conn {
    socket: SocketRef,
    user: UserId,
    id: ConnId,
}

impl Conn {
    /// The authenticated user (from the token, never from a payload).
    pub fn user(&self) -> UserId {
        self.user
    }

    /// This socket's id.
    pub fn id(&self) -> ConnId {
        self.id
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
            emit_one(&socket, event, payload);
        }
    }

    /// Emit to every socket of this node in `room` except those authenticated
    /// as `user` (whether or not they joined `user:<id>`).
    pub fn emit_except_user(&self, room: String, user: UserId, event: &str, payload: &Value) {
        for socket in self.io.to(room).sockets() {
            if socket_user(&socket) != Some(user) {
                emit_one(&socket, event, payload);
            }
        }
    }

    /// Make every socket of this node authenticated as `user` leave `room`
    /// (at once: an emit to `room` after this returns reaches none of them).
    pub fn leave_user(&self, user: UserId, room: String) {
        for socket in self.io.to(room.clone()).sockets() {
            if socket_user(&socket) == Some(user) {
                socket.leave(room.clone());
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

/// The authenticated user of a socket, kept in its extensions.
#[derive(Clone, Copy)]
struct SocketUser(UserId);

fn socket_user(socket: &SocketRef) -> Option<UserId> {
    socket.extensions.get::<SocketUser>().map(|u| u.0)
}

/// Emit to one socket; a full buffer disconnects it (see the module docs).
fn emit_one(socket: &SocketRef, event: &str, payload: &Value) {
    match socket.emit(event, payload) {
        Ok(()) => {}
        Err(SendError::Socket(SocketError::InternalChannelFull)) => {
            tracing::warn!(sid = %socket.id, event, "socket buffer full; disconnecting it so the client reconnects and reloads");
            let _ = socket.clone().disconnect();
        }
        Err(e) => {
            tracing::debug!(sid = %socket.id, event, error = %e, "emit to a closing socket")
        }
    }
}

async fn connected(_s: SocketRef) {}

/// Calls [`Handler::on_disconnect`] once: from the disconnect callback, or
/// when dropped with the socket if that callback never ran.
struct Farewell {
    handler: Arc<dyn Handler>,
    id: ConnId,
    user: UserId,
    done: AtomicBool,
}

impl Farewell {
    fn finish(&self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            self.handler.on_disconnect(self.id, self.user);
        }
    }
}

impl Drop for Farewell {
    fn drop(&mut self) {
        self.finish();
    }
}

fn authenticate(
    socket: SocketRef,
    auth: Option<Value>,
    handler: Arc<dyn Handler>,
) -> Result<(), String> {
    let user = handler.authenticate(auth.as_ref())?;
    let id = ConnId::next();
    socket.extensions.insert(SocketUser(user));
    handler.on_connect(&Conn {
        socket: socket.clone(),
        user,
        id,
    });
    // Stored in the socket's disconnect callback: run by it, or dropped with
    // the socket (see `Farewell`).
    let farewell = Arc::new(Farewell {
        handler: handler.clone(),
        id,
        user,
        done: AtomicBool::new(false),
    });
    socket.on_disconnect(move || {
        farewell.finish();
        std::future::ready(())
    });
    // The closures are stored in the socket, so they must not hold the socket
    // (that would be a reference cycle, leaking every connection): they take
    // the socket from each event instead.
    socket.on_fallback(
        move |socket: SocketRef,
              Event(event): Event,
              TryData(data): TryData<Value>,
              ack: AckSender| {
            let handler = handler.clone();
            let conn = Conn { socket, user, id };
            async move {
                handler
                    .on_event(conn, event, data.ok(), Some(Ack(ack)))
                    .await;
            }
        },
    );
    Ok(())
}
