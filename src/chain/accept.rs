//! Block acceptance: a block or a run of blocks checked, stored (or held as orphans) and
//! the active chain moved, in one transition.

use std::sync::Arc;

use rayon::prelude::*;

use super::error::ChainError;
use super::outcome::{AcceptOutcome, BatchOutcome, BlockStatus};
use super::state::{ChainState, inconsistent};
use super::write::{FLUSH_AT_BYTES, Transition, writer};
use crate::consensus::BlockError;
use crate::consensus::block::check_block;
use crate::primitives::{Block, BlockHash};
use crate::storage::HAVE_DATA;

impl ChainState {
    /// Validates and stores a block, then moves the active chain to the most-work branch,
    /// all in one store write.
    ///
    /// Returns `Err` only when the block itself is refused before it is stored (bad PoW,
    /// structure, header context) or the store fails. Blocks found invalid while being
    /// connected are listed in the outcome's `invalid`.
    ///
    /// # Errors
    /// [`ChainError`] as above.
    pub fn accept_block(&mut self, block: Block, now: u64) -> Result<AcceptOutcome, ChainError> {
        let BatchOutcome { mut statuses, update, invalid } =
            self.accept_blocks(vec![block], now)?;
        let status = statuses.pop().ok_or_else(|| inconsistent("a block without a status"))??;
        Ok(AcceptOutcome { status, update, invalid })
    }

    /// [`Self::accept_block`] for a run of blocks (a sync answer), in one transition: each
    /// block is checked on its own (on every core), stored, and then the active chain
    /// moves once, preparing each block against the UTXO set while the previous one's
    /// signatures are verified. While catching up, what earlier calls held in memory is
    /// written meanwhile, on another thread, once it is due.
    ///
    /// # Errors
    /// [`ChainError::Storage`] if the store fails; what each block's refusal was is in the
    /// outcome's `statuses`.
    pub fn accept_blocks(
        &mut self,
        blocks: Vec<Block>,
        now: u64,
    ) -> Result<BatchOutcome, ChainError> {
        let params = self.params;
        let check = |block: &Block| check_block(block, params);
        let checked: Vec<Result<(), BlockError>> = match blocks.as_slice() {
            [block] => vec![check(block)],
            _ => blocks.par_iter().map(check).collect(),
        };
        let due = self.flush_due(now) || self.unwritten.bytes >= FLUSH_AT_BYTES;
        let writing = (due && !self.unwritten.write.is_empty()).then(|| {
            let mut held = std::mem::take(&mut self.unwritten);
            held.write.durable = true;
            Arc::new(held)
        });
        self.writing = writing.clone();
        let store = self.store.clone();
        let mut written = None;
        let moved = match (&writing, writer()) {
            (Some(held), Some(pool)) => pool.in_place_scope(|scope| {
                scope.spawn(|_| written = Some(store.apply(&held.write)));
                self.transition(blocks, checked, now)
            }),
            (Some(held), None) => {
                written = Some(store.apply(&held.write));
                self.transition(blocks, checked, now)
            }
            (None, _) => self.transition(blocks, checked, now),
        };
        self.writing = None;
        match written {
            Some(Err(e)) => return Err(self.recover(e.into())),
            Some(Ok(())) => self.last_flush = now,
            None => {}
        }
        let (tx, outcome) = moved.map_err(|e| self.recover(e))?;
        self.commit(tx, Some(now))?;
        Ok(outcome)
    }

    /// Stores `blocks` (checked as `checked` says) and moves the active chain, in memory:
    /// the transition to commit and what it did.
    fn transition(
        &mut self,
        blocks: Vec<Block>,
        checked: Vec<Result<(), BlockError>>,
        now: u64,
    ) -> Result<(Transition, BatchOutcome), ChainError> {
        let mut tx = std::mem::take(&mut self.unwritten);
        let mut statuses = Vec::with_capacity(blocks.len());
        let mut stored = Vec::new();
        for (block, checked) in blocks.into_iter().zip(checked) {
            let hash = block.block_hash();
            match self.store_checked(block, checked, now, &mut tx) {
                Err(e @ ChainError::Storage(_)) => return Err(e),
                Ok(BlockStatus::Stored) => {
                    stored.push(hash);
                    statuses.push(Ok(BlockStatus::Stored));
                }
                status => statuses.push(status),
            }
        }
        let mut outcome = AcceptOutcome::new(BlockStatus::Stored);
        self.activate_best_chain(&mut outcome, &mut tx)?;
        for hash in stored {
            self.process_orphans(hash, now, &mut outcome, &mut tx)?;
        }
        Ok((tx, BatchOutcome { statuses, update: outcome.update, invalid: outcome.invalid }))
    }

    /// Stores a block that went through [`check_block`] with result `checked`, unless it is
    /// known, an orphan, or refused.
    fn store_checked(
        &mut self,
        block: Block,
        checked: Result<(), BlockError>,
        now: u64,
        tx: &mut Transition,
    ) -> Result<BlockStatus, ChainError> {
        let hash = block.block_hash();
        if let Some(node) = self.index.get(&hash) {
            if node.entry.is_failed() {
                return Err(ChainError::KnownInvalid(hash));
            }
            if node.entry.has_data() {
                return Ok(BlockStatus::Duplicate);
            }
        }
        if self.orphans.contains(&hash) {
            let missing = self.orphans.missing_ancestor(hash);
            return Ok(BlockStatus::Orphan { missing });
        }
        checked.map_err(|error| ChainError::InvalidBlock { hash, error })?;
        if !self.index.contains_key(&block.header.prev_blockhash) {
            self.orphans.insert(block);
            let missing = self.orphans.missing_ancestor(hash);
            return Ok(BlockStatus::Orphan { missing });
        }
        self.store_block(Arc::new(block), now, tx)?;
        Ok(BlockStatus::Stored)
    }

    fn process_orphans(
        &mut self,
        parent: BlockHash,
        now: u64,
        outcome: &mut AcceptOutcome,
        tx: &mut Transition,
    ) -> Result<(), ChainError> {
        let mut queue = vec![parent];
        while let Some(parent) = queue.pop() {
            for child in self.orphans.take_children(&parent) {
                let hash = child.block_hash();
                match self.store_block(Arc::new(child), now, tx) {
                    Ok(()) => queue.push(hash),
                    Err(ChainError::Storage(e)) => return Err(e.into()),
                    // Dropped from the pool; whether its sender is to blame (a header too
                    // far in the future now may be fine later) is the caller's to judge.
                    Err(e) => outcome.invalid.push((hash, e)),
                }
            }
            self.activate_best_chain(outcome, tx)?;
        }
        Ok(())
    }

    /// Adds the header if new, records the data, and makes it (and any stored descendants)
    /// tip candidates if all its ancestors have data.
    fn store_block(
        &mut self,
        block: Arc<Block>,
        now: u64,
        tx: &mut Transition,
    ) -> Result<(), ChainError> {
        let hash = self.add_header(&block.header, now)?;
        let node = self.index.get_mut(&hash).ok_or_else(|| inconsistent("header vanished"))?;
        node.entry.status |= HAVE_DATA;
        tx.write.index.push(node.entry);
        let parent_in_chain =
            self.index.get(&block.header.prev_blockhash).is_some_and(|p| p.in_data_chain);
        tx.add_block(block);
        if parent_in_chain {
            self.mark_data_chain(hash);
        }
        Ok(())
    }
}
