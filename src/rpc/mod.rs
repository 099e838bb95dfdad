//! The HTTP JSON API (axum), bound to 127.0.0.1 by default.
//!
//! Read-only calls answer from redb snapshots and the shared status, never blocking the
//! core; state-changing calls (`POST /tx`, `POST /mine`) need the cookie token and go to
//! the core as commands. Errors are `{"error": "..."}` with a fitting status code;
//! bodies are capped at 2 MiB. `docs/api.md` lists every endpoint with examples.

pub mod auth;
pub mod types;

use std::convert::Infallible;
use std::net::SocketAddr;

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

use self::types::*;
use crate::consensus::{Network, TxError};
use crate::mempool::MempoolError;
use crate::node::{Api, RpcCommand};
use crate::primitives::address::decode_address;
use crate::primitives::encode::deserialize;
use crate::primitives::{BlockHash, Transaction, Txid};

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

    fn unavailable(msg: impl Into<String>) -> Self {
        Self(StatusCode::SERVICE_UNAVAILABLE, msg.into())
    }
}

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

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The routes.
pub fn router(api: Api) -> Router {
    let writes = Router::new()
        .route("/tx", post(submit_tx))
        .route("/mine", post(mine))
        .route_layer(middleware::from_fn_with_state(api.clone(), require_token));
    Router::new()
        .route("/status", get(status))
        .route("/blocks/tip", get(tip_block))
        .route("/blocks/{id}", get(block))
        .route("/tx/{txid}", get(tx))
        .route("/address/{addr}/balance", get(balance))
        .route("/address/{addr}/utxos", get(utxos))
        .route("/mempool", get(mempool))
        .route("/peers", get(peers))
        .route("/bans", get(bans))
        .route("/events", get(events))
        .merge(writes)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
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

async fn require_token(State(api): State<Api>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
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

async fn status(State(api): State<Api>) -> Json<crate::node::Status> {
    Json(api.status())
}

fn tip_height(api: &Api) -> u32 {
    api.snapshot.read().map(|s| s.height).unwrap_or(0)
}

/// A block by hash, or the active-chain block at a height.
fn find_block(api: &Api, id: &str) -> Result<BlockView, ApiError> {
    let hash = if !id.is_empty() && id.len() <= 10 && id.bytes().all(|b| b.is_ascii_digit()) {
        let height: u32 =
            id.parse().map_err(|_| ApiError::bad(format!("height {id} is out of range")))?;
        api.store
            .hash_at(height)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("no block at height {height}")))?
    } else {
        id.parse::<BlockHash>().map_err(|_| {
            ApiError::bad(format!("'{id}' is neither a height nor a 64-hex-digit block hash"))
        })?
    };
    let block = api.store.block(&hash).map_err(ApiError::internal)?;
    let entry = api.store.index_entry(&hash).map_err(ApiError::internal)?;
    match (block, entry) {
        (Some(block), Some(entry)) => {
            let active = api.store.hash_at(entry.height).map_err(ApiError::internal)? == Some(hash);
            Ok(BlockView::new(&block, &entry, tip_height(api), active))
        }
        _ => Err(ApiError::not_found(format!("block {hash} not found"))),
    }
}

async fn tip_block(State(api): State<Api>) -> ApiResult<BlockView> {
    let tip = api.store.tip().map_err(ApiError::internal)?.unwrap_or_default();
    find_block(&api, &tip.to_string()).map(Json)
}

async fn block(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<BlockView> {
    find_block(&api, &id).map(Json)
}

async fn tx(State(api): State<Api>, Path(id): Path<String>) -> ApiResult<TxLookup> {
    let txid: Txid =
        id.parse().map_err(|_| ApiError::bad(format!("'{id}' is not a 64-hex-digit txid")))?;
    let hrp = api.network.params().address_hrp;
    if let Some((hash, pos)) = api.store.tx_location(&txid).map_err(ApiError::internal)? {
        let block = api.store.block(&hash).map_err(ApiError::internal)?;
        let entry = api.store.index_entry(&hash).map_err(ApiError::internal)?;
        if let (Some(block), Some(entry)) = (block, entry)
            && let Some(tx) = block.txs.get(pos as usize)
        {
            return Ok(Json(TxLookup {
                tx: TxView::new(tx, hrp),
                confirmations: tip_height(&api).saturating_sub(entry.height) + 1,
                block: Some(hash.to_string()),
                height: Some(entry.height),
                fee: None,
                in_mempool: false,
            }));
        }
    }
    let found =
        api.ask(|reply| RpcCommand::MempoolTx(txid, reply)).await.map_err(ApiError::unavailable)?;
    match found {
        Some((tx, fee)) => Ok(Json(TxLookup {
            tx: TxView::new(&tx, hrp),
            confirmations: 0,
            block: None,
            height: None,
            fee: Some(fee),
            in_mempool: true,
        })),
        None => Err(ApiError::not_found(format!("transaction {txid} not found"))),
    }
}

fn parse_address(api: &Api, addr: &str) -> Result<[u8; 32], ApiError> {
    decode_address(api.network.params().address_hrp, addr).map_err(|e| ApiError::bad(e.to_string()))
}

/// Confirmed coins of `owner` not spent in the mempool, plus unconfirmed outputs to it.
async fn owner_utxos(
    api: &Api,
    owner: [u8; 32],
) -> Result<(Vec<UtxoView>, crate::node::Pending), ApiError> {
    let params = api.network.params();
    let tip = tip_height(api);
    let confirmed = api.store.coins_of(&owner).map_err(ApiError::internal)?;
    let pending =
        api.ask(|reply| RpcCommand::Pending(owner, reply)).await.map_err(ApiError::unavailable)?;
    let mut out: Vec<UtxoView> = confirmed
        .iter()
        .filter(|(op, _)| !pending.spent.iter().any(|(s, _)| s == op))
        .map(|(op, coin)| {
            let confirmations = tip.saturating_sub(coin.height) + 1;
            UtxoView {
                txid: op.txid.to_string(),
                vout: op.vout,
                value: coin.output.value,
                height: Some(coin.height),
                confirmations,
                coinbase: coin.is_coinbase,
                spendable: !coin.is_coinbase || confirmations >= params.coinbase_maturity,
            }
        })
        .collect();
    out.extend(pending.incoming.iter().map(|(op, o)| UtxoView {
        txid: op.txid.to_string(),
        vout: op.vout,
        value: o.value,
        height: None,
        confirmations: 0,
        coinbase: false,
        spendable: true,
    }));
    Ok((out, pending))
}

async fn balance(State(api): State<Api>, Path(addr): Path<String>) -> ApiResult<BalanceView> {
    let owner = parse_address(&api, &addr)?;
    let params = api.network.params();
    let tip = tip_height(&api);
    let confirmed_coins = api.store.coins_of(&owner).map_err(ApiError::internal)?;
    let confirmed: u64 = confirmed_coins.iter().map(|(_, c)| c.output.value).sum();
    let immature: u64 = confirmed_coins
        .iter()
        .filter(|(_, c)| {
            c.is_coinbase && tip.saturating_sub(c.height) + 1 < params.coinbase_maturity
        })
        .map(|(_, c)| c.output.value)
        .sum();
    let pending =
        api.ask(|reply| RpcCommand::Pending(owner, reply)).await.map_err(ApiError::unavailable)?;
    let incoming: u64 = pending.incoming.iter().map(|(_, o)| o.value).sum();
    let spent: u64 = pending.spent.iter().map(|(_, v)| v).sum();
    let unconfirmed =
        i64::try_from(incoming).unwrap_or(i64::MAX) - i64::try_from(spent).unwrap_or(i64::MAX);
    Ok(Json(BalanceView { address: addr, confirmed, unconfirmed, immature }))
}

async fn utxos(State(api): State<Api>, Path(addr): Path<String>) -> ApiResult<serde_json::Value> {
    let owner = parse_address(&api, &addr)?;
    let (utxos, _) = owner_utxos(&api, owner).await?;
    Ok(Json(json!({ "address": addr, "utxos": utxos })))
}

async fn mempool(State(api): State<Api>) -> ApiResult<serde_json::Value> {
    let entries = api.ask(RpcCommand::Mempool).await.map_err(ApiError::unavailable)?;
    let bytes: usize = entries.iter().map(|e| e.size).sum();
    Ok(Json(json!({ "size": entries.len(), "bytes": bytes, "txs": entries })))
}

async fn peers(State(api): State<Api>) -> Json<Vec<PeerView>> {
    let info = api.info.read().map(|i| i.clone()).unwrap_or_default();
    let tips = api.snapshot.read().map(|s| s.peer_tips.clone()).unwrap_or_default();
    Json(
        info.peers
            .iter()
            .map(|(id, p)| {
                let tip = tips.get(id);
                PeerView {
                    peer_id: id.to_string(),
                    addr: p.addr.to_string(),
                    direction: if p.outbound { "outbound" } else { "inbound" }.into(),
                    agent: p.agent.clone(),
                    height: tip.map(|t| t.0),
                    tip: tip.map(|t| t.1.to_string()),
                }
            })
            .collect(),
    )
}

async fn bans(State(api): State<Api>) -> Json<Vec<BanView>> {
    let info = api.info.read().map(|i| i.clone()).unwrap_or_default();
    let now = std::time::SystemTime::now();
    Json(
        info.bans
            .iter()
            .map(|(id, b)| BanView {
                peer_id: id.to_string(),
                reason: b.reason.clone(),
                expires_in_secs: b.until.duration_since(now).map_or(0, |d| d.as_secs()),
            })
            .collect(),
    )
}

async fn events(State(api): State<Api>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = api.events.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(event) => {
                let name = match &event {
                    crate::node::NodeEvent::Block { .. } => "block",
                    crate::node::NodeEvent::Reorg { .. } => "reorg",
                    crate::node::NodeEvent::Tx { .. } => "tx",
                };
                Event::default().event(name).data(serde_json::to_string(&event).unwrap_or_default())
            }
            // A slow subscriber missed some: say so and go on.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => Event::default()
                .event("lagged")
                .data(json!({ "type": "lagged", "missed": n }).to_string()),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn submit_tx(
    State(api): State<Api>,
    body: Result<Json<SubmitTx>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let tx = tx_from_hex(&req.hex).map_err(ApiError::bad)?;
    let result =
        api.ask(|reply| RpcCommand::SubmitTx(tx, reply)).await.map_err(ApiError::unavailable)?;
    match result {
        Ok(txid) => Ok(Json(json!({ "txid": txid.to_string() })).into_response()),
        Err(e) => Err(reject_status(&e)),
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
    if api.network != Network::Regtest {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "mining on demand is only available on regtest".into(),
        ));
    }
    if req.blocks == 0 || req.blocks > MAX_MINE_BLOCKS {
        return Err(ApiError::bad(format!("blocks must be between 1 and {MAX_MINE_BLOCKS}")));
    }
    let to = req.to.as_deref().map(|a| parse_address(&api, a)).transpose()?;
    let hashes = api
        .ask(|reply| RpcCommand::Mine { blocks: req.blocks, to, reply })
        .await
        .map_err(ApiError::unavailable)?
        .map_err(ApiError::internal)?;
    let hashes: Vec<String> = hashes.iter().map(ToString::to_string).collect();
    Ok(Json(json!({ "blocks": hashes })).into_response())
}
