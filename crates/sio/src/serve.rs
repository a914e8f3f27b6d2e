//! Serving HTTP with the Socket.IO service in front: an accept loop on
//! hyper's HTTP/1 connection, so that a websocket upgrade hands back the
//! plain `TcpStream` (`Upgraded::downcast` succeeds and hyper's buffers are
//! freed at once), with `TCP_NODELAY` on every accepted socket and a listen
//! backlog of 1024 from [`listen`].
//!
//! Every phase before a connection is a websocket or a request in flight is
//! bounded ([`ServeConfig`]): the request head must arrive within
//! `header_read_timeout` (the same timer bounds a keep-alive connection's
//! wait for its next request) and fit in `max_header_bytes` (else 431), and
//! each peer address holds at most `max_connections_per_ip` connections
//! (past it, a 429 is written and the connection closed). hyper's read
//! buffer never grows past `max_header_bytes` while the head is read, so a
//! half-open connection holds about that much at most.
//!
//! Any tower service over `Request<Incoming>` works: an `axum::Router` with
//! [`crate::SocketIo::layer`] is the usual one. `axum::serve` works too,
//! but wraps connections in hyper-util's private protocol-sniffing type,
//! so upgraded websockets then go through hyper's boxed `Upgraded` (see
//! [`crate::engine::websocket`]).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tower::{Service, ServiceExt as _};

use crate::engine::service::BoxError;
use crate::peer::{ClientIp, PeerAddr, Slots, Stream, client_ip};

/// Bounds on each connection's HTTP phase; see the module docs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The request head (line and headers) must arrive within this, and a
    /// keep-alive connection is closed after this long without a new
    /// request. Default 10 s.
    pub header_read_timeout: Duration,
    /// Largest request head, bytes (at least 8,192); a larger one is
    /// answered 431. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Open connections per peer address (0: no cap). Default 0.
    pub max_connections_per_ip: usize,
    /// Reverse proxies (addresses or networks): their connections are not
    /// capped, and their `X-Forwarded-For` names the client ([`ClientIp`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections_per_ip: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A tower service [`serve`] can answer HTTP/1 connections with: an
/// `axum::Router`, say, with [`crate::SocketIo::layer`].
pub trait HttpService:
    Service<
        Request<Incoming>,
        Response = Response<Self::ResBody>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Clone
    + Send
    + 'static
{
    /// The response body.
    type ResBody: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> HttpService for S
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type ResBody = B;
}

/// hyper's smallest read buffer cap.
const MIN_HEAD_BYTES: usize = 8192;

/// The body of the 429 written to a connection past its address's cap.
const TOO_MANY: &str = r#"{"error":{"code":"too_many_connections","message":"too many connections from this address"}}"#;

/// The whole 429 answer to a connection past its address's cap.
fn too_many() -> String {
    format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{TOO_MANY}",
        TOO_MANY.len()
    )
}

/// A TCP listener for a Socket.IO server: address reuse and a listen
/// backlog of 1024 (tokio's default of 128 drops connect bursts).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serve `service` on `listener` until `shutdown` completes; then stop
/// accepting and drain: idle keep-alive HTTP connections are closed, and
/// requests in flight (long-polls included) finish before this returns.
/// Upgraded websockets are no longer HTTP connections and are not waited
/// for: close the Socket.IO sessions with [`crate::SocketIo::close`] when
/// `shutdown` fires (that also ends pending long-polls). Bound the drain
/// with a timeout of your own if a request may hang.
pub async fn serve<S: HttpService>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, service, &ServeConfig::default(), shutdown).await
}

/// [`serve`] with the connection bounds of `config`. Each request carries
/// [`PeerAddr`] and [`ClientIp`] in its extensions.
pub async fn serve_with<S: HttpService>(
    listener: TcpListener,
    service: S,
    config: &ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    // Every HTTP connection task holds a receiver; the drain below waits
    // for them all to be dropped. (hyper-util's `GracefulShutdown` cannot
    // watch an HTTP/1 connection that allows upgrades.)
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let slots = Slots::new(config.max_connections_per_ip, &config.trusted_proxies);
    let trusted: std::sync::Arc<[ipnet::IpNet]> = config.trusted_proxies.clone().into();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(MIN_HEAD_BYTES))
        .max_header_size(config.max_header_bytes.max(MIN_HEAD_BYTES));
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match slots.take(peer.ip()) {
            Ok(slot) => slot,
            Err(()) => {
                tracing::debug!(%peer, "refused: too many connections from this address");
                let _ = stream.try_write(too_many().as_bytes());
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let trusted = trusted.clone();
        let service = TowerToHyperService::new(service.clone().map_request(
            move |mut req: Request<Incoming>| {
                let ip = client_ip(peer.ip(), req.headers(), &trusted);
                req.extensions_mut().insert(PeerAddr(peer));
                req.extensions_mut().insert(ClientIp(ip));
                req
            },
        ));
        let mut stop = stop_rx.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let conn = http
                .serve_connection(TokioIo::new(Stream::new(stream, slot)), service)
                .with_upgrades();
            tokio::pin!(conn);
            let res = tokio::select! {
                res = conn.as_mut() => res,
                _ = async { stop.wait_for(|stopping| *stopping).await.is_ok() } => {
                    // Finish the request in flight, then close.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}
