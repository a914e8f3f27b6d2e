//! The Engine.IO v4 server: sessions and their outgoing queues, the HTTP
//! entry point, the long-polling and websocket transports, the heartbeat.

pub mod heartbeat;
pub mod outbox;
pub mod polling;
pub mod service;
pub mod websocket;
