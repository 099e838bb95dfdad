//! The block explorer: three static files compiled into the binary and served at `/`.
//!
//! The page is plain HTML, CSS and JavaScript with no external resources, so it works
//! offline; everything it shows comes from the JSON API on the same origin, and it follows
//! the node live through `/events`.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX_HTML: &str = include_str!("explorer/index.html");
const APP_JS: &str = include_str!("explorer/app.js");
const STYLE_CSS: &str = include_str!("explorer/style.css");

/// The explorer's routes: `/`, `/explorer/app.js`, `/explorer/style.css`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route(
            "/explorer/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route("/explorer/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
}

/// A static file; `no-cache` makes a browser revalidate, so an upgraded node's page is
/// the one shown.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}
