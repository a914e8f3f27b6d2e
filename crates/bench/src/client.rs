//! A minimal Socket.IO v5 / Engine.IO v4 websocket client, light enough for
//! 15,000 connections in one process: one task per connection, small buffers,
//! and only the packets the scenarios use (open, ping/pong, CONNECT, EVENT, ACK).
//!
//! Each connection binds its own source address (`127.0.0.2`, `127.0.0.3`, …)
//! because one source address has only ~28k ephemeral ports towards one server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};
use tokio_util::sync::CancellationToken;

use crate::stats::{ConnTracker, Shared};

/// Connections per source address.
pub const CONNS_PER_SOURCE: usize = 5_000;

/// A connected, joined socket.
pub type Ws = WebSocketStream<TcpStream>;

/// The source address for connection `i`: 127.0.0.2 for the first
/// [`CONNS_PER_SOURCE`], then 127.0.0.3, and so on.
pub fn source_for(i: usize) -> IpAddr {
    let n = 2 + (i / CONNS_PER_SOURCE) as u32;
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | n))
}

/// Everything one connection needs.
#[derive(Clone)]
pub struct Spec {
    /// Server address.
    pub server: SocketAddr,
    /// Local source address to bind.
    pub source: IpAddr,
    /// Access token.
    pub token: Arc<str>,
    /// Room to join.
    pub room_id: Arc<str>,
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Connect, authenticate, join the room with an ACK. Returns the socket and the
/// time from TCP connect to the join ACK.
pub async fn connect_and_join(spec: &Spec) -> anyhow::Result<(Ws, Duration)> {
    let started = Instant::now();
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(spec.source, 0))
        .with_context(|| format!("binding source address {}", spec.source))?;
    let stream = sock.connect(spec.server).await.context("TCP connect")?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", spec.server);
    let (mut ws, _) = client_async_with_config(url, stream, Some(ws_config()))
        .await
        .context("websocket handshake")?;

    let open = next_text(&mut ws).await?;
    if !open.starts_with('0') {
        bail!("expected Engine.IO open packet, got {open:?}");
    }
    let auth = serde_json::json!({ "token": &*spec.token });
    ws.send(Message::text(format!("40{auth}"))).await?;
    let connect = next_text(&mut ws).await?;
    if !connect.starts_with("40") {
        bail!("CONNECT refused: {connect:?}");
    }
    let join = serde_json::json!(["joinRoom", { "roomId": &*spec.room_id }]);
    ws.send(Message::text(format!("421{join}"))).await?;
    // Events may come first (roomcast's `sessionUpdated`); at most a few.
    let mut ack = next_text(&mut ws).await?;
    for _ in 0..8 {
        if !ack.starts_with("42") {
            break;
        }
        ack = next_text(&mut ws).await?;
    }
    if !join_acked(&ack) {
        bail!("joinRoom not acknowledged ok: {ack:?}");
    }
    Ok((ws, started.elapsed()))
}

/// Whether `packet` is the ACK of our `joinRoom` (id 1) with `ok: true`.
fn join_acked(packet: &str) -> bool {
    packet
        .strip_prefix("431")
        .and_then(|args| serde_json::from_str::<serde_json::Value>(args).ok())
        .is_some_and(|args| args[0]["ok"] == true)
}

/// The next text packet, answering pings on the way.
async fn next_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match ws.next().await.context("connection closed")?? {
            Message::Text(t) if t.as_str() == "2" => ws.send(Message::text("3")).await?,
            Message::Text(t) => return Ok(t.as_str().to_owned()),
            Message::Close(_) => bail!("connection closed by the server"),
            _ => {}
        }
    }
}

/// Read until `stop` fires or the server closes, recording every
/// `receiveMessage` in `tracker` and `shared`.
pub async fn receive_loop(
    mut ws: Ws,
    mut tracker: ConnTracker,
    shared: Arc<Shared>,
    stop: CancellationToken,
) -> ConnTracker {
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            m = ws.next() => m,
        };
        match msg {
            Some(Ok(Message::Text(t))) => {
                let t = t.as_str();
                if t == "2" {
                    if ws.send(Message::text("3")).await.is_err() {
                        shared.note_disconnect();
                        break;
                    }
                } else if t.starts_with("42[\"receiveMessage\"") {
                    match parse_bench_body(t) {
                        Some((k, sent_us)) => shared.record(&mut tracker, k, sent_us),
                        None => shared.note_foreign(),
                    }
                }
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                shared.note_disconnect();
                break;
            }
            Some(Ok(_)) => {}
        }
    }
    let _ = ws.close(None).await;
    tracker
}

/// A bench message body: `bench|<index in room>|<send time, µs since start>`.
pub fn bench_body(k: usize, sent_us: u64) -> String {
    format!("bench|{k}|{sent_us}")
}

/// Find and parse the bench body inside a `receiveMessage` packet without a
/// full JSON parse (the generator must stay cheaper than the server).
pub fn parse_bench_body(packet: &str) -> Option<(usize, u64)> {
    const KEY: &str = "\"body\":\"bench|";
    let start = packet.find(KEY)? + KEY.len();
    let rest = &packet[start..];
    let end = rest.find('"')?;
    let (k, t) = rest[..end].split_once('|')?;
    Some((k.parse().ok()?, t.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_ack_is_read_whatever_its_key_order() {
        assert!(join_acked(r#"431[{"eventSeq":0,"ok":true,"seq":0}]"#));
        assert!(join_acked(r#"431[{"ok":true,"seq":3}]"#));
        assert!(!join_acked(
            r#"431[{"ok":false,"error":{"code":"forbidden"}}]"#
        ));
        assert!(!join_acked(r#"432[{"ok":true}]"#));
    }

    #[test]
    fn bodies_round_trip_through_a_packet() {
        let body = bench_body(42, 123_456);
        let packet = format!(
            "42[\"receiveMessage\",{{\"id\":\"x\",\"seq\":3,\"body\":\"{body}\",\"clientMsgId\":\"c\"}}]"
        );
        assert_eq!(parse_bench_body(&packet), Some((42, 123_456)));
        assert_eq!(
            parse_bench_body("42[\"receiveMessage\",{\"body\":\"hello\"}]"),
            None
        );
    }

    #[test]
    fn sources_spread_over_loopback_addresses() {
        assert_eq!(source_for(0).to_string(), "127.0.0.2");
        assert_eq!(source_for(CONNS_PER_SOURCE - 1).to_string(), "127.0.0.2");
        assert_eq!(source_for(CONNS_PER_SOURCE).to_string(), "127.0.0.3");
    }
}
