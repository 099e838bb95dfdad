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
    /// Spends what pool transactions spend, and does not meet the rules to replace them.
    #[error(
        "input {outpoint} is already spent by mempool transaction {by}, and this does not replace it: {why}"
    )]
    Conflict {
        /// The first contested outpoint.
        outpoint: OutPoint,
        /// The pool transaction spending it.
        by: Txid,
        /// Which replacement rule it breaks.
        why: ReplaceError,
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

/// Why a transaction cannot replace the pool transactions it conflicts with (BIP125's
/// rules, every transaction replaceable as in Bitcoin Core's full-RBF).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplaceError {
    /// It must pay for the replaced transactions and for its own relay (rules 3 and 4).
    #[error(
        "it pays a fee of {fee}, a replacement must pay at least {needed} (what it replaces, plus the incremental relay fee for its size)"
    )]
    FeeTooLow {
        /// Its fee.
        fee: u64,
        /// The least a replacement pays.
        needed: u64,
    },
    /// Its fee rate must beat each transaction it conflicts with directly (rule 6).
    #[error(
        "its fee rate {rate} per 1,000 bytes is not above the {conflicting} of the transaction it replaces"
    )]
    RateTooLow {
        /// Its fee rate.
        rate: u64,
        /// The highest fee rate among the conflicting transactions.
        conflicting: u64,
    },
    /// It would evict too many (rule 5).
    #[error("it would evict {count} transactions, more than {max}")]
    TooMany {
        /// Conflicts and their descendants.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// It spends an output of a transaction it would evict.
    #[error("it spends an output of {0}, which it would evict")]
    SpendsReplaced(Txid),
    /// Only unconfirmed inputs the replaced transactions had (rule 2).
    #[error("it spends unconfirmed output {0}, which no transaction it replaces spent")]
    NewUnconfirmedInput(OutPoint),
}
