//! Server settings, session ids and the reasons a connection ends.

use std::fmt;
use std::time::Duration;

use rand::Rng as _;

/// Protocol settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The path served, with its trailing slash (`/socket.io/`).
    pub path: String,
    /// Engine.IO `pingInterval`.
    pub ping_interval: Duration,
    /// Engine.IO `pingTimeout`: how long a pong may take.
    pub ping_timeout: Duration,
    /// Engine.IO `maxPayload`: the largest accepted message, and the largest
    /// polling body in either direction, in bytes.
    pub max_payload: usize,
    /// Outgoing frames queued per connection before the connection is closed
    /// as a slow consumer (see [`crate::engine::outbox`]).
    pub max_buffer_size: usize,
    /// How long a client may take to connect to a namespace after the handshake.
    pub connect_timeout: Duration,
    /// Offer HTTP long-polling (otherwise websocket only).
    pub polling: bool,
    /// Namespaces clients may connect to; others get "Invalid namespace".
    pub namespaces: Vec<String>,
    /// Offer connection state recovery (socket.io-client ≥ 4.6): each
    /// CONNECT reply carries a private session id (`pid`), and a CONNECT
    /// that brings back a `pid` and an `offset` is decided by
    /// [`crate::Handler::recover`]. What an offset means, and appending it to
    /// events, is the application's (see [`crate::Nsp::emit_each`]).
    pub recovery: bool,
    /// Engine.IO sessions per client address that have not connected a
    /// socket to a namespace yet (0: no cap). Past it, a handshake is
    /// answered 429. Such sessions end at `connect_timeout` anyway.
    pub max_pending_per_ip: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: "/socket.io/".to_owned(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 100_000,
            max_buffer_size: 1024,
            connect_timeout: Duration::from_secs(45),
            polling: true,
            namespaces: vec!["/".to_owned()],
            recovery: false,
            max_pending_per_ip: 0,
        }
    }
}

impl Config {
    /// The heartbeat sweep's period: fine enough for every timer it serves,
    /// between 10 ms and 1 s.
    pub(crate) fn sweep_period(&self) -> Duration {
        let shortest = self
            .ping_interval
            .min(self.ping_timeout)
            .min(self.connect_timeout);
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// A session or socket id: 20 URL-safe characters (15 random bytes, as the
/// Node server's `base64id`), kept inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sid([u8; 20]);

impl Sid {
    /// A fresh random id.
    pub fn random() -> Self {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut rng = rand::rng();
        let mut out = [0u8; 20];
        for b in &mut out {
            *b = ALPHABET[rng.random_range(0..64)];
        }
        Self(out)
    }

    /// Parse an id sent by a client.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes: [u8; 20] = s.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .then_some(Self(bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

/// Why a socket or its connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// The client closed the connection (websocket close, TCP end, Engine.IO close).
    #[error("transport close")]
    TransportClose,
    /// The connection failed or the client broke the protocol.
    #[error("transport error")]
    TransportError,
    /// No pong within `pingTimeout`.
    #[error("ping timeout")]
    PingTimeout,
    /// No namespace joined within the connect timeout.
    #[error("connect timeout")]
    ConnectTimeout,
    /// The client left the namespace (Socket.IO DISCONNECT).
    #[error("client namespace disconnect")]
    ClientNamespaceDisconnect,
    /// The server disconnected the socket from its namespace.
    #[error("server namespace disconnect")]
    ServerNamespaceDisconnect,
    /// The outgoing queue was full: the client is too slow and is closed so
    /// that it reconnects and reloads rather than silently missing events.
    #[error("slow consumer: outgoing queue full")]
    Overflow,
    /// A message or body exceeded `maxPayload`.
    #[error("payload too large")]
    TooLarge,
    /// The server closed every connection ([`crate::SocketIo::close`]).
    #[error("server shutting down")]
    ServerShutdown,
}

impl DisconnectReason {
    /// The websocket close code sent for this reason.
    pub(crate) fn close_code(self) -> u16 {
        match self {
            Self::ServerShutdown => 1001,
            Self::TransportError => 1002,
            Self::TooLarge => 1009,
            Self::Overflow => 1008,
            _ => 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_round_trip_and_reject_junk() {
        let sid = Sid::random();
        assert_eq!(Sid::parse(sid.as_str()), Some(sid));
        assert_ne!(Sid::random(), sid);
        assert_eq!(Sid::parse("short"), None);
        assert_eq!(Sid::parse("aaaaaaaaaaaaaaaaaaa/"), None);
        assert_eq!(Sid::parse("ééééééééééaaaaaaaaaaaaaaaaaaaa"), None);
    }

    #[test]
    fn sweep_period_is_clamped() {
        let c = Config::default();
        assert_eq!(c.sweep_period(), Duration::from_secs(1));
        let fast = Config {
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            ..c
        };
        assert_eq!(fast.sweep_period(), Duration::from_millis(50));
    }
}
