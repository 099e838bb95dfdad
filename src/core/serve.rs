//! Answers to peers' sync requests, from the chain and the mempool.

use tracing::warn;

use crate::chain::ChainState;
use crate::consensus::genesis::genesis_hash;
use crate::mempool::Mempool;
use crate::primitives::{BlockHash, Txid};
use crate::protocol::{
    ChainTip, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS, MAX_MEMPOOL_TXIDS, MAX_TXS_PER_REQUEST,
    SyncRequest, SyncResponse,
};

/// Locator hashes looked at; a locator is ~log2(height) + 10 long.
const MAX_LOCATOR: usize = 64;

/// The answer to `req`.
pub fn answer(chain: &ChainState, mempool: &Mempool, req: &SyncRequest) -> SyncResponse {
    match req {
        SyncRequest::Status => SyncResponse::Status(chain_tip(chain)),
        SyncRequest::Headers { locator, max } => {
            let locator: Vec<BlockHash> =
                locator.iter().take(MAX_LOCATOR).map(|h| BlockHash(*h)).collect();
            let max = (*max as usize).min(MAX_HEADERS);
            let headers = chain.headers_after(&locator, max);
            SyncResponse::Headers(headers.iter().flat_map(|h| h.to_bytes()).collect())
        }
        SyncRequest::Blocks(hashes) => blocks(chain, hashes),
        SyncRequest::Mempool => {
            SyncResponse::Txids(mempool.txids_in_order(MAX_MEMPOOL_TXIDS).map(|t| t.0).collect())
        }
        SyncRequest::Txs(txids) if txids.len() > MAX_TXS_PER_REQUEST => {
            SyncResponse::Refused(format!("at most {MAX_TXS_PER_REQUEST} transactions per request"))
        }
        SyncRequest::Txs(txids) => SyncResponse::Txs(
            txids
                .iter()
                .filter_map(|t| mempool.get(&Txid(*t)))
                .map(|e| crate::primitives::encode::serialize(&e.tx))
                .collect(),
        ),
    }
}

/// Our tip as peers see it.
pub fn chain_tip(chain: &ChainState) -> ChainTip {
    let tip = chain.tip_entry();
    ChainTip {
        genesis: genesis_hash(chain.params().network).0,
        tip: tip.hash().0,
        height: tip.height,
        work: tip.chain_work.to_le_bytes::<32>(),
    }
}

/// The blocks asked for that we have. A block we do not have is left out (the peer may
/// ask elsewhere); if our own store fails we refuse the whole request instead, since a
/// left-out block the peer knows we have would look withheld and get us banned.
fn blocks(chain: &ChainState, hashes: &[[u8; 32]]) -> SyncResponse {
    if hashes.len() > MAX_BLOCKS_PER_REQUEST {
        return SyncResponse::Refused(format!(
            "at most {MAX_BLOCKS_PER_REQUEST} blocks per request"
        ));
    }
    let mut out = Vec::with_capacity(hashes.len());
    for hash in hashes {
        match chain.block_bytes(&BlockHash(*hash)) {
            Ok(Some(bytes)) => out.push(bytes),
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "cannot read a block a peer asked for");
                return SyncResponse::Refused("local storage error".into());
            }
        }
    }
    SyncResponse::Blocks(out)
}
