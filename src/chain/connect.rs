//! Moving the active chain: to the best candidate through disconnects and connects
//! (reorgs), the connect pipeline, and marking blocks that fail invalid.

use std::cmp::Reverse;
use std::sync::Arc;

use super::error::ChainError;
use super::index::Candidate;
use super::outcome::AcceptOutcome;
use super::state::{ChainState, inconsistent};
use super::utxo::{ConnectError, Prepared, SigMode, disconnect_diff, prepare_block};
use super::write::Transition;
use crate::consensus::BlockError;
use crate::primitives::{Block, BlockHash, Transaction, Txid};
use crate::storage::{FAILED, PendingUtxos, Step, StorageError, owners_touched};

/// A block on its way to the active chain: checked against the UTXO set, its signatures
/// still being verified. `layer` holds its UTXO changes, so the next block can be
/// prepared on top of it meanwhile.
pub(super) struct Held {
    pub(super) hash: BlockHash,
    pub(super) height: u32,
    pub(super) block: Arc<Block>,
    pub(super) prepared: Prepared,
    pub(super) layer: PendingUtxos,
    /// Its signatures are assumed valid, not checked.
    pub(super) assumed: bool,
}

impl ChainState {
    /// Switches the active chain to the best candidate. A block that fails is marked
    /// invalid with its descendants, and the next best candidate is tried.
    pub(super) fn activate_best_chain(
        &mut self,
        outcome: &mut AcceptOutcome,
        tx: &mut Transition,
    ) -> Result<(), ChainError> {
        if self.awaiting_snapshot_base() {
            // The stored UTXO set is the snapshot's: nothing connects below its base.
            return Ok(());
        }
        while let Some(&Candidate(best_work, _, best)) = self.candidates.last() {
            if best_work <= self.tip_entry().chain_work {
                break;
            }
            let mut path = Vec::new();
            let mut cur = best;
            while !self.is_active(&cur) {
                path.push(cur);
                cur = self.index[&cur].entry.header.prev_blockhash;
            }
            while self.tip() != cur {
                let block = self.disconnect_tip(tx)?;
                outcome.update.disconnected.push(block);
            }
            self.connect_path(path, outcome, tx)?;
        }
        let tip_work = self.tip_entry().chain_work;
        self.candidates.retain(|c| c.0 >= tip_work);
        Ok(())
    }

    /// A block's data: from this transition if it came with it, else from the store.
    fn block_data(&self, hash: BlockHash, tx: &Transition) -> Result<Arc<Block>, StorageError> {
        let held = self.writing.as_ref().and_then(|w| w.blocks.get(&hash));
        match tx.blocks.get(&hash).or(held) {
            Some(block) => Ok(block.clone()),
            None => self.store.block(&hash)?.map(Arc::new).ok_or(StorageError::MissingBlock(hash)),
        }
    }

    /// Connects `path` (tip first) in a pipeline: block N's signatures are verified while
    /// block N+1 is prepared against the UTXO set plus N's changes, so both cores stay
    /// busy. N joins the chain only once its signatures pass; if they fail, N and its
    /// descendants are marked invalid and N+1's preparation is dropped.
    fn connect_path(
        &mut self,
        path: Vec<BlockHash>,
        outcome: &mut AcceptOutcome,
        tx: &mut Transition,
    ) -> Result<(), ChainError> {
        self.refresh_assume_valid();
        let mode = self.sig_mode;
        let verify = |held: Option<&Held>| held.map_or(Ok(()), |h| h.prepared.verify(mode));
        let mut held: Option<Held> = None;
        for hash in path.into_iter().rev() {
            // Nothing to overlap for the first block (a gossiped block is alone): no
            // hand-over to other threads, whose wake-ups a block's latency would feel.
            let (next, verdict) = match (mode, &held) {
                (SigMode::Parallel, Some(_)) => {
                    rayon::join(|| self.prepare(hash, tx, held.as_ref()), || verify(held.as_ref()))
                }
                _ => (self.prepare(hash, tx, held.as_ref()), verify(held.as_ref())),
            };
            if let Some(done) = held.take() {
                match verdict {
                    Ok(()) => outcome.update.connected.push(self.connect(done, tx)),
                    Err(error) => {
                        self.fail(done.hash, error, outcome, tx);
                        return Ok(());
                    }
                }
            }
            match next {
                Ok(next) => held = Some(next),
                Err(ConnectError::Invalid(error)) => {
                    self.fail(hash, error, outcome, tx);
                    return Ok(());
                }
                Err(ConnectError::Storage(e)) => return Err(e.into()),
            }
        }
        if let Some(last) = held {
            match verify(Some(&last)) {
                Ok(()) => outcome.update.connected.push(self.connect(last, tx)),
                Err(error) => self.fail(last.hash, error, outcome, tx),
            }
        }
        Ok(())
    }

    /// Checks `hash` against the UTXO set as this transition left it, plus the changes of
    /// `after` (the block before it, still being verified).
    fn prepare(
        &self,
        hash: BlockHash,
        tx: &Transition,
        after: Option<&Held>,
    ) -> Result<Held, ConnectError> {
        let block = self.block_data(hash, tx)?;
        let height = self.index[&hash].entry.height;
        let base = self.store.utxos()?;
        let none = PendingUtxos::default();
        let writing = self.writing.as_ref().map_or(&none, |w| &w.utxos);
        let pending = tx.utxos.over(writing.over(base));
        let mut prepared = match after {
            Some(after) => prepare_block(&block, height, &after.layer.over(&pending), self.params),
            None => prepare_block(&block, height, &pending, self.params),
        }?;
        let assumed = self.skips_signatures(&hash, height);
        if assumed {
            prepared.skip_signatures();
        } else if !self.verified.is_empty() {
            // One wtxid per transaction, not one per input (the closure is asked per check).
            let known: Vec<bool> =
                block.txs.iter().map(|tx| self.verified.contains(&tx.wtxid())).collect();
            prepared.skip_verified(|i| known.get(i).copied().unwrap_or(false));
        }
        let mut layer = PendingUtxos::default();
        layer.apply(&prepared.diff);
        Ok(Held { hash, height, block, prepared, layer, assumed })
    }

    /// Puts a prepared, verified block on the active chain.
    fn connect(&mut self, held: Held, tx: &mut Transition) -> Arc<Block> {
        let Held { hash, height, block, prepared, assumed, .. } = held;
        if let Some(av) = self.assume_valid.as_mut().filter(|_| assumed) {
            av.skipped += 1;
        }
        tx.utxos.apply(&prepared.diff);
        let Prepared { diff, undo, txids, .. } = prepared;
        let owners = owners_touched(&block, &undo.spent);
        tx.write.steps.push(Step::Connect { hash, height, diff, undo, txids, owners });
        tx.write.tip = Some(hash);
        self.active.push(hash);
        block
    }

    /// Records that `hash` broke `error` while connecting: it and its descendants are
    /// marked invalid.
    fn fail(
        &mut self,
        hash: BlockHash,
        error: BlockError,
        outcome: &mut AcceptOutcome,
        tx: &mut Transition,
    ) {
        self.mark_failed(hash, tx);
        outcome.invalid.push((hash, ChainError::InvalidBlock { hash, error }));
    }

    fn disconnect_tip(&mut self, tx: &mut Transition) -> Result<Arc<Block>, ChainError> {
        let hash = self.tip();
        let node = self.index[&hash];
        if node.entry.height == 0 {
            return Err(inconsistent("asked to disconnect genesis"));
        }
        let height = node.entry.height;
        let block = self.block_data(hash, tx)?;
        let held = self.writing.as_ref().and_then(|w| w.undo_of(&hash));
        let diff = match tx.undo_of(&hash).or(held) {
            Some(undo) => disconnect_diff(&block, height, undo),
            None => {
                let undo = self.store.undo(&hash)?.ok_or(StorageError::MissingUndo(hash))?;
                disconnect_diff(&block, height, &undo)
            }
        };
        tx.utxos.apply(&diff);
        let txids: Vec<Txid> = block.txs.iter().map(Transaction::txid).collect();
        // The coins it spent come back: they are the undo data.
        let owners = owners_touched(&block, &diff.created);
        tx.write.steps.push(Step::Disconnect { hash, height, diff, txids, owners });
        let parent = node.entry.header.prev_blockhash;
        tx.write.tip = Some(parent);
        self.active.pop();
        self.candidates.insert(Candidate(node.entry.chain_work, Reverse(node.seq), hash));
        Ok(block)
    }

    /// Marks `hash` and all its descendants invalid, in memory and in the transition.
    fn mark_failed(&mut self, hash: BlockHash, tx: &mut Transition) {
        let mut stack = vec![hash];
        while let Some(h) = stack.pop() {
            let Some(node) = self.index.get_mut(&h) else { continue };
            node.entry.status |= FAILED;
            self.candidates.remove(&Candidate(node.entry.chain_work, Reverse(node.seq), h));
            tx.write.index.push(node.entry);
            stack.extend(self.children.get(&h).into_iter().flatten().copied());
        }
        if self.index[&self.best_header].entry.is_failed() {
            let best = self
                .index
                .iter()
                .filter(|(_, n)| !n.entry.is_failed())
                .max_by_key(|(_, n)| (n.entry.chain_work, Reverse(n.seq)));
            let best = best.map_or(self.tip(), |(h, _)| *h);
            self.set_best_header(best);
        }
    }
}
