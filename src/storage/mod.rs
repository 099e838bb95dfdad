//! The storage boundary: what the chain hands to a database and reads back from it.
//!
//! It sits below both `chain` (which decides) and `db` (redb, which persists), so
//! neither imports the other:
//!
//! ```text
//!   chain ──builds──▶ ChainWrite ──ChainStore::apply──▶ store (one write transaction)
//!   chain ◀──reads── ChainStore (index, blocks, undo data, UTXO view) ◀── store
//! ```
//!
//! Accepting a block builds one [`ChainWrite`] from the block already in memory: its bytes
//! and index entry, every connect and disconnect it caused (UTXO diff, undo data, txids),
//! index status changes and the new tip. The store applies it in one transaction, so a
//! block is never split across two commits and nothing the chain holds is read back.
//! While catching up, the chain holds several such transitions in memory and hands them
//! over as one write every few seconds; the store folds their UTXO changes, so a coin
//! created and spent within them never reaches its tables.

pub mod index;
mod utxo;

use std::path::PathBuf;
use std::sync::Arc;

pub use index::{FAILED, HAVE_DATA, IndexEntry, SNAPSHOT_BASE};
pub use utxo::{BlockUndo, PendingUtxos, UtxoDiff, UtxoView};

use crate::consensus::Network;
use crate::primitives::encode::DecodeError;
use crate::primitives::{Block, BlockHash, Coin, FastMap, OutPoint, Txid};

/// A database could not be opened, read or written, or contradicts itself: the one error
/// of the storage boundary, whatever the backend.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend failed (I/O, a lock, its own corruption checks); its error, with the
    /// detail an operator needs (e.g. "No space left on device"), is the source, and the
    /// backend says what kind of failure it is.
    #[error("database error: {source}")]
    Backend {
        /// What kind of failure, as the backend tells it.
        failure: Failure,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database file could not be copied or restored around a repair.
    #[error("database file {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// No database file where one was expected.
    #[error("no database at {}", .0.display())]
    NotFound(PathBuf),
    /// The database belongs to another network.
    #[error("database is for network '{found}', not '{expected}'")]
    WrongNetwork {
        /// Network recorded in the database.
        found: String,
        /// Network asked for.
        expected: Network,
    },
    /// The database was written by an incompatible version.
    #[error("database schema version {found}, this build reads version {expected}")]
    SchemaVersion {
        /// Version recorded.
        found: u32,
        /// Version this build writes.
        expected: u32,
    },
    /// The metadata names a network this build does not know.
    #[error("inconsistent database: unknown network '{0}' in metadata")]
    UnknownNetwork(String),
    /// A stored record does not decode.
    #[error("corrupt record in table {table}: {error}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What was wrong.
        error: DecodeError,
    },
    /// A block indexed as stored has no data.
    #[error("inconsistent database: block {0} is indexed as stored but has no data")]
    MissingBlock(BlockHash),
    /// An active-chain block has no undo data.
    #[error("inconsistent database: block {0} has no undo data")]
    MissingUndo(BlockHash),
    /// Stored records contradict each other.
    #[error("inconsistent database: {0}")]
    Inconsistent(&'static str),
    /// A write to a database opened read-only (`verify`).
    #[error("database {} is open read-only", .0.display())]
    ReadOnly(PathBuf),
    /// A database left by a crash, which only a writable open can recover.
    #[error("database {} needs crash recovery (the node does it at start)", .0.display())]
    NeedsRecovery(PathBuf),
}

/// What a local storage failure means for the node: whether it can go on writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The disk (or the user's quota) is full.
    DiskFull,
    /// The disk or file system failed, or an earlier such failure left the database
    /// closed for writes.
    Io,
    /// The database contradicts itself or fails its own checks.
    Damaged,
    /// A failure that passes (a lock held, a transaction in the way): try again.
    Transient,
}

impl Failure {
    /// Whether writing must stop until the operator acts (and the node restarts).
    pub fn is_fatal(self) -> bool {
        self != Failure::Transient
    }

    /// The failure in a few words (`/status`'s `degraded`).
    pub fn name(self) -> &'static str {
        match self {
            Failure::DiskFull => "disk full",
            Failure::Io => "I/O error",
            Failure::Damaged => "database damaged",
            Failure::Transient => "transient database error",
        }
    }

    /// What the operator should do about it.
    pub fn remedy(self) -> &'static str {
        match self {
            Failure::DiskFull => "free space on its disk, then restart the node",
            Failure::Io => {
                "check the disk (dmesg), then restart the node; `minichain verify` checks the store"
            }
            Failure::Damaged => {
                "run `minichain verify`; restore a backup or sync again into an empty data dir"
            }
            Failure::Transient => "nothing: it is retried",
        }
    }

    /// The failure an I/O error shows.
    pub fn of_io(error: &std::io::Error) -> Failure {
        // ENOSPC (28) and EDQUOT (122) on Linux.
        let full = error.kind() == std::io::ErrorKind::StorageFull
            || error.kind() == std::io::ErrorKind::QuotaExceeded
            || matches!(error.raw_os_error(), Some(28 | 122));
        if full { Failure::DiskFull } else { Failure::Io }
    }
}

impl StorageError {
    /// What this error means for the node: the one place a local failure is classified.
    pub fn failure(&self) -> Failure {
        match self {
            StorageError::Backend { failure, .. } => *failure,
            StorageError::Io { error, .. } => Failure::of_io(error),
            StorageError::NotFound(_)
            | StorageError::ReadOnly(_)
            | StorageError::NeedsRecovery(_) => Failure::Io,
            StorageError::WrongNetwork { .. }
            | StorageError::SchemaVersion { .. }
            | StorageError::UnknownNetwork(_)
            | StorageError::Corrupt { .. }
            | StorageError::MissingBlock(_)
            | StorageError::MissingUndo(_)
            | StorageError::Inconsistent(_) => Failure::Damaged,
        }
    }
}

/// The snapshot a chain was started from (`minichain node --snapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotBase {
    /// The block whose UTXO set the snapshot holds.
    pub block: BlockHash,
    /// Its height.
    pub height: u32,
    /// The snapshot hash (see [`crate::snapshot`]), which the history validated from
    /// genesis must reproduce at `block`.
    pub hash: BlockHash,
    /// Whether it did: the history up to `block` was validated and agreed.
    pub validated: bool,
}

impl SnapshotBase {
    /// Its stored form: block, height (LE), hash, validated.
    pub fn to_bytes(&self) -> [u8; 69] {
        let mut out = [0u8; 69];
        out[..32].copy_from_slice(&self.block.0);
        out[32..36].copy_from_slice(&self.height.to_le_bytes());
        out[36..68].copy_from_slice(&self.hash.0);
        out[68] = u8::from(self.validated);
        out
    }

    /// Reads its stored form; `None` if it is not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 69] = bytes.try_into().ok()?;
        Some(Self {
            block: BlockHash(bytes[..32].try_into().ok()?),
            height: u32::from_le_bytes(bytes[32..36].try_into().ok()?),
            hash: BlockHash(bytes[36..68].try_into().ok()?),
            validated: bytes[68] == 1,
        })
    }
}

/// One block's move on or off the active chain.
#[derive(Debug, Clone)]
pub enum Step {
    /// The block joins the active chain at `height`.
    Connect {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: u32,
        /// UTXO changes.
        diff: UtxoDiff,
        /// The coins it spent, to take it back later.
        undo: BlockUndo,
        /// Its txids in order (transaction index).
        txids: Vec<Txid>,
        /// Who it paid or spent from (address history), from [`owners_touched`].
        owners: Vec<Touched>,
    },
    /// The block leaves the active chain.
    Disconnect {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: u32,
        /// UTXO changes (its outputs out, the coins it spent back).
        diff: UtxoDiff,
        /// Its txids (removed from the transaction index).
        txids: Vec<Txid>,
        /// Its address history entries, removed.
        owners: Vec<Touched>,
    },
}

/// An address history entry: the owner's public key and the position of a transaction
/// (in the block of the step) that paid it or spent one of its coins.
pub type Touched = ([u8; 32], u32);

/// Every (owner, transaction position) pair of `block`: the owners of its outputs and of
/// the coins its inputs spent (`spent`, the block's undo data, in any order). One entry
/// per owner and transaction, in block order.
pub fn owners_touched(block: &Block, spent: &[(OutPoint, Coin)]) -> Vec<Touched> {
    let owner_of: FastMap<OutPoint, [u8; 32]> =
        spent.iter().map(|(op, coin)| (*op, coin.output.pubkey)).collect();
    let mut out = Vec::new();
    for (tx, pos) in block.txs.iter().zip(0u32..) {
        let first = out.len();
        let paid = tx.outputs.iter().map(|o| o.pubkey);
        let spent_from = tx.inputs.iter().filter_map(|i| owner_of.get(&i.prevout).copied());
        for owner in paid.chain(spent_from) {
            if !out[first..].iter().any(|(o, _)| *o == owner) {
                out.push((owner, pos));
            }
        }
    }
    out
}

/// Everything one state transition changes, applied by [`ChainStore::apply`] in one
/// write transaction. Steps apply in order; `index` entries overwrite older ones.
#[derive(Debug, Clone, Default)]
pub struct ChainWrite {
    /// Block data to store (blocks that arrived with this transition).
    pub blocks: Vec<Arc<Block>>,
    /// New or changed index entries.
    pub index: Vec<IndexEntry>,
    /// Connects and disconnects, in order.
    pub steps: Vec<Step>,
    /// The new active tip, when it moved.
    pub tip: Option<BlockHash>,
    /// Active-chain heights set without a connect: a snapshot's base was adopted, and the
    /// blocks up to it join the active chain unconnected (the snapshot holds their coins).
    pub heights: Vec<(u32, BlockHash)>,
    /// Make this write durable (fsync), and with it every non-durable one before it. The
    /// chain asks for it whenever the tip moves (while catching up it holds a run of
    /// transitions in memory and writes them as one, every few seconds, so a crash
    /// resumes from the last write).
    pub durable: bool,
}

impl ChainWrite {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
            && self.index.is_empty()
            && self.steps.is_empty()
            && self.heights.is_empty()
    }
}

/// A database the chain can run on. Implementations: `db::Store` (redb, on disk or in
/// memory). Reads see the last applied write.
pub trait ChainStore: Send + Sync {
    /// The network the stored chain belongs to.
    fn network(&self) -> Network;

    /// The stored active tip, `None` for a fresh database.
    ///
    /// # Errors
    /// [`StorageError`] on read failure.
    fn tip(&self) -> Result<Option<BlockHash>, StorageError>;

    /// Every index entry.
    ///
    /// # Errors
    /// [`StorageError`] on read failure or a corrupt entry.
    fn load_index(&self) -> Result<Vec<IndexEntry>, StorageError>;

    /// The active-chain block hash at `height`.
    ///
    /// # Errors
    /// [`StorageError`] on read failure.
    fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, StorageError>;

    /// A stored block.
    ///
    /// # Errors
    /// [`StorageError`] on read failure or a corrupt block.
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StorageError>;

    /// A stored block as stored: its wire encoding, for serving peers without decoding
    /// and encoding it again.
    ///
    /// # Errors
    /// [`StorageError`] on read failure.
    fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StorageError>;

    /// The undo data of an active-chain block.
    ///
    /// # Errors
    /// [`StorageError`] on read failure or corrupt data.
    fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StorageError>;

    /// A consistent read view of the UTXO set.
    ///
    /// # Errors
    /// [`StorageError`] if no read can be started.
    fn utxos(&self) -> Result<Box<dyn UtxoView + '_>, StorageError>;

    /// Calls `f` for every coin in the UTXO set, in outpoint order.
    ///
    /// # Errors
    /// [`StorageError`] on read failure or a corrupt entry.
    fn for_each_coin(&self, f: &mut dyn FnMut(OutPoint, Coin)) -> Result<(), StorageError>;

    /// The snapshot this chain was started from, if it was.
    ///
    /// # Errors
    /// [`StorageError`] on read failure or a corrupt record.
    fn snapshot_base(&self) -> Result<Option<SnapshotBase>, StorageError>;

    /// Records that the chain up to the snapshot's base was validated from genesis and
    /// agreed with the snapshot.
    ///
    /// # Errors
    /// [`StorageError`] on write failure.
    fn mark_snapshot_validated(&self) -> Result<(), StorageError>;

    /// Where the data lives, for messages (a path, or `memory`).
    fn location(&self) -> String {
        "memory".to_owned()
    }

    /// Applies `write` in one transaction: all of it or nothing.
    ///
    /// # Errors
    /// [`StorageError`] on write failure; nothing is written then.
    fn apply(&self, write: &ChainWrite) -> Result<(), StorageError>;
}
