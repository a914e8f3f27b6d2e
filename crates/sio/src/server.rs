//! The server's shared state: settings, handler, the Engine.IO sessions of
//! this node, the namespaces; creating sessions and ending them.
//!
//! Ending is centralised in [`Inner::close_client`]: whoever notices first
//! (the connection's task, a POST, the heartbeat sweep, a slow-consumer
//! push, a shutdown) marks the session closed, removes it, takes its sockets
//! out of their rooms and calls the disconnect hook, once. The connection's
//! task (or pending GET) is woken and sends the close on the wire.
//!
//! Lock order: a client's state, then a namespace; the session map and a
//! connection's outbox are never held while another lock is taken.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use serde_json::json;

use crate::codec::binary::Reassembly;
use crate::codec::engine::Packet;
use crate::config::{Config, DisconnectReason, Sid};
use crate::engine::outbox::{EngineConn, Frame, Transport};
use crate::handler::Handler;
use crate::message::Message;
use crate::namespace::Namespace;
use crate::peer::{Slot, Slots};
use crate::socket::{Conn, Socket};

/// What sockets and namespaces need of the server, with the handler type erased.
pub(crate) trait ServerOps<D>: Send + Sync {
    /// The outgoing queue bound.
    fn max_buffer(&self) -> usize;
    /// End a whole connection.
    fn close_client(&self, client: &Arc<Client<D>>, reason: DisconnectReason);
    /// Take one socket out of its namespace, telling the client if asked.
    fn disconnect_socket(
        &self,
        socket: &Arc<Socket<D>>,
        reason: DisconnectReason,
        tell_client: bool,
    );
}

/// Per-connection Socket.IO state.
pub(crate) struct ClientState<D> {
    pub reassembly: Reassembly,
    pub sockets: Vec<Arc<Socket<D>>>,
    /// CONNECTs being decided off the connection's task (admission,
    /// recovery), at most [`crate::dispatch::MAX_DECIDING`].
    pub deciding: u8,
}

/// One Engine.IO session and the sockets multiplexed on it.
pub(crate) struct Client<D> {
    pub engine: EngineConn,
    state: Mutex<ClientState<D>>,
    /// The slot this session holds for its address while no socket of it
    /// has connected to a namespace ([`Config::max_pending_per_ip`]).
    pending: Mutex<Option<Slot>>,
}

impl<D> Client<D> {
    pub fn state(&self) -> MutexGuard<'_, ClientState<D>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The socket of this client in namespace `nsp`.
    pub fn socket(&self, nsp: &str) -> Option<Arc<Socket<D>>> {
        self.state()
            .sockets
            .iter()
            .find(|s| &*s.ns.name == nsp)
            .cloned()
    }
}

/// A session just opened, and its open packet.
pub(crate) type Opened<D> = (Arc<Client<D>>, String);

/// Why a handshake was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// [`Handler::allow_handshake`] said no; retry after this long.
    RateLimited(std::time::Duration),
    /// The address holds its cap of sessions with no socket connected.
    TooManyPending,
}

/// The server's shared state.
pub(crate) struct Inner<H: Handler> {
    pub config: Config,
    pub handler: Arc<H>,
    pub namespaces: HashMap<String, Arc<Namespace<H::Data>>>,
    clients: Mutex<HashMap<Sid, Arc<Client<H::Data>>>>,
    /// Sessions per client address with no socket connected yet.
    pending: Slots,
    epoch: Instant,
    sweeping: AtomicBool,
    next_key: AtomicU64,
    this: Weak<Self>,
}

impl<H: Handler> Inner<H> {
    pub fn new(config: Config, handler: Arc<H>) -> Arc<Self> {
        Arc::new_cyclic(|this: &Weak<Self>| {
            let ops: Weak<dyn ServerOps<H::Data>> = this.clone();
            let namespaces = config
                .namespaces
                .iter()
                .map(|name| (name.clone(), Arc::new(Namespace::new(name, ops.clone()))))
                .collect();
            let pending = Slots::new(config.max_pending_per_ip, &[]);
            Self {
                config,
                handler,
                namespaces,
                clients: Mutex::default(),
                pending,
                epoch: Instant::now(),
                sweeping: AtomicBool::new(false),
                next_key: AtomicU64::new(1),
                this: this.clone(),
            }
        })
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<Sid, Arc<Client<H::Data>>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This server, owned (`None` while it is being dropped).
    pub fn arc(&self) -> Option<Arc<Self>> {
        self.this.upgrade()
    }

    /// Milliseconds since the server started (the heartbeat clock).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A fresh socket key.
    pub fn next_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// Open a session on `transport` for a client at `ip` (if known);
    /// returns it and its open packet (`0{...}`), or why it is refused: the
    /// handler's [`Handler::allow_handshake`], or the address already holds
    /// [`Config::max_pending_per_ip`] sessions that never connected.
    pub fn handshake(
        &self,
        transport: Transport,
        ip: Option<IpAddr>,
    ) -> Result<Opened<H::Data>, Refused> {
        if let Err(retry_after) = self.handler.allow_handshake(ip) {
            return Err(Refused::RateLimited(retry_after));
        }
        let slot = match ip {
            Some(ip) => self
                .pending
                .take(ip)
                .map_err(|()| Refused::TooManyPending)?,
            None => None,
        };
        self.ensure_sweep();
        let sid = Sid::random();
        let client = Arc::new(Client {
            engine: EngineConn::new(sid, transport, self.now_ms()),
            state: Mutex::new(ClientState {
                reassembly: Reassembly::default(),
                sockets: Vec::new(),
                deciding: 0,
            }),
            pending: Mutex::new(slot),
        });
        self.clients().insert(sid, client.clone());
        let upgrades: &[&str] = if transport == Transport::Polling {
            &["websocket"]
        } else {
            &[]
        };
        let open = json!({
            "sid": sid.as_str(),
            "upgrades": upgrades,
            "pingInterval": self.config.ping_interval.as_millis() as u64,
            "pingTimeout": self.config.ping_timeout.as_millis() as u64,
            "maxPayload": self.config.max_payload,
        });
        Ok((client, format!("0{open}")))
    }

    /// `client` is no longer pending: a socket of it connected, or it
    /// closed. Its slot is freed.
    pub fn settle(&self, client: &Client<H::Data>) {
        drop(
            client
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
    }

    fn ensure_sweep(&self) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(crate::engine::heartbeat::sweep(self.this.clone()));
            }
            Err(_) => self.sweeping.store(false, Ordering::Release),
        }
    }

    /// The session `sid`, if open.
    pub fn client(&self, sid: &Sid) -> Option<Arc<Client<H::Data>>> {
        self.clients().get(sid).cloned()
    }

    /// Every open session.
    pub fn all_clients(&self) -> Vec<Arc<Client<H::Data>>> {
        self.clients().values().cloned().collect()
    }

    /// Visit every open session under the session map's lock (the sweep).
    pub fn for_each_client(&self, mut f: impl FnMut(&Arc<Client<H::Data>>)) {
        for client in self.clients().values() {
            f(client);
        }
    }

    /// Open sessions.
    pub fn client_count(&self) -> usize {
        self.clients().len()
    }

    /// Queue engine-level frames (pings, the open packet); a full queue
    /// closes the session.
    pub fn push(&self, client: &Arc<Client<H::Data>>, frames: &[Frame]) {
        if client.engine.push(frames, self.config.max_buffer_size)
            == Err(crate::engine::outbox::PushError::Full)
        {
            self.close_client(client, DisconnectReason::Overflow);
        }
    }

    /// Handle one Engine.IO packet from a client (either transport).
    pub fn on_engine_packet(
        &self,
        client: &Arc<Client<H::Data>>,
        packet: Packet,
    ) -> Result<(), DisconnectReason> {
        match packet {
            Packet::Message(text) => self.on_sio_text(client, &text),
            Packet::Binary(data) => self.on_sio_binary(client, data),
            Packet::Pong(false) => {
                client.engine.pong();
                Ok(())
            }
            Packet::Close => Err(DisconnectReason::TransportClose),
            Packet::Noop | Packet::Ping(false) => Ok(()),
            Packet::Open(_) | Packet::Ping(true) | Packet::Pong(true) | Packet::Upgrade => {
                Err(DisconnectReason::TransportError)
            }
        }
    }
}

impl<H: Handler> ServerOps<H::Data> for Inner<H> {
    fn max_buffer(&self) -> usize {
        self.config.max_buffer_size
    }

    fn close_client(&self, client: &Arc<Client<H::Data>>, reason: DisconnectReason) {
        if !client.engine.close(reason) {
            return;
        }
        tracing::debug!(sid = %client.engine.sid, %reason, "session closed");
        self.clients().remove(&client.engine.sid);
        self.settle(client);
        let sockets = {
            let mut st = client.state();
            st.reassembly = Reassembly::default();
            std::mem::take(&mut st.sockets)
        };
        for socket in sockets {
            if socket.mark_disconnected() {
                socket.ns.remove(socket.key);
                self.handler.on_disconnect(&Conn(socket), reason);
            }
        }
    }

    fn disconnect_socket(
        &self,
        socket: &Arc<Socket<H::Data>>,
        reason: DisconnectReason,
        tell_client: bool,
    ) {
        if !socket.mark_disconnected() {
            return;
        }
        socket
            .client
            .state()
            .sockets
            .retain(|s| !Arc::ptr_eq(s, socket));
        socket.ns.remove(socket.key);
        if tell_client {
            let msg = Message::disconnect(&socket.ns.name);
            let _ = socket
                .client
                .engine
                .push(msg.frames(), self.config.max_buffer_size);
        }
        self.handler.on_disconnect(&Conn(socket.clone()), reason);
    }
}
