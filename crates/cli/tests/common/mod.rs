//! What the HTTP suites share: a caller of a running roomcast with JSON
//! helpers (register, a room), and the error-body check.

#![allow(dead_code)] // each suite uses its own part

use std::net::SocketAddr;

use reqwest::{Client, Method, StatusCode};
use roomcast::{Server, bind};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A built server running on 127.0.0.1 until [`Running::stop`].
pub struct Running {
    /// Calls it.
    pub caller: Caller,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl std::ops::Deref for Running {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl Running {
    /// Run `server` (built with `shutdown`) on `listen`, with an internal
    /// listener on a free port if `internal`; `keep` lives as long (a
    /// temporary directory).
    pub fn spawn(
        server: Server,
        shutdown: CancellationToken,
        listen: SocketAddr,
        internal: bool,
        keep: impl std::any::Any + Send + Sync,
    ) -> Self {
        let listener = bind(listen).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let internal = internal.then(|| bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap());
        let internal_base = internal
            .as_ref()
            .map(|l| format!("http://{}", l.local_addr().unwrap()));
        Self {
            caller: Caller::new(base, internal_base),
            shutdown,
            task: Some(tokio::spawn(server.run(listener, internal))),
            _keep: Box::new(keep),
        }
    }

    /// Stop it and wait until it has.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// Calls one roomcast process: its public port (`base`) and, for `api`, its
/// internal listener (`internal`), which answers every `/internal/…` path.
pub struct Caller {
    /// The public port's base URL.
    pub base: String,
    /// The internal listener's base URL (`roomcast api`).
    pub internal: Option<String>,
    /// The HTTP client.
    pub http: Client,
}

impl Caller {
    /// A caller of `base` (and `internal`).
    pub fn new(base: String, internal: Option<String>) -> Self {
        Self {
            base,
            internal,
            http: Client::new(),
        }
    }

    /// Call `path` (on the internal listener for `/internal/…`, when there
    /// is one); the status and the JSON body (`Null` when not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let base = match &self.internal {
            Some(internal) if path.starts_with("/internal/") => internal,
            _ => &self.base,
        };
        let mut req = self.http.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let json = res.json::<Value>().await.unwrap_or(Value::Null);
        (status, json)
    }

    /// Register `name`; its id and token.
    pub async fn register(&self, name: &str) -> (String, String) {
        let body = json!({"username": name, "password": "password-1"});
        let (s, v) = self
            .call(Method::POST, "/v1/auth/register", None, Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["user"]["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    /// A room "general" of `token`'s user with `members`; its id.
    pub async fn room(&self, token: &str, members: &[&str]) -> String {
        let body = json!({"name": "general", "memberIds": members});
        let (s, v) = self
            .call(Method::POST, "/v1/rooms", Some(token), Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["room"]["id"].as_str().unwrap().to_owned()
    }
}

/// `status` is `want` and `body` a `{"error":{"code","message"}}` of `code`.
pub fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
