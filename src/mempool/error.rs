//! Why the mempool refused a transaction.

use crate::consensus::TxError;
use crate::primitives::{OutPoint, Txid};
use crate::storage::StorageError;

/// A transaction the mempool will not hold.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// Already in the pool.
    #[error("transaction {0} is already in the mempool")]
    AlreadyKnown(Txid),
    /// Coinbases only exist in blocks.
    #[error("coinbase transactions are only valid in blocks")]
    Coinbase,
    /// Breaks a consensus rule.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// Spends an output that a pool transaction already spends (no replacement).
    #[error("input {outpoint} is already spent by mempool transaction {by}")]
    Conflict {
        /// The contested outpoint.
        outpoint: OutPoint,
        /// The pool transaction spending it.
        by: Txid,
    },
    /// Pays less than the minimum relay fee.
    #[error("fee {fee} is below the minimum relay fee {min} for its size")]
    FeeTooLow {
        /// Fee paid.
        fee: u64,
        /// Fee required.
        min: u64,
    },
    /// The pool is full of transactions paying a higher fee rate.
    #[error("mempool full: fee rate too low to enter")]
    PoolFull,
    /// The store failed (our fault, never the sender's).
    #[error(transparent)]
    Storage(#[from] StorageError),
}
