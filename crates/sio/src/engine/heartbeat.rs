//! One heartbeat sweep for every session of a server, instead of a timer
//! per connection.
//!
//! Every sweep period (a quarter of the shortest of `pingInterval`,
//! `pingTimeout` and the connect timeout, within 10 ms..1 s) it visits each session once:
//! - a session with no pong due and a ping older than `pingInterval` gets a
//!   ping queued (the pong is then due);
//! - a session whose pong is due for `pingTimeout` or more is closed
//!   ([`DisconnectReason::PingTimeout`]);
//! - a session that has joined no namespace within the connect timeout is
//!   closed ([`DisconnectReason::ConnectTimeout`]).
//!
//! A ping therefore goes out between `pingInterval` and `pingInterval` plus
//! one period after the previous one, well inside the client's own
//! `pingInterval + pingTimeout` deadline. The sweep holds only a weak
//! reference: it ends when the server is dropped.

use std::sync::Weak;
use std::sync::atomic::Ordering;

use tokio::time::MissedTickBehavior;

use crate::config::DisconnectReason;
use crate::engine::outbox::{Frame, Heartbeat, PushError};
use crate::handler::Handler;
use crate::server::{Inner, ServerOps};

/// Run the sweep until the server goes away.
pub(crate) async fn sweep<H: Handler>(server: Weak<Inner<H>>) {
    let Some(period) = server.upgrade().map(|s| s.config.sweep_period()) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let ping = Frame::text(bytes::Bytes::from_static(b"2"));
    let mut closing = Vec::new();
    loop {
        tick.tick().await;
        let Some(server) = server.upgrade() else {
            return;
        };
        let now = server.now_ms();
        let interval = server.config.ping_interval.as_millis() as u64;
        let timeout = server.config.ping_timeout.as_millis() as u64;
        let connect_timeout = server.config.connect_timeout.as_millis() as u64;
        let max_buffer = server.config.max_buffer_size;
        server.for_each_client(|client| {
            let engine = &client.engine;
            if !engine.joined.load(Ordering::Acquire)
                && now.saturating_sub(engine.created_ms) >= connect_timeout
            {
                closing.push((client.clone(), DisconnectReason::ConnectTimeout));
                return;
            }
            match engine.heartbeat(now, interval, timeout) {
                Heartbeat::Wait => {}
                Heartbeat::Ping => {
                    if engine.push(std::slice::from_ref(&ping), max_buffer) == Err(PushError::Full)
                    {
                        closing.push((client.clone(), DisconnectReason::Overflow));
                    }
                }
                Heartbeat::TimedOut => {
                    closing.push((client.clone(), DisconnectReason::PingTimeout))
                }
            }
        });
        for (client, reason) in closing.drain(..) {
            server.close_client(&client, reason);
        }
        if closing.capacity() > 1024 {
            closing = Vec::new();
        }
    }
}
