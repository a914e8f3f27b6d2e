//! A server that behaves like the Socket.IO project's reference test server
//! (the one its protocol test suite runs against):
//!
//! - port 3000 (or `--port`), `pingInterval` 300 ms, `pingTimeout` 200 ms,
//!   `maxPayload` 1,000,000, connect timeout 1 s;
//! - namespaces `/` and `/custom`; any other is refused with "Invalid namespace";
//! - on connect to either, emits `auth` with the CONNECT packet's auth
//!   (`{}` when none);
//! - on `/`, echoes `message` as `message-back` with the same arguments
//!   (binary included) and acks `message-with-ack` with the same arguments.
//!
//! ```sh
//! cargo run -p roomcast-sio --example sio-conformance -- --port 3000
//! ```
//!
//! The integration tests (`tests/conformance.rs`) include this file and run
//! [`app`] in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use roomcast_sio::{Ack, Config, Conn, ConnectInfo, Event, Handler, Payload, SocketIo};
use serde_json::Value;

/// The reference server's behaviour.
pub struct Conformance;

#[async_trait::async_trait]
impl Handler for Conformance {
    /// The handshake's auth payload.
    type Data = Value;

    fn authenticate(&self, info: ConnectInfo<'_>) -> Result<Value, roomcast_sio::Refusal> {
        Ok(info
            .auth
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())))
    }

    fn on_connect(&self, conn: &Conn<Value>) {
        let _ = conn.emit("auth", &Payload::json(conn.user().clone()));
    }

    async fn on_event(&self, conn: Conn<Value>, event: Event, ack: Option<Ack>) {
        if conn.nsp() != "/" {
            return;
        }
        match (event.name.as_str(), ack) {
            ("message", _) => {
                let _ = conn.emit("message-back", &event.payload);
            }
            ("message-with-ack", Some(ack)) => {
                let _ = ack.send(&event.payload);
            }
            _ => {}
        }
    }
}

/// The reference server's settings.
pub fn config() -> Config {
    Config {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        connect_timeout: Duration::from_secs(1),
        namespaces: vec!["/".to_owned(), "/custom".to_owned()],
        ..Config::default()
    }
}

/// The router (Socket.IO at `/socket.io/`) and the server handle.
pub fn app() -> (axum::Router, SocketIo<Conformance>) {
    let io = SocketIo::new(config(), Arc::new(Conformance));
    let router = axum::Router::new().layer(io.layer());
    (router, io)
}

/// Serve [`app`] (with `config`) on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    axum_serve: bool,
) -> std::io::Result<()> {
    let io = SocketIo::new(config, Arc::new(Conformance));
    let router = axum::Router::new().layer(io.layer());
    if axum_serve {
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        return axum::serve(listener, router).await;
    }
    roomcast_sio::serve(listener, router, std::future::pending()).await
}

#[derive(Parser)]
struct Args {
    /// Port to listen on, on 127.0.0.1.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Override pingInterval (ms), e.g. for memory measurements with idle clients.
    #[arg(long)]
    ping_interval_ms: Option<u64>,
    /// Override pingTimeout (ms).
    #[arg(long)]
    ping_timeout_ms: Option<u64>,
    /// Serve with `axum::serve` instead of `roomcast_sio::serve` (to compare
    /// the boxed-`Upgraded` websocket path).
    #[arg(long)]
    axum_serve: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let mut config = config();
    if let Some(ms) = args.ping_interval_ms {
        config.ping_interval = Duration::from_millis(ms);
    }
    if let Some(ms) = args.ping_timeout_ms {
        config.ping_timeout = Duration::from_millis(ms);
    }
    let listener = roomcast_sio::listen(addr)?;
    eprintln!("sio-conformance listening on http://{addr}/socket.io/");
    serve(listener, config, args.axum_serve).await
}
