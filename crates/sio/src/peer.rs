//! Who is on the other end of a connection, and how many connections each
//! address holds.
//!
//! - [`PeerAddr`] and [`ClientIp`] are put in every request's extensions by
//!   [`crate::serve_with`]: the TCP peer, and the client's address, which is
//!   the peer's unless the peer is a trusted reverse proxy, in which case it
//!   is the last address of `X-Forwarded-For` that is not itself a trusted
//!   proxy (the addresses before it were written by the client and prove
//!   nothing).
//! - [`Slots`] counts what each address holds and refuses one past the cap:
//!   open TCP connections per peer address (a connection's [`Slot`] lives
//!   in its [`Stream`], so a websocket keeps counting after hyper hands the
//!   stream back on upgrade, and the count drops when the stream is
//!   dropped, whoever drops it), and Engine.IO sessions without a socket
//!   per client address (the slot lives in the session until a socket
//!   connects or it closes).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::HeaderMap;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The TCP peer of the connection a request came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The client's address: the peer's, or, when the peer is a trusted proxy,
/// the one it forwarded (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// Whether `ip` is in one of the networks `trusted`.
fn trusts(trusted: &[IpNet], ip: IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client address of a request from `peer` with `headers`, trusting the
/// `X-Forwarded-For` of the proxies in the networks `trusted` only.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if !trusts(trusted, peer) {
        return peer;
    }
    // Every X-Forwarded-For line, in order, comma-separated hops in each;
    // walk from the nearest hop back and stop at the first untrusted one.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusts(trusted, canonical(ip)) => continue,
            Ok(ip) => return canonical(ip),
            // Garbage from here back was written by someone untrusted:
            // the best we know is the last trusted hop.
            Err(_) => break,
        }
    }
    peer
}

/// `::ffff:a.b.c.d` as `a.b.c.d`, so one client is one key whichever way
/// the socket was bound.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Things held per address (connections, pending sessions), capped.
#[derive(Clone, Debug)]
pub(crate) struct Slots {
    inner: Arc<SlotsInner>,
}

#[derive(Debug)]
struct SlotsInner {
    cap: usize,
    exempt: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Slots {
    /// At most `cap` per address (0: no cap), none counted for the
    /// addresses in `exempt` (reverse proxies carry many clients).
    pub fn new(cap: usize, exempt: &[IpNet]) -> Self {
        Self {
            inner: Arc::new(SlotsInner {
                cap,
                exempt: exempt.to_vec(),
                open: Mutex::default(),
            }),
        }
    }

    /// A slot for one more from `ip`, `Err(())` when it already holds the
    /// cap. `Ok(None)`: not counted.
    pub fn take(&self, ip: IpAddr) -> Result<Option<Slot>, ()> {
        let ip = canonical(ip);
        if self.inner.cap == 0 || trusts(&self.inner.exempt, ip) {
            return Ok(None);
        }
        let mut open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_default();
        if *n >= self.inner.cap {
            return Err(());
        }
        *n += 1;
        Ok(Some(Slot {
            slots: self.inner.clone(),
            ip,
        }))
    }

    /// Connections counted for `ip` now.
    #[cfg(test)]
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&canonical(ip)).copied().unwrap_or(0)
    }
}

/// One counted thing; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Slot {
    slots: Arc<SlotsInner>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// An accepted TCP connection and its slot: what hyper serves, and what
/// the websocket task takes back on upgrade.
#[derive(Debug)]
pub(crate) struct Stream {
    pub tcp: TcpStream,
    _slot: Option<Slot>,
}

impl Stream {
    pub fn new(tcp: TcpStream, slot: Option<Slot>) -> Self {
        Self { tcp, _slot: slot }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 1.2.3.4"),
        );
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        let trusted: [IpNet; 2] = [net("10.0.0.1/32"), net("10.0.0.2/32")];
        // From an untrusted peer, the header is ignored.
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &trusted), ip("9.9.9.9"));
        // Through two trusted hops, the client is the last untrusted one,
        // not the first (which the client wrote itself).
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        // A mapped IPv6 peer is the same peer.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &h, &trusted),
            ip("1.2.3.4")
        );
        // Garbage stops the walk at the last trusted hop.
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, junk"));
        assert_eq!(client_ip(ip("10.0.0.1"), &bad, &trusted), ip("10.0.0.1"));
        // A whole network of proxies.
        let tier = [net("10.0.0.0/8")];
        assert_eq!(client_ip(ip("10.9.9.9"), &h, &tier), ip("1.2.3.4"));
        // No header: the proxy itself.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn slots_cap_per_address_and_free_on_drop() {
        let slots = Slots::new(2, &[net("10.0.0.0/24")]);
        let a = slots.take(ip("1.1.1.1")).unwrap();
        let b = slots.take(ip("::ffff:1.1.1.1")).unwrap();
        assert!(slots.take(ip("1.1.1.1")).is_err());
        assert!(slots.take(ip("2.2.2.2")).unwrap().is_some());
        assert!(slots.take(ip("10.0.0.1")).unwrap().is_none());
        assert!(
            slots.take(ip("10.0.0.200")).unwrap().is_none(),
            "the whole network"
        );
        drop(a);
        assert_eq!(slots.open(ip("1.1.1.1")), 1);
        assert!(slots.take(ip("1.1.1.1")).unwrap().is_some());
        drop(b);
        assert!(Slots::new(0, &[]).take(ip("1.1.1.1")).unwrap().is_none());
    }
}
