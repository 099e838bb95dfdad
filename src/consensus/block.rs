//! Block rules in isolation: everything that needs neither the chain nor the UTXO set.

use super::error::BlockError;
use super::header::check_header;
use super::merkle::block_merkle_root;
use super::params::Params;
use super::tx::check_transaction;
use crate::primitives::{Block, FastSet};

/// Checks proof of work, structure, Merkle root, limits and every transaction's structure.
///
/// # Errors
/// The first [`BlockError`] found.
pub fn check_block(block: &Block, params: &Params) -> Result<(), BlockError> {
    check_header(&block.header, params)?;
    let Some(first) = block.txs.first() else {
        return Err(BlockError::NoTransactions);
    };
    let size = block.size();
    if size > params.max_block_size {
        return Err(BlockError::Oversize { size, max: params.max_block_size });
    }
    let (root, mutated) = block_merkle_root(&block.txs);
    if mutated {
        return Err(BlockError::MutatedMerkle);
    }
    if root != block.header.merkle_root {
        return Err(BlockError::BadMerkleRoot);
    }
    if !first.is_coinbase() {
        return Err(BlockError::MissingCoinbase);
    }
    if let Some(index) = block.txs.iter().skip(1).position(|tx| tx.is_coinbase()) {
        return Err(BlockError::SecondCoinbase { index: index + 1 });
    }
    let inputs = block.input_count();
    if inputs > params.max_block_inputs {
        return Err(BlockError::TooManyInputs { count: inputs, max: params.max_block_inputs });
    }
    let mut txids = FastSet::default();
    txids.reserve(block.txs.len());
    for (index, tx) in block.txs.iter().enumerate() {
        let txid = tx.txid();
        check_transaction(tx, params).map_err(|error| BlockError::Tx { index, txid, error })?;
        if !txids.insert(txid) {
            return Err(BlockError::DuplicateTxid(txid));
        }
    }
    Ok(())
}

/// The height a coinbase commits to (its input's outpoint index).
pub fn coinbase_height(block: &Block) -> Option<u32> {
    block.txs.first().filter(|tx| tx.is_coinbase()).map(|tx| tx.inputs[0].prevout.vout)
}
