//! Test clients: a raw Engine.IO websocket client and long-polling helpers.
//! Every wait is bounded by a timeout; nothing sleeps.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound on any single wait in these tests.
pub const WAIT: Duration = Duration::from_secs(5);

/// Serve an axum router on an ephemeral port with `roomcast_sio::serve`
/// (upgraded websockets are plain `TcpStream`s).
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = roomcast_sio::listen(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(roomcast_sio::serve(
        listener,
        router,
        std::future::pending(),
    ));
    addr
}

/// Serve with `axum::serve` (upgraded websockets go through hyper's `Upgraded`).
pub async fn serve_axum(router: axum::Router) -> SocketAddr {
    let listener = roomcast_sio::listen(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A raw websocket Engine.IO client.
pub struct Ws {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Open `ws://addr/socket.io/?EIO=4&transport=websocket` plus `extra` query.
    pub async fn connect(addr: SocketAddr, extra: &str) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket{extra}");
        let (inner, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("websocket connect");
        Self { inner }
    }

    /// Connect and read the open packet; returns the client and the handshake.
    pub async fn open(addr: SocketAddr) -> (Self, Value) {
        let mut ws = Self::connect(addr, "").await;
        let open = ws.text().await;
        let json = open.strip_prefix('0').expect("open packet");
        (ws, serde_json::from_str(json).unwrap())
    }

    /// Open and join `/` (auth-less); returns the client after the `auth` event.
    pub async fn joined(addr: SocketAddr) -> Self {
        let (mut ws, _) = Self::open(addr).await;
        ws.send("40").await;
        assert!(ws.text().await.starts_with("40{\"sid\":"));
        assert_eq!(ws.text().await, r#"42["auth",{}]"#);
        ws
    }

    pub async fn send(&mut self, text: &str) {
        self.inner.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        self.inner
            .send(Message::binary(data.to_vec()))
            .await
            .unwrap();
    }

    /// The next data message (websocket pings are answered by tungstenite).
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.inner.next())
                .await
                .expect("nothing received in time");
            match msg {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(m)) => return Some(m),
                _ => return None,
            }
        }
    }

    /// The next text message, answering Engine.IO pings on the way.
    pub async fn text(&mut self) -> String {
        loop {
            match self.next().await {
                Some(Message::Text(t)) if t.as_str() == "2" => self.send("3").await,
                Some(Message::Text(t)) => return t.to_string(),
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// The next binary message.
    pub async fn binary(&mut self) -> Vec<u8> {
        match self.next().await {
            Some(Message::Binary(b)) => b.to_vec(),
            other => panic!("expected a binary message, got {other:?}"),
        }
    }

    /// Wait for the server to close; returns the close code if one was sent.
    /// Engine.IO pings are not answered meanwhile.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Some(Message::Close(frame)) => return frame.map(|f| f.code.into()),
                None => return None,
                Some(_) => continue,
            }
        }
    }
}

/// Long-polling helpers.
pub struct Polling {
    pub http: reqwest::Client,
    pub base: String,
}

impl Polling {
    pub fn new(addr: SocketAddr) -> Self {
        let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
        Self {
            http,
            base: format!("http://{addr}/socket.io/?EIO=4&transport=polling"),
        }
    }

    /// Handshake; returns the sid and the open JSON.
    pub async fn open(&self) -> (String, Value) {
        let body = self
            .http
            .get(&self.base)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let json: Value =
            serde_json::from_str(body.strip_prefix('0').expect("open packet")).unwrap();
        (json["sid"].as_str().unwrap().to_owned(), json)
    }

    pub async fn get(&self, sid: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}&sid={sid}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn post(&self, sid: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}&sid={sid}", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// GET until a body other than a lone ping arrives (pings are ponged).
    pub async fn get_data(&self, sid: &str) -> String {
        loop {
            let (status, body) = self.get(sid).await;
            assert_eq!(status, 200, "{body}");
            let rest: Vec<&str> = body.split('\x1e').filter(|p| *p != "2").collect();
            if body.split('\x1e').any(|p| p == "2") {
                self.post(sid, "3").await;
            }
            if !rest.is_empty() {
                return rest.join("\x1e");
            }
        }
    }
}

/// Parse a JSON error answer `{"code", "message"}`.
pub fn error_code(body: &str) -> (u64, String) {
    let v: Value = serde_json::from_str(body).unwrap();
    (
        v["code"].as_u64().unwrap(),
        v["message"].as_str().unwrap().to_owned(),
    )
}
