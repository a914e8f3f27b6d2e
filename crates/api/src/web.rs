//! The demo page: a small browser chat (`web/` in the repository) built on
//! the JavaScript client library (`clients/js`), embedded in the binary so
//! `roomcast serve` and `roomcast api` answer it at `/` (switched by
//! `http.demo_page`).
//!
//! | path | file |
//! | --- | --- |
//! | `/` | `web/index.html` |
//! | `/style.css` | `web/style.css` |
//! | `/app.js` | `web/app.js` |
//! | `/client.js` | `clients/js/index.js` (`@roomcast/client`) |
//! | `/vendor/socket.io.esm.min.js` | `web/vendor/socket.io.esm.min.js` (socket.io-client, MIT) |
//!
//! The page talks to the same origin it was served from: `/v1/...` over HTTP
//! and `/socket.io/` for live events.

use axum::Router;
use axum::http::{HeaderName, header};
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../../../web/index.html");
const STYLE_CSS: &str = include_str!("../../../web/style.css");
const APP_JS: &str = include_str!("../../../web/app.js");
const CLIENT_JS: &str = include_str!("../../../clients/js/index.js");
const SOCKET_IO_JS: &str = include_str!("../../../web/vendor/socket.io.esm.min.js");

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Only the page's own files run; it connects back to its own origin
/// (`ws:`/`wss:` named for browsers whose `'self'` does not cover them).
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The demo page's routes, stateless: merge them into the API router.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(|| async { asset(HTML, INDEX_HTML) }))
        .route("/style.css", get(|| async { asset(CSS, STYLE_CSS) }))
        .route("/app.js", get(|| async { asset(JS, APP_JS) }))
        .route("/client.js", get(|| async { asset(JS, CLIENT_JS) }))
        .route(
            "/vendor/socket.io.esm.min.js",
            get(|| async { asset(JS, SOCKET_IO_JS) }),
        )
}

/// One embedded file. `no-cache`: the browser revalidates, so a new binary's
/// page is picked up at once.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (HeaderName::from_static("content-security-policy"), CSP),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, String, String) {
        let res = routes()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let ctype = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, ctype, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_page_is_html_and_loads_its_scripts_as_modules() {
        let (status, ctype, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(body.contains("<script type=\"module\" src=\"./app.js\">"));
        assert!(body.contains("href=\"./style.css\""));
    }

    #[tokio::test]
    async fn the_scripts_are_javascript_and_the_client_is_the_library() {
        let (status, ctype, body) = get("/client.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, JS);
        assert!(body.contains("export class RoomcastClient"));

        let (status, ctype, body) = get("/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, JS);
        assert!(body.contains("from './client.js'"));

        let (status, ctype, body) = get("/vendor/socket.io.esm.min.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, JS);
        assert!(
            body.starts_with("/*!\n * Socket.IO v4"),
            "keeps its license header"
        );

        let (status, ctype, _) = get("/style.css").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, CSS);
    }

    #[tokio::test]
    async fn other_paths_are_not_answered_here() {
        let (status, _, _) = get("/index.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
