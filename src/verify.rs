//! The operator's consistency check: rebuild the UTXO set from the stored blocks of the
//! active chain (validating each block again) and compare it, and the tip, with what the
//! store holds.

use std::collections::HashMap;

use crate::chain::SigMode;
use crate::chain::utxo::{ConnectError, connect_block};
use crate::consensus::BlockError;
use crate::db::Store;
use crate::primitives::{BlockHash, Coin, OutPoint};
use crate::storage::{ChainStore, StorageError};

/// What a successful check covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Height of the tip.
    pub height: u32,
    /// The tip.
    pub tip: BlockHash,
    /// Coins in the (matching) UTXO set.
    pub utxos: u64,
}

/// A difference between the stored state and the one rebuilt from blocks.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The store could not be read, or a block could not be checked against the rebuilt
    /// UTXO set.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The height index names a block whose data is missing.
    #[error("block {hash} at height {height} is missing")]
    MissingBlock {
        /// Height.
        height: u32,
        /// The hash indexed there.
        hash: BlockHash,
    },
    /// Blocks in the height index do not link up.
    #[error("block at height {height} is not the child of the block at height {}", height - 1)]
    BrokenLink {
        /// Height of the child.
        height: u32,
    },
    /// A stored active-chain block does not validate.
    #[error("block {hash} at height {height} is invalid: {error}")]
    InvalidBlock {
        /// Height.
        height: u32,
        /// Hash.
        hash: BlockHash,
        /// Rule broken.
        error: BlockError,
    },
    /// The stored tip is not the last block of the height index.
    #[error("stored tip {stored} differs from the last indexed block {indexed}")]
    TipMismatch {
        /// The tip in metadata.
        stored: BlockHash,
        /// The highest block in the height index.
        indexed: BlockHash,
    },
    /// The address index disagrees with the UTXO set.
    #[error("address index differs from the UTXO set: {0}")]
    AddrIndex(crate::db::AddrIndexMismatch),
    /// The UTXO sets differ.
    #[error(
        "UTXO set differs from the one rebuilt from blocks: {missing} missing, {extra} extra, \
         {changed} changed (first: {first})"
    )]
    UtxoMismatch {
        /// Coins the rebuild has and the store lacks.
        missing: usize,
        /// Coins the store has and the rebuild lacks.
        extra: usize,
        /// Coins both have with different contents.
        changed: usize,
        /// The first difference, for the operator.
        first: String,
    },
}

/// Rebuilds the UTXO set from the stored active chain and compares.
///
/// # Errors
/// [`VerifyError`] describing the first inconsistency found.
pub fn verify_store(store: &Store) -> Result<VerifyReport, VerifyError> {
    let params = store.network().params();
    let mut utxos: HashMap<OutPoint, Coin> = HashMap::new();
    let mut prev: Option<BlockHash> = None;
    let mut height = 0u32;
    while let Some(hash) = store.hash_at(height)? {
        let block = store.block(&hash)?.ok_or(VerifyError::MissingBlock { height, hash })?;
        if block.block_hash() != hash {
            return Err(VerifyError::MissingBlock { height, hash });
        }
        if let Some(p) = prev {
            if block.header.prev_blockhash != p {
                return Err(VerifyError::BrokenLink { height });
            }
            let (diff, _) = connect_block(&block, height, &utxos, params, SigMode::Parallel)
                .map_err(|e| match e {
                    ConnectError::Invalid(error) => {
                        VerifyError::InvalidBlock { height, hash, error }
                    }
                    ConnectError::Storage(e) => VerifyError::Storage(e),
                })?;
            for (op, _) in &diff.spent {
                utxos.remove(op);
            }
            utxos.extend(diff.created);
        }
        prev = Some(hash);
        height += 1;
    }
    let indexed = prev.ok_or_else(|| StorageError::Inconsistent("no genesis block"))?;
    let stored = store.tip()?.ok_or_else(|| StorageError::Inconsistent("no tip"))?;
    if stored != indexed {
        return Err(VerifyError::TipMismatch { stored, indexed });
    }
    let report = compare(store, utxos, height - 1, indexed)?;
    match store.check_addr_index()? {
        Some(problem) => Err(VerifyError::AddrIndex(problem)),
        None => Ok(report),
    }
}

fn compare(
    store: &Store,
    mut rebuilt: HashMap<OutPoint, Coin>,
    height: u32,
    tip: BlockHash,
) -> Result<VerifyReport, VerifyError> {
    let (mut extra, mut changed, mut count) = (0usize, 0usize, 0u64);
    let mut first = None;
    store.for_each_coin(&mut |op, coin| {
        count += 1;
        match rebuilt.remove(&op) {
            Some(c) if c == coin => {}
            Some(_) => {
                changed += 1;
                first.get_or_insert_with(|| format!("{op} differs"));
            }
            None => {
                extra += 1;
                first.get_or_insert_with(|| format!("{op} should not exist"));
            }
        }
    })?;
    let missing = rebuilt.len();
    if let Some(op) = rebuilt.keys().next() {
        first.get_or_insert_with(|| format!("{op} is missing"));
    }
    match first {
        None => Ok(VerifyReport { height, tip, utxos: count }),
        Some(first) => Err(VerifyError::UtxoMismatch { missing, extra, changed, first }),
    }
}
