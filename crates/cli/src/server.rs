//! `roomcast serve`: every part in one process, wired exactly as the split
//! deployment is. The API writes messages and outbox rows; the relay publishes
//! the outbox to `chat.out` on the in-process bus; the gateway consumes
//! `chat.out` and emits to sockets. The API never touches a socket.
//!
//! [`Server::build`] opens everything; [`Server::run`] serves on a listener
//! until the shutdown token fires, then: disconnects sockets (clients
//! reconnect), finishes in-flight HTTP requests (bounded by
//! `http.shutdown_grace_ms`), lets the relay make a last pass, and returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use axum::serve::ListenerExt;
use roomcast_api::{AppState, OutboxRelay};
use roomcast_auth::Tokens;
use roomcast_bus::{Bus, MemoryBus};
use roomcast_gateway::membership::StoreMembership;
use roomcast_gateway::{Gateway, GatewayDeps};
use roomcast_store::Store;
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::secret;

/// Listen backlog: connect bursts queue here instead of being dropped.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Bind `addr` with a [`LISTEN_BACKLOG`]-deep queue.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A built, not yet serving, `roomcast serve`.
pub struct Server {
    router: Router,
    gateway: Gateway,
    relay: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
    grace: Duration,
}

impl Server {
    /// Open the store, the bus, the gateway and the relay. `shutdown` stops them all.
    pub async fn build(config: &Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        if config.bus.kind != "memory" {
            bail!(
                "bus.kind = {:?}: `roomcast serve` runs on the in-process bus (\"memory\"); \
                 distributed buses arrive with the split deployment (issue #4)",
                config.bus.kind
            );
        }
        let store: Arc<dyn Store> = roomcast_store::open(&config.database_url)
            .await
            .with_context(|| format!("opening database {}", config.database_url))?;
        let (secret, source) = secret::resolve(&config.auth.jwt_secret, &config.database_url)
            .context("reading or creating the JWT secret")?;
        match source {
            secret::Source::Generated(path) => tracing::warn!(
                path = %path.display(),
                "no auth.jwt_secret configured: generated one and stored it beside the database; \
                 set ROOMCAST_AUTH__JWT_SECRET in production"
            ),
            secret::Source::Ephemeral => tracing::warn!(
                "no auth.jwt_secret configured and the database is in memory: \
                 tokens will not survive a restart"
            ),
            secret::Source::File(_) | secret::Source::Configured => {}
        }
        let tokens = Arc::new(Tokens::new(
            &secret,
            Duration::from_secs(config.auth.token_ttl_secs),
        ));
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let topics = config.topics();

        // The gateway subscribes to chat.out before the relay publishes anything.
        let gateway = Gateway::start(
            GatewayDeps {
                tokens: tokens.clone(),
                membership: Arc::new(StoreMembership(store.clone())),
                bus: bus.clone(),
                topics: topics.clone(),
                socketio: config.socketio(),
                node: "serve".into(),
            },
            shutdown.clone(),
        )
        .await
        .context("subscribing the gateway to chat.out")?;

        let wake = Arc::new(Notify::new());
        let relay = OutboxRelay {
            store: store.clone(),
            bus: bus.clone(),
            topics,
            wake: wake.clone(),
            batch: config.outbox.batch.max(1),
            poll_interval: Duration::from_millis(config.outbox.poll_interval_ms.max(10)),
        };
        let relay = tokio::spawn(relay.run(shutdown.clone()));

        let state = AppState {
            store: store.clone(),
            tokens,
            outbox_wake: wake,
            max_body_bytes: config.http.max_body_bytes,
        };
        let health_bus = bus.clone();
        let router = roomcast_api::app(state)
            .route(
                "/healthz",
                get(move || async move {
                    let bus_ok = health_bus.healthy().await;
                    let code = if bus_ok {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    };
                    (code, axum::Json(json!({ "status": if bus_ok { "ok" } else { "degraded" }, "bus": health_bus.name() })))
                }),
            )
            .layer(gateway.layer.clone())
            .layer(cors(&config.http.cors_origins)?);
        Ok(Self {
            router,
            gateway,
            relay,
            shutdown,
            grace: Duration::from_millis(config.http.shutdown_grace_ms),
        })
    }

    /// Serve on `listener` until the shutdown token fires; then drain and return.
    pub async fn run(self, listener: TcpListener) -> anyhow::Result<()> {
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let transport = self.gateway.transport.clone();
        let shutdown = self.shutdown.clone();
        let server = axum::serve(listener, self.router).with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            tracing::info!("shutting down: disconnecting sockets, finishing requests");
            transport.close().await;
        });
        let shutdown = self.shutdown.clone();
        let grace = self.grace;
        tokio::select! {
            res = server => res.context("serving HTTP")?,
            _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(?grace, "in-flight requests did not finish in time; stopping anyway");
            }
        }
        self.shutdown.cancel();
        let _ = self.relay.await;
        let _ = self.gateway.consumer.await;
        Ok(())
    }
}

fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let list = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).with_context(|| format!("http.cors_origins: {o:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_credentials(true))
}
