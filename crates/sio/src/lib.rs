//! roomcast-sio: a lean Engine.IO v4 / Socket.IO v5 server on hyper 1 and
//! tokio, built to hold as little memory as possible per idle connection
//! (the target is ≤ 4 KiB of process memory, kernel socket aside).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use roomcast_sio::{Ack, Config, ConnectInfo, Conn, Event, Handler, Refusal, SocketIo};
//! struct Echo;
//! #[async_trait::async_trait]
//! impl Handler for Echo {
//!     type Data = ();
//!     fn authenticate(&self, _: ConnectInfo<'_>) -> Result<(), Refusal> { Ok(()) }
//!     async fn on_event(&self, conn: Conn<()>, event: Event, _ack: Option<Ack>) {
//!         let _ = conn.emit(&event.name, &event.payload);
//!     }
//! }
//! # async fn run() -> std::io::Result<()> {
//! let io = SocketIo::new(Config::default(), Arc::new(Echo));
//! let app = axum::Router::new().layer(io.layer());
//! let listener = roomcast_sio::listen("127.0.0.1:3000".parse().unwrap())?;
//! roomcast_sio::serve(listener, app, std::future::pending()).await
//! # }
//! ```
//!
//! # Layout
//! - [`codec`]: the wire formats, free of I/O — Engine.IO packets
//!   ([`codec::engine`]), the long-polling payload ([`codec::payload`]),
//!   Socket.IO packets ([`codec::socket`]) and their binary attachments
//!   ([`codec::binary`]), websocket frames ([`codec::ws`]).
//! - [`engine`]: Engine.IO sessions — each session's bounded outgoing queue
//!   and heartbeat clock ([`engine::outbox`]), the HTTP service and layer
//!   ([`engine::service`]), long-polling ([`engine::polling`]), the
//!   websocket task ([`engine::websocket`]), one heartbeat sweep for all
//!   sessions ([`engine::heartbeat`]).
//! - `server`, `dispatch`: the shared state and how sessions end; Socket.IO
//!   packets from clients (CONNECT with auth before the reply, events, acks).
//! - [`Handler`], [`Payload`], [`Event`] ([`handler`]): what the application
//!   implements and receives.
//! - [`Conn`], [`Ack`] ([`socket`]): one socket — emit, ack, join, leave.
//! - `namespace`: rooms of one namespace on this node.
//! - [`Message`] ([`message`]): a packet encoded once for any number of sockets.
//! - [`SocketIo`], [`Nsp`] ([`io`]): serving, broadcasting (optionally
//!   except a room), moving a room's sockets into or out of another, closing.
//! - [`config`]: [`Config`], session ids, [`DisconnectReason`].
//! - [`listen`], [`serve`], [`serve_with`]: a listener with a 1024 backlog
//!   and an HTTP/1 accept loop (`TCP_NODELAY`, upgrades handing back the
//!   `TcpStream`, every phase before the upgrade bounded by [`ServeConfig`]).
//! - [`peer`]: the peer and client address of each request ([`PeerAddr`],
//!   [`ClientIp`], `X-Forwarded-For` from trusted proxies only), and the
//!   per-address connection cap.
//!
//! # Memory per connection
//! One task per connection and nothing else per connection that lives
//! while idle: no channel (a `Mutex<VecDeque>` that is empty and
//! unallocated when idle, woken by a `Notify`), no timer (one sweep task for
//! all sessions), no read buffer (readiness is awaited without one), no
//! hyper buffers (the `TcpStream` is taken back after the upgrade, and the
//! unread part of hyper's read buffer is copied out so the buffer is freed).
//! What stays per idle websocket connection: the task (its future is under
//! 1 KiB, checked by a test), tokio's I/O registration, the session
//! ([`engine::outbox::EngineConn`] plus the per-connection Socket.IO state),
//! one socket per joined namespace, and their map and room entries.
//!
//! Measured with `examples/sio-idle-clients.rs` against
//! `examples/sio-conformance.rs` (release build, 15,000 idle websocket
//! connections each joined to `/`, glibc malloc): **2.4–2.7 KiB of RSS per
//! connection**, both with [`serve`] and with `axum::serve`. Keeping hyper's
//! read buffer alive (the `read_buf` of the upgrade) cost 7.3 KiB; a read
//! buffer held while idle cost 10.4 KiB.

//!
//! The gateway (`crates/gateway/src/transport.rs`) serves roomcast's chat
//! layer through this crate: its sockets carry a 16-byte [`Handler::Data`]
//! (user id and connection id), broadcasts go through [`SocketIo::emit`],
//! [`SocketIo::emit_where`] and, with connection state recovery
//! ([`Config::recovery`], [`Handler::recover`]), [`SocketIo::emit_each`],
//! which appends each socket's own offset; `roomcast` serves with [`serve`].

pub mod codec;
pub mod config;
mod dispatch;
pub mod engine;
pub mod handler;
pub mod io;
pub mod message;
mod namespace;
pub mod peer;
mod serve;
mod server;
pub mod socket;

pub use config::{Config, DisconnectReason, Sid};
pub use handler::{ConnectInfo, Event, Handler, Payload, Refusal, Restore};
pub use io::{Nsp, SocketIo};
pub use message::Message;
pub use peer::{ClientIp, PeerAddr};
pub use serve::{HttpService, ServeConfig, listen, serve, serve_with};
pub use socket::{Ack, AckError, Conn, EmitError};
