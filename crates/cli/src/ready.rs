//! `GET /readyz`: whether this process should get traffic now, checking
//! each dependency it serves with, at once, each within [`CHECK_TIMEOUT`]:
//!
//! | check | on | how |
//! | --- | --- | --- |
//! | `database` | `serve`, `api` | one read of the store (a user by an id no user has) |
//! | `bus` | every process | the bus's own health check |
//! | `api` | `realtime` | `GET <realtime.api_url>/healthz` answers 200 |
//!
//! 200 `{"status":"ready","checks":{"database":"ok",…}}` when every check
//! passes; otherwise 503 `{"status":"unready","failing":["database"],
//! "checks":{"database":"<why>",…}}`. `/healthz` stays a liveness check
//! (the process is up; the bus and the outbox backlog for a person to
//! read), so an orchestrator restarts on `/healthz` and routes on `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// The longest any one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What this process depends on.
#[derive(Clone)]
pub struct Readiness {
    /// The store (`serve`, `api`).
    pub store: Option<Arc<dyn roomcast_store::Store>>,
    /// The bus.
    pub bus: Arc<dyn roomcast_bus::Bus>,
    /// The API tier's base URL (`realtime`).
    pub api: Option<String>,
    /// For the API tier check.
    pub http: reqwest::Client,
}

impl Readiness {
    /// Run every check; the answer of `/readyz`.
    pub async fn answer(&self) -> (StatusCode, Json<Value>) {
        let database = async {
            let store = self.store.as_ref()?;
            Some(
                within(async {
                    let found = store.user(roomcast_core::UserId::new()).await;
                    found.map(drop).map_err(|e| e.to_string())
                })
                .await,
            )
        };
        let bus = within(async {
            if self.bus.healthy().await {
                Ok(())
            } else {
                Err(format!("{} is unreachable", self.bus.name()))
            }
        });
        let api = async {
            let url = format!("{}/healthz", self.api.as_ref()?.trim_end_matches('/'));
            Some(
                within(async {
                    match self.http.get(&url).send().await {
                        Ok(res) if res.status().is_success() => Ok(()),
                        Ok(res) => Err(format!("{url} answered {}", res.status())),
                        Err(e) => Err(format!("{url}: {e}")),
                    }
                })
                .await,
            )
        };
        let (database, bus, api) = tokio::join!(database, bus, api);
        let mut checks = Map::new();
        let mut failing = Vec::new();
        for (name, result) in [("database", database), ("bus", Some(bus)), ("api", api)] {
            let Some(result) = result else { continue };
            match result {
                Ok(()) => {
                    checks.insert(name.into(), json!("ok"));
                }
                Err(why) => {
                    checks.insert(name.into(), json!(why));
                    failing.push(name);
                }
            }
        }
        if failing.is_empty() {
            (
                StatusCode::OK,
                Json(json!({ "status": "ready", "checks": checks })),
            )
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unready", "failing": failing, "checks": checks })),
            )
        }
    }
}

/// `check`, failed if it takes longer than [`CHECK_TIMEOUT`].
async fn within(
    check: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    }
}
