//! Chain state errors.

use crate::consensus::{BlockError, HeaderError};
use crate::primitives::BlockHash;
use crate::storage::StorageError;

/// Why the chain refused a header or block, or failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The header breaks a rule.
    #[error("header {hash} rejected: {error}")]
    InvalidHeader {
        /// The header's hash.
        hash: BlockHash,
        /// The rule broken.
        error: HeaderError,
    },
    /// The block breaks a rule.
    #[error("block {hash} rejected: {error}")]
    InvalidBlock {
        /// The block's hash.
        hash: BlockHash,
        /// The rule broken.
        error: BlockError,
    },
    /// The block or one of its ancestors is already known to be invalid.
    #[error("block {0} is known to be invalid or descends from an invalid block")]
    KnownInvalid(BlockHash),
    /// A header whose parent is unknown.
    #[error("header {hash} has an unknown parent {parent}")]
    UnknownParent {
        /// The header's hash.
        hash: BlockHash,
        /// Its parent.
        parent: BlockHash,
    },
    /// The store failed (our fault, never the sender's).
    #[error(transparent)]
    Storage(#[from] StorageError),
}
