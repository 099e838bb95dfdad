//! The HTTP JSON API (axum), bound to 127.0.0.1 by default, on a [`NodeHandle`].
//!
//! Every handler calls one typed method of the handle and answers with the shared `api`
//! types; state-changing calls (`POST /tx`, `POST /mine`) need the cookie token. Errors are `{"error": "..."}` with a fitting status code;
//! bodies are capped at 2 MiB. `docs/api.md` lists every endpoint with examples.

pub mod auth;
mod explorer;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path as FsPath;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde_json::json;

use crate::api::{
    AddPeer, AddressesRequest, AddressesView, BalanceView, BanView, BlockView, HistoryView,
    MempoolView, MineRequest, Mined, PeerAdded, PeerDone, PeerRef, PeerView, Readiness, Status,
    SubmitTx, Submitted, TxLookup, UsedView, UtxosView,
};
use crate::consensus::{Network, TxError};
use crate::core::{MineError, NodeEvent};
use crate::mempool::MempoolError;
use crate::node::{BlockId, NodeHandle, QueryError, RequestError, Unavailable};
use crate::primitives::address::decode_address;
use crate::primitives::encode::deserialize;
use crate::primitives::{Transaction, Txid};

/// What every handler gets: the node and the token state-changing calls must present.
#[derive(Clone)]
pub struct Api {
    node: NodeHandle,
    token: String,
    /// Becomes true when the server stops: ends the open `/events` streams, which would
    /// otherwise hold a graceful shutdown open.
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Api {
    /// The API of `node`, guarded by `token`, closing its event streams when `closing`
    /// turns true.
    pub fn new(
        node: NodeHandle,
        token: String,
        closing: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self { node, token, closing }
    }
}

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Most blocks one `POST /mine` may ask for.
pub const MAX_MINE_BLOCKS: u32 = 10_000;

/// An API error: status code and message.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    fn bad(msg: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, msg.into())
    }

    fn not_found(msg: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, msg.into())
    }

    fn internal(msg: impl std::fmt::Display) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, msg.to_string())
    }
}

impl From<Unavailable> for ApiError {
    fn from(e: Unavailable) -> Self {
        Self(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Unavailable(e) => e.into(),
            QueryError::Store(e) => Self::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError(r.status(), plain_json_error(&r.body_text()))
    }
}

/// A body error in the client's terms: serde names our Rust types ("expected struct
/// SubmitTx with 1 element"), which mean nothing to a caller of the HTTP API.
fn plain_json_error(text: &str) -> String {
    const STRUCT: &str = "expected struct ";
    let Some(start) = text.find(STRUCT) else { return text.to_owned() };
    let rest = &text[start + STRUCT.len()..];
    let end = rest.find(" at line").unwrap_or(rest.len());
    format!("{}expected a JSON object{}", &text[..start], &rest[end..])
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The routes.
pub fn router(api: Api) -> Router {
    let writes = Router::new()
        .route("/tx", post(submit_tx))
        .route("/mine", post(mine))
        .route("/peers", post(add_peer))
        .route("/peers/remove", post(remove_peer))
        .route("/peers/disconnect", post(disconnect_peer))
        .route("/unban", post(unban))
        .route("/stop", post(stop))
        .route_layer(middleware::from_fn_with_state(api.clone(), require_token));
    Router::new()
        .route("/status", get(status))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/blocks/tip", get(tip_block))
        .route("/blocks/{id}", get(block))
        .route("/tx/{txid}", get(tx))
        .route("/address/{addr}/balance", get(balance))
        .route("/address/{addr}/utxos", get(utxos))
        .route("/address/{addr}/history", get(history))
        .route("/addresses", post(addresses))
        .route("/addresses/used", post(addresses_used))
        .route("/mempool", get(mempool))
        .route("/fees", get(fees))
        .route("/peers", get(peers))
        .route("/peers/kept", get(kept_peers))
        .route("/bans", get(bans))
        .route("/events", get(events))
        .route("/snapshot", get(snapshot))
        .merge(explorer::routes())
        .merge(writes)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint does not take that method".into(),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(api)
}

/// A running HTTP API. [`RpcServer::shutdown`] (or, abruptly, dropping it) stops serving
/// and removes the cookie.
pub struct RpcServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    cookie: auth::Cookie,
    closing: tokio::sync::watch::Sender<bool>,
}

/// Longest a shutdown waits for answers in flight (a `POST /stop` reply) to be written.
const GRACE: std::time::Duration = std::time::Duration::from_secs(2);

impl RpcServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets answers in flight finish (at most [`GRACE`]),
    /// then stops serving and removes the cookie file.
    pub async fn shutdown(mut self) {
        self.closing.send_replace(true);
        let _ = tokio::time::timeout(GRACE, &mut self.task).await;
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        self.task.abort();
        self.cookie.remove();
    }
}

/// Writes a fresh cookie to `data_dir`, binds `addr` and serves `node`'s API in a task.
///
/// # Errors
/// If the cookie cannot be written or the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    node: NodeHandle,
    data_dir: &FsPath,
) -> std::io::Result<RpcServer> {
    serve_for(addr, node, data_dir, auth::AllowedHosts::default()).await
}

/// [`serve`], answering requests whose `Host` is an IP address, `localhost` or one of
/// `hosts` (`--rpc-allow-host`), and 403 to any other name (DNS rebinding).
///
/// # Errors
/// The I/O error if the address cannot be bound or the cookie written.
pub async fn serve_for(
    addr: SocketAddr,
    node: NodeHandle,
    data_dir: &FsPath,
    hosts: auth::AllowedHosts,
) -> std::io::Result<RpcServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    if !bound.ip().is_loopback() {
        tracing::warn!(addr = %bound, "HTTP API is reachable from other hosts");
    }
    let cookie = auth::Cookie::create(data_dir)?;
    let (closing, mut closed) = tokio::sync::watch::channel(false);
    let app = router(Api::new(node, cookie.token().to_owned(), closed.clone()))
        .layer(middleware::from_fn_with_state(std::sync::Arc::new(hosts), host_guard));
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = closed.wait_for(|c| *c).await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    });
    tracing::info!(addr = %bound, "HTTP API listening");
    Ok(RpcServer { addr: bound, task, cookie, closing })
}

async fn host_guard(
    State(hosts): State<std::sync::Arc<auth::AllowedHosts>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req.headers().get(header::HOST).map(|v| v.to_str().unwrap_or("?"));
    if hosts.allows(host) {
        return next.run(req).await;
    }
    let host = host.unwrap_or_default().to_owned();
    tracing::debug!(%host, "HTTP request for another host name refused");
    ApiError(
        StatusCode::FORBIDDEN,
        format!(
            "Host '{host}' is not served here (DNS rebinding guard): start the node with \
             --rpc-allow-host NAME to answer to that name"
        ),
    )
    .into_response()
}

async fn require_token(State(api): State<Api>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    match given {
        Some(token) if auth::token_matches(&api.token, token) => next.run(req).await,
        Some(_) => ApiError(StatusCode::UNAUTHORIZED, "wrong API token".into()).into_response(),
        None => ApiError(
            StatusCode::UNAUTHORIZED,
            "this call needs 'Authorization: Bearer <token>' with the token from <data-dir>/.cookie".into(),
        )
        .into_response(),
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's name is
/// case-insensitive (RFC 7235), so `bearer` and `BEARER` are as good.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn metrics(State(api): State<Api>) -> impl IntoResponse {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(axum::http::header::CONTENT_TYPE, content_type)], api.node.metrics())
}

/// `POST /stop`: the node stops after answering, like `bitcoin-cli stop`.
async fn stop(State(api): State<Api>) -> Json<serde_json::Value> {
    api.node.request_stop();
    Json(json!({ "stopping": true }))
}

async fn status(State(api): State<Api>) -> Json<Status> {
    Json(api.node.status())
}

/// `GET /health`: 200 while the node can store blocks, else 503 with the reason (for a
/// supervisor's liveness probe).
async fn health(State(api): State<Api>) -> (StatusCode, Json<Readiness>) {
    answer(Readiness::health(&api.node.status()))
}

/// `GET /ready`: 200 when healthy, with a peer, and synced to the best known header, else
/// 503 with each reason (for a load balancer or a script that waits for a sync).
async fn ready(State(api): State<Api>) -> (StatusCode, Json<Readiness>) {
    answer(Readiness::ready(&api.node.status()))
}

fn answer(r: Readiness) -> (StatusCode, Json<Readiness>) {
    (if r.ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(r))
}

/// A height (digits) or a 64-hex-digit hash.
fn block_id(id: &str) -> Result<BlockId, ApiError> {
    id.parse().map_err(|e: crate::node::BlockIdError| ApiError::bad(e.to_string()))
}

async fn tip_block(State(api): State<Api>) -> ApiResult<BlockView> {
    api.node.tip_block()?.map(Json).ok_or_else(|| ApiError::not_found("no tip"))
}

async fn block(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<BlockView> {
    let id = block_id(&id)?;
    api.node.block(id)?.map(Json).ok_or_else(|| match id {
        BlockId::Height(height) => ApiError::not_found(format!("no block at height {height}")),
        BlockId::Hash(hash) => ApiError::not_found(format!("block {hash} not found")),
    })
}

async fn tx(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<TxLookup> {
    let txid: Txid =
        id.parse().map_err(|_| ApiError::bad(format!("'{id}' is not a 64-hex-digit txid")))?;
    api.node
        .tx(txid)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("transaction {txid} not found")))
}

fn parse_address(api: &Api, addr: &str) -> Result<[u8; 32], ApiError> {
    decode_address(api.node.network().params().address_hrp, addr)
        .map_err(|e| ApiError::bad(e.to_string()))
}

async fn balance(State(api): State<Api>, Path(addr): Path<String>) -> ApiResult<BalanceView> {
    let owner = parse_address(&api, &addr)?;
    Ok(Json(api.node.balance(owner, addr).await?))
}

/// The owners of a batch request's addresses, refused whole if one is bad or too many.
fn parse_addresses(api: &Api, addresses: &[String]) -> Result<Vec<[u8; 32]>, ApiError> {
    let max = crate::node::handle::MAX_ADDRESSES;
    if addresses.len() > max {
        return Err(ApiError::bad(format!(
            "{} addresses in one request; at most {max}",
            addresses.len()
        )));
    }
    addresses.iter().map(|a| parse_address(api, a)).collect()
}

/// Whether each address has ever had a transaction (what a wallet restore scans with).
async fn addresses_used(
    State(api): State<Api>,
    body: Result<Json<AddressesRequest>, JsonRejection>,
) -> ApiResult<UsedView> {
    let Json(req) = body?;
    let owners = parse_addresses(&api, &req.addresses)?;
    Ok(Json(UsedView { used: api.node.used(owners).await? }))
}

/// Balance, coins and history of many addresses at once (a wallet's).
async fn addresses(
    State(api): State<Api>,
    body: Result<Json<AddressesRequest>, JsonRejection>,
) -> ApiResult<AddressesView> {
    let Json(req) = body?;
    let owners = parse_addresses(&api, &req.addresses)?;
    let owners = owners.into_iter().zip(req.addresses).collect();
    Ok(Json(AddressesView { addresses: api.node.summaries(owners, req.history).await? }))
}

async fn utxos(State(api): State<Api>, Path(addr): Path<String>) -> ApiResult<UtxosView> {
    let owner = parse_address(&api, &addr)?;
    let utxos = api.node.utxos(owner).await?;
    Ok(Json(UtxosView { address: addr, utxos }))
}

async fn history(State(api): State<Api>, Path(addr): Path<String>) -> ApiResult<HistoryView> {
    let owner = parse_address(&api, &addr)?;
    let txs = api.node.history(owner).await?;
    Ok(Json(HistoryView { address: addr, txs }))
}

/// The UTXO set at the stored tip as a snapshot file (`minichain snapshot create`, and
/// hosts that start from one); what it is of in `x-snapshot-*` headers.
async fn snapshot(State(api): State<Api>) -> Result<Response, ApiError> {
    let (info, hash, bytes) = api.node.snapshot().await?;
    let headers = [
        (axum::http::header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (axum::http::HeaderName::from_static("x-snapshot-block"), info.block.to_string()),
        (axum::http::HeaderName::from_static("x-snapshot-height"), info.height.to_string()),
        (axum::http::HeaderName::from_static("x-snapshot-hash"), hash.to_string()),
    ];
    Ok((headers, bytes).into_response())
}

async fn mempool(State(api): State<Api>) -> ApiResult<MempoolView> {
    Ok(Json(api.node.mempool().await?))
}

async fn fees(State(api): State<Api>) -> ApiResult<crate::api::FeesView> {
    Ok(Json(api.node.fees().await?))
}

async fn peers(State(api): State<Api>) -> Json<Vec<PeerView>> {
    Json(api.node.peers())
}

async fn kept_peers(State(api): State<Api>) -> Json<Vec<crate::api::KeptPeerView>> {
    Json(api.node.kept_peers())
}

async fn add_peer(
    State(api): State<Api>,
    body: Result<Json<AddPeer>, JsonRejection>,
) -> ApiResult<PeerAdded> {
    let Json(req) = body?;
    let addr =
        crate::net::addr::parse_peer_addr(&req.addr).map_err(|e| ApiError::bad(e.to_string()))?;
    if api.node.is_own(&addr) {
        return Err(ApiError::bad(format!("'{}' is this node itself", req.addr)));
    }
    api.node.add_peer(addr.clone()).await?;
    Ok(Json(PeerAdded { addr: addr.to_string() }))
}

async fn remove_peer(
    State(api): State<Api>,
    body: Result<Json<PeerRef>, JsonRejection>,
) -> ApiResult<PeerDone> {
    let Json(req) = body?;
    let found = api.node.remove_peer(&req.peer).await?;
    peer_done(req, found, "removed", "is neither kept nor connected")
}

async fn disconnect_peer(
    State(api): State<Api>,
    body: Result<Json<PeerRef>, JsonRejection>,
) -> ApiResult<PeerDone> {
    let Json(req) = body?;
    let found = api.node.disconnect(peer_id(&req.peer)?).await?;
    peer_done(req, found, "disconnected", "is not connected")
}

async fn unban(
    State(api): State<Api>,
    body: Result<Json<PeerRef>, JsonRejection>,
) -> ApiResult<PeerDone> {
    let Json(req) = body?;
    let found = api.node.unban(peer_id(&req.peer)?).await?;
    peer_done(req, found, "unbanned", "is not banned")
}

/// The answer to an order about a peer: what was done, or 404 saying why nothing was.
fn peer_done(req: PeerRef, found: bool, done: &str, missing: &str) -> ApiResult<PeerDone> {
    if !found {
        return Err(ApiError::not_found(format!("peer '{}' {missing}", req.peer)));
    }
    Ok(Json(PeerDone { peer: req.peer, done: done.to_owned() }))
}

/// A peer id of a request body, or a 400 naming it.
fn peer_id(s: &str) -> Result<libp2p::PeerId, ApiError> {
    s.trim().parse().map_err(|_| ApiError::bad(format!("'{s}' is not a peer id (12D3KooW…)")))
}

async fn bans(State(api): State<Api>) -> Json<Vec<BanView>> {
    Json(api.node.bans())
}

async fn events(State(api): State<Api>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = api.node.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let (name, data) = sse_parts(rx.recv().await)?;
        Some((Ok(Event::default().event(name).data(data)), rx))
    });
    let mut closing = api.closing.clone();
    let closed = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    Sse::new(futures::StreamExt::take_until(stream, closed)).keep_alive(KeepAlive::default())
}

/// The SSE event name and JSON data for what a subscriber received; `None` once the node
/// has stopped. A subscriber too slow for the buffer is told how many events it missed.
fn sse_parts(
    received: Result<NodeEvent, tokio::sync::broadcast::error::RecvError>,
) -> Option<(&'static str, String)> {
    use tokio::sync::broadcast::error::RecvError;
    match received {
        Ok(event) => {
            let name = match &event {
                NodeEvent::Block { .. } => "block",
                NodeEvent::Reorg { .. } => "reorg",
                NodeEvent::Tx { .. } => "tx",
                NodeEvent::Peer { .. } => "peer",
                NodeEvent::SnapshotRejected { .. } => "snapshot_rejected",
            };
            Some((name, serde_json::to_string(&event).unwrap_or_default()))
        }
        Err(RecvError::Lagged(missed)) => {
            Some(("lagged", json!({ "type": "lagged", "missed": missed }).to_string()))
        }
        Err(RecvError::Closed) => None,
    }
}

async fn submit_tx(
    State(api): State<Api>,
    body: Result<Json<SubmitTx>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let tx = tx_from_hex(&req.hex).map_err(ApiError::bad)?;
    match api.node.submit_tx(tx).await {
        Ok(txid) => Ok(Json(Submitted { txid: txid.to_string() }).into_response()),
        Err(RequestError::Refused(e)) => Err(reject_status(&e)),
        Err(RequestError::Unavailable(e)) => Err(e.into()),
    }
}

/// Decodes the `hex` field of `POST /tx` (also the entry point of the HTTP fuzz target).
///
/// # Errors
/// A message for the client if the field is not hex or not one whole transaction.
pub fn tx_from_hex(hex: &str) -> Result<Transaction, String> {
    let bytes = hex::decode(hex.trim()).map_err(|_| "'hex' is not hex".to_owned())?;
    deserialize(&bytes).map_err(|e| format!("not a transaction: {e}"))
}

/// Status code for a mempool refusal: spending what is already spent (in the mempool or
/// the chain) is a 409 conflict; other rule breaks are the client's 400; a full pool 503.
fn reject_status(e: &MempoolError) -> ApiError {
    let code = match e {
        MempoolError::Conflict { .. }
        | MempoolError::AlreadyKnown(_)
        | MempoolError::Invalid(TxError::InputMissingOrSpent(_)) => StatusCode::CONFLICT,
        MempoolError::PoolFull => StatusCode::SERVICE_UNAVAILABLE,
        MempoolError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError(code, format!("transaction rejected: {e}"))
}

async fn mine(
    State(api): State<Api>,
    body: Result<Json<MineRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    if api.node.network() != Network::Regtest {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "mining on demand is only available on regtest".into(),
        ));
    }
    if req.blocks == 0 || req.blocks > MAX_MINE_BLOCKS {
        return Err(ApiError::bad(format!("blocks must be between 1 and {MAX_MINE_BLOCKS}")));
    }
    let to = req.to.as_deref().map(|a| parse_address(&api, a)).transpose()?;
    let hashes = match api.node.mine(req.blocks, to).await {
        Ok(hashes) => hashes,
        Err(RequestError::Refused(e @ MineError::NotRegtest)) => {
            return Err(ApiError(StatusCode::FORBIDDEN, e.to_string()));
        }
        Err(RequestError::Refused(e)) => return Err(ApiError::internal(e)),
        Err(RequestError::Unavailable(e)) => return Err(e.into()),
    };
    Ok(Json(Mined { blocks: hashes.iter().map(ToString::to_string).collect() }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_that_lags_is_told_how_many_events_it_missed_and_goes_on() {
        let (tx, mut rx) = tokio::sync::broadcast::channel::<NodeEvent>(2);
        for height in 1..=5 {
            let event = NodeEvent::Block { hash: format!("{height:064x}"), height, txs: 1 };
            tx.send(event).unwrap();
        }
        let lagged = sse_parts(rx.recv().await).unwrap();
        assert_eq!(lagged, ("lagged", r#"{"missed":3,"type":"lagged"}"#.to_owned()));
        for height in 4..=5u32 {
            let (name, data) = sse_parts(rx.recv().await).unwrap();
            assert_eq!(name, "block");
            assert!(data.contains(&format!("\"height\":{height}")), "{data}");
        }
        drop(tx);
        assert_eq!(sse_parts(rx.recv().await), None, "the stream ends with the node");
    }
}
