//! One Engine.IO connection's shared state: its outgoing queue, whether it
//! is closed and why, its transport, and its heartbeat clock.
//!
//! # The outgoing queue
//! Items are [`Frame`]s: the text of an Engine.IO packet (`4...`) or a
//! binary message, as [`Bytes`], so a broadcast encodes a packet once and
//! each socket's queue holds a reference-counted handle to the same bytes.
//! The queue is a `VecDeque` that allocates on the first push and is handed
//! whole to the writer, so an idle connection holds no queue memory.
//!
//! The queue is bounded by [`crate::Config::max_buffer_size`] frames.
//! **Overflow policy**: a push that would exceed the bound is refused with
//! [`PushError::Full`] and the caller closes the connection with
//! [`crate::DisconnectReason::Overflow`]; the
//! client sees its transport close, reconnects and reloads. Nothing is ever
//! dropped from a connection that stays open.
//!
//! # Waking
//! No channel and no task of its own: the connection's one task (websocket)
//! or its pending GET (polling) waits on a [`Notify`] with the
//! `enable`-then-check pattern, and every change that concerns it (a push
//! into an empty queue, a close, an upgrade) calls `notify_waiters`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use crate::codec::payload::{self, Item};
use crate::config::{DisconnectReason, Sid};

/// One queued outgoing item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// A text Engine.IO packet (type digit included) or a binary message.
    pub data: Bytes,
    /// Whether `data` is a binary message.
    pub binary: bool,
}

impl Frame {
    /// A text packet.
    pub fn text(data: impl Into<Bytes>) -> Self {
        Self {
            data: data.into(),
            binary: false,
        }
    }

    /// A binary message.
    pub fn binary(data: Bytes) -> Self {
        Self { data, binary: true }
    }
}

/// Which transport carries the outgoing queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Transport {
    /// HTTP long-polling: GET requests drain the queue.
    Polling = 0,
    /// A websocket probe succeeded; polling is answered with noops.
    Upgrading = 1,
    /// The websocket task drains the queue.
    WebSocket = 2,
}

/// Why a push was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The queue is at its bound: close the connection as a slow consumer.
    #[error("outgoing queue full")]
    Full,
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Frame>,
    closed: Option<DisconnectReason>,
    polling: bool,
    posting: bool,
}

/// The two long-polling requests, each allowed once at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollRequest {
    /// A GET (receive).
    Get,
    /// A POST (send).
    Post,
}

/// What a waiting reader of the queue should do now.
#[derive(Debug)]
pub enum Take {
    /// The connection is closed for this reason.
    Closed(DisconnectReason),
    /// These frames (possibly none) are to be written.
    Frames(VecDeque<Frame>),
}

/// One Engine.IO connection's shared state.
pub struct EngineConn {
    /// The session id.
    pub sid: Sid,
    state: Mutex<State>,
    notify: Notify,
    transport: AtomicU8,
    /// Server clock (ms) when the last ping was queued, or the handshake.
    last_ping: AtomicU64,
    pong_due: AtomicBool,
    /// Server clock (ms) of the handshake.
    pub created_ms: u64,
    /// Whether a Socket.IO namespace was ever joined (connect timeout).
    pub joined: AtomicBool,
}

impl EngineConn {
    /// A new connection on `transport`, created at `now_ms`.
    pub fn new(sid: Sid, transport: Transport, now_ms: u64) -> Self {
        Self {
            sid,
            state: Mutex::default(),
            notify: Notify::new(),
            transport: AtomicU8::new(transport as u8),
            last_ping: AtomicU64::new(now_ms),
            pong_due: AtomicBool::new(false),
            created_ms: now_ms,
            joined: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update of
        // plain data; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue frames atomically (all or none), at most `max` in the queue.
    pub fn push(&self, frames: &[Frame], max: usize) -> Result<(), PushError> {
        let mut st = self.lock();
        if st.closed.is_some() {
            return Err(PushError::Closed);
        }
        if st.queue.len() + frames.len() > max {
            return Err(PushError::Full);
        }
        let was_empty = st.queue.is_empty();
        st.queue.extend(frames.iter().cloned());
        drop(st);
        if was_empty {
            self.notify.notify_waiters();
        }
        Ok(())
    }

    /// Mark closed; `true` for the first close only.
    pub fn close(&self, reason: DisconnectReason) -> bool {
        let mut st = self.lock();
        if st.closed.is_some() {
            return false;
        }
        st.closed = Some(reason);
        st.queue = VecDeque::new();
        drop(st);
        self.notify.notify_waiters();
        true
    }

    /// Why the connection closed, if it did.
    pub fn closed(&self) -> Option<DisconnectReason> {
        self.lock().closed
    }

    /// A future woken by the next change; `enable` it before checking state.
    pub fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }

    /// The websocket writer's view: everything queued once the websocket
    /// carries the queue, nothing before.
    pub fn take_for_websocket(&self) -> Take {
        let mut st = self.lock();
        if let Some(reason) = st.closed {
            return Take::Closed(reason);
        }
        if self.transport() != Transport::WebSocket {
            return Take::Frames(VecDeque::new());
        }
        Take::Frames(std::mem::take(&mut st.queue))
    }

    /// A long-polling GET's view: `None` while there is nothing to send,
    /// else the body (at most `max_payload` bytes unless one packet is
    /// larger): `1` once closed, `6` during an upgrade, else queued packets.
    pub fn take_for_poll(&self, max_payload: usize) -> Option<Vec<u8>> {
        let mut st = self.lock();
        if st.closed.is_some() {
            return Some(b"1".to_vec());
        }
        if self.transport() != Transport::Polling {
            return Some(b"6".to_vec());
        }
        if st.queue.is_empty() {
            return None;
        }
        let items = st.queue.iter().map(|f| {
            if f.binary {
                Item::Binary(&f.data)
            } else {
                Item::Text(&f.data)
            }
        });
        let (body, n) = payload::encode(items, max_payload);
        st.queue.drain(..n);
        if st.queue.is_empty() {
            st.queue = VecDeque::new();
        }
        Some(body)
    }

    /// Start a polling request of this kind (`false` if one is already in
    /// flight).
    pub fn begin_request(&self, kind: PollRequest) -> bool {
        let mut st = self.lock();
        let flag = match kind {
            PollRequest::Get => &mut st.polling,
            PollRequest::Post => &mut st.posting,
        };
        !std::mem::replace(flag, true)
    }

    /// End a polling request of this kind.
    pub fn end_request(&self, kind: PollRequest) {
        let mut st = self.lock();
        match kind {
            PollRequest::Get => st.polling = false,
            PollRequest::Post => st.posting = false,
        }
    }

    /// The current transport.
    pub fn transport(&self) -> Transport {
        match self.transport.load(Ordering::Acquire) {
            0 => Transport::Polling,
            1 => Transport::Upgrading,
            _ => Transport::WebSocket,
        }
    }

    /// Switch transport and wake whoever waits (a pending GET answers noop).
    pub fn set_transport(&self, t: Transport) {
        self.transport.store(t as u8, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Record a pong.
    pub fn pong(&self) {
        self.pong_due.store(false, Ordering::Release);
    }

    /// The heartbeat sweep's decision at `now_ms`.
    pub fn heartbeat(&self, now_ms: u64, interval_ms: u64, timeout_ms: u64) -> Heartbeat {
        let last = self.last_ping.load(Ordering::Acquire);
        let elapsed = now_ms.saturating_sub(last);
        if self.pong_due.load(Ordering::Acquire) {
            if elapsed >= timeout_ms {
                Heartbeat::TimedOut
            } else {
                Heartbeat::Wait
            }
        } else if elapsed >= interval_ms {
            self.last_ping.store(now_ms, Ordering::Release);
            self.pong_due.store(true, Ordering::Release);
            Heartbeat::Ping
        } else {
            Heartbeat::Wait
        }
    }
}

/// What the heartbeat sweep does with one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    /// Nothing yet.
    Wait,
    /// Queue a ping (the pong is now due).
    Ping,
    /// The pong did not come in time: close.
    TimedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(t: Transport) -> EngineConn {
        EngineConn::new(Sid::random(), t, 0)
    }

    #[test]
    fn queue_is_bounded_and_all_or_nothing() {
        let c = conn(Transport::WebSocket);
        let f = Frame::text("4a");
        assert_eq!(c.push(&[f.clone(), f.clone()], 3), Ok(()));
        assert_eq!(c.push(&[f.clone(), f.clone()], 3), Err(PushError::Full));
        assert!(matches!(c.take_for_websocket(), Take::Frames(q) if q.len() == 2));
        assert!(
            matches!(c.take_for_websocket(), Take::Frames(q) if q.is_empty() && q.capacity() == 0)
        );
        assert!(c.close(DisconnectReason::Overflow));
        assert!(!c.close(DisconnectReason::PingTimeout));
        assert_eq!(c.push(&[f], 3), Err(PushError::Closed));
        assert!(matches!(
            c.take_for_websocket(),
            Take::Closed(DisconnectReason::Overflow)
        ));
    }

    #[test]
    fn polling_view_follows_the_transport() {
        let c = conn(Transport::Polling);
        assert_eq!(c.take_for_poll(100), None);
        c.push(
            &[
                Frame::text("4a"),
                Frame::binary(Bytes::from_static(&[1, 2, 3, 4])),
            ],
            10,
        )
        .unwrap();
        assert!(matches!(c.take_for_websocket(), Take::Frames(q) if q.is_empty()));
        assert_eq!(
            c.take_for_poll(100).as_deref(),
            Some(&b"4a\x1ebAQIDBA=="[..])
        );
        c.push(&[Frame::text("4b")], 10).unwrap();
        c.set_transport(Transport::Upgrading);
        assert_eq!(c.take_for_poll(100).as_deref(), Some(&b"6"[..]));
        c.set_transport(Transport::WebSocket);
        assert!(matches!(c.take_for_websocket(), Take::Frames(q) if q.len() == 1));
        c.close(DisconnectReason::TransportClose);
        assert_eq!(c.take_for_poll(100).as_deref(), Some(&b"1"[..]));
    }

    #[test]
    fn one_poll_and_one_post_at_a_time() {
        let c = conn(Transport::Polling);
        assert!(c.begin_request(PollRequest::Get));
        assert!(!c.begin_request(PollRequest::Get));
        c.end_request(PollRequest::Get);
        assert!(c.begin_request(PollRequest::Get));
        assert!(c.begin_request(PollRequest::Post));
        assert!(!c.begin_request(PollRequest::Post));
    }

    #[test]
    fn heartbeat_pings_then_times_out() {
        let c = conn(Transport::WebSocket);
        assert_eq!(c.heartbeat(100, 300, 200), Heartbeat::Wait);
        assert_eq!(c.heartbeat(300, 300, 200), Heartbeat::Ping);
        assert_eq!(c.heartbeat(450, 300, 200), Heartbeat::Wait);
        c.pong();
        assert_eq!(c.heartbeat(550, 300, 200), Heartbeat::Wait);
        assert_eq!(c.heartbeat(600, 300, 200), Heartbeat::Ping);
        assert_eq!(c.heartbeat(800, 300, 200), Heartbeat::TimedOut);
    }
}
