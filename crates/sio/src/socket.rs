//! One Socket.IO socket (a client's membership in one namespace) and the
//! handles the application gets for it: [`Conn`] to emit, join and leave,
//! [`Ack`] to answer an event.
//!
//! Emitting never blocks: it queues encoded frames on the connection (see
//! [`crate::engine::outbox`]). When the queue is full the connection is
//! closed as a slow consumer and the emit returns [`EmitError::Overflow`].

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::{DisconnectReason, Sid};
use crate::engine::outbox::PushError;
use crate::handler::Payload;
use crate::message::Message;
use crate::namespace::Namespace;
use crate::server::{Client, ServerOps};

/// Why an emit did not queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The socket or its connection is closed.
    #[error("socket closed")]
    Closed,
    /// The connection's queue was full: it has been closed as a slow consumer.
    #[error("outgoing queue full: connection closed as a slow consumer")]
    Overflow,
}

/// Why [`Conn::emit_with_ack`] got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The emit itself failed.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// No answer in time.
    #[error("ack timed out")]
    Timeout,
    /// The socket disconnected before answering.
    #[error("socket disconnected before the ack")]
    Disconnected,
}

#[derive(Default)]
struct Acks {
    next: u64,
    pending: HashMap<u64, oneshot::Sender<Payload>>,
}

/// A socket's state (shared by its [`Conn`] handles).
pub(crate) struct Socket<D> {
    pub key: u64,
    pub sid: Sid,
    pub ns: Arc<Namespace<D>>,
    pub client: Arc<Client<D>>,
    pub data: D,
    connected: AtomicBool,
    acks: Mutex<Acks>,
}

impl<D> Socket<D> {
    pub fn new(key: u64, ns: Arc<Namespace<D>>, client: Arc<Client<D>>, data: D) -> Self {
        let connected = AtomicBool::new(true);
        Self {
            key,
            sid: Sid::random(),
            ns,
            client,
            data,
            connected,
            acks: Mutex::default(),
        }
    }

    fn acks(&self) -> MutexGuard<'_, Acks> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a message to this socket.
    pub fn send(&self, msg: &Message) -> Result<(), EmitError> {
        let server = self.ns.server.upgrade().ok_or(EmitError::Closed)?;
        self.send_via(msg, &*server)
    }

    /// [`Socket::send`] with the server at hand (broadcasts).
    pub fn send_via(&self, msg: &Message, server: &dyn ServerOps<D>) -> Result<(), EmitError> {
        if !self.connected.load(Ordering::Acquire) {
            return Err(EmitError::Closed);
        }
        match self.client.engine.push(msg.frames(), server.max_buffer()) {
            Ok(()) => Ok(()),
            Err(PushError::Closed) => Err(EmitError::Closed),
            Err(PushError::Full) => {
                tracing::warn!(sid = %self.client.engine.sid, "outgoing queue full; closing the slow consumer");
                server.close_client(&self.client, DisconnectReason::Overflow);
                Err(EmitError::Overflow)
            }
        }
    }

    /// Mark disconnected (`true` the first time) and fail pending acks.
    pub fn mark_disconnected(&self) -> bool {
        let first = self.connected.swap(false, Ordering::AcqRel);
        if first {
            self.acks().pending = HashMap::new();
        }
        first
    }

    /// Deliver a client's ACK.
    pub fn resolve_ack(&self, id: u64, payload: Payload) {
        if let Some(tx) = self.acks().pending.remove(&id) {
            let _ = tx.send(payload);
        }
    }
}

/// Where an [`Ack`] goes, with the socket's data type erased.
trait AckSink: Send + Sync {
    fn send_ack(&self, id: u64, payload: &Payload) -> Result<(), EmitError>;
}

impl<D: Send + Sync> AckSink for Socket<D> {
    fn send_ack(&self, id: u64, payload: &Payload) -> Result<(), EmitError> {
        self.send(&Message::ack(&self.ns.name, id, payload))
    }
}

/// The answer owed to one client event that asked for an ack.
pub struct Ack {
    sink: Arc<dyn AckSink>,
    id: u64,
}

impl Ack {
    pub(crate) fn new<D: Send + Sync + 'static>(socket: Arc<Socket<D>>, id: u64) -> Self {
        Self { sink: socket, id }
    }

    /// Answer with these arguments.
    pub fn send(self, payload: &Payload) -> Result<(), EmitError> {
        self.sink.send_ack(self.id, payload)
    }

    /// Answer with one JSON argument.
    pub fn send_json(self, value: &Value) -> Result<(), EmitError> {
        self.send(&Payload::json(value.clone()))
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack").field("id", &self.id).finish()
    }
}

/// A handle to one connected socket.
pub struct Conn<D>(pub(crate) Arc<Socket<D>>);

impl<D> Clone for Conn<D> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<D> fmt::Debug for Conn<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("sid", &self.0.sid)
            .field("nsp", &self.0.ns.name)
            .finish()
    }
}

impl<D: Send + Sync + 'static> Conn<D> {
    /// The socket id (what the client sees as `socket.id`).
    pub fn id(&self) -> Sid {
        self.0.sid
    }

    /// The id of the underlying Engine.IO session.
    pub fn session_id(&self) -> Sid {
        self.0.client.engine.sid
    }

    /// The namespace.
    pub fn nsp(&self) -> &str {
        &self.0.ns.name
    }

    /// What [`crate::Handler::authenticate`] returned for this socket.
    pub fn user(&self) -> &D {
        &self.0.data
    }

    /// Whether the socket is still connected.
    pub fn is_connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// Join a room of this namespace on this node.
    pub fn join(&self, room: impl Into<Arc<str>>) {
        self.0.ns.join(self.0.key, room.into());
    }

    /// Leave a room.
    pub fn leave(&self, room: &str) {
        self.0.ns.leave(self.0.key, room);
    }

    /// The rooms this socket is in.
    pub fn rooms(&self) -> Vec<Arc<str>> {
        self.0.ns.rooms_of(self.0.key)
    }

    /// Emit an event to this socket.
    pub fn emit(&self, event: &str, payload: &Payload) -> Result<(), EmitError> {
        self.0
            .send(&Message::event(&self.0.ns.name, event, payload, None))
    }

    /// Emit an event whose one argument is already JSON text
    /// ([`Message::event_raw`]), with `last` as one more argument if given
    /// (a connection state recovery offset).
    pub fn emit_raw(&self, event: &str, arg: &str, last: Option<&str>) -> Result<(), EmitError> {
        let msg = Message::event_raw(&self.0.ns.name, event, arg);
        match last.and_then(|l| msg.with_last_arg(l)) {
            Some(with) => self.0.send(&with),
            None => self.0.send(&msg),
        }
    }

    /// Emit an event and wait up to `timeout` for the client's ack.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        payload: &Payload,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut acks = self.0.acks();
            let id = acks.next;
            acks.next += 1;
            acks.pending.insert(id, tx);
            id
        };
        let _forget = ForgetAck {
            socket: &self.0,
            id,
        };
        self.0
            .send(&Message::event(&self.0.ns.name, event, payload, Some(id)))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(payload)) => Ok(payload),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => Err(AckError::Timeout),
        }
    }

    /// Disconnect this socket from its namespace (the client gets a
    /// DISCONNECT and does not reconnect by itself).
    pub fn disconnect(&self) {
        if let Some(server) = self.0.ns.server.upgrade() {
            server.disconnect_socket(&self.0, DisconnectReason::ServerNamespaceDisconnect, true);
        }
    }

    /// Close the whole connection (every namespace of this client); the
    /// client's transport closes and it reconnects.
    pub fn close(&self, reason: DisconnectReason) {
        if let Some(server) = self.0.ns.server.upgrade() {
            server.close_client(&self.0.client, reason);
        }
    }
}

/// Drops a pending ack entry when its waiter goes away (timeout, cancel).
struct ForgetAck<'a, D> {
    socket: &'a Socket<D>,
    id: u64,
}

impl<D> Drop for ForgetAck<'_, D> {
    fn drop(&mut self) {
        self.socket.acks().pending.remove(&self.id);
    }
}
