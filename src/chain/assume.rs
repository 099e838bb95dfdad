//! Assume-valid (Bitcoin Core's `-assumevalid`): the signatures of blocks that are
//! ancestors of one block the operator trusts are not checked, when the header chain
//! around it makes that safe.
//!
//! Only signatures are skipped. Proof of work, the Merkle root, sizes, every input's coin
//! (it exists, is unspent, is mature), amounts and the coinbase are checked as always, so
//! the UTXO set built this way is the one full validation builds, as long as the trusted
//! block's signatures were valid. A block's signatures are skipped only when all of these
//! hold, as in Core:
//! 1. the trusted block's header is known and on the best header chain;
//! 2. the block being connected is the trusted block or one of its ancestors;
//! 3. the best header has at least the network's minimum chain work
//!    ([`Params::min_chain_work`]);
//! 4. the block is buried under at least [`Params::assume_valid_burial`] blocks' worth of
//!    work (at the best header's difficulty) below the best header, so a fresh header
//!    chain made to pass an invalid block off would need that much work on top of it.

use ruint::aliases::U256;

use super::state::ChainState;
use crate::consensus::Params;
use crate::consensus::pow::work_from_bits;
use crate::primitives::BlockHash;

/// The trusted block and what is known about it.
#[derive(Debug)]
pub(super) struct AssumeValid {
    /// The block whose ancestors' signatures may be skipped.
    pub(super) hash: BlockHash,
    /// Its chain from genesis (index = height), once its header is known.
    path: Vec<BlockHash>,
    /// The best header `on_best` was worked out for.
    checked_best: Option<BlockHash>,
    /// Whether `hash` is on the best header chain ending at `checked_best`.
    on_best: bool,
    /// Blocks connected without their signature checks (since start).
    pub(super) skipped: u64,
}

impl AssumeValid {
    pub(super) fn new(hash: BlockHash) -> Self {
        Self { hash, path: Vec::new(), checked_best: None, on_best: false, skipped: 0 }
    }
}

impl ChainState {
    /// Trusts the signatures of `hash` and its ancestors, under the conditions in
    /// [`self`](self); `None` checks every signature (the default).
    pub fn set_assume_valid(&mut self, hash: Option<BlockHash>) {
        self.assume_valid = hash.map(AssumeValid::new);
    }

    /// The trusted block, if any, and the blocks connected without signature checks.
    pub fn assume_valid(&self) -> Option<(BlockHash, u64)> {
        self.assume_valid.as_ref().map(|a| (a.hash, a.skipped))
    }

    /// Brings the trusted block's path and place up to date with the index and the best
    /// header (before a run of connects; cheap when nothing changed).
    pub(super) fn refresh_assume_valid(&mut self) {
        let Some(av) = &self.assume_valid else { return };
        let (hash, best) = (av.hash, self.best_header);
        let path = match av.path.is_empty() && self.index.contains_key(&hash) {
            // Its ancestors are all in the index: a header joins it only after its parent.
            true => self.path_from_genesis(hash).ok(),
            false => None,
        };
        let on_best = match av.checked_best == Some(best) {
            true => None,
            false => Some(self.on_best_header_chain(&hash).is_some()),
        };
        let Some(av) = &mut self.assume_valid else { return };
        if let Some(path) = path {
            av.path = path;
        }
        if let Some(on_best) = on_best {
            av.on_best = on_best;
            av.checked_best = Some(best);
        }
    }

    /// Whether the block `hash` at `height` may join the chain without its signature
    /// checks (the module's four conditions).
    pub(super) fn skips_signatures(&self, hash: &BlockHash, height: u32) -> bool {
        let Some(av) = &self.assume_valid else { return false };
        if !av.on_best || av.path.get(height as usize) != Some(hash) {
            return false;
        }
        let (Some(best), Some(node)) = (self.index.get(&self.best_header), self.index.get(hash))
        else {
            return false;
        };
        let best = &best.entry;
        deep_enough(best.chain_work, best.header.bits, node.entry.chain_work, self.params)
    }
}

/// Conditions 3 and 4: the best header (its chain work and bits) has the minimum chain
/// work, and lies at least the burial's worth of work above the block.
fn deep_enough(best_work: U256, best_bits: u32, block_work: U256, params: &Params) -> bool {
    let burial = work_from_bits(best_bits).saturating_mul(U256::from(params.assume_valid_burial));
    best_work >= params.min_chain_work && best_work.saturating_sub(block_work) >= burial
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ChainError;
    use crate::consensus::params::REGTEST;
    use crate::consensus::{BlockError, TxError};
    use crate::primitives::{Block, TxOut};
    use crate::testkit::{CLOCK, chain_with_a_forged_signature, regtest_chain, solved_block};

    /// A fresh chain that takes every header of `blocks`, then the blocks in runs of 16,
    /// as a sync does; returns it with the blocks it found invalid.
    fn sync(blocks: &[Block], trusted: Option<BlockHash>) -> (ChainState, Vec<ChainError>) {
        let mut chain = regtest_chain();
        chain.set_assume_valid(trusted);
        let headers: Vec<_> = blocks.iter().map(|b| b.header).collect();
        let (_, error) = chain.accept_headers(&headers, CLOCK);
        assert!(error.is_none(), "headers refused: {error:?}");
        let mut invalid = Vec::new();
        for run in blocks.chunks(16) {
            let outcome = chain.accept_blocks(run.to_vec(), CLOCK).unwrap();
            invalid.extend(outcome.invalid.into_iter().map(|(_, e)| e));
        }
        (chain, invalid)
    }

    fn skipped(chain: &ChainState) -> u64 {
        chain.assume_valid().map_or(0, |(_, n)| n)
    }

    /// The chain refused the forged block for its signature, and stopped below it.
    fn refused_forged(chain: &ChainState, invalid: &[ChainError], blocks: &[Block], forged: u32) {
        let hash = blocks[forged as usize - 1].block_hash();
        match invalid {
            [ChainError::InvalidBlock { hash: h, error: BlockError::Tx { error, .. } }] => {
                assert_eq!(*h, hash);
                assert_eq!(*error, TxError::BadSignature { index: 0 });
            }
            other => panic!("expected the forged block refused, got {other:?}"),
        }
        assert_eq!(chain.height(), forged - 1);
    }

    #[test]
    fn a_forged_signature_buried_deep_enough_passes_with_assume_valid_only() {
        let (blocks, forged) = chain_with_a_forged_signature(REGTEST.assume_valid_burial);
        let tip = blocks[blocks.len() - 1].block_hash();
        let (with, invalid) = sync(&blocks, Some(tip));
        assert!(invalid.is_empty(), "{invalid:?}");
        assert_eq!(with.tip(), tip);
        // Every block up to the forged one lies under 100 blocks; the 100 above it do not.
        assert_eq!(with.assume_valid(), Some((tip, u64::from(forged))));

        let (without, invalid) = sync(&blocks, None);
        refused_forged(&without, &invalid, &blocks, forged);
        assert_eq!(without.assume_valid(), None);
    }

    #[test]
    fn one_block_short_of_the_burial_the_forged_signature_is_checked() {
        let (blocks, forged) = chain_with_a_forged_signature(REGTEST.assume_valid_burial - 1);
        let tip = blocks[blocks.len() - 1].block_hash();
        let (chain, invalid) = sync(&blocks, Some(tip));
        refused_forged(&chain, &invalid, &blocks, forged);
        assert_eq!(skipped(&chain), u64::from(forged) - 1);
    }

    #[test]
    fn only_ancestors_of_a_trusted_block_on_the_best_header_chain_are_trusted() {
        let (blocks, forged) = chain_with_a_forged_signature(REGTEST.assume_valid_burial);
        // Unknown: nothing is trusted.
        let (chain, invalid) = sync(&blocks, Some(BlockHash([7; 32])));
        refused_forged(&chain, &invalid, &blocks, forged);
        assert_eq!(skipped(&chain), 0);
        // Below the forged block: its ancestors are trusted, the forged block is not.
        let low = blocks[49].block_hash();
        let (chain, invalid) = sync(&blocks, Some(low));
        refused_forged(&chain, &invalid, &blocks, forged);
        assert_eq!(skipped(&chain), 50);
        // On a lighter branch (a sibling of the tip's parent): not on the best header chain.
        let parent = &blocks[blocks.len() - 3];
        let out = TxOut { value: 1, pubkey: [5; 32] };
        let coinbase =
            crate::primitives::Transaction::coinbase(blocks.len() as u32 - 1, vec![out], 1);
        let side = solved_block(
            parent.block_hash(),
            parent.header.time + 9,
            parent.header.bits,
            coinbase,
            vec![],
        );
        let mut chain = regtest_chain();
        chain.set_assume_valid(Some(side.block_hash()));
        let headers: Vec<_> = blocks.iter().map(|b| b.header).collect();
        assert!(chain.accept_headers(&headers, CLOCK).1.is_none());
        assert!(chain.accept_headers(&[side.header], CLOCK).1.is_none());
        assert_eq!(chain.best_header().height, blocks.len() as u32);
        let mut invalid = Vec::new();
        for run in blocks.chunks(16) {
            let outcome = chain.accept_blocks(run.to_vec(), CLOCK).unwrap();
            invalid.extend(outcome.invalid.into_iter().map(|(_, e)| e));
        }
        refused_forged(&chain, &invalid, &blocks, forged);
        assert_eq!(skipped(&chain), 0);
    }

    #[test]
    fn blocks_that_arrive_before_the_headers_above_them_are_checked_in_full() {
        let (blocks, forged) = chain_with_a_forged_signature(REGTEST.assume_valid_burial);
        let tip = blocks[blocks.len() - 1].block_hash();
        let mut chain = regtest_chain();
        chain.set_assume_valid(Some(tip));
        let mut invalid = Vec::new();
        for block in &blocks {
            let outcome = chain.accept_blocks(vec![block.clone()], CLOCK).unwrap();
            invalid.extend(outcome.invalid.into_iter().map(|(_, e)| e));
        }
        refused_forged(&chain, &invalid, &blocks, forged);
        assert_eq!(skipped(&chain), 0);
    }

    #[test]
    fn the_best_header_needs_the_minimum_chain_work_and_the_burial() {
        let params = Params { min_chain_work: U256::from(1_000), ..REGTEST };
        let bits = REGTEST.genesis_bits;
        // A regtest block is worth 2: 100 of them are 200.
        assert!(!deep_enough(U256::from(999), bits, U256::ZERO, &params));
        assert!(deep_enough(U256::from(1_000), bits, U256::from(800), &params));
        assert!(!deep_enough(U256::from(1_000), bits, U256::from(801), &params));
        assert!(deep_enough(U256::from(200), bits, U256::ZERO, &REGTEST));
    }
}
