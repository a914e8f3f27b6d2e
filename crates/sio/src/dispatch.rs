//! Socket.IO packets from a client: namespace CONNECT (authenticated before
//! the reply), DISCONNECT, EVENT and ACK, with binary attachments joined
//! first.
//!
//! As in the Node server, a packet that makes no sense in the socket's
//! state (an event on a namespace the client has not joined, a second
//! CONNECT, a CONNECT_ERROR from a client) closes the connection.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::codec::socket::{Packet, PacketType};
use crate::config::{DisconnectReason, Sid};
use crate::handler::{ConnectInfo, Event, Handler, Payload, Restore};
use crate::message::Message;
use crate::namespace::Namespace;
use crate::server::{Client, Inner, ServerOps};
use crate::socket::{Ack, Conn, Socket};

type Outcome = Result<(), DisconnectReason>;

/// CONNECTs of one client decided at once off its task ([`Handler::admit`],
/// [`Handler::recover`]); a CONNECT past it is refused at once, so one
/// connection cannot turn a flood of CONNECT packets into as many checks.
pub(crate) const MAX_DECIDING: u8 = 4;

impl<H: Handler> Inner<H> {
    /// An Engine.IO text message: a Socket.IO packet.
    pub fn on_sio_text(&self, client: &Arc<Client<H::Data>>, text: &str) -> Outcome {
        let packet = Packet::decode(text).map_err(|e| {
            tracing::debug!(sid = %client.engine.sid, error = %e, "bad Socket.IO packet");
            DisconnectReason::TransportError
        })?;
        let done = client.state().reassembly.on_packet(packet);
        match done {
            Ok(Some((packet, attachments))) => self.on_sio_packet(client, packet, attachments),
            Ok(None) => Ok(()),
            Err(e) => {
                tracing::debug!(sid = %client.engine.sid, error = %e, "bad Socket.IO packet");
                Err(DisconnectReason::TransportError)
            }
        }
    }

    /// An Engine.IO binary message: an attachment.
    pub fn on_sio_binary(&self, client: &Arc<Client<H::Data>>, data: Bytes) -> Outcome {
        let done = client
            .state()
            .reassembly
            .on_binary(data, self.config.max_payload);
        match done {
            Ok(Some((packet, attachments))) => self.on_sio_packet(client, packet, attachments),
            Ok(None) => Ok(()),
            Err(crate::codec::DecodeError::TooLarge) => Err(DisconnectReason::TooLarge),
            Err(_) => Err(DisconnectReason::TransportError),
        }
    }

    fn on_sio_packet(
        &self,
        client: &Arc<Client<H::Data>>,
        packet: Packet,
        attachments: Vec<Bytes>,
    ) -> Outcome {
        let socket = client.socket(&packet.nsp);
        match (packet.kind, socket) {
            (PacketType::Connect, None) => {
                self.connect(client, &packet.nsp, packet.data.as_ref());
                Ok(())
            }
            (PacketType::Disconnect, Some(socket)) => {
                self.disconnect_socket(&socket, DisconnectReason::ClientNamespaceDisconnect, false);
                Ok(())
            }
            (PacketType::Event | PacketType::BinaryEvent, Some(socket)) => {
                self.on_event(socket, packet, attachments);
                Ok(())
            }
            (PacketType::Ack | PacketType::BinaryAck, Some(socket)) => {
                let (Some(id), Some(Value::Array(args))) = (packet.id, packet.data) else {
                    return Err(DisconnectReason::TransportError);
                };
                socket.resolve_ack(id, Payload { args, attachments });
                Ok(())
            }
            (kind, _) => {
                tracing::debug!(sid = %client.engine.sid, ?kind, nsp = %packet.nsp, "packet in an invalid state");
                Err(DisconnectReason::TransportError)
            }
        }
    }

    fn connect(&self, client: &Arc<Client<H::Data>>, nsp: &str, auth: Option<&Value>) {
        let Some(ns) = self.namespaces.get(nsp) else {
            self.push(
                client,
                Message::connect_error(nsp, "Invalid namespace").frames(),
            );
            return;
        };
        let data = match self.handler.authenticate(ConnectInfo { nsp, auth }) {
            Ok(data) => data,
            Err(refusal) => {
                let error =
                    Message::connect_error_data(nsp, &refusal.message, refusal.data.as_ref());
                self.push(client, error.frames());
                return;
            }
        };
        let earlier = if self.config.recovery {
            recovery_request(auth)
        } else {
            None
        };
        let admits = self.handler.admits(&data);
        let asks = admits || earlier.is_some();
        let (true, Some(this)) = (asks, self.arc()) else {
            return self.accept(client, ns.clone(), data, None);
        };
        {
            let mut st = client.state();
            if st.deciding >= MAX_DECIDING {
                drop(st);
                let busy = Message::connect_error(nsp, "too many CONNECTs at once");
                return self.push(client, busy.frames());
            }
            st.deciding += 1;
        }
        // Admission and recovery ask the application (the store, another
        // tier): decided off the connection's task, before the reply. The
        // client sends nothing on this namespace until it has the reply.
        let (client, ns) = (client.clone(), ns.clone());
        tokio::spawn(async move {
            let decided = Deciding(&client);
            if admits && let Err(refusal) = this.handler.admit(&data).await {
                let error =
                    Message::connect_error_data(&ns.name, &refusal.message, refusal.data.as_ref());
                drop(decided);
                return this.push(&client, error.frames());
            }
            let restore = match earlier {
                Some((pid, offset)) => this
                    .handler
                    .recover(&data, pid.as_str(), &offset)
                    .await
                    .map(|r| (pid, r)),
                None => None,
            };
            drop(decided);
            this.accept(&client, ns, data, restore);
        });
    }

    /// Register an authenticated socket and reply; `recovered` continues the
    /// session `pid` and runs its restore after the reply.
    fn accept(
        &self,
        client: &Arc<Client<H::Data>>,
        ns: Arc<Namespace<H::Data>>,
        data: H::Data,
        recovered: Option<(Sid, Restore<H::Data>)>,
    ) {
        let socket = Arc::new(Socket::new(
            self.next_key(),
            ns.clone(),
            client.clone(),
            data,
        ));
        {
            // Registered under the client's lock so that a concurrent close
            // either sees this socket or makes us see the close.
            let mut st = client.state();
            // Closed meanwhile, or a second CONNECT to the namespace decided
            // after the first: nothing to register.
            if client.engine.closed().is_some() || st.sockets.iter().any(|s| s.ns.name == ns.name) {
                return;
            }
            st.sockets.push(socket.clone());
            ns.add(socket.clone());
        }
        self.settle(client);
        client
            .engine
            .joined
            .store(true, std::sync::atomic::Ordering::Release);
        let (pid, restore) = match recovered {
            Some((pid, restore)) => (Some(pid), Some(restore)),
            None => (self.config.recovery.then(Sid::random), None),
        };
        let reply = Message::connect(&ns.name, socket.sid.as_str(), pid.as_ref().map(Sid::as_str));
        self.push(client, reply.frames());
        let conn = Conn(socket);
        self.handler.on_connect(&conn);
        if let Some(restore) = restore {
            restore(&conn);
        }
    }

    fn on_event(&self, socket: Arc<Socket<H::Data>>, packet: Packet, attachments: Vec<Bytes>) {
        let Some(Value::Array(mut args)) = packet.data else {
            return;
        };
        // The codec guarantees a string name first.
        let name = match args.first() {
            Some(Value::String(_)) => match args.remove(0) {
                Value::String(name) => name,
                _ => return,
            },
            _ => return,
        };
        let ack = packet.id.map(|id| Ack::new(socket.clone(), id));
        let event = Event {
            name,
            payload: Payload { args, attachments },
        };
        let handler = self.handler.clone();
        let conn = Conn(socket);
        tokio::spawn(async move { handler.on_event(conn, event, ack).await });
    }
}

/// The `pid` and `offset` socket.io-client adds to the CONNECT's auth when it
/// Counts one CONNECT being decided for as long as it lives.
struct Deciding<'a, D>(&'a Client<D>);

impl<D> Drop for Deciding<'_, D> {
    fn drop(&mut self) {
        let mut st = self.0.state();
        st.deciding = st.deciding.saturating_sub(1);
    }
}

/// reconnects after a session that offered recovery; `None` when absent or
/// malformed (a fresh session).
fn recovery_request(auth: Option<&Value>) -> Option<(Sid, String)> {
    let auth = auth?;
    let pid = Sid::parse(auth.get("pid")?.as_str()?)?;
    let offset = auth.get("offset")?.as_str()?;
    Some((pid, offset.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_recovery_request_needs_a_well_formed_pid_and_an_offset() {
        let pid = Sid::random();
        let auth = json!({"token": "t", "pid": pid.as_str(), "offset": "o"});
        assert_eq!(recovery_request(Some(&auth)), Some((pid, "o".to_owned())));
        for bad in [
            json!({"token": "t"}),
            json!({"pid": pid.as_str()}),
            json!({"pid": "short", "offset": "o"}),
            json!({"pid": pid.as_str(), "offset": 3}),
            json!("text"),
        ] {
            assert_eq!(recovery_request(Some(&bad)), None, "{bad}");
        }
        assert_eq!(recovery_request(None), None);
    }
}
