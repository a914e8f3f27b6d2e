//! The websocket transport: one task per connection, no buffer while idle.
//!
//! After the HTTP upgrade the raw `TcpStream` is taken back from hyper with
//! `Upgraded::downcast`, so hyper's connection buffers (and the request
//! head) are freed, and `TCP_NODELAY` is set on it. The task then waits on
//! two things only: the socket becoming readable, and the session's
//! [`Notify`](tokio::sync::Notify) (new frames queued, closed, upgraded).
//!
//! - **Reading** waits for readiness with no buffer, then reads into a
//!   stack buffer inside a synchronous step (`read_step`), so the buffer
//!   never lives in the task's future. Complete frames are handled in place;
//!   only an incomplete frame or a fragmented message is kept on the heap,
//!   and only until it completes.
//! - **Writing** takes the whole queue at once and writes it as one batch
//!   of frames (a header before each shared body, copied into a write
//!   buffer of at most ~64 KiB at a time that is freed after the write).
//!
//! When the upgraded connection is not a plain hyper `http1` connection
//! over a `TcpStream` — `axum::serve` goes through hyper-util's protocol
//! sniffing wrapper, a private type — it is served through hyper's
//! `Upgraded` as it is: the same no-buffer reads work on any `AsyncRead`,
//! at the cost of one boxed I/O object, and `TCP_NODELAY` must then be set
//! at accept time ([`crate::serve`] does both).
//!
//! A websocket opened to upgrade a polling session is a *probe* until the
//! client sends `5` (upgrade): it answers `2probe` with `3probe` (and the
//! pending GET is answered with a noop), carries nothing else, and closing it
//! leaves the polling session as it was.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::codec::engine::Packet;
use crate::codec::ws::{Opcode, close_frame, parse_frame, write_frame};
use crate::config::DisconnectReason;
use crate::engine::outbox::{EngineConn, Frame, Take, Transport};
use crate::handler::Handler;
use crate::peer::Stream;
use crate::server::{Client, Inner, ServerOps};

/// Bytes written per write call at most (a batch larger than this is
/// written in several chunks).
const WRITE_CHUNK: usize = 64 * 1024;

/// A connection the task can serve.
pub(crate) trait WsIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> WsIo for T {}

/// Serve an upgraded websocket for `client` (a new websocket session, or a
/// probe of a polling one).
pub(crate) async fn run<H: Handler>(
    server: Arc<Inner<H>>,
    client: Arc<Client<H::Data>>,
    upgraded: Upgraded,
) {
    match upgraded.downcast::<TokioIo<Stream>>() {
        Ok(parts) => {
            let stream = parts.io.into_inner();
            let _ = stream.tcp.set_nodelay(true);
            // `read_buf` shares hyper's whole read buffer: copy what is
            // unread (usually nothing) and let the buffer go now, not when
            // the connection ends.
            let leftover = parts.read_buf.to_vec();
            drop(parts.read_buf);
            serve(server, client, stream, leftover).await;
        }
        Err(upgraded) => serve(server, client, TokioIo::new(upgraded), Vec::new()).await,
    }
}

async fn serve<H: Handler, I: WsIo>(
    server: Arc<Inner<H>>,
    client: Arc<Client<H::Data>>,
    mut io: I,
    leftover: Vec<u8>,
) {
    let mut carrier = client.engine.transport() == Transport::WebSocket;
    let end = drive(&server, &client, &mut io, leftover, &mut carrier).await;
    let (End::Peer(reason) | End::Local(reason)) = end;
    // The session is cleaned up before the client can see the close.
    if carrier {
        server.close_client(&client, reason);
    } else if client.engine.transport() == Transport::Upgrading {
        tracing::debug!(sid = %client.engine.sid, %reason, "websocket probe ended; staying on polling");
        client.engine.set_transport(Transport::Polling);
    }
    finish(&mut io, end).await;
}

async fn drive<H: Handler, I: WsIo>(
    server: &Inner<H>,
    client: &Arc<Client<H::Data>>,
    io: &mut I,
    mut leftover: Vec<u8>,
    carrier: &mut bool,
) -> End {
    let engine = &client.engine;
    let mut reader = Reader::default();
    let mut end = None;
    if !leftover.is_empty() {
        let mut direct = Vec::new();
        end = reader.feed(&mut leftover, server.config.max_payload, &mut |m| {
            on_message(server, client, m, &mut direct, carrier)
        });
        drop(leftover);
        if write_all(io, &direct, engine).await.is_err() {
            return interrupted(engine);
        }
    }
    loop {
        if let Some(end) = end {
            return end;
        }
        let notified = engine.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match engine.take_for_websocket() {
            Take::Closed(reason) => return End::Local(reason),
            Take::Frames(frames) if !frames.is_empty() => {
                if write_batch(io, frames, engine).await.is_err() {
                    return interrupted(engine);
                }
                continue;
            }
            Take::Frames(_) => {}
        }
        tokio::select! {
            biased;
            () = &mut notified => {}
            (direct, e) = poll_fn(|cx| poll_read_step(cx, server, client, io, &mut reader, carrier)) => {
                if write_all(io, &direct, engine).await.is_err() {
                    return interrupted(engine);
                }
                end = e;
            }
        }
    }
}

/// How the reading side ended.
#[derive(Clone, Copy, Debug)]
enum End {
    /// The peer sent a close frame (already answered) or closed TCP.
    Peer(DisconnectReason),
    /// We end it: a close frame with this reason is still to be sent.
    Local(DisconnectReason),
}

/// The connection broke (an I/O error): nothing more can be sent.
const BROKEN: End = End::Peer(DisconnectReason::TransportError);

/// Why a write stopped: the session was closed meanwhile (its close frame
/// is still owed), or the connection broke.
fn interrupted(engine: &EngineConn) -> End {
    engine.closed().map_or(BROKEN, End::Local)
}

/// Send our close frame if we owe one, then shut the stream down.
async fn finish<I: WsIo>(io: &mut I, end: End) {
    if let End::Local(r) = end {
        let frame = close_frame(r.close_code(), &r.to_string());
        let _ = tokio::time::timeout(Duration::from_secs(1), io.write_all(&frame)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
}

/// Read what is there (a bounded number of reads, into a stack buffer that
/// lives only during this call) and handle it. Pending, having read
/// nothing and kept nothing, while the socket has no data. Returns bytes
/// to write straight away (pongs, `3probe`, a close echo).
fn poll_read_step<H: Handler, I: WsIo>(
    cx: &mut Context<'_>,
    server: &Inner<H>,
    client: &Arc<Client<H::Data>>,
    io: &mut I,
    reader: &mut Reader,
    carrier: &mut bool,
) -> Poll<(Vec<u8>, Option<End>)> {
    let mut chunk = [0u8; 8192];
    let mut direct = Vec::new();
    let mut progressed = false;
    for _ in 0..16 {
        let mut rb = ReadBuf::new(&mut chunk);
        let n = match Pin::new(&mut *io).poll_read(cx, &mut rb) {
            Poll::Pending => break,
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Poll::Ready(Err(_)) => return Poll::Ready((direct, Some(BROKEN))),
            Poll::Ready(Ok(())) => rb.filled().len(),
        };
        if n == 0 {
            return Poll::Ready((direct, Some(End::Peer(DisconnectReason::TransportClose))));
        }
        progressed = true;
        let max = server.config.max_payload;
        let end = reader.feed(&mut chunk[..n], max, &mut |m| {
            on_message(server, client, m, &mut direct, carrier)
        });
        if end.is_some() {
            return Poll::Ready((direct, end));
        }
    }
    if progressed {
        Poll::Ready((direct, None))
    } else {
        Poll::Pending
    }
}

/// One complete websocket message or control frame.
enum WsMessage<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Close(&'a [u8]),
}

fn on_message<H: Handler>(
    server: &Inner<H>,
    client: &Arc<Client<H::Data>>,
    msg: WsMessage<'_>,
    direct: &mut Vec<u8>,
    carrier: &mut bool,
) -> Result<(), End> {
    let protocol_error = End::Local(DisconnectReason::TransportError);
    let packet = match msg {
        WsMessage::Ping(data) => {
            write_frame(direct, Opcode::Pong, data);
            return Ok(());
        }
        WsMessage::Close(data) => {
            let code = data
                .get(..2)
                .map_or(1000, |c| u16::from_be_bytes([c[0], c[1]]));
            direct.extend_from_slice(&close_frame(code, ""));
            return Err(End::Peer(DisconnectReason::TransportClose));
        }
        WsMessage::Text(text) => {
            let text = std::str::from_utf8(text).map_err(|_| protocol_error)?;
            Packet::decode_text(text).map_err(|_| protocol_error)?
        }
        WsMessage::Binary(data) => Packet::Binary(Bytes::copy_from_slice(data)),
    };
    let engine = &client.engine;
    if !*carrier {
        match packet {
            Packet::Ping(true) if engine.transport() == Transport::Polling => {
                write_frame(direct, Opcode::Text, b"3probe");
                engine.set_transport(Transport::Upgrading);
            }
            Packet::Upgrade if engine.transport() == Transport::Upgrading => {
                *carrier = true;
                engine.set_transport(Transport::WebSocket);
            }
            _ => return Err(protocol_error),
        }
        return Ok(());
    }
    server.on_engine_packet(client, packet).map_err(End::Local)
}

/// Write a batch of queued frames, in chunks of about [`WRITE_CHUNK`].
async fn write_batch<I: WsIo>(
    io: &mut I,
    frames: VecDeque<Frame>,
    engine: &EngineConn,
) -> Result<(), ()> {
    let first = frames
        .iter()
        .map(|f| f.data.len() + 10)
        .sum::<usize>()
        .min(WRITE_CHUNK);
    let mut buf = Vec::with_capacity(first);
    for frame in &frames {
        let opcode = if frame.binary {
            Opcode::Binary
        } else {
            Opcode::Text
        };
        write_frame(&mut buf, opcode, &frame.data);
        if buf.len() >= WRITE_CHUNK {
            write_all(io, &buf, engine).await?;
            buf.clear();
        }
    }
    drop(frames);
    write_all(io, &buf, engine).await
}

/// Write all of `buf`, giving up (`Err`) on an I/O error or when the
/// session is closed meanwhile (a peer that stopped reading must not pin
/// the task once the heartbeat has closed it).
async fn write_all<I: WsIo>(io: &mut I, buf: &[u8], engine: &EngineConn) -> Result<(), ()> {
    let mut off = 0;
    while off < buf.len() {
        let notified = engine.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if engine.closed().is_some() {
            return Err(());
        }
        tokio::select! {
            biased;
            written = io.write(&buf[off..]) => match written {
                Ok(0) | Err(_) => return Err(()),
                Ok(n) => off += n,
            },
            () = &mut notified => {}
        }
    }
    io.flush().await.map_err(|_| ())
}

/// Frame parsing state kept between reads: empty while idle.
#[derive(Default)]
struct Reader {
    /// Bytes of an incomplete frame.
    partial: Vec<u8>,
    /// A fragmented message being assembled.
    message: Option<(Opcode, Vec<u8>)>,
}

type OnMessage<'a> = dyn FnMut(WsMessage<'_>) -> Result<(), End> + 'a;

impl Reader {
    /// Handle the complete frames in `partial` + `chunk`; keep the rest.
    fn feed(&mut self, chunk: &mut [u8], max: usize, on: &mut OnMessage<'_>) -> Option<End> {
        let result = if self.partial.is_empty() {
            self.parse(chunk, max, on).map(|used| {
                if used < chunk.len() {
                    self.partial = chunk[used..].to_vec();
                }
            })
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(chunk);
            self.parse(&mut buf, max, on).map(|used| {
                if used < buf.len() {
                    buf.drain(..used);
                    self.partial = buf;
                }
            })
        };
        result.err()
    }

    fn parse(&mut self, buf: &mut [u8], max: usize, on: &mut OnMessage<'_>) -> Result<usize, End> {
        let mut off = 0;
        loop {
            let frame = match parse_frame(&mut buf[off..], max) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(off),
                Err(crate::codec::DecodeError::TooLarge) => {
                    return Err(End::Local(DisconnectReason::TooLarge));
                }
                Err(_) => return Err(End::Local(DisconnectReason::TransportError)),
            };
            let payload = &buf[off + frame.payload.start..off + frame.payload.end];
            self.on_frame(frame.fin, frame.opcode, payload, max, on)?;
            off += frame.len;
        }
    }

    fn on_frame(
        &mut self,
        fin: bool,
        op: Opcode,
        payload: &[u8],
        max: usize,
        on: &mut OnMessage<'_>,
    ) -> Result<(), End> {
        let protocol_error = End::Local(DisconnectReason::TransportError);
        match op {
            Opcode::Text | Opcode::Binary if self.message.is_some() => Err(protocol_error),
            Opcode::Text | Opcode::Binary if fin => on(data_message(op, payload)),
            Opcode::Text | Opcode::Binary => {
                self.message = Some((op, payload.to_vec()));
                Ok(())
            }
            Opcode::Continuation => {
                let Some((op, mut data)) = self.message.take() else {
                    return Err(protocol_error);
                };
                if data.len() + payload.len() > max {
                    return Err(End::Local(DisconnectReason::TooLarge));
                }
                data.extend_from_slice(payload);
                if fin {
                    on(data_message(op, &data))
                } else {
                    self.message = Some((op, data));
                    Ok(())
                }
            }
            Opcode::Ping => on(WsMessage::Ping(payload)),
            Opcode::Pong => Ok(()),
            Opcode::Close => on(WsMessage::Close(payload)),
        }
    }
}

fn data_message(op: Opcode, data: &[u8]) -> WsMessage<'_> {
    if op == Opcode::Text {
        WsMessage::Text(data)
    } else {
        WsMessage::Binary(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    struct Nop;

    #[async_trait::async_trait]
    impl Handler for Nop {
        type Data = ();
        fn authenticate(&self, _: crate::ConnectInfo<'_>) -> Result<(), crate::Refusal> {
            Ok(())
        }
        async fn on_event(&self, _: crate::Conn<()>, _: crate::Event, _: Option<crate::Ack>) {}
    }

    /// The connection task's future is most of a connection's memory: keep
    /// it well under 1 KiB.
    #[tokio::test]
    async fn connection_future_is_small() {
        let server = Inner::new(crate::Config::default(), Arc::new(Nop));
        let (client, _) = server.handshake(Transport::WebSocket, None).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let tcp = serve(server.clone(), client.clone(), stream, Vec::new());
        assert!(
            std::mem::size_of_val(&tcp) <= 1024,
            "{} bytes",
            std::mem::size_of_val(&tcp)
        );
        assert!(std::mem::size_of::<Client<()>>() <= 256);
    }
}
