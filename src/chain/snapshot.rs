//! A chain started from a UTXO snapshot (`minichain node --snapshot`): until the header of
//! the snapshot's base block arrives nothing is connected (the stored UTXO set is the
//! base's, not genesis'); once it does, the base and its ancestors join the active chain
//! unconnected, and blocks above it connect as usual. The history below the base is
//! validated apart, from genesis, by a second chain (see `core::history`).

use std::cmp::Reverse;

use tracing::info;

use super::error::ChainError;
use super::index::Candidate;
use super::state::ChainState;
use crate::primitives::{BlockHash, BlockHeader};
use crate::storage::{ChainWrite, SNAPSHOT_BASE, SnapshotBase};

impl ChainState {
    /// The snapshot this chain started from, if it did.
    pub fn snapshot_base(&self) -> Option<SnapshotBase> {
        self.snapshot
    }

    /// Whether the chain started from a snapshot whose base header has not arrived yet:
    /// until it does, no block is connected and none is asked for.
    pub fn awaiting_snapshot_base(&self) -> bool {
        self.snapshot.is_some_and(|base| self.hash_at(base.height) != Some(base.block))
    }

    /// The header at `height` on the best header chain.
    pub fn best_chain_header(&self, height: u32) -> Option<BlockHeader> {
        let hash = self.best_chain.get(height as usize)?;
        self.index.get(hash).map(|n| n.entry.header)
    }

    /// Once the base's header is in the index: the base and its ancestors become the
    /// active chain, without being connected, in one durable write, and stored blocks
    /// above the base become tip candidates. Returns whether it happened now.
    pub(super) fn adopt_snapshot_base(&mut self) -> Result<bool, ChainError> {
        let Some(base) = self.snapshot.filter(|_| self.awaiting_snapshot_base()) else {
            return Ok(false);
        };
        let Some(node) = self.index.get(&base.block).filter(|n| !n.entry.is_failed()) else {
            return Ok(false);
        };
        let mut entry = node.entry;
        entry.status |= SNAPSHOT_BASE;
        let path = self.path_from_genesis(base.block)?;
        let heights = path.iter().enumerate().map(|(h, hash)| (h as u32, *hash)).collect();
        self.store.apply(&ChainWrite {
            index: vec![entry],
            heights,
            tip: Some(base.block),
            durable: true,
            ..ChainWrite::default()
        })?;
        if let Some(node) = self.index.get_mut(&base.block) {
            node.entry = entry;
        }
        self.active = path;
        self.mark_data_chain(base.block);
        let tip_work = entry.chain_work;
        self.candidates.retain(|c| c.0 > tip_work);
        info!(height = base.height, hash = %base.block, "snapshot base {} at height {} reached: the chain goes on from the snapshot's UTXO set; history is validated in the background", base.block, base.height);
        Ok(true)
    }

    /// `hash` (stored, or the snapshot's base) has every ancestor's data or coins: it and
    /// its stored descendants become tip candidates.
    pub(super) fn mark_data_chain(&mut self, hash: BlockHash) {
        let mut stack = vec![hash];
        while let Some(h) = stack.pop() {
            let Some(node) = self.index.get_mut(&h) else { continue };
            let usable = node.entry.has_data() || node.entry.is_snapshot_base();
            if !usable || node.in_data_chain {
                continue;
            }
            node.in_data_chain = true;
            if !node.entry.is_failed() {
                self.candidates.insert(Candidate(node.entry.chain_work, Reverse(node.seq), h));
            }
            stack.extend(self.children.get(&h).into_iter().flatten().copied());
        }
    }

    /// Records that the history up to the snapshot's base was validated and agreed.
    ///
    /// # Errors
    /// [`ChainError::Storage`] if the store fails.
    pub fn mark_snapshot_validated(&mut self) -> Result<(), ChainError> {
        self.store.mark_snapshot_validated()?;
        if let Some(base) = self.snapshot.as_mut() {
            base.validated = true;
        }
        Ok(())
    }
}
