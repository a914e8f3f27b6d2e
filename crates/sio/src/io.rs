//! [`SocketIo`]: the handle an application keeps to serve, broadcast, move
//! sockets between rooms and shut down.
//!
//! A broadcast encodes its packet once ([`Message`]) and queues the same
//! bytes to every socket it reaches; a socket whose queue is full is closed
//! as a slow consumer (see [`crate::engine::outbox`]) and not counted.

use std::sync::Arc;

use crate::config::{Config, DisconnectReason};
use crate::engine::service::{SioLayer, SioService};
use crate::handler::{Handler, Payload};
use crate::message::Message;
use crate::namespace::Namespace;
use crate::server::{Inner, ServerOps};
use crate::socket::Conn;

/// A Socket.IO server: build it, mount [`SocketIo::service`] or
/// [`SocketIo::layer`], keep it to emit.
pub struct SocketIo<H: Handler> {
    server: Arc<Inner<H>>,
}

impl<H: Handler> Clone for SocketIo<H> {
    fn clone(&self) -> Self {
        Self {
            server: self.server.clone(),
        }
    }
}

impl<H: Handler> SocketIo<H> {
    /// A server with these settings calling `handler`. The namespace `/` is
    /// always served, with those of [`Config::namespaces`].
    pub fn new(mut config: Config, handler: Arc<H>) -> Self {
        if !config.namespaces.iter().any(|n| n == "/") {
            config.namespaces.push("/".to_owned());
        }
        Self {
            server: Inner::new(config, handler),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.server.config
    }

    /// A tower service answering every request as Socket.IO (mount it on
    /// the Socket.IO path).
    pub fn service(&self) -> SioService<H> {
        SioService {
            server: self.server.clone(),
        }
    }

    /// A tower layer taking the Socket.IO path in front of an application.
    pub fn layer(&self) -> SioLayer<H> {
        SioLayer {
            server: self.server.clone(),
        }
    }

    /// A namespace's handle (`None` if it is not served).
    pub fn of(&self, nsp: &str) -> Option<Nsp<H::Data>> {
        self.server
            .namespaces
            .get(nsp)
            .map(|ns| Nsp { ns: ns.clone() })
    }

    fn root(&self) -> Nsp<H::Data> {
        match self.server.namespaces.get("/") {
            Some(ns) => Nsp { ns: ns.clone() },
            // `new` always adds `/`; an empty namespace is a safe fallback.
            None => Nsp {
                ns: Arc::new(Namespace::new("/", Arc::downgrade(&self.server) as _)),
            },
        }
    }

    /// Emit to every socket of `/` in `room`; returns how many it reached.
    pub fn emit(&self, room: &str, event: &str, payload: &Payload) -> usize {
        self.root().emit(room, event, payload)
    }

    /// Emit to the sockets of `/` in `room` that are not in `except`.
    pub fn emit_except(&self, room: &str, except: &str, event: &str, payload: &Payload) -> usize {
        self.root().emit_except(room, except, event, payload)
    }

    /// Emit to the sockets of `/` in `room` whose data passes `keep` (e.g.
    /// "every socket but the sender's user's"), still encoding once.
    pub fn emit_where(
        &self,
        room: &str,
        keep: impl Fn(&H::Data) -> bool,
        event: &str,
        payload: &Payload,
    ) -> usize {
        self.root().emit_where(room, keep, event, payload)
    }

    /// [`Nsp::emit_each`] on `/`.
    pub fn emit_each(
        &self,
        room: &str,
        keep: impl Fn(&H::Data) -> bool,
        event: &str,
        payload: &Payload,
        last: impl Fn(&H::Data) -> Option<String>,
    ) -> usize {
        self.root().emit_each(room, keep, event, payload, last)
    }

    /// [`Nsp::emit_raw_each`] on `/`.
    pub fn emit_raw_each(
        &self,
        room: &str,
        keep: impl Fn(&H::Data) -> bool,
        event: &str,
        arg: &str,
        last: impl Fn(&H::Data) -> Option<String>,
    ) -> usize {
        self.root().emit_raw_each(room, keep, event, arg, last)
    }

    /// Every socket of `/` in `room` whose data passes `pick` leaves `room`.
    pub fn leave_where(&self, room: &str, pick: impl Fn(&H::Data) -> bool) {
        for conn in self.root().sockets_in(room) {
            if pick(conn.user()) {
                conn.leave(room);
            }
        }
    }

    /// Disconnect every socket of `/` whose data passes `pick`, as
    /// [`Conn::disconnect`] does (the client sees `io server disconnect`);
    /// how many. Looks at every socket of `/`: for rare events (a session
    /// ended), not per message.
    pub fn disconnect_where(&self, pick: impl Fn(&H::Data) -> bool) -> usize {
        let mut n = 0;
        for conn in self.root().sockets() {
            if pick(conn.user()) {
                conn.disconnect();
                n += 1;
            }
        }
        n
    }

    /// Emit to every socket of `/`.
    pub fn emit_all(&self, event: &str, payload: &Payload) -> usize {
        self.root().emit_all(event, payload)
    }

    /// Every socket of `/` in room `src` joins room `dst`.
    pub fn room_join(&self, src: &str, dst: &str) {
        self.root().room_join(src, dst);
    }

    /// Every socket of `/` in room `src` leaves room `dst`
    /// ("every socket of user X leaves room Y").
    pub fn room_leave(&self, src: &str, dst: &str) {
        self.root().room_leave(src, dst);
    }

    /// Sockets of `/` in `room` on this node.
    pub fn room_len(&self, room: &str) -> usize {
        self.root().room_len(room)
    }

    /// Sockets connected to `/` on this node.
    pub fn connected(&self) -> usize {
        self.root().len()
    }

    /// Engine.IO sessions open on this node (all namespaces).
    pub fn sessions(&self) -> usize {
        self.server.client_count()
    }

    /// Close every session with [`DisconnectReason::ServerShutdown`]: each
    /// client sees its transport close (websocket close 1001) and reconnects.
    pub fn close(&self) {
        self.close_with(DisconnectReason::ServerShutdown);
    }

    /// Close every session as [`Self::close`] does, spread evenly over
    /// `window` (the first at once), so that their clients do not all
    /// reconnect in the same instant. Sessions opened meanwhile are closed at
    /// the end (none, once the listener stopped accepting).
    pub async fn drain(&self, window: std::time::Duration) {
        let clients = self.server.all_clients();
        let n = clients.len().max(1) as u32;
        let start = tokio::time::Instant::now();
        for (i, client) in clients.into_iter().enumerate() {
            tokio::time::sleep_until(start + window * i as u32 / n).await;
            self.server
                .close_client(&client, DisconnectReason::ServerShutdown);
        }
        self.close();
    }

    /// Close every session for `reason`.
    pub fn close_with(&self, reason: DisconnectReason) {
        for client in self.server.all_clients() {
            self.server.close_client(&client, reason);
        }
    }
}

/// One namespace: its rooms and broadcasts.
pub struct Nsp<D> {
    ns: Arc<Namespace<D>>,
}

impl<D> Clone for Nsp<D> {
    fn clone(&self) -> Self {
        Self {
            ns: self.ns.clone(),
        }
    }
}

impl<D: Send + Sync + 'static> Nsp<D> {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.ns.name
    }

    /// Emit to the sockets in `room`; returns how many it reached.
    pub fn emit(&self, room: &str, event: &str, payload: &Payload) -> usize {
        self.broadcast(
            Some(room),
            None,
            |_| true,
            self.event(event, payload),
            |_| None,
        )
    }

    /// Emit to the sockets in `room` whose data passes `keep`.
    pub fn emit_where(
        &self,
        room: &str,
        keep: impl Fn(&D) -> bool,
        event: &str,
        payload: &Payload,
    ) -> usize {
        self.broadcast(Some(room), None, keep, self.event(event, payload), |_| None)
    }

    /// Emit to the sockets in `room` that are not in `except`.
    pub fn emit_except(&self, room: &str, except: &str, event: &str, payload: &Payload) -> usize {
        let msg = self.event(event, payload);
        self.broadcast(Some(room), Some(except), |_| true, msg, |_| None)
    }

    /// Emit to the sockets in `room` whose data passes `keep`, each with one
    /// more argument last, `last(data)`, when that is `Some`: the
    /// connection state recovery offset, which differs per socket. The event
    /// is encoded once; each socket's frame is a copy of it with its own
    /// argument appended (no copy for a socket whose `last` is `None`, one
    /// copy for a run of sockets with the same argument).
    pub fn emit_each(
        &self,
        room: &str,
        keep: impl Fn(&D) -> bool,
        event: &str,
        payload: &Payload,
        last: impl Fn(&D) -> Option<String>,
    ) -> usize {
        self.broadcast(Some(room), None, keep, self.event(event, payload), last)
    }

    /// [`Nsp::emit_each`] of an event whose one argument is already JSON
    /// text ([`Message::event_raw`]): written into the frame as it is.
    pub fn emit_raw_each(
        &self,
        room: &str,
        keep: impl Fn(&D) -> bool,
        event: &str,
        arg: &str,
        last: impl Fn(&D) -> Option<String>,
    ) -> usize {
        let msg = || Message::event_raw(&self.ns.name, event, arg);
        self.broadcast(Some(room), None, keep, msg, last)
    }

    /// Emit to every socket of the namespace.
    pub fn emit_all(&self, event: &str, payload: &Payload) -> usize {
        self.broadcast(None, None, |_| true, self.event(event, payload), |_| None)
    }

    /// The encoding of an event, made once a broadcast has someone to reach.
    fn event<'a>(&'a self, event: &'a str, payload: &'a Payload) -> impl FnOnce() -> Message + 'a {
        move || Message::event(&self.ns.name, event, payload, None)
    }

    fn broadcast(
        &self,
        room: Option<&str>,
        except: Option<&str>,
        keep: impl Fn(&D) -> bool,
        msg: impl FnOnce() -> Message,
        last: impl Fn(&D) -> Option<String>,
    ) -> usize {
        let Some(server) = self.ns.server.upgrade() else {
            return 0;
        };
        let mut members = self.ns.members(room, except);
        members.retain(|s| keep(&s.data));
        if members.is_empty() {
            return 0;
        }
        let msg = msg();
        // Sockets with the same last argument (typically every socket in a
        // room that joined nothing else) share one encoding.
        let mut shared: Option<(String, Message)> = None;
        let mut sent = 0;
        for s in &members {
            let own = match last(&s.data) {
                None => &msg,
                Some(arg) => {
                    if shared.as_ref().is_none_or(|(a, _)| *a != arg) {
                        shared = msg.with_last_arg(&arg).map(|m| (arg, m));
                    }
                    shared.as_ref().map_or(&msg, |(_, m)| m)
                }
            };
            sent += usize::from(s.send_via(own, &*server).is_ok());
        }
        sent
    }

    /// Every socket in room `src` joins room `dst`.
    pub fn room_join(&self, src: &str, dst: &str) {
        self.ns.room_join(src, dst);
    }

    /// Every socket in room `src` leaves room `dst`.
    pub fn room_leave(&self, src: &str, dst: &str) {
        self.ns.room_leave(src, dst);
    }

    /// Every socket of the namespace.
    pub fn sockets(&self) -> Vec<Conn<D>> {
        self.ns.members(None, None).into_iter().map(Conn).collect()
    }

    /// The sockets in `room`.
    pub fn sockets_in(&self, room: &str) -> Vec<Conn<D>> {
        self.ns
            .members(Some(room), None)
            .into_iter()
            .map(Conn)
            .collect()
    }

    /// How many sockets are in `room`.
    pub fn room_len(&self, room: &str) -> usize {
        self.ns.room_len(room)
    }

    /// Connected sockets.
    pub fn len(&self) -> usize {
        self.ns.len()
    }

    /// No connected socket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Disconnect every socket in `room` from the namespace.
    pub fn disconnect_room(&self, room: &str) {
        let Some(server) = self.ns.server.upgrade() else {
            return;
        };
        for socket in self.ns.members(Some(room), None) {
            server.disconnect_socket(&socket, DisconnectReason::ServerNamespaceDisconnect, true);
        }
    }
}
