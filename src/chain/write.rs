//! The write path: ending a transition (written at once, or held in memory while catching
//! up), flushing what is held, recovering from a store failure, and the writer thread.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::error::ChainError;
use super::state::ChainState;
use crate::primitives::{Block, BlockHash};
use crate::storage::{BlockUndo, ChainWrite, PendingUtxos, Step};

/// One transition being built, or several held in memory while catching up: what will
/// be written, and what it already changed in memory that later steps must see.
#[derive(Default)]
pub(super) struct Transition {
    pub(super) write: ChainWrite,
    /// Blocks of this transition by hash (not in the store yet).
    pub(super) blocks: HashMap<BlockHash, Arc<Block>>,
    /// UTXO changes of the steps so far.
    pub(super) utxos: PendingUtxos,
    /// Encoded size of `blocks`.
    pub(super) bytes: usize,
}

impl Transition {
    pub(super) fn add_block(&mut self, block: Arc<Block>) {
        self.bytes += block.size();
        self.blocks.insert(block.block_hash(), block.clone());
        self.write.blocks.push(block);
    }

    /// Undo data of `hash` if this transition connected it.
    pub(super) fn undo_of(&self, hash: &BlockHash) -> Option<&BlockUndo> {
        self.write.steps.iter().rev().find_map(|step| match step {
            Step::Connect { hash: h, undo, .. } if h == hash => Some(undo),
            _ => None,
        })
    }
}

/// While catching up, what the chain connects is kept in memory and written (durably, in
/// one transaction, while the next blocks are verified) about this often, in seconds; a
/// crash resumes from the last write and fetches the rest again.
pub const FLUSH_EVERY_SECS: u64 = 2;

/// ... or as soon as the blocks held add up to this many bytes, which bounds the memory
/// they take (about three times their encoded size with undo data and UTXO changes).
pub const FLUSH_AT_BYTES: usize = 4 << 20;

/// The thread that writes held transitions while the next blocks are verified: one for
/// the whole process (whatever the number of chains), so that its allocations keep reusing
/// one malloc arena instead of a fresh thread's each time. `None` if it cannot be started:
/// writes are then made in line.
pub(super) fn writer() -> Option<&'static rayon::ThreadPool> {
    static WRITER: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .thread_name(|_| "minichain-writer".into())
                .build();
            pool.map_err(|e| tracing::warn!(error = %e, "no writer thread; writing in line")).ok()
        })
        .as_ref()
}

impl ChainState {
    /// Ends a transition (which carries on the unwritten ones before it, if any). While
    /// catching up (headers known beyond the tip) a transition that moved the tip is held
    /// in memory, for [`Self::accept_blocks`] or [`Self::flush`] to write later; otherwise
    /// (or with `now` `None`) it goes to the store at once, in one write, durable if it
    /// moves the tip. If the store fails, the in-memory state is rebuilt from it.
    pub(super) fn commit(
        &mut self,
        mut tx: Transition,
        now: Option<u64>,
    ) -> Result<(), ChainError> {
        if tx.write.is_empty() {
            return Ok(());
        }
        let catching_up = self.best_header().height > self.height();
        if tx.write.tip.is_some() && catching_up && now.is_some() {
            self.unwritten = tx;
            return Ok(());
        }
        tx.write.durable = tx.write.tip.is_some();
        if let Err(e) = self.store.apply(&tx.write) {
            return Err(self.recover(e.into()));
        }
        if tx.write.durable {
            self.last_flush = now.unwrap_or(self.last_flush);
        }
        Ok(())
    }

    /// After a store failure in the middle of a transition, rebuilds the in-memory state
    /// (already moved) from the store, so memory never runs ahead of what the store holds.
    /// Returns `error`.
    pub(super) fn recover(&mut self, error: ChainError) -> ChainError {
        let (store, params, mode) = (self.store.clone(), self.params, self.sig_mode);
        match Self::load(store, params) {
            Ok(reloaded) => {
                *self = reloaded;
                self.sig_mode = mode;
            }
            Err(reload) => tracing::error!(error = %reload, "cannot reload the chain"),
        }
        error
    }

    pub(super) fn flush_due(&self, now: u64) -> bool {
        now.saturating_sub(self.last_flush) >= FLUSH_EVERY_SECS
    }

    /// Writes what catching up holds in memory, if the last durable write is twice
    /// [`FLUSH_EVERY_SECS`] old at `now` (while blocks keep arriving, [`Self::accept_blocks`]
    /// writes it sooner, in the background; this catches a sync that stalled), or at once
    /// with `now` `None` (shutdown). Returns whether it wrote.
    ///
    /// # Errors
    /// [`ChainError::Storage`] if the store fails.
    pub fn flush(&mut self, now: Option<u64>) -> Result<bool, ChainError> {
        let stalled = |now: u64| now.saturating_sub(self.last_flush) >= 2 * FLUSH_EVERY_SECS;
        if self.unwritten.write.is_empty() || now.is_some_and(|now| !stalled(now)) {
            return Ok(false);
        }
        let held = std::mem::take(&mut self.unwritten);
        self.commit(held, None)?;
        self.last_flush = now.unwrap_or(self.last_flush);
        Ok(true)
    }
}
