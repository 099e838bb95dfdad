//! Transaction rules: structure in isolation; amounts, maturity and signatures against the
//! coins the transaction spends.

use std::collections::HashSet;

use secp256k1::XOnlyPublicKey;
use secp256k1::schnorr::Signature;

use super::error::TxError;
use super::params::{MAX_MONEY, Params};
use super::sighash::SighashCache;
use crate::primitives::{Coin, Transaction, TxOut, Txid};

/// Checks what can be checked without the UTXO set. Coinbases pass if well-formed; where
/// they may appear is the block's rule.
///
/// # Errors
/// The first [`TxError`] found.
pub fn check_transaction(tx: &Transaction, params: &Params) -> Result<(), TxError> {
    if tx.inputs.is_empty() {
        return Err(TxError::NoInputs);
    }
    if tx.outputs.is_empty() {
        return Err(TxError::NoOutputs);
    }
    let size = tx.size();
    if size > params.max_tx_size {
        return Err(TxError::Oversize { size, max: params.max_tx_size });
    }
    let mut total = 0u64;
    for out in &tx.outputs {
        total = total.checked_add(out.value).ok_or(TxError::OutputValueTooLarge)?;
        if out.value > MAX_MONEY || total > MAX_MONEY {
            return Err(TxError::OutputValueTooLarge);
        }
    }
    if !tx.is_coinbase() {
        let mut seen = HashSet::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            if input.prevout.is_null() {
                return Err(TxError::NullPrevout);
            }
            if !seen.insert(input.prevout) {
                return Err(TxError::DuplicateInput(input.prevout));
            }
        }
    }
    Ok(())
}

/// Whether a transaction in a block at `spend_height` may spend `coin`: a coinbase output
/// must be `coinbase_maturity` blocks deep; any other output at once.
pub fn is_mature(coin: &Coin, spend_height: u32, params: &Params) -> bool {
    !coin.is_coinbase || spend_height.saturating_sub(coin.height) >= params.coinbase_maturity
}

/// Checks amounts and coinbase maturity of a (non-coinbase) transaction spending `coins`
/// (one per input, in order) in a block at `spend_height`. Returns the fee.
///
/// # Errors
/// [`TxError::ImmatureCoinbaseSpend`], [`TxError::InputValueTooLarge`] or
/// [`TxError::OutputsExceedInputs`].
pub fn check_tx_inputs(
    tx: &Transaction,
    coins: &[Coin],
    spend_height: u32,
    params: &Params,
) -> Result<u64, TxError> {
    let mut inputs = 0u64;
    for (input, coin) in tx.inputs.iter().zip(coins) {
        if !is_mature(coin, spend_height, params) {
            return Err(TxError::ImmatureCoinbaseSpend {
                outpoint: input.prevout,
                coinbase_height: coin.height,
            });
        }
        inputs = inputs.checked_add(coin.output.value).ok_or(TxError::InputValueTooLarge)?;
        if inputs > MAX_MONEY {
            return Err(TxError::InputValueTooLarge);
        }
    }
    // check_transaction bounded the output sum by MAX_MONEY.
    let outputs = tx.total_out().ok_or(TxError::OutputValueTooLarge)?;
    inputs.checked_sub(outputs).ok_or(TxError::OutputsExceedInputs { inputs, outputs })
}

/// One signature to verify: the unit of parallel work.
#[derive(Debug, Clone, Copy)]
pub struct SigCheck {
    /// The sighash signed.
    pub msg: [u8; 32],
    /// The BIP340 signature.
    pub sig: [u8; 64],
    /// The x-only key of the spent output.
    pub pubkey: [u8; 32],
    /// Input index within its transaction (for the error).
    pub input: usize,
}

impl SigCheck {
    /// Verifies the signature.
    pub fn verify(&self) -> bool {
        let Ok(key) = XOnlyPublicKey::from_byte_array(self.pubkey) else {
            return false;
        };
        Signature::from_byte_array(self.sig).verify(&self.msg, &key).is_ok()
    }
}

/// The signature checks of `tx` spending `coins`, to run now or in parallel later.
pub fn signature_checks(tx: &Transaction, txid: Txid, coins: &[Coin]) -> Vec<SigCheck> {
    let spent: Vec<TxOut> = coins.iter().map(|c| c.output).collect();
    let cache = SighashCache::with_txid(txid, &spent);
    tx.inputs
        .iter()
        .zip(&spent)
        .enumerate()
        .map(|(i, (input, out))| SigCheck {
            msg: cache.sighash(i),
            sig: input.signature,
            pubkey: out.pubkey,
            input: i,
        })
        .collect()
}

/// Verifies every signature of `tx` spending `coins`.
///
/// # Errors
/// [`TxError::BadSignature`] naming the first failing input.
pub fn verify_signatures(tx: &Transaction, coins: &[Coin]) -> Result<(), TxError> {
    match signature_checks(tx, tx.txid(), coins).iter().find(|c| !c.verify()) {
        Some(bad) => Err(TxError::BadSignature { index: bad.input }),
        None => Ok(()),
    }
}
