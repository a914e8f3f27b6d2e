//! Serving HTTP with the Socket.IO service in front: an accept loop on
//! hyper's HTTP/1 connection, so that a websocket upgrade hands back the
//! plain `TcpStream` (`Upgraded::downcast` succeeds and hyper's buffers are
//! freed at once), with `TCP_NODELAY` on every accepted socket and a listen
//! backlog of 1024 from [`listen`].
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
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tower::Service;

use crate::engine::service::BoxError;

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
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    tokio::pin!(shutdown);
    // Every HTTP connection task holds a receiver; the drain below waits
    // for them all to be dropped. (hyper-util's `GracefulShutdown` cannot
    // watch an HTTP/1 connection that allows upgrades.)
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
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
