//! Signing transaction inputs with BIP340 Schnorr signatures over the minichain sighash.

use secp256k1::{Keypair, schnorr};

use crate::consensus::sighash::SighashCache;
use crate::primitives::{OutPoint, Transaction, TxIn, TxOut};

/// Why a transaction could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The spent outputs do not match the inputs one to one.
    #[error("{spent} spent outputs given for {inputs} inputs")]
    SpentMismatch {
        /// Inputs in the transaction.
        inputs: usize,
        /// Spent outputs given.
        spent: usize,
    },
    /// No key for the output an input spends.
    #[error("no key for input {0}")]
    NoKey(usize),
}

/// The x-only public key of `keypair`, as outputs lock to it.
pub fn pubkey_of(keypair: &Keypair) -> [u8; 32] {
    keypair.x_only_public_key().0.to_byte_array()
}

/// Signs every input of `tx`, which spends `spent` (one per input, in order), with the key
/// `key_for` returns for the spent output's public key.
///
/// # Errors
/// [`SignError`] if `spent` has the wrong length or a key is missing.
pub fn sign_transaction<'k>(
    tx: &mut Transaction,
    spent: &[TxOut],
    key_for: impl Fn(&[u8; 32]) -> Option<&'k Keypair>,
) -> Result<(), SignError> {
    if spent.len() != tx.inputs.len() {
        return Err(SignError::SpentMismatch { inputs: tx.inputs.len(), spent: spent.len() });
    }
    let cache = SighashCache::new(tx, spent);
    for (index, (input, out)) in tx.inputs.iter_mut().zip(spent).enumerate() {
        let key = key_for(&out.pubkey).ok_or(SignError::NoKey(index))?;
        input.signature = schnorr::sign(&cache.sighash(index), key).to_byte_array();
    }
    Ok(())
}

/// Builds a version-1 transaction spending `inputs` (each outpoint with the output it
/// holds) to `outputs`, and signs it with the key `key_for` returns for each spent output.
///
/// # Errors
/// [`SignError::NoKey`] if `key_for` has no key for an input.
pub fn signed_transaction<'k>(
    inputs: &[(OutPoint, TxOut)],
    outputs: Vec<TxOut>,
    key_for: impl Fn(&[u8; 32]) -> Option<&'k Keypair>,
) -> Result<Transaction, SignError> {
    let mut tx = Transaction {
        version: 1,
        inputs: inputs.iter().map(|(op, _)| TxIn { prevout: *op, signature: [0; 64] }).collect(),
        outputs,
        lock_time: 0,
    };
    let spent: Vec<TxOut> = inputs.iter().map(|(_, out)| *out).collect();
    sign_transaction(&mut tx, &spent, key_for)?;
    Ok(tx)
}
