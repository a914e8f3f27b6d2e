//! What an application plugs in: a [`Handler`] that authenticates each
//! namespace CONNECT, receives events, and hears of connects and
//! disconnects; and the [`Payload`] type events and acks carry.
//!
//! Ordering guarantees:
//! - [`Handler::authenticate`] runs before the CONNECT reply is queued and
//!   decides it: `Err(text)` becomes a CONNECT_ERROR `{"message": text}`.
//!   A handler whose [`Handler::admits`] is true for the socket then has
//!   [`Handler::admit`] (asynchronous) decide it too, off the connection's
//!   task; at most four CONNECTs per client
//!   are decided so at once.
//! - Dispatch does not depend on anything registered per socket, so an event
//!   sent the instant the client sees `connect` always reaches
//!   [`Handler::on_event`] (no early-event loss).
//! - [`Handler::on_connect`] runs right after the CONNECT reply is queued,
//!   so whatever it emits follows the reply.
//! - Each event's handler future is spawned as its own task: a slow handler
//!   never stalls the connection's reads, writes or heartbeat.
//! - Connection state recovery ([`crate::Config::recovery`]): a CONNECT
//!   that brings back `pid` and `offset` is authenticated first, then
//!   [`Handler::recover`] decides (asynchronously, before the reply) whether
//!   the socket continues its earlier session; if it does, the reply carries
//!   the same `pid` (the client sets `socket.recovered`), and the
//!   [`Restore`] it returned runs right after [`Handler::on_connect`], so
//!   what it emits (the missed events) follows the reply and precedes
//!   anything emitted later.

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;

use crate::codec::binary::{placeholder, placeholder_num};
use crate::config::DisconnectReason;
use crate::socket::{Ack, Conn};

/// The arguments of an event or an ack. Binary arguments stay in `args` as
/// `{"_placeholder":true,"num":n}` and their bytes are `attachments[n]`
/// (see [`Payload::binary`]), so a payload can be re-emitted untouched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Payload {
    /// The JSON arguments.
    pub args: Vec<Value>,
    /// The binary attachments the placeholders in `args` point to.
    pub attachments: Vec<Bytes>,
}

impl Payload {
    /// No arguments.
    pub fn empty() -> Self {
        Self::default()
    }

    /// One JSON argument.
    pub fn json(value: Value) -> Self {
        Self {
            args: vec![value],
            attachments: Vec::new(),
        }
    }

    /// These JSON arguments.
    pub fn args(args: Vec<Value>) -> Self {
        Self {
            args,
            attachments: Vec::new(),
        }
    }

    /// Append a JSON argument.
    pub fn with(mut self, value: Value) -> Self {
        self.args.push(value);
        self
    }

    /// Append a binary argument.
    pub fn with_binary(mut self, data: Bytes) -> Self {
        self.args.push(placeholder(self.attachments.len()));
        self.attachments.push(data);
        self
    }

    /// The first argument (the usual single-object payload).
    pub fn first(&self) -> Option<&Value> {
        self.args.first()
    }

    /// The bytes a placeholder argument stands for.
    pub fn binary(&self, value: &Value) -> Option<&Bytes> {
        let n = usize::try_from(placeholder_num(value)?).ok()?;
        self.attachments.get(n)
    }
}

/// One event received from a client.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// Its arguments.
    pub payload: Payload,
}

/// A namespace CONNECT being decided.
#[derive(Clone, Copy, Debug)]
pub struct ConnectInfo<'a> {
    /// The namespace, e.g. `/` or `/custom`.
    pub nsp: &'a str,
    /// The CONNECT packet's `auth` object, if any.
    pub auth: Option<&'a Value>,
}

/// What a successful [`Handler::recover`] runs on the new socket right after
/// its CONNECT reply and [`Handler::on_connect`]: rejoin its rooms, send
/// what it missed. Must not block.
pub type Restore<D> = Box<dyn FnOnce(&Conn<D>) + Send>;

/// A refused namespace CONNECT: the CONNECT_ERROR's `message`, and its
/// `data` if any (socket.io-client's `err.message` and `err.data`).
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// Shown as `err.message`.
    pub message: String,
    /// `err.data`: e.g. `{"code": "too_many_sockets"}`.
    pub data: Option<Value>,
}

impl Refusal {
    /// A refusal with `message` and `data`.
    pub fn with_data(message: impl Into<String>, data: Value) -> Self {
        Self {
            message: message.into(),
            data: Some(data),
        }
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Self {
            message,
            data: None,
        }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

/// The application side of the server.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// What [`Handler::authenticate`] learns about a socket (typically the
    /// user), kept with it and read back with [`Conn::user`].
    type Data: Send + Sync + 'static;

    /// May a client at `ip` (its [`crate::ClientIp`], when served by
    /// [`crate::serve_with`]) open an Engine.IO session now? `Err(retry)`
    /// answers the handshake 429 with `Retry-After`. The default allows all.
    fn allow_handshake(&self, ip: Option<std::net::IpAddr>) -> Result<(), std::time::Duration> {
        let _ = ip;
        Ok(())
    }

    /// Accept (with the socket's data) or refuse (with the CONNECT_ERROR
    /// message) a namespace CONNECT. Runs before the CONNECT reply.
    fn authenticate(&self, info: ConnectInfo<'_>) -> Result<Self::Data, Refusal>;

    /// Whether [`Handler::admit`] must check this socket's `data`. `false`
    /// (the default; or, say, an answer the handler already holds) decides
    /// the CONNECT on the connection's own task, with no spawn.
    fn admits(&self, data: &Self::Data) -> bool {
        let _ = data;
        false
    }

    /// After [`Handler::authenticate`] accepted it, and before the reply (and
    /// before [`Handler::recover`]): a check of the socket's data that needs
    /// I/O, e.g. that the token's user still exists. `Err` refuses the
    /// CONNECT as `authenticate` does. Called only if [`Handler::admits`]
    /// said so for `data`.
    async fn admit(&self, data: &Self::Data) -> Result<(), Refusal> {
        let _ = data;
        Ok(())
    }

    /// Connection state recovery: the CONNECT (already authenticated, as
    /// `data`) carried the private session id `pid` of an earlier session and
    /// the last `offset` the client received. `Some` continues that session
    /// (the reply carries the same `pid`; the restore runs after the reply);
    /// `None` starts a fresh one (a new `pid`, `socket.recovered === false`,
    /// and the client must rejoin and reload). The default never recovers.
    async fn recover(
        &self,
        data: &Self::Data,
        pid: &str,
        offset: &str,
    ) -> Option<Restore<Self::Data>> {
        let _ = (data, pid, offset);
        None
    }

    /// A socket joined its namespace; its CONNECT reply is already queued.
    fn on_connect(&self, conn: &Conn<Self::Data>) {
        let _ = conn;
    }

    /// One event. `ack` is `Some` when the client asked for an answer.
    async fn on_event(&self, conn: Conn<Self::Data>, event: Event, ack: Option<Ack>);

    /// A socket left its namespace, for `reason`. It has already left its
    /// rooms; emitting to it fails.
    fn on_disconnect(&self, conn: &Conn<Self::Data>, reason: DisconnectReason) {
        let _ = (conn, reason);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn binary_arguments_use_placeholders() {
        let p = Payload::json(json!({"a": 1}))
            .with_binary(Bytes::from_static(b"xy"))
            .with(json!(2))
            .with_binary(Bytes::from_static(b"z"));
        assert_eq!(p.args[1], json!({"_placeholder": true, "num": 0}));
        assert_eq!(p.binary(&p.args[3]).map(|b| &b[..]), Some(&b"z"[..]));
        assert_eq!(p.binary(&p.args[0]), None);
        assert_eq!(p.binary(&json!({"_placeholder": true, "num": 9})), None);
        assert_eq!(p.first(), Some(&json!({"a": 1})));
        assert_eq!(Payload::empty().first(), None);
    }
}
