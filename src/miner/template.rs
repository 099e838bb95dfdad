//! Block templates: the next block on the current tip, filled from the mempool by fee rate.

use ruint::aliases::U256;

use crate::chain::ChainState;
use crate::consensus::merkle::block_merkle_root;
use crate::consensus::pow::target_from_compact;
use crate::mempool::Mempool;
use crate::primitives::header::HEADER_SIZE;
use crate::primitives::{Block, BlockHash, BlockHeader, Transaction, TxOut};

/// Bytes kept free for the header, the count and the coinbase.
const COINBASE_RESERVE: usize = 1_000;

/// A block ready for the nonce search.
#[derive(Debug, Clone)]
pub struct Template {
    /// The block, nonce 0.
    pub block: Block,
    /// Its height.
    pub height: u32,
    /// Fees collected.
    pub fees: u64,
    /// Target the header hash must meet.
    pub target: U256,
}

impl Template {
    /// Writes a new extra nonce into the coinbase and recomputes the Merkle root: a fresh
    /// 2^32 nonce space.
    pub fn set_extra_nonce(&mut self, extra_nonce: u64) {
        let coinbase = &mut self.block.txs[0];
        coinbase.inputs[0].signature[..8].copy_from_slice(&extra_nonce.to_le_bytes());
        self.block.header.merkle_root = block_merkle_root(&self.block.txs).0;
    }

    /// The parent this template builds on.
    pub fn parent(&self) -> BlockHash {
        self.block.header.prev_blockhash
    }
}

/// Builds the next block on `chain`'s tip paying subsidy and fees to `payout`, with time
/// `now` (raised above the median time past if the clock is behind).
pub fn build_template(
    chain: &ChainState,
    mempool: &Mempool,
    payout: [u8; 32],
    now: u64,
) -> Template {
    let params = chain.params();
    let tip = chain.tip();
    let height = chain.height() + 1;
    // The tip is always in the index, so its child context exists.
    let ctx = chain.child_context(&tip, now).expect("tip is indexed");
    let time = now.clamp(u64::from(ctx.median_time_past) + 1, u64::from(u32::MAX)) as u32;
    let budget = params.max_block_size - HEADER_SIZE - COINBASE_RESERVE;
    let selected = mempool.select(budget, params.max_block_inputs);
    let fees: u64 = selected.iter().map(|e| e.fee).sum();
    let reward = params.subsidy(height).saturating_add(fees);
    let mut txs =
        vec![Transaction::coinbase(height, vec![TxOut { value: reward, pubkey: payout }], 0)];
    txs.extend(selected.into_iter().map(|e| e.tx.clone()));
    let header = BlockHeader {
        version: 1,
        prev_blockhash: tip,
        merkle_root: block_merkle_root(&txs).0,
        time,
        bits: ctx.expected_bits,
        nonce: 0,
    };
    // Expected bits come from next_bits, which only produces valid targets.
    let target = target_from_compact(header.bits).unwrap_or(U256::ZERO);
    Template { block: Block { header, txs }, height, fees, target }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64};

    use super::*;
    use crate::testkit::{CLOCK, regtest_chain};

    #[test]
    fn rolling_the_extra_nonce_gives_a_fresh_merkle_root_and_a_valid_block() {
        let mut chain = regtest_chain();
        let mut template = build_template(&chain, &Mempool::default(), [4; 32], CLOCK);
        let (root, txid) = (template.block.header.merkle_root, template.block.txs[0].txid());
        template.set_extra_nonce(1);
        assert_ne!(template.block.header.merkle_root, root, "new nonce space");
        assert_eq!(template.block.txs[0].txid(), txid, "coinbase txid is unchanged");
        let block =
            crate::miner::mine_template(template, 2, &AtomicBool::new(false), &AtomicU64::new(0))
                .expect("regtest block found");
        let outcome = chain.accept_block(block.clone(), CLOCK).unwrap();
        assert!(outcome.invalid.is_empty());
        assert_eq!(chain.tip(), block.block_hash());
    }

    #[test]
    fn a_raised_cancel_flag_stops_mining() {
        let chain = regtest_chain();
        let mut template = build_template(&chain, &Mempool::default(), [4; 32], CLOCK);
        template.target = U256::ZERO; // unreachable: only the flag can end the search
        let cancel = AtomicBool::new(true);
        assert!(crate::miner::mine_template(template, 2, &cancel, &AtomicU64::new(0)).is_none());
    }
}
