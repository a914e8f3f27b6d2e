//! What the gateway publishes, in one place: socket commands and presence go
//! to `chat.in` (for the API tier), typing goes straight to `chat.out` (for
//! every realtime node, this one included).
//!
//! Every publish returns once the bus accepted the envelope, or the bus's
//! error; callers ACK only after success. Nothing is buffered here: the bus
//! backends bound each publish (the in-process bus by its channel capacity,
//! the others by their request timeouts).

use std::sync::Arc;

use roomcast_bus::{Bus, BusError, Topics};
use roomcast_core::{Envelope, RoomId, UserId, events};
use serde_json::Value;

/// Publishes the gateway's envelopes.
#[derive(Clone)]
pub struct Publisher {
    bus: Arc<dyn Bus>,
    topics: Topics,
}

impl Publisher {
    /// Publish on `bus`, to the topics named in `topics`.
    pub fn new(bus: Arc<dyn Bus>, topics: Topics) -> Self {
        Self { bus, topics }
    }

    /// A `chat.in` command `kind` of `user` (the verified socket user, set as
    /// the envelope's `userId`).
    pub async fn command(&self, kind: &str, user: UserId, payload: Value) -> Result<(), BusError> {
        let env = Envelope::to_user(kind, user, payload);
        self.bus.publish(&self.topics.chat_in, &env).await
    }

    /// A `chat.in` event of this node with neither room nor user (`nodeHeartbeat`).
    pub async fn node_event(&self, kind: &str, payload: Value) -> Result<(), BusError> {
        let env = Envelope {
            user_id: None,
            ..Envelope::to_user(kind, UserId::new(), payload)
        };
        self.bus.publish(&self.topics.chat_in, &env).await
    }

    /// A `typing` event to `room:<room>` on `chat.out` (payload
    /// [`roomcast_core::Typing`]).
    pub async fn typing(&self, room: RoomId, user: UserId, typing: bool) -> Result<(), BusError> {
        let payload = roomcast_core::Typing {
            room_id: room,
            user_id: user,
            typing,
        };
        let env = Envelope::to_room(
            events::TYPING,
            room,
            serde_json::to_value(payload).expect("a Typing serializes"),
        );
        self.bus.publish(&self.topics.chat_out, &env).await
    }
}
