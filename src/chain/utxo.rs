//! The UTXO state transition of one block: what it spends, what it creates, and the undo
//! data that lets a reorg take it back.
//!
//! `connect_block` is the contextual half of block validation: every input must exist in
//! the UTXO set or earlier in the same block, mature, add up, and carry a valid signature.
//! A reorg is "disconnect N, connect M", built from the same two diffs.

use rayon::prelude::*;

use crate::consensus::block::coinbase_height;
use crate::consensus::tx::{SigCheck, check_tx_inputs, signature_checks};
use crate::consensus::{BlockError, Params, TxError};
use crate::primitives::{Block, Coin, FastMap, FastSet, OutPoint, Txid};
use crate::storage::{BlockUndo, StorageError, UtxoDiff, UtxoView};

/// How signatures of a block are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigMode {
    /// On the calling thread.
    Sequential,
    /// On rayon's pool, all inputs of the block at once.
    Parallel,
}

/// A block failed validation, or the UTXO set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The block breaks a rule.
    #[error(transparent)]
    Invalid(#[from] BlockError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A block checked against the UTXO set whose signatures are still to be verified: what
/// connecting it changes, and the checks that decide whether it may.
#[derive(Debug)]
pub struct Prepared {
    /// UTXO changes.
    pub diff: UtxoDiff,
    /// The coins it spends, to take it back later.
    pub undo: BlockUndo,
    /// Its txids in order, each computed once here.
    pub txids: Vec<Txid>,
    /// Every input's signature check, with the index of its transaction.
    checks: Vec<(usize, SigCheck)>,
}

impl Prepared {
    /// Drops the signature checks of the transactions `known` says were verified before
    /// (by the mempool): they hold as they did then.
    pub fn skip_verified(&mut self, known: impl Fn(usize) -> bool) {
        self.checks.retain(|(index, _)| !known(*index));
    }

    /// Drops every signature check: the block is an ancestor of the assume-valid block
    /// (`chain::assume`).
    pub fn skip_signatures(&mut self) {
        self.checks.clear();
    }

    /// Verifies every signature of the block.
    ///
    /// # Errors
    /// [`BlockError::Tx`] naming the first failing input's transaction.
    pub fn verify(&self, mode: SigMode) -> Result<(), BlockError> {
        // Pieces of at most 8 checks (~0.5 ms): rayon's default split leaves each thread
        // one large piece, so when another thread of the process (the writer, the network)
        // takes a core from one of them, the other finishes and idles at the join. Small
        // pieces stay stealable.
        let failed = match mode {
            SigMode::Sequential => self.checks.iter().find(|(_, c)| !c.verify()),
            SigMode::Parallel => {
                self.checks.par_iter().with_max_len(8).find_first(|(_, c)| !c.verify())
            }
        };
        match failed {
            Some((index, check)) => Err(BlockError::Tx {
                index: *index,
                txid: self.txids[*index],
                error: TxError::BadSignature { index: check.input },
            }),
            None => Ok(()),
        }
    }
}

/// Validates `block` at `height` against `view` and returns the diff and undo data.
///
/// # Errors
/// [`ConnectError::Invalid`] naming the rule broken.
pub fn connect_block(
    block: &Block,
    height: u32,
    view: &impl UtxoView,
    params: &Params,
    sig_mode: SigMode,
) -> Result<(UtxoDiff, BlockUndo), ConnectError> {
    let prepared = prepare_block(block, height, view, params)?;
    prepared.verify(sig_mode)?;
    Ok((prepared.diff, prepared.undo))
}

/// Everything of [`connect_block`] but the signature checks, which it returns to be run
/// later (while the next block is prepared, say): inputs exist (in `view` or earlier in
/// the block), are spent once, are mature and add up; the coinbase claims no more than
/// subsidy plus fees.
///
/// # Errors
/// [`ConnectError::Invalid`] naming the rule broken.
pub fn prepare_block(
    block: &Block,
    height: u32,
    view: &impl UtxoView,
    params: &Params,
) -> Result<Prepared, ConnectError> {
    let found = coinbase_height(block).ok_or(BlockError::MissingCoinbase)?;
    if found != height {
        return Err(BlockError::BadCoinbaseHeight { expected: height, found }.into());
    }
    // Outputs created earlier in this block, still unspent.
    let mut created: FastMap<OutPoint, Coin> = FastMap::default();
    let mut spent_in_block: FastSet<OutPoint> = FastSet::default();
    spent_in_block.reserve(block.input_count());
    let mut undo = BlockUndo::default();
    let mut checks: Vec<(usize, SigCheck)> = Vec::with_capacity(block.input_count());
    let mut txids = Vec::with_capacity(block.txs.len());
    let mut fees = 0u64;
    for (index, tx) in block.txs.iter().enumerate() {
        let txid = tx.txid();
        txids.push(txid);
        if index > 0 {
            let tx_err = |error| BlockError::Tx { index, txid, error };
            let mut coins = Vec::with_capacity(tx.inputs.len());
            for input in &tx.inputs {
                let op = input.prevout;
                if !spent_in_block.insert(op) {
                    return Err(BlockError::DoubleSpendInBlock(op).into());
                }
                let coin = match created.remove(&op) {
                    Some(coin) => coin,
                    None => {
                        let coin =
                            view.coin(&op)?.ok_or(tx_err(TxError::InputMissingOrSpent(op)))?;
                        undo.spent.push((op, coin));
                        coin
                    }
                };
                coins.push(coin);
            }
            let fee = check_tx_inputs(tx, &coins, height, params).map_err(tx_err)?;
            // Both sums are bounded by MAX_MONEY, so this cannot overflow.
            fees = fees.saturating_add(fee);
            checks.extend(signature_checks(tx, txid, &coins).into_iter().map(|c| (index, c)));
        }
        for (vout, output) in tx.outputs.iter().enumerate() {
            let op = OutPoint { txid, vout: vout as u32 };
            created.insert(op, Coin { output: *output, height, is_coinbase: index == 0 });
        }
    }
    let allowed = params.subsidy(height).saturating_add(fees);
    let paid = block.txs[0].total_out().unwrap_or(u64::MAX);
    if paid > allowed {
        return Err(BlockError::CoinbaseOverpay { paid, allowed }.into());
    }
    let diff = UtxoDiff { spent: undo.spent.clone(), created: created.into_iter().collect() };
    Ok(Prepared { diff, undo, txids, checks })
}

/// The diff that takes `block` (at `height`) back out of the UTXO set, given its undo data.
/// Outputs spent within the block itself are listed too; removing them is a no-op.
pub fn disconnect_diff(block: &Block, height: u32, undo: &BlockUndo) -> UtxoDiff {
    let spent = block
        .txs
        .iter()
        .enumerate()
        .flat_map(|(i, tx)| {
            let txid: Txid = tx.txid();
            tx.outputs.iter().enumerate().map(move |(vout, output)| {
                let coin = Coin { output: *output, height, is_coinbase: i == 0 };
                (OutPoint { txid, vout: vout as u32 }, coin)
            })
        })
        .collect();
    UtxoDiff { spent, created: undo.spent.clone() }
}
