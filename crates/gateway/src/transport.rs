//! The Socket.IO protocol boundary. The chat layer implements [`Handler`] and
//! talks to sockets only through [`Conn`], [`Ack`] and [`Transport`]; this file
//! is the only one that knows the protocol is served by our own crate,
//! `roomcast-sio`.
//!
//! Guarantees this layer gives the chat layer:
//! - [`Handler::authenticate`] runs **before** the CONNECT reply is sent; a
//!   refusal becomes a `connect_error` whose message is the refusal's text.
//! - Dispatch does not depend on anything registered per socket, so an event
//!   sent the instant the client sees `connect` is never dropped for lack of
//!   a handler (the early-event trap measured with socketioxide).
//! - [`Handler::on_connect`] runs once per accepted socket, right after its
//!   CONNECT reply is queued and before any of its events is dispatched;
//!   [`Handler::on_disconnect`] runs exactly once for each socket that saw
//!   `on_connect`, always after it, once the socket has left its rooms.
//! - Events of one socket may be handled concurrently (each event's handler
//!   is its own task), and one may still be in flight after `on_disconnect`.
//!
//! Broadcasts are encoded once and the same bytes are queued to every socket
//! they reach. A payload that arrives as JSON text (a `chat.out` envelope's,
//! a logged event's) is written into the frame as it is
//! ([`serde_json::value::RawValue`]): never parsed, never encoded again. Limits: each connection queues at most
//! [`SocketIoConfig::max_buffer_size`] outgoing frames. When an emit finds
//! the queue full, the connection is closed as a slow consumer (its client
//! sees the transport close and reconnects, then reloads or replays), never
//! silently skipped.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use roomcast_core::{SessionId, UserId};
use roomcast_sio::{ConnectInfo, DisconnectReason, Event, SocketIo, engine::service};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Protocol settings (Engine.IO ping interval and timeout, `maxPayload`,
/// the per-connection queue bound, the connect timeout, long-polling on or
/// off); see [`roomcast_sio::Config`] for each field and its default.
pub type SocketIoConfig = roomcast_sio::Config;

/// A refused CONNECT: the `connect_error`'s message and optional data.
pub type Refusal = roomcast_sio::Refusal;

/// The tower layer that serves `/socket.io/`.
pub type TransportLayer = service::SioLayer<Adapter>;

/// What the chat layer plugs into the protocol layer.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// May a client at `ip` open a session now? `Err(wait)` answers its
    /// handshake 429 with `Retry-After`. The default allows all.
    fn allow_handshake(&self, _ip: Option<IpAddr>) -> Result<(), Duration> {
        Ok(())
    }

    /// Decide who a connecting client is from its CONNECT `auth` payload.
    /// `Err` refuses the connection with a `connect_error` of the refusal's
    /// message (and data, if any).
    fn authenticate(&self, auth: Option<&Value>) -> Result<Identity, Refusal>;

    /// Whether [`Handler::admit`] must check `who` (then the CONNECT is
    /// decided off its connection's task). The default: no.
    fn admits(&self, _who: &Identity) -> bool {
        false
    }

    /// After [`Handler::authenticate`], before the reply: may `who` connect?
    /// Asynchronous (a store or another tier answers); `Err` refuses as
    /// `authenticate` does. Called only if [`Handler::admits`].
    async fn admit(&self, _who: Identity) -> Result<(), Refusal> {
        Ok(())
    }

    /// Connection state recovery: `user` (from the token) reconnects with the
    /// last `offset` of an earlier session. `Some` continues it (see
    /// [`crate::recovery`]); `None` (the default) starts a fresh one.
    async fn recover(&self, _user: UserId, _offset: &str) -> Option<Restore> {
        None
    }

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

/// Who a connecting client is: the token's user and login session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user.
    pub user: UserId,
    /// The login session the token belongs to (`None`: a token of none).
    pub session: Option<SessionId>,
}

/// What the protocol layer keeps with each socket: 48 bytes.
#[derive(Clone, Copy, Debug)]
pub struct SocketData {
    user: UserId,
    id: ConnId,
    /// Its login session, ended by `sessionRevoked`.
    session: Option<SessionId>,
}

/// One connected socket, as the chat layer sees it.
#[derive(Clone)]
pub struct Conn(roomcast_sio::Conn<SocketData>);

impl Conn {
    /// The authenticated user (from the token, never from a payload).
    pub fn user(&self) -> UserId {
        self.0.user().user
    }

    /// This socket's id.
    pub fn id(&self) -> ConnId {
        self.0.user().id
    }

    /// Join a named room on this node.
    pub fn join(&self, room: String) {
        self.0.join(room);
    }

    /// Leave a named room.
    pub fn leave(&self, room: String) {
        self.0.leave(&room);
    }

    /// Send `event` with `payload` to this socket only (a replay), with the
    /// recovery `offset` as a last argument if given.
    pub fn emit(&self, event: &str, payload: &RawValue, offset: Option<String>) {
        if let Err(e) = self.0.emit_raw(event, payload.get(), offset.as_deref()) {
            tracing::debug!(error = %e, "could not send a replayed event");
        }
    }

    /// [`Conn::emit`] of a value encoded here.
    pub fn emit_json(&self, event: &str, payload: &impl Serialize, offset: Option<String>) {
        match serde_json::value::to_raw_value(payload) {
            Ok(raw) => self.emit(event, &raw, offset),
            Err(e) => tracing::error!(event, error = %e, "an event payload does not serialize"),
        }
    }

    /// Close this socket's connection: its client sees the transport close
    /// and reconnects (with recovery, asking to continue its session).
    pub fn close(&self) {
        self.0.close(DisconnectReason::TransportError);
    }
}

/// What a successful [`Handler::recover`] runs on the socket right after its
/// CONNECT reply.
pub type Restore = Box<dyn FnOnce(&Conn) + Send>;

/// The reply to one event.
pub struct Ack(roomcast_sio::Ack);

impl Ack {
    /// Send the ACK payload (one argument).
    pub fn send(self, payload: &Value) {
        if let Err(e) = self.0.send_json(payload) {
            tracing::debug!(error = %e, "could not send ack");
        }
    }
}

/// Adapts a chat-layer [`Handler`] to the protocol crate's handler.
pub struct Adapter(Arc<dyn Handler>);

#[async_trait]
impl roomcast_sio::Handler for Adapter {
    type Data = SocketData;

    fn allow_handshake(&self, ip: Option<IpAddr>) -> Result<(), Duration> {
        self.0.allow_handshake(ip)
    }

    fn admits(&self, data: &SocketData) -> bool {
        self.0.admits(&Identity {
            user: data.user,
            session: data.session,
        })
    }

    async fn admit(&self, data: &SocketData) -> Result<(), Refusal> {
        let who = Identity {
            user: data.user,
            session: data.session,
        };
        self.0.admit(who).await
    }

    fn authenticate(&self, info: ConnectInfo<'_>) -> Result<SocketData, Refusal> {
        let who = self.0.authenticate(info.auth)?;
        Ok(SocketData {
            user: who.user,
            id: ConnId::next(),
            session: who.session,
        })
    }

    async fn recover(
        &self,
        data: &SocketData,
        _pid: &str,
        offset: &str,
    ) -> Option<roomcast_sio::Restore<SocketData>> {
        let restore = self.0.recover(data.user, offset).await?;
        Some(Box::new(move |conn: &roomcast_sio::Conn<SocketData>| {
            restore(&Conn(conn.clone()))
        }))
    }

    fn on_connect(&self, conn: &roomcast_sio::Conn<SocketData>) {
        self.0.on_connect(&Conn(conn.clone()));
    }

    async fn on_event(
        &self,
        conn: roomcast_sio::Conn<SocketData>,
        event: Event,
        ack: Option<roomcast_sio::Ack>,
    ) {
        let Event { name, payload } = event;
        let data = payload.args.into_iter().next();
        self.0.on_event(Conn(conn), name, data, ack.map(Ack)).await;
    }

    fn on_disconnect(&self, conn: &roomcast_sio::Conn<SocketData>, reason: DisconnectReason) {
        tracing::debug!(sid = %conn.id(), %reason, "socket disconnected");
        let data = conn.user();
        self.0.on_disconnect(data.id, data.user);
    }
}

/// Emitting to this node's sockets, and shutting them down.
#[derive(Clone)]
pub struct Transport {
    io: SocketIo<Adapter>,
}

impl Transport {
    /// Build the layer and the handle, wiring `handler` in.
    pub fn build(cfg: &SocketIoConfig, handler: Arc<dyn Handler>) -> (TransportLayer, Self) {
        let io = SocketIo::new(cfg.clone(), Arc::new(Adapter(handler)));
        (io.layer(), Self { io })
    }

    /// Emit `event` with `payload` to every socket of this node in `room`,
    /// written into one frame as it is. A connection whose queue is full is
    /// closed (see the module docs).
    pub fn emit(&self, room: String, event: &str, payload: &RawValue) {
        self.io
            .emit_raw_each(&room, |_| true, event, payload.get(), |_| None);
    }

    /// [`Transport::emit`] of a value encoded here, once.
    pub fn emit_json(&self, room: String, event: &str, payload: &impl Serialize) {
        match serde_json::value::to_raw_value(payload) {
            Ok(raw) => self.emit(room, event, &raw),
            Err(e) => tracing::error!(event, error = %e, "an event payload does not serialize"),
        }
    }

    /// A logged room event: [`Self::emit`], skipping the sockets `skip`,
    /// each socket's copy with its recovery offset last (from `offset`; the
    /// shared encoding, no copy, when it gives `None`, as with recovery off).
    pub fn emit_logged(
        &self,
        room: String,
        event: &str,
        payload: &RawValue,
        skip: &[ConnId],
        offset: impl Fn(ConnId) -> Option<String>,
    ) {
        self.io.emit_raw_each(
            &room,
            |s| !skip.contains(&s.id),
            event,
            payload.get(),
            |s| offset(s.id),
        );
    }

    /// Emit to every socket of this node in `room` except those authenticated
    /// as `user` (whether or not they joined `user:<id>`).
    pub fn emit_except_user(&self, room: String, user: UserId, event: &str, payload: &RawValue) {
        self.io
            .emit_raw_each(&room, |s| s.user != user, event, payload.get(), |_| None);
    }

    /// Disconnect every socket of this node in login session `session` of
    /// `user` (it ended); how many.
    pub fn disconnect_session(&self, user: UserId, session: SessionId) -> usize {
        self.io
            .disconnect_where(|s| s.user == user && s.session == Some(session))
    }

    /// Make every socket of this node authenticated as `user` leave `room`
    /// (at once: an emit to `room` after this returns reaches none of them).
    pub fn leave_user(&self, user: UserId, room: String) {
        self.io.leave_where(&room, |s| s.user == user);
    }

    /// Close every connection, spread evenly over `window` so their clients
    /// (which see their transport close and reconnect, elsewhere or here once
    /// the node is back) do not reconnect all at once (graceful drain).
    pub async fn drain(&self, window: std::time::Duration) {
        self.io.drain(window).await;
    }

    /// Sockets of this node in `room` now.
    pub fn room_len(&self, room: &str) -> usize {
        self.io.room_len(room)
    }

    /// Sockets connected to this node now.
    pub fn connected(&self) -> usize {
        self.io.connected()
    }
}
