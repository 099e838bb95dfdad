//! The UTXO set as the chain sees it: a read view, the diff one block makes, the undo
//! data that takes it back, and an overlay of changes not yet written.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::StorageError;
use crate::primitives::encode::{
    Decode, DecodeError, Encode, Reader, decode_vec, encode_vec, vec_len,
};
use crate::primitives::{Coin, FastMap, FastSet, OutPoint};

/// Read access to the UTXO set.
pub trait UtxoView {
    /// The unspent coin at `outpoint`, if any.
    ///
    /// # Errors
    /// [`StorageError`] if the backing store fails.
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError>;
}

impl<T: UtxoView + ?Sized> UtxoView for &T {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError> {
        (**self).coin(outpoint)
    }
}

impl<T: UtxoView + ?Sized> UtxoView for Box<T> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError> {
        (**self).coin(outpoint)
    }
}

impl<S: BuildHasher> UtxoView for HashMap<OutPoint, Coin, S> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError> {
        Ok(self.get(outpoint).copied())
    }
}

/// Changes to the UTXO set: remove `spent`, then add `created`. Removed entries carry
/// their coin so the address index can be kept in step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UtxoDiff {
    /// Coins removed.
    pub spent: Vec<(OutPoint, Coin)>,
    /// Coins added.
    pub created: Vec<(OutPoint, Coin)>,
}

/// The coins a block spent, in order, so that disconnecting it can restore them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockUndo {
    /// Spent outpoints with the coins they held.
    pub spent: Vec<(OutPoint, Coin)>,
}

impl Encode for (OutPoint, Coin) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
    fn encoded_len(&self) -> usize {
        36 + 45
    }
}

impl Decode for (OutPoint, Coin) {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok((OutPoint::decode(r)?, Coin::decode(r)?))
    }
}

impl Encode for BlockUndo {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_vec(&self.spent, out);
    }
    fn encoded_len(&self) -> usize {
        vec_len(&self.spent)
    }
}

impl Decode for BlockUndo {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { spent: decode_vec(r, 81)? })
    }
}

/// A view of `base` with diffs applied on top that are not written yet: the UTXO set a
/// block sees when earlier blocks of the same transition are connected (or disconnected)
/// in memory only.
#[derive(Debug, Default)]
pub struct PendingUtxos {
    created: FastMap<OutPoint, Coin>,
    spent: FastSet<OutPoint>,
}

impl PendingUtxos {
    /// Applies a diff on top of what is pending.
    pub fn apply(&mut self, diff: &UtxoDiff) {
        // A spend always shadows the base: the base may hold the same coin (a coin that a
        // pending disconnect brought back is both in `created` and in the base).
        for (op, _) in &diff.spent {
            self.created.remove(op);
            self.spent.insert(*op);
        }
        for (op, coin) in &diff.created {
            self.spent.remove(op);
            self.created.insert(*op, *coin);
        }
    }

    /// The pending changes seen over `base`.
    pub fn over<'a, B: UtxoView + 'a>(&'a self, base: B) -> impl UtxoView + 'a {
        Overlay { pending: self, base }
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.spent.is_empty()
    }

    /// Whether the pending changes decide `outpoint` (so the base's word on it is void).
    pub fn shadows(&self, outpoint: &OutPoint) -> bool {
        self.created.contains_key(outpoint) || self.spent.contains(outpoint)
    }

    /// Coins the pending changes add.
    pub fn created(&self) -> impl Iterator<Item = (&OutPoint, &Coin)> {
        self.created.iter()
    }
}

struct Overlay<'a, B> {
    pending: &'a PendingUtxos,
    base: B,
}

impl<B: UtxoView> UtxoView for Overlay<'_, B> {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError> {
        if let Some(coin) = self.pending.created.get(outpoint) {
            return Ok(Some(*coin));
        }
        if self.pending.spent.contains(outpoint) {
            return Ok(None);
        }
        self.base.coin(outpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{TxOut, Txid};

    fn coin(value: u64) -> Coin {
        Coin { output: TxOut { value, pubkey: [1; 32] }, height: 1, is_coinbase: false }
    }

    #[test]
    fn pending_changes_shadow_the_base_and_cancel_out() {
        let op = |n: u8| OutPoint { txid: Txid([n; 32]), vout: 0 };
        let base: HashMap<OutPoint, Coin> = [(op(1), coin(10)), (op(2), coin(20))].into();
        let mut pending = PendingUtxos::default();
        pending
            .apply(&UtxoDiff { spent: vec![(op(1), coin(10))], created: vec![(op(3), coin(30))] });
        {
            let view = pending.over(&base);
            assert_eq!(view.coin(&op(1)).unwrap(), None, "spent in a pending block");
            assert_eq!(view.coin(&op(2)).unwrap(), Some(coin(20)), "untouched base coin");
            assert_eq!(view.coin(&op(3)).unwrap(), Some(coin(30)), "created in a pending block");
        }
        // Taking that block back out restores the base exactly.
        pending
            .apply(&UtxoDiff { spent: vec![(op(3), coin(30))], created: vec![(op(1), coin(10))] });
        {
            let view = pending.over(&base);
            assert_eq!(view.coin(&op(1)).unwrap(), Some(coin(10)));
            assert_eq!(view.coin(&op(3)).unwrap(), None);
        }
        // And spending the restored coin again hides the base's copy.
        pending.apply(&UtxoDiff { spent: vec![(op(1), coin(10))], created: vec![] });
        assert_eq!(pending.over(&base).coin(&op(1)).unwrap(), None);
    }
}
