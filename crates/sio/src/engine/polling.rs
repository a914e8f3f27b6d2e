//! The HTTP long-polling transport.
//!
//! - `GET` waits until the session has something to send and answers with
//!   a payload of queued packets (at most `maxPayload` bytes), `6` (noop)
//!   once a websocket probe succeeded, or `1` (close) once closed. It holds
//!   no buffer while it waits.
//! - `POST` carries a payload of client packets, at most `maxPayload`
//!   bytes, and is answered `ok`.
//!
//! One GET and one POST at a time: an overlapping request closes the
//! session and is answered 400, as the Node server does. A session already
//! upgraded to websocket answers polling with 400.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};

use crate::codec::payload;
use crate::config::DisconnectReason;
use crate::engine::outbox::{EngineConn, PollRequest, Transport};
use crate::engine::service::{ErrorCode, error_response, refused_response};
use crate::handler::Handler;
use crate::server::{Client, Inner, ServerOps};

/// The handshake answer: the open packet as a one-packet payload.
pub(crate) fn handshake<H: Handler>(
    server: &Inner<H>,
    ip: Option<std::net::IpAddr>,
) -> Response<Full<Bytes>> {
    match server.handshake(Transport::Polling, ip) {
        Ok((_client, open)) => text_response(open.into_bytes()),
        Err(refused) => refused_response(refused),
    }
}

/// A GET on an open session.
pub(crate) async fn get<H: Handler>(
    server: Arc<Inner<H>>,
    client: Arc<Client<H::Data>>,
) -> Response<Full<Bytes>> {
    let engine = &client.engine;
    let _in_flight = match begin(&server, &client, PollRequest::Get) {
        Ok(guard) => guard,
        Err(code) => return error_response(code),
    };
    loop {
        let notified = engine.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(body) = engine.take_for_poll(server.config.max_payload) {
            return text_response(body);
        }
        notified.await;
    }
}

/// A POST on an open session.
pub(crate) async fn post<H, B>(
    server: Arc<Inner<H>>,
    client: Arc<Client<H::Data>>,
    body: B,
) -> Response<Full<Bytes>>
where
    H: Handler,
    B: http_body::Body + Send,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let engine = &client.engine;
    let _in_flight = match begin(&server, &client, PollRequest::Post) {
        Ok(guard) => guard,
        Err(code) => return error_response(code),
    };
    let bytes = match Limited::new(body, server.config.max_payload)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            server.close_client(&client, DisconnectReason::TooLarge);
            return Response::builder()
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .body(Full::default())
                .unwrap_or_default();
        }
        Err(_) => return error_response(ErrorCode::BadRequest),
    };
    let packets = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| payload::decode(text).ok());
    let Some(packets) = packets else {
        tracing::debug!(sid = %engine.sid, "bad polling payload; closing the session");
        server.close_client(&client, DisconnectReason::TransportError);
        return error_response(ErrorCode::BadRequest);
    };
    for packet in packets {
        if let Err(reason) = server.on_engine_packet(&client, packet) {
            server.close_client(&client, reason);
            break;
        }
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "text/html")
        .body(Full::new(Bytes::from_static(b"ok")))
        .unwrap_or_default()
}

fn text_response(body: Vec<u8>) -> Response<Full<Bytes>> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=UTF-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// Admit one GET or POST: refused on an upgraded session, and an
/// overlapping request closes the session.
fn begin<'a, H: Handler>(
    server: &Inner<H>,
    client: &'a Arc<Client<H::Data>>,
    kind: PollRequest,
) -> Result<InFlight<'a>, ErrorCode> {
    let engine = &client.engine;
    if engine.transport() == Transport::WebSocket {
        return Err(ErrorCode::BadRequest);
    }
    if !engine.begin_request(kind) {
        tracing::debug!(sid = %engine.sid, ?kind, "overlapping polling request; closing the session");
        server.close_client(client, DisconnectReason::TransportError);
        return Err(ErrorCode::BadRequest);
    }
    Ok(InFlight(engine, kind))
}

/// Ends the request's in-flight mark however the request ends.
struct InFlight<'a>(&'a EngineConn, PollRequest);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.end_request(self.1);
    }
}
