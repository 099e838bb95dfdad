//! The message each input signs: a tagged hash committing to the whole transaction
//! (its txid, which covers everything but signatures), to the amounts and keys of every
//! output it spends, and to the input's index.
//!
//! Committing to spent amounts lets an offline signer know the fee it pays; committing to
//! the index stops a signature being moved to another input.

use sha2::{Digest, Sha256};

use super::tagged;
use crate::primitives::hash::tagged_hash;
use crate::primitives::{Transaction, TxOut, Txid};

/// Precomputed parts of one transaction's sighashes, so `n` inputs cost `O(n)`.
pub struct SighashCache {
    txid: Txid,
    spent_hash: [u8; 32],
}

impl SighashCache {
    /// Prepares sighashes for `tx` spending `spent` (one entry per input, in order).
    pub fn new(tx: &Transaction, spent: &[TxOut]) -> Self {
        Self::with_txid(tx.txid(), spent)
    }

    /// As [`SighashCache::new`] with the txid already computed.
    pub fn with_txid(txid: Txid, spent: &[TxOut]) -> Self {
        let mut engine = Sha256::new();
        for out in spent {
            engine.update(out.value.to_le_bytes());
            engine.update(out.pubkey);
        }
        Self { txid, spent_hash: engine.finalize().into() }
    }

    /// The 32-byte message input `index` signs.
    pub fn sighash(&self, index: usize) -> [u8; 32] {
        let index = (index as u32).to_le_bytes();
        tagged_hash(tagged::SIGHASH, &[&self.txid.0, &self.spent_hash, &index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{OutPoint, TxIn};

    #[test]
    fn sighash_commits_to_index_amounts_and_outputs() {
        let spent = vec![TxOut { value: 10, pubkey: [1; 32] }; 2];
        let tx = Transaction {
            version: 1,
            inputs: vec![
                TxIn {
                    prevout: OutPoint { txid: Txid([3; 32]), vout: 0 },
                    signature: [0; 64]
                };
                2
            ],
            outputs: vec![TxOut { value: 5, pubkey: [2; 32] }],
            lock_time: 0,
        };
        let base = SighashCache::new(&tx, &spent);
        assert_ne!(base.sighash(0), base.sighash(1));
        let mut other_amount = spent.clone();
        other_amount[1].value = 11;
        assert_ne!(SighashCache::new(&tx, &other_amount).sighash(0), base.sighash(0));
        let mut other_tx = tx.clone();
        other_tx.outputs[0].value = 6;
        assert_ne!(SighashCache::new(&other_tx, &spent).sighash(0), base.sighash(0));
    }
}
