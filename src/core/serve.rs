//! Answers to peers' sync requests, from the chain and the mempool.

use tracing::error;

use crate::chain::ChainState;
use crate::compact::CompactBlock;
use crate::consensus::genesis::genesis_hash;
use crate::mempool::Mempool;
use crate::primitives::encode::serialize;
use crate::primitives::{BlockHash, Txid};
use crate::protocol::{
    ChainTip, MAX_BLOCK_BYTES, MAX_BLOCK_TXS_INDEXES, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS,
    MAX_MEMPOOL_TXIDS, MAX_TXS_PER_REQUEST, SyncRequest, SyncResponse, blocks_budget,
};

/// Locator hashes looked at; a locator is ~log2(height) + 10 long.
const MAX_LOCATOR: usize = 64;

/// The answer to `req`; `history` is the chain validating a snapshot's history, whose
/// blocks below the snapshot's base are served too.
pub fn answer(
    chain: &ChainState,
    history: Option<&ChainState>,
    mempool: &Mempool,
    req: &SyncRequest,
) -> SyncResponse {
    match req {
        SyncRequest::Status => SyncResponse::Status(chain_tip(chain)),
        SyncRequest::Headers { locator, max } => {
            let locator: Vec<BlockHash> =
                locator.iter().take(MAX_LOCATOR).map(|h| BlockHash(*h)).collect();
            let max = (*max as usize).min(MAX_HEADERS);
            let headers = chain.headers_after(&locator, max);
            SyncResponse::Headers(headers.iter().flat_map(|h| h.to_bytes()).collect())
        }
        SyncRequest::Blocks(hashes) => blocks(chain, history, hashes),
        SyncRequest::Mempool => {
            SyncResponse::Txids(mempool.txids_in_order(MAX_MEMPOOL_TXIDS).map(|t| t.0).collect())
        }
        SyncRequest::Txs(txids) if txids.len() > MAX_TXS_PER_REQUEST => {
            SyncResponse::Refused(format!("at most {MAX_TXS_PER_REQUEST} transactions per request"))
        }
        SyncRequest::Txs(txids) => SyncResponse::Txs(
            txids.iter().filter_map(|t| mempool.get(&Txid(*t))).map(|e| serialize(&e.tx)).collect(),
        ),
        SyncRequest::BlockTxs { block, indexes } => block_txs(chain, BlockHash(*block), indexes),
        SyncRequest::CompactBlock(block) => compact_block(chain, BlockHash(*block)),
    }
}

/// The compact form of `block`, built from the store, if it is on the active chain (a
/// block taken: a node passes on only those).
pub fn compact_block(chain: &ChainState, block: BlockHash) -> SyncResponse {
    if !chain.is_active(&block) {
        return SyncResponse::Refused(format!("block {block} not taken"));
    }
    match chain.block(&block) {
        Ok(Some(b)) => SyncResponse::CompactBlock(serialize(&CompactBlock::from_block(&b))),
        Ok(None) => SyncResponse::Refused(format!("block {block} not stored")),
        Err(e) => {
            error!(%block, error = %e, "cannot read a block a peer asked the compact form of");
            SyncResponse::Refused("local storage error".into())
        }
    }
}

/// The transactions of `block` at `indexes`, all of them, or a refusal: an answer that
/// left one out would read as a lie about the block.
fn block_txs(chain: &ChainState, block: BlockHash, indexes: &[u32]) -> SyncResponse {
    if indexes.len() > MAX_BLOCK_TXS_INDEXES {
        return SyncResponse::Refused(format!(
            "at most {MAX_BLOCK_TXS_INDEXES} transactions per request"
        ));
    }
    let block = match chain.block(&block) {
        Ok(Some(block)) => block,
        Ok(None) => return SyncResponse::Refused(format!("no block {block} here")),
        Err(e) => {
            error!(%block, error = %e, "cannot read a block a peer asked transactions of");
            return SyncResponse::Refused("local storage error".into());
        }
    };
    let mut txs = Vec::with_capacity(indexes.len());
    for index in indexes {
        match block.txs.get(*index as usize) {
            Some(tx) => txs.push(serialize(tx)),
            None => {
                let count = block.txs.len();
                return SyncResponse::Refused(format!("no transaction {index} of {count}"));
            }
        }
    }
    SyncResponse::BlockTxs(txs)
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

/// The blocks asked for that we have, in order, up to [`blocks_budget`] bytes (the rest
/// are left for the peer to ask again). A block we do not have is left out (the
/// peer may ask elsewhere). Two cases refuse the whole request instead, since a left-out
/// block the peer knows we have would look withheld and get us banned: our own store
/// fails, or the block is on our active chain without its data (we started from a
/// snapshot and its history has not arrived yet).
fn blocks(chain: &ChainState, history: Option<&ChainState>, hashes: &[[u8; 32]]) -> SyncResponse {
    blocks_within(chain, history, hashes, blocks_budget(hashes.len()))
}

fn blocks_within(
    chain: &ChainState,
    history: Option<&ChainState>,
    hashes: &[[u8; 32]],
    budget: usize,
) -> SyncResponse {
    if hashes.len() > MAX_BLOCKS_PER_REQUEST {
        return SyncResponse::Refused(format!(
            "at most {MAX_BLOCKS_PER_REQUEST} blocks per request"
        ));
    }
    let mut out = Vec::with_capacity(hashes.len());
    let mut total = 0;
    for hash in hashes {
        let hash = BlockHash(*hash);
        let found = match chain.block_bytes(&hash) {
            Ok(None) => history.map_or(Ok(None), |h| h.block_bytes(&hash)),
            found => found,
        };
        match found {
            Ok(Some(bytes)) if !intact(&hash, &bytes) => {
                error!(
                    %hash,
                    "block {hash} in the database is damaged (its stored bytes are not that \
                     block): not served; run `minichain verify` on a copy, and restore a \
                     backup or sync again"
                );
                return SyncResponse::Refused("local storage error".into());
            }
            Ok(Some(bytes)) if total + bytes.len() > budget => break,
            Ok(Some(bytes)) => {
                total += bytes.len();
                out.push(bytes);
            }
            Ok(None) if chain.is_active(&hash) => {
                return SyncResponse::Refused(
                    "blocks below our snapshot's base are not here yet".into(),
                );
            }
            Ok(None) => {}
            Err(e) => {
                error!(%hash, error = %e, "cannot read a block a peer asked for");
                return SyncResponse::Refused("local storage error".into());
            }
        }
    }
    SyncResponse::Blocks(out)
}

/// Whether `bytes`, read from our store, are the block `hash`: its header hashes to it
/// and its transactions to the header's Merkle root. Damaged stored bytes served as they
/// are would read as an invalid block and get us banned; checking costs about the
/// hashing of the block once.
fn intact(hash: &BlockHash, bytes: &[u8]) -> bool {
    crate::primitives::encode::deserialize::<crate::primitives::Block>(bytes).is_ok_and(|b| {
        b.block_hash() == *hash
            && crate::consensus::merkle::block_merkle_root(&b.txs).0 == b.header.merkle_root
    })
}

/// How many of the hashes asked a blocks answer covers, given which of them it holds
/// (`received`, one flag per hash asked) and its block bytes: all of them, unless the
/// answer is so close to its [`blocks_budget`] that the next block may not have fit (the
/// server stops there), in which case those up to its last block. A hash it covers but
/// left out is one the peer does not have.
pub fn covered(received: &[bool], bytes: usize) -> usize {
    match received.iter().rposition(|r| *r) {
        Some(last) if bytes + MAX_BLOCK_BYTES > blocks_budget(received.len()) => last + 1,
        _ => received.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::encode::serialize;
    use crate::testkit::{extend, regtest_chain};

    #[test]
    fn a_blocks_answer_stops_before_the_block_that_would_pass_the_budget() {
        let mut chain = regtest_chain();
        let mined: Vec<_> = (0..5).map(|_| extend(&mut chain, vec![], [4; 32])).collect();
        let hashes: Vec<[u8; 32]> = mined.iter().map(|b| b.block_hash().0).collect();
        let size = serialize(&mined[0]).len();
        // Room for two and a half blocks: two are sent, in the order asked.
        let SyncResponse::Blocks(sent) = blocks_within(&chain, None, &hashes, size * 5 / 2) else {
            panic!("refused");
        };
        assert_eq!(sent, mined[..2].iter().map(serialize).collect::<Vec<_>>());
        // All of them fit the real budget.
        let SyncResponse::Blocks(sent) = blocks(&chain, None, &hashes) else { panic!("refused") };
        assert_eq!(sent.len(), 5);
    }

    #[test]
    fn an_answer_cut_by_the_budget_covers_only_the_blocks_up_to_its_last() {
        let received = [true, false, true, false, false];
        // Small: it covers every hash asked, so the two missing at the end were left out.
        assert_eq!(covered(&received, 3 * 1_000), 5);
        // At the budget: the last two may simply not have fit; the one in the middle was
        // left out all the same.
        let full = crate::protocol::BLOCKS_RESPONSE_BUDGET - MAX_BLOCK_BYTES / 2;
        assert_eq!(covered(&received, full), 3);
        // An empty answer covers everything (nothing was cut).
        assert_eq!(covered(&[false, false], 0), 2);
        // A request of more than 16 (only new nodes ask that many) is answered within
        // 2 MiB, and cut there.
        let mut many = vec![false; 100];
        many[..10].iter_mut().for_each(|r| *r = true);
        assert_eq!(covered(&many, 10 * 1_000), 100);
        assert_eq!(covered(&many, 1_500_000), 10);
    }

    #[test]
    fn damaged_stored_bytes_are_not_served_as_the_block() {
        let mut chain = regtest_chain();
        let block = extend(&mut chain, vec![], [4; 32]);
        let (hash, bytes) = (block.block_hash(), serialize(&block));
        assert!(intact(&hash, &bytes));
        // A flipped byte in the header, in a transaction, or a cut: not that block.
        for at in [10, bytes.len() - 5] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(!intact(&hash, &bad), "a flip at {at} passed");
        }
        assert!(!intact(&hash, &bytes[..bytes.len() - 1]));
        assert!(!intact(&BlockHash([1; 32]), &bytes), "another block's bytes");
    }

    #[test]
    fn more_blocks_than_a_request_holds_are_refused() {
        let chain = regtest_chain();
        let resp = blocks(&chain, None, &vec![[7; 32]; MAX_BLOCKS_PER_REQUEST + 1]);
        assert!(matches!(resp, SyncResponse::Refused(r) if r.contains("128 blocks")));
    }
}
