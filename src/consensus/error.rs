//! One error variant per consensus rule, so a rejection always says which rule failed.

use crate::primitives::{OutPoint, Txid};

/// A header breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// `bits` does not decode to a positive target within the network's limit.
    #[error("invalid compact target {bits:#010x}")]
    InvalidBits {
        /// The compact target found.
        bits: u32,
    },
    /// The header hash is above its target.
    #[error("proof of work does not meet the target")]
    BadProofOfWork,
    /// `bits` is not what the difficulty rule demands at this height.
    #[error("wrong difficulty bits {found:#010x}, expected {expected:#010x}")]
    WrongBits {
        /// Demanded by the difficulty rule.
        expected: u32,
        /// Found in the header.
        found: u32,
    },
    /// Time is not after the median of the previous 11 blocks.
    #[error("block time {time} is not after the median time past {median_time_past}")]
    TimeTooOld {
        /// Header time.
        time: u32,
        /// Median time of the previous 11 blocks.
        median_time_past: u32,
    },
    /// Time is too far in the future.
    #[error("block time {time} is more than the allowed drift ahead of now ({max_allowed})")]
    TimeTooNew {
        /// Header time.
        time: u32,
        /// The latest time accepted now.
        max_allowed: u64,
    },
}

/// A transaction breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// No inputs.
    #[error("transaction has no inputs")]
    NoInputs,
    /// No outputs.
    #[error("transaction has no outputs")]
    NoOutputs,
    /// Larger than the transaction size limit.
    #[error("transaction size {size} exceeds the limit {max}")]
    Oversize {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An output value, or the sum of outputs, is above MAX_MONEY.
    #[error("output value above MAX_MONEY")]
    OutputValueTooLarge,
    /// The same outpoint is spent twice by this transaction.
    #[error("input {0} is spent twice in the transaction")]
    DuplicateInput(OutPoint),
    /// A non-coinbase input spends the null outpoint.
    #[error("non-coinbase input spends the null outpoint")]
    NullPrevout,
    /// A coinbase-shaped transaction where none is allowed.
    #[error("unexpected coinbase transaction")]
    UnexpectedCoinbase,
    /// The spent output does not exist or is already spent.
    #[error("input {0} is missing or already spent")]
    InputMissingOrSpent(OutPoint),
    /// Spends a coinbase output before it matured.
    #[error("input {outpoint} spends a coinbase of height {coinbase_height} before maturity")]
    ImmatureCoinbaseSpend {
        /// The outpoint spent.
        outpoint: OutPoint,
        /// Height of the coinbase.
        coinbase_height: u32,
    },
    /// Sum of inputs above MAX_MONEY.
    #[error("input values above MAX_MONEY")]
    InputValueTooLarge,
    /// Outputs are worth more than inputs.
    #[error("outputs ({outputs}) exceed inputs ({inputs})")]
    OutputsExceedInputs {
        /// Sum of inputs.
        inputs: u64,
        /// Sum of outputs.
        outputs: u64,
    },
    /// A signature does not verify against the spent output's key.
    #[error("bad signature on input {index}")]
    BadSignature {
        /// Index of the input.
        index: usize,
    },
}

/// A block breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The header breaks a rule.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// No transactions at all.
    #[error("block has no transactions")]
    NoTransactions,
    /// The first transaction is not a coinbase.
    #[error("first transaction is not a coinbase")]
    MissingCoinbase,
    /// A coinbase other than the first transaction.
    #[error("transaction {index} is a second coinbase")]
    SecondCoinbase {
        /// Position in the block.
        index: usize,
    },
    /// The header's Merkle root does not match the transactions.
    #[error("merkle root mismatch")]
    BadMerkleRoot,
    /// The transaction list has the duplicate-transaction Merkle mutation (CVE-2012-2459).
    #[error("merkle tree is mutated (duplicated transactions)")]
    MutatedMerkle,
    /// Two transactions share a txid.
    #[error("duplicate transaction {0}")]
    DuplicateTxid(Txid),
    /// Larger than the block size limit.
    #[error("block size {size} exceeds the limit {max}")]
    Oversize {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// More inputs than a block may hold.
    #[error("block has {count} inputs, limit {max}")]
    TooManyInputs {
        /// Inputs counted.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The coinbase does not commit to the block's height.
    #[error("coinbase height {found}, expected {expected}")]
    BadCoinbaseHeight {
        /// The block's height.
        expected: u32,
        /// Height in the coinbase.
        found: u32,
    },
    /// The coinbase pays more than subsidy plus fees.
    #[error("coinbase pays {paid}, at most {allowed} allowed")]
    CoinbaseOverpay {
        /// What the coinbase pays.
        paid: u64,
        /// Subsidy plus fees.
        allowed: u64,
    },
    /// Two transactions of the block spend the same outpoint.
    #[error("outpoint {0} is spent twice in the block")]
    DoubleSpendInBlock(OutPoint),
    /// A transaction breaks a rule.
    #[error("transaction {index} ({txid}): {error}")]
    Tx {
        /// Position in the block.
        index: usize,
        /// Its txid.
        txid: Txid,
        /// The rule broken.
        error: TxError,
    },
}

impl BlockError {
    /// True if the error proves the *header* is bad (so the block hash can be marked
    /// invalid for ever) rather than that the body we were sent was corrupted or
    /// mutated in transit: a mutated body keeps a valid header's hash usable.
    pub fn condemns_header(&self) -> bool {
        !matches!(self, Self::BadMerkleRoot | Self::MutatedMerkle | Self::DuplicateTxid(_))
    }
}
