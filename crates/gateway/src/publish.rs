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
use roomcast_core::{ChatIn, ChatOut, RoomId, Typing, UserId};

/// Publishes the gateway's envelopes, each encoded once, here.
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

    /// A `chat.in` command (a user's carries the verified socket user as the
    /// envelope's `userId`; `nodeHeartbeat` has neither room nor user).
    pub async fn command(&self, cmd: &ChatIn) -> Result<(), BusError> {
        let env = cmd.envelope().encode();
        self.bus.publish(&self.topics.chat_in, &env).await
    }

    /// A `typing` event to `room:<room>` on `chat.out`.
    pub async fn typing(&self, room: RoomId, user: UserId, typing: bool) -> Result<(), BusError> {
        let event = ChatOut::Typing(Typing {
            room_id: room,
            user_id: user,
            typing,
        });
        let env = event.envelope(None).encode();
        self.bus.publish(&self.topics.chat_out, &env).await
    }
}
