//! Assembling a roomcast process for its [`Role`]:
//! - `serve`: every part in one process, wired exactly as the split deployment
//!   is. The API writes messages and outbox rows; the relay publishes the
//!   outbox to `chat.out` on the bus; the gateway consumes `chat.out` and emits
//!   to sockets. The API never touches a socket.
//! - `api`: HTTP API, store, relay and the `chat.in` consumer; no sockets.
//! - `realtime`: Socket.IO and the `chat.out` consumer; membership checks go
//!   to the API tier over HTTP; no database.
//!
//! [`Server::build_role`] opens everything; [`Server::run`] serves on a listener
//! until the shutdown token fires, then stops in this order, each step
//! waiting for the one before, so that nothing accepted is left behind:
//! 1. stops accepting; disconnects the sockets spread over
//!    `realtime.drain_window_ms` (clients reconnect, not all at once;
//!    `chat.out` still reaches those not yet closed) and finishes in-flight
//!    HTTP requests (bounded by `http.shutdown_grace_ms`);
//! 2. stops the gateway's work (its `chat.out` consumer, presence);
//! 3. stops consuming `chat.in`: a command being handled is finished and
//!    acked, the commands the subscription already received are handled
//!    too, the rest stays on the bus for another API node
//!    ([`roomcast_bus::consume()`]);
//! 4. lets the outbox relay make its last pass, after every write above,
//!    so what they stored is published before the process exits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use roomcast_api::{AppState, OutboxRelay, RelayStatus};
use roomcast_auth::Tokens;
use roomcast_bus::Mode;
use roomcast_gateway::membership::HttpMembership;
use roomcast_gateway::{Gateway, GatewayDeps};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;
use crate::membership::StoreMembership;
use crate::secret;

/// Bind a listener for [`Server::run`]: address reuse and a listen backlog
/// of 1024, so connect bursts queue instead of being dropped.
pub use roomcast_sio::listen as bind;

/// Which process to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything in one process (`roomcast serve`).
    Serve,
    /// The stateless API tier (`roomcast api`): HTTP, store, outbox relay, `chat.in`.
    Api,
    /// The socket tier (`roomcast realtime`): Socket.IO, `chat.out`.
    Realtime,
}

/// A built, not yet serving, roomcast process.
pub struct Server {
    router: Router,
    transport: Option<roomcast_gateway::Transport>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown: CancellationToken,
    /// Stops the gateway's background work (the `chat.out` consumer,
    /// presence) once the sockets are drained.
    gateway_stop: CancellationToken,
    /// The gateway's tasks, awaited before `chat.in` stops.
    gateway_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Stops the `chat.in` consumer once HTTP and the gateway are done.
    commands_stop: CancellationToken,
    /// The `chat.in` consumer, awaited before the relay's last pass.
    commands_task: Option<tokio::task::JoinHandle<()>>,
    /// Stops the outbox relay (its last pass) once nothing writes any more.
    relay_stop: CancellationToken,
    grace: Duration,
    drain: Duration,
    /// Bounds on each connection's HTTP phase.
    serve: roomcast_sio::ServeConfig,
    /// `api`: the internal routes, for the internal listener.
    internal: Option<Router>,
}

impl Server {
    /// Build `roomcast serve`. `shutdown` stops it.
    pub async fn build(config: &Config, shutdown: CancellationToken) -> anyhow::Result<Self> {
        Self::build_role(Role::Serve, config, shutdown).await
    }

    /// Build the process for `role`: open what it needs (store, bus, gateway,
    /// relay, consumers). `shutdown` stops them all.
    pub async fn build_role(
        role: Role,
        config: &Config,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let bus = crate::bus::connect(role, config).await?;
        Self::build_with_bus(role, config, bus, shutdown).await
    }

    /// [`Server::build_role`] on a bus the caller connected (several processes'
    /// worth of roles can share one in-process bus in a test).
    pub async fn build_with_bus(
        role: Role,
        config: &Config,
        bus: Arc<dyn roomcast_bus::Bus>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let tokens = Arc::new(tokens(role, config)?);
        let service = service_tokens(role, config)?;
        let mut internal = None;
        let topics = config.topics();
        let mut tasks = Vec::new();
        let mut gateway_tasks = Vec::new();
        let mut commands_task = None;
        let gateway_stop = CancellationToken::new();
        let commands_stop = CancellationToken::new();
        let relay_stop = CancellationToken::new();
        let mut router = Router::new();
        let mut transport = None;
        let mut socket_layer = None;

        let store = if role == Role::Realtime {
            None
        } else {
            Some(
                roomcast_store::open_with(
                    &config.database_url,
                    &roomcast_store::StoreOptions {
                        outbox_partitions: config.outbox.partitions,
                        // serve's in-process bus lives and dies with the
                        // process: its outbox can too (roomcast_store::held).
                        outbox: if role == Role::Serve
                            && config.bus.kind == crate::config::BusKind::Memory
                        {
                            roomcast_store::OutboxStorage::Memory
                        } else {
                            roomcast_store::OutboxStorage::Table
                        },
                        default_add_policy: config.rooms.default_add_policy,
                    },
                )
                .await
                .with_context(|| format!("opening database {}", config.database_url))?,
            )
        };

        if role != Role::Api {
            let membership: Arc<dyn roomcast_gateway::Membership> = match &store {
                Some(store) => Arc::new(StoreMembership(store.clone())),
                None => Arc::new(HttpMembership::new(
                    &config.realtime.api_url,
                    service.clone().context("realtime has service tokens")?,
                    &node_id(config),
                )),
            };
            // The gateway subscribes to chat.out before anything is published.
            let gateway = Gateway::start(
                GatewayDeps {
                    tokens: tokens.clone(),
                    membership,
                    bus: bus.clone(),
                    topics: topics.clone(),
                    socketio: config.socketio(),
                    node: if role == Role::Serve {
                        "serve".into()
                    } else {
                        node_id(config)
                    },
                    chat: config.chat(),
                    guard: config.guard(),
                },
                gateway_stop.clone(),
            )
            .await
            .context("subscribing the gateway to chat.out")?;
            socket_layer = Some(gateway.layer.clone());
            transport = Some(gateway.transport);
            gateway_tasks.extend(gateway.tasks);
        }

        let mut relay_status = None;
        if let Some(store) = store {
            let status = Arc::new(RelayStatus::default());
            relay_status = Some((store.clone(), status.clone()));
            let relay = OutboxRelay {
                store: store.clone(),
                bus: bus.clone(),
                topics: topics.clone(),
                node: format!("api-{}", std::process::id()),
                batch: config.outbox.batch.max(1),
                poll_interval: Duration::from_millis(config.outbox.poll_interval_ms.max(10)),
                status,
            };
            tasks.push(tokio::spawn(relay.run(relay_stop.clone())));
            let sweeper = roomcast_api::Sweeper {
                store: store.clone(),
                node_timeout: Duration::from_secs(config.presence.node_timeout_secs.max(1)),
                interval: Duration::from_secs(config.presence.sweep_interval_secs.max(1)),
            };
            tasks.push(tokio::spawn(sweeper.run(shutdown.clone())));
            let pruner = roomcast_api::events::Pruner {
                store: store.clone(),
                keep_per_room: config.event_log.keep_per_room.max(1),
                max_age: Duration::from_secs(config.event_log.max_age_secs.max(1)),
                interval: Duration::from_secs(config.event_log.prune_interval_secs.max(1)),
            };
            tasks.push(tokio::spawn(pruner.run(shutdown.clone())));
            let limits = config.api_limits();
            // Several API nodes share one database: so do their login limits.
            let limits = if role == Role::Api {
                limits.shared(&config.limits.rates, config.limits.enabled, store.clone())
            } else {
                limits
            };
            let state = AppState {
                store,
                tokens: tokens.clone(),
                max_body_bytes: config.http.max_body_bytes,
                limits: Arc::new(limits),
                refresh_ttl: Duration::from_secs(config.auth.refresh_ttl_secs.max(1)),
            };
            let commands = bus
                .subscribe(
                    &topics.chat_in,
                    Mode::Queue {
                        group: roomcast_api::commands::GROUP.into(),
                    },
                )
                .await
                .context("subscribing to chat.in")?;
            commands_task = Some(tokio::spawn(roomcast_api::commands::run(
                commands,
                state.clone(),
                commands_stop.clone(),
            )));
            if let Some(service) = &service {
                internal = Some(roomcast_api::internal::routes(
                    state.clone(),
                    service.clone(),
                ));
            }
            let api = roomcast_api::app(state);
            let api = if config.http.demo_page {
                api.merge(roomcast_api::web::routes())
            } else {
                api
            };
            router = api.merge(router);
        } else {
            router = router.fallback(roomcast_api::error::not_found);
        }

        let readiness = crate::ready::Readiness {
            store: relay_status.as_ref().map(|(store, _)| store.clone()),
            bus: bus.clone(),
            api: (role == Role::Realtime).then(|| config.realtime.api_url.clone()),
            // Each check is bounded by `ready::CHECK_TIMEOUT` itself.
            http: reqwest::Client::new(),
        };
        let router = router.route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move { readiness.answer().await }
            }),
        );
        let health_bus = bus.clone();
        let router = router.route(
            "/healthz",
            get(move || {
                let (bus, relay) = (health_bus.clone(), relay_status.clone());
                async move { health(&*bus, relay).await }
            }),
        );
        // Layers wrap the routes present when applied, so the Socket.IO layer
        // (which answers /socket.io/ itself) goes on last, under CORS.
        let router = match socket_layer {
            Some(layer) => router.layer(layer),
            None => router,
        }
        .layer(cors(&config.http.cors_origins)?);
        Ok(Self {
            router,
            transport,
            tasks,
            shutdown,
            gateway_stop,
            gateway_tasks,
            commands_stop,
            commands_task,
            relay_stop,
            grace: Duration::from_millis(config.http.shutdown_grace_ms),
            drain: Duration::from_millis(config.realtime.drain_window_ms),
            serve: config.serve(),
            internal,
        })
    }

    /// Serve on `listener` until the shutdown token fires; then drain and return.
    /// Served by `roomcast_sio::serve_with`: `TCP_NODELAY` on every
    /// connection, websocket upgrades hand the plain TCP stream to the
    /// Socket.IO layer so no HTTP buffer stays with an idle socket, and the
    /// HTTP phase is bounded (`[http]` head timeout and size, `[limits]`
    /// connections per address).
    ///
    /// `internal` is the internal listener of an `api` process: its routes
    /// (`/internal/v1/*`, `/healthz`) are served there, and only there,
    /// until the shutdown token fires.
    pub async fn run(
        self,
        listener: TcpListener,
        internal: Option<TcpListener>,
    ) -> anyhow::Result<()> {
        let internal_task = match (internal, self.internal.clone()) {
            (Some(listener), Some(router)) => {
                let shutdown = self.shutdown.clone();
                // Only roomcast's own nodes call it: no per-address cap.
                let cfg = roomcast_sio::ServeConfig {
                    max_connections_per_ip: 0,
                    ..self.serve.clone()
                };
                Some(tokio::spawn(async move {
                    roomcast_sio::serve_with(listener, router, &cfg, shutdown.cancelled()).await
                }))
            }
            (Some(_), None) => bail!("only `roomcast api` serves internal routes"),
            (None, _) => None,
        };
        let shutdown = self.shutdown.clone();
        let server = roomcast_sio::serve_with(listener, self.router, &self.serve, async move {
            shutdown.cancelled().await;
            tracing::info!(
                "shutting down: no new connections, draining sockets, finishing requests"
            );
        });
        // Drain the sockets (spread over the window) while `chat.out` still
        // reaches those not closed yet; then stop the gateway's work.
        let (transport, shutdown, window) =
            (self.transport.clone(), self.shutdown.clone(), self.drain);
        let drained = tokio::spawn(async move {
            shutdown.cancelled().await;
            if let Some(t) = transport {
                t.drain(window).await;
            }
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
        if let Some(task) = internal_task {
            let _ = task.await;
        }
        let _ = drained.await;
        self.gateway_stop.cancel();
        for task in self.gateway_tasks {
            let _ = task.await;
        }
        self.commands_stop.cancel();
        if let Some(task) = self.commands_task {
            let _ = task.await;
        }
        self.relay_stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        Ok(())
    }
}

/// `GET /healthz`: 200 with the bus reachable, 503 otherwise; on a process
/// with a store, the outbox backlog (read now) and the relay's partitions.
async fn health(
    bus: &dyn roomcast_bus::Bus,
    relay: Option<(Arc<dyn roomcast_store::Store>, Arc<RelayStatus>)>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let bus_ok = bus.healthy().await;
    let code = if bus_ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({ "status": if bus_ok { "ok" } else { "degraded" }, "bus": bus.name() });
    if let Some((store, relay)) = relay {
        let (partitions, published) = relay.snapshot();
        let mut outbox = json!({ "partitions": partitions, "published": published });
        match store.outbox_backlog().await {
            Ok(b) => {
                outbox["backlogRows"] = json!(b.rows);
                outbox["oldestAgeMs"] = json!(b.oldest_age_ms);
            }
            Err(e) => outbox["error"] = json!(e.to_string()),
        }
        body["outbox"] = outbox;
        if let Some(w) = store.write_stats() {
            body["store"] = json!({ "writeBatches": w.batches, "writes": w.writes });
        }
    }
    (code, axum::Json(body))
}

/// The internal routes' service tokens: `api` and `realtime` need
/// `internal.secret`, different from `auth.jwt_secret`; `serve` has none.
fn service_tokens(
    role: Role,
    config: &Config,
) -> anyhow::Result<Option<Arc<roomcast_auth::ServiceTokens>>> {
    if role == Role::Serve {
        return Ok(None);
    }
    let secret = &config.internal.secret;
    if secret.is_empty() {
        bail!(
            "internal.secret (ROOMCAST_INTERNAL__SECRET) must be set, to the same value on every \
             `roomcast api` and `roomcast realtime` process: it signs the service tokens of the \
             internal routes"
        );
    }
    if *secret == config.auth.jwt_secret {
        bail!("internal.secret must differ from auth.jwt_secret");
    }
    Ok(Some(Arc::new(roomcast_auth::ServiceTokens::new(
        secret.as_bytes(),
    ))))
}

/// The token keys. `serve` may generate its secret; the split tiers must share
/// one configured secret.
fn tokens(role: Role, config: &Config) -> anyhow::Result<Tokens> {
    let ttl = Duration::from_secs(config.auth.token_ttl_secs);
    if role != Role::Serve {
        if config.auth.jwt_secret.is_empty() {
            bail!(
                "auth.jwt_secret (ROOMCAST_AUTH__JWT_SECRET) must be set, to the same value on \
                 every `roomcast api` and `roomcast realtime` process"
            );
        }
        return Ok(Tokens::new(config.auth.jwt_secret.as_bytes(), ttl));
    }
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
    Ok(Tokens::new(&secret, ttl))
}

/// This realtime node's name: `realtime.node_id`, else `rt-<pid>`.
pub fn node_id(config: &Config) -> String {
    if config.realtime.node_id.is_empty() {
        format!("rt-{}", std::process::id())
    } else {
        config.realtime.node_id.clone()
    }
}

fn cors(origins: &[String]) -> anyhow::Result<CorsLayer> {
    let list = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).with_context(|| format!("http.cors_origins: {o:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_credentials(true))
}
