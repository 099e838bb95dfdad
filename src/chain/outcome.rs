//! What accepting blocks did: the outcome types the chain answers with.

use std::sync::Arc;

use super::error::ChainError;
use crate::consensus::BlockError;
use crate::primitives::{Block, BlockHash};

/// What happened to a block handed to [`ChainState::accept_block`].
///
/// [`ChainState::accept_block`]: super::ChainState::accept_block
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStatus {
    /// Already stored.
    Duplicate,
    /// Parent unknown: held in the orphan pool; `missing` is the ancestor to fetch.
    Orphan {
        /// The first ancestor we do not have.
        missing: BlockHash,
    },
    /// Stored; see the outcome's tip update for whether it joined the active chain.
    Stored,
}

/// How the active chain moved, in order: first `disconnected` (tip first), then
/// `connected` (lowest first). A failed reorg that fell back may list both directions.
#[derive(Debug, Default)]
pub struct TipUpdate {
    /// Blocks taken off the active chain.
    pub disconnected: Vec<Arc<Block>>,
    /// Blocks added to the active chain.
    pub connected: Vec<Arc<Block>>,
}

impl TipUpdate {
    /// True if the tip did not move.
    pub fn is_empty(&self) -> bool {
        self.disconnected.is_empty() && self.connected.is_empty()
    }
}

/// The full result of accepting a block.
#[derive(Debug)]
pub struct AcceptOutcome {
    /// What happened to the block itself.
    pub status: BlockStatus,
    /// How the active chain moved (possibly through orphans the block unlocked).
    pub update: TipUpdate,
    /// Blocks refused after they were handed in, with the reason: found invalid while
    /// connecting, or orphans refused when their parent came (the caller judges whether
    /// their sender is to blame).
    pub invalid: Vec<(BlockHash, ChainError)>,
}

impl AcceptOutcome {
    pub(super) fn new(status: BlockStatus) -> Self {
        Self { status, update: TipUpdate::default(), invalid: Vec::new() }
    }

    /// The error of `hash` if it was found invalid while connecting.
    pub fn error_for(&self, hash: &BlockHash) -> Option<&ChainError> {
        self.invalid.iter().find(|(h, _)| h == hash).map(|(_, e)| e)
    }
}

/// What happened to a run of blocks handed to [`ChainState::accept_blocks`].
///
/// [`ChainState::accept_blocks`]: super::ChainState::accept_blocks
#[derive(Debug)]
pub struct BatchOutcome {
    /// Per block, in the order given: what happened to it, or why it was refused before
    /// it was stored.
    pub statuses: Vec<Result<BlockStatus, ChainError>>,
    /// How the active chain moved.
    pub update: TipUpdate,
    /// Blocks refused after they were handed in, with the reason: found invalid while
    /// connecting, or orphans refused when their parent came (the caller judges whether
    /// their sender is to blame).
    pub invalid: Vec<(BlockHash, ChainError)>,
}

/// Convenience for callers that need the rule broken by a block they submitted.
pub fn block_error(outcome: &AcceptOutcome, hash: &BlockHash) -> Option<BlockError> {
    match outcome.error_for(hash) {
        Some(ChainError::InvalidBlock { error, .. }) => Some(error.clone()),
        _ => None,
    }
}
