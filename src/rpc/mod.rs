//! The HTTP JSON API (axum). Read-only calls answer from shared snapshots without
//! blocking the core; state-changing calls go to the core as commands.
//!
//! Errors are `{"error": "..."}` with a fitting status code; bodies are capped.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::consensus::Network;
use crate::node::{Api, RpcCommand};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Most blocks one `POST /mine` may ask for.
pub const MAX_MINE_BLOCKS: u32 = 10_000;

/// An API error: status code and message.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError(r.status(), r.body_text())
    }
}

/// The routes.
pub fn router(api: Api) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/mine", post(mine))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

/// Binds `addr` and serves the API in a task. Returns the bound address.
///
/// # Errors
/// If the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    api: Api,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        tracing::warn!(addr = %bound, "HTTP API is reachable from other hosts");
    }
    let app = router(api);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    });
    Ok((bound, task))
}

async fn status(State(api): State<Api>) -> Json<crate::node::Status> {
    Json(api.status())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MineRequest {
    blocks: u32,
}

async fn mine(
    State(api): State<Api>,
    body: Result<Json<MineRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    if api.network != Network::Regtest {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "mining on demand is only available on regtest".into(),
        ));
    }
    if req.blocks == 0 || req.blocks > MAX_MINE_BLOCKS {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("blocks must be between 1 and {MAX_MINE_BLOCKS}"),
        ));
    }
    let hashes = api
        .ask(|reply| RpcCommand::Mine { blocks: req.blocks, reply })
        .await
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let hashes: Vec<String> = hashes.iter().map(ToString::to_string).collect();
    Ok(Json(json!({ "blocks": hashes })).into_response())
}
