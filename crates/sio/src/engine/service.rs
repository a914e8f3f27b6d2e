//! The HTTP entry point: a tower [`Service`] for the Socket.IO path and a
//! [`Layer`] that puts it in front of an application (an axum `Router`,
//! say), and the protocol's error answers.
//!
//! Errors are answered as the Node server does: status 400 with
//! `{"code": n, "message": "..."}`:
//!
//! | code | message | when |
//! | --- | --- | --- |
//! | 0 | Transport unknown | `transport` missing or not offered |
//! | 1 | Session ID unknown | `sid` names no open session |
//! | 2 | Bad handshake method | a handshake that is not a GET |
//! | 3 | Bad request | bad websocket upgrade, overlapping poll, upgraded session |
//! | 5 | Unsupported protocol version | `EIO` is not 4 |
//!
//! A handshake refused for the client's address is answered 429 with
//! `Retry-After` (seconds) and roomcast's error body,
//! `{"error":{"code","message","retryAfterMs"?}}`: `rate_limited` when
//! [`Handler::allow_handshake`] refuses, `too_many_sessions` when the
//! address holds [`crate::Config::max_pending_per_ip`] sessions that never
//! connected a socket.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use tower::{Layer, Service};

use crate::codec::ws::accept_key;
use crate::config::{DisconnectReason, Sid};
use crate::engine::outbox::{Frame, Transport};
use crate::engine::{polling, websocket};
use crate::handler::Handler;
use crate::peer::ClientIp;
use crate::server::{Inner, Refused, ServerOps};

/// Error type of request bodies this service accepts.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The protocol's error answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    UnknownTransport = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    UnsupportedProtocolVersion = 5,
}

impl ErrorCode {
    fn message(self) -> &'static str {
        match self {
            Self::UnknownTransport => "Transport unknown",
            Self::UnknownSid => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }
}

/// A 400 answer with the protocol's JSON error body.
pub(crate) fn error_response(code: ErrorCode) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "code": code as u8, "message": code.message() }).to_string();
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// The 429 answer to a refused handshake (see the module docs).
pub(crate) fn refused_response(refused: Refused) -> Response<Full<Bytes>> {
    let (body, retry) = match refused {
        Refused::RateLimited(after) => {
            let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX).max(1);
            (
                serde_json::json!({ "error": {
                    "code": "rate_limited",
                    "message": "too many connection attempts from this address",
                    "retryAfterMs": ms,
                }}),
                ms.div_ceil(1000),
            )
        }
        Refused::TooManyPending => (
            serde_json::json!({ "error": {
                "code": "too_many_sessions",
                "message": "too many unauthenticated sessions from this address",
            }}),
            1,
        ),
    };
    Response::builder()
        .status(StatusCode::TOO_MANY_REQUESTS)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::RETRY_AFTER, retry)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

/// Serves every request it gets as a Socket.IO request (mount it on the
/// Socket.IO path, e.g. `Router::route_service("/socket.io/", svc)`).
pub struct SioService<H: Handler> {
    pub(crate) server: Arc<Inner<H>>,
}

impl<H: Handler> Clone for SioService<H> {
    fn clone(&self) -> Self {
        Self {
            server: self.server.clone(),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<H, B> Service<Request<B>> for SioService<H>
where
    H: Handler,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let server = self.server.clone();
        Box::pin(async move { Ok(handle(server, req).await) })
    }
}

/// Puts the Socket.IO service in front of another: requests for the
/// configured path go to Socket.IO, everything else to the inner service.
pub struct SioLayer<H: Handler> {
    pub(crate) server: Arc<Inner<H>>,
}

impl<H: Handler> Clone for SioLayer<H> {
    fn clone(&self) -> Self {
        Self {
            server: self.server.clone(),
        }
    }
}

impl<H: Handler, S> Layer<S> for SioLayer<H> {
    type Service = SioMiddleware<H, S>;

    fn layer(&self, inner: S) -> Self::Service {
        SioMiddleware {
            server: self.server.clone(),
            inner,
        }
    }
}

/// The service [`SioLayer`] makes.
pub struct SioMiddleware<H: Handler, S> {
    server: Arc<Inner<H>>,
    inner: S,
}

impl<H: Handler, S: Clone> Clone for SioMiddleware<H, S> {
    fn clone(&self) -> Self {
        Self {
            server: self.server.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<H, S, B, R> Service<Request<B>> for SioMiddleware<H, S>
where
    H: Handler,
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Either<Full<Bytes>, R>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_sio_path(req.uri().path(), &self.server.config.path) {
            let server = self.server.clone();
            return Box::pin(async move { Ok(handle(server, req).await.map(Either::Left)) });
        }
        // The ready clone answers this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(req).await.map(|r| r.map(Either::Right)) })
    }
}

fn is_sio_path(path: &str, configured: &str) -> bool {
    path == configured || Some(path) == configured.strip_suffix('/')
}

#[derive(Default)]
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    fn parse(query: &'a str) -> Self {
        let mut q = Self::default();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "EIO" => q.eio = Some(v),
                "transport" => q.transport = Some(v),
                "sid" => q.sid = Some(v),
                _ => {}
            }
        }
        q
    }
}

/// Answer one Socket.IO HTTP request.
pub(crate) async fn handle<H, B>(server: Arc<Inner<H>>, req: Request<B>) -> Response<Full<Bytes>>
where
    H: Handler,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let q = Query::parse(req.uri().query().unwrap_or(""));
    let websocket = match q.transport {
        Some("websocket") => true,
        Some("polling") if server.config.polling => false,
        _ => return error_response(ErrorCode::UnknownTransport),
    };
    if q.eio != Some("4") {
        return error_response(ErrorCode::UnsupportedProtocolVersion);
    }
    let client = match q.sid {
        None => None,
        Some(sid) => match Sid::parse(sid).and_then(|sid| server.client(&sid)) {
            Some(client) => Some(client),
            None => return error_response(ErrorCode::UnknownSid),
        },
    };
    let ip = req.extensions().get::<ClientIp>().map(|c| c.0);
    if websocket {
        return upgrade(server, req, client, ip);
    }
    match (req.method(), client) {
        (&Method::GET, None) => polling::handshake(&server, ip),
        (_, None) => error_response(ErrorCode::BadHandshakeMethod),
        (&Method::GET, Some(client)) => polling::get(server, client).await,
        (&Method::POST, Some(client)) => polling::post(server, client, req.into_body()).await,
        (_, Some(_)) => error_response(ErrorCode::BadRequest),
    }
}

/// `Sec-WebSocket-Key` if this is a valid websocket upgrade request.
fn websocket_key(method: &Method, headers: &HeaderMap) -> Option<HeaderValue> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let ok = method == Method::GET
        && has(header::UPGRADE, "websocket")
        && has(header::CONNECTION, "upgrade")
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
    if ok {
        headers.get(header::SEC_WEBSOCKET_KEY).cloned()
    } else {
        None
    }
}

fn upgrade<H: Handler, B>(
    server: Arc<Inner<H>>,
    mut req: Request<B>,
    client: Option<Arc<crate::server::Client<H::Data>>>,
    ip: Option<std::net::IpAddr>,
) -> Response<Full<Bytes>> {
    let Some(key) = websocket_key(req.method(), req.headers()) else {
        return error_response(ErrorCode::BadRequest);
    };
    let (client, direct) = match client {
        Some(client) if client.engine.transport() == Transport::Polling => (client, false),
        Some(_) => return error_response(ErrorCode::BadRequest),
        None => match server.handshake(Transport::WebSocket, ip) {
            Ok((client, open)) => {
                server.push(&client, &[Frame::text(open)]);
                (client, true)
            }
            Err(refused) => return refused_response(refused),
        },
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    // Nothing of the request outlives the handshake.
    drop(req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => websocket::run(server, client, upgraded).await,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                if direct {
                    server.close_client(&client, DisconnectReason::TransportError);
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key(key.as_bytes()))
        .body(Full::default())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries() {
        assert!(is_sio_path("/socket.io/", "/socket.io/"));
        assert!(is_sio_path("/socket.io", "/socket.io/"));
        assert!(!is_sio_path("/socket.iox", "/socket.io/"));
        let q = Query::parse("EIO=4&transport=polling&t=N8hyd6w&sid=abc");
        assert_eq!(
            (q.eio, q.transport, q.sid),
            (Some("4"), Some("polling"), Some("abc"))
        );
        let q = Query::parse("EIO");
        assert_eq!(q.eio, Some(""));
    }

    #[test]
    fn websocket_upgrade_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert!(websocket_key(&Method::GET, &h).is_some());
        assert!(websocket_key(&Method::POST, &h).is_none());
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert!(websocket_key(&Method::GET, &h).is_none());
    }
}
