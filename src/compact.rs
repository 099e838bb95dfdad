//! Compact blocks (after Bitcoin's BIP152): a block announced as its header, a 6-byte
//! short id per transaction and the transactions a receiver is unlikely to hold (the
//! coinbase). The receiver rebuilds the block from its mempool and asks the announcer
//! only for what it lacks, by index.
//!
//! Short ids are SipHash-2-4 of a transaction's wtxid (signatures included, so that a
//! copy with another signature is not taken for the block's), keyed by the first 16 bytes
//! of SHA-256 of the header, truncated to 48 bits. The key is the block's own, so ids
//! cannot be ground to collide with transactions waiting in mempools: the header commits
//! to the transactions, and every other choice of them costs a new proof of work. BIP152
//! adds a nonce of the sender's to the key; here every relay of a block sends the same
//! bytes, so gossipsub sees one message however many peers relay it.
//!
//! Pure data and functions: what to do with a compact block (when to ask, whom to blame)
//! is the core's (`core::compact`).

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use siphasher::sip::SipHasher24;

use crate::consensus::merkle::block_merkle_root;
use crate::primitives::encode::{Decode, DecodeError, Encode, Reader};
use crate::primitives::header::HEADER_SIZE;
use crate::primitives::{Block, BlockHash, BlockHeader, Transaction, Wtxid};

/// Bytes of a short id.
pub const SHORT_ID_BYTES: usize = 6;
/// Most transactions a compact block may announce: a maximum-size block of the smallest
/// transactions there are (16 bytes each).
pub const MAX_COMPACT_TXS: usize = crate::protocol::MAX_BLOCK_BYTES / 16;

/// A transaction's short id in one block: 48 bits of a keyed SipHash of its wtxid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortId(pub u64);

/// The SipHash key of one block's short ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortIdKey(u64, u64);

impl ShortIdKey {
    /// The key of the block with `header`.
    pub fn of(header: &BlockHeader) -> Self {
        let digest = Sha256::digest(header.to_bytes());
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&digest[i..i + 8]);
            u64::from_le_bytes(w)
        };
        Self(word(0), word(8))
    }

    /// The short id of the transaction with `wtxid`.
    pub fn short_id(&self, wtxid: &Wtxid) -> ShortId {
        use std::hash::Hasher;
        let mut hasher = SipHasher24::new_with_keys(self.0, self.1);
        hasher.write(&wtxid.0);
        ShortId(hasher.finish() & 0xffff_ffff_ffff)
    }
}

/// A transaction sent whole, at its index in the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefilled {
    /// Its index in the block.
    pub index: u32,
    /// The transaction.
    pub tx: Transaction,
}

/// A block as announced: header, short ids of the transactions not sent, those sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactBlock {
    /// The block's header.
    pub header: BlockHeader,
    /// Short ids of the block's transactions that are not prefilled, in block order.
    pub short_ids: Vec<ShortId>,
    /// Transactions sent whole (the coinbase first), by increasing index.
    pub prefilled: Vec<Prefilled>,
}

/// Why a compact block cannot stand for any block: its sender built it wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// No transactions, or more than a block can hold.
    #[error("{0} transactions announced")]
    TxCount(usize),
    /// The first transaction (the coinbase) is not sent whole.
    #[error("the coinbase is not prefilled")]
    NoCoinbase,
    /// Prefilled indexes out of order, repeated or past the end.
    #[error("prefilled transaction at index {0} out of order or past the end")]
    PrefilledIndex(u32),
}

/// Why a rebuilt block is not the announced one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    /// Transactions are still missing.
    #[error("{0} transactions still missing")]
    Missing(usize),
    /// The answer to a request for missing transactions has the wrong count.
    #[error("{got} transactions for {wanted} missing")]
    AnswerCount {
        /// Sent.
        got: usize,
        /// Asked.
        wanted: usize,
    },
    /// The rebuilt transactions do not hash to the header's Merkle root: a short id
    /// collided with another transaction, or the announcer's ids were wrong.
    #[error("rebuilt transactions do not match the header's Merkle root")]
    MerkleMismatch,
}

impl CompactBlock {
    /// The compact form of `block`: its coinbase prefilled, a short id for every other
    /// transaction. One block has exactly one compact form.
    pub fn from_block(block: &Block) -> Self {
        let key = ShortIdKey::of(&block.header);
        let mut txs = block.txs.iter();
        let prefilled = txs.next().map(|tx| Prefilled { index: 0, tx: tx.clone() });
        Self {
            header: block.header,
            short_ids: txs.map(|tx| key.short_id(&tx.wtxid())).collect(),
            prefilled: prefilled.into_iter().collect(),
        }
    }

    /// The announced block's hash.
    pub fn block_hash(&self) -> BlockHash {
        self.header.block_hash()
    }

    /// Transactions in the announced block.
    pub fn tx_count(&self) -> usize {
        self.short_ids.len() + self.prefilled.len()
    }

    /// Checks the shape: a coinbase sent whole, prefilled indexes increasing and inside
    /// the block, no more transactions than a block holds.
    ///
    /// # Errors
    /// [`CompactError`]: no block has this compact form.
    pub fn check(&self) -> Result<(), CompactError> {
        let count = self.tx_count();
        if count == 0 || count > MAX_COMPACT_TXS {
            return Err(CompactError::TxCount(count));
        }
        if self.prefilled.first().is_none_or(|p| p.index != 0) {
            return Err(CompactError::NoCoinbase);
        }
        let mut last = None;
        for p in &self.prefilled {
            if last.is_some_and(|l| p.index <= l) || p.index as usize >= count {
                return Err(CompactError::PrefilledIndex(p.index));
            }
            last = Some(p.index);
        }
        Ok(())
    }

    /// Starts rebuilding the block from `candidates` (the mempool's and orphan pool's
    /// transactions). A slot whose short id two candidates share, or that two of the
    /// block's transactions share, is left missing: it is asked for by index. The shape
    /// must have passed [`Self::check`].
    pub fn rebuild<'a>(
        &self,
        candidates: impl Iterator<Item = (Wtxid, &'a Transaction)>,
    ) -> Partial {
        let count = self.tx_count();
        let mut slots: Vec<Option<Transaction>> = vec![None; count];
        let mut prefilled = vec![false; count];
        for p in &self.prefilled {
            slots[p.index as usize] = Some(p.tx.clone());
            prefilled[p.index as usize] = true;
        }
        // Short id -> its slot; `None` once two of the block's transactions share it.
        let mut by_id: HashMap<ShortId, Option<usize>> =
            HashMap::with_capacity(self.short_ids.len());
        let mut ids = self.short_ids.iter();
        for (index, _) in prefilled.iter().enumerate().filter(|(_, p)| !**p) {
            let Some(id) = ids.next() else { break };
            by_id.entry(*id).and_modify(|slot| *slot = None).or_insert(Some(index));
        }
        let key = ShortIdKey::of(&self.header);
        // Slots a second candidate also claimed: asked for, never guessed.
        let mut contested = vec![false; count];
        for (wtxid, tx) in candidates {
            let Some(Some(index)) = by_id.get(&key.short_id(&wtxid)) else { continue };
            match &slots[*index] {
                None if !contested[*index] => slots[*index] = Some(tx.clone()),
                Some(held) if held.wtxid() != wtxid => {
                    slots[*index] = None;
                    contested[*index] = true;
                }
                _ => {}
            }
        }
        Partial { header: self.header, slots }
    }
}

/// A block being rebuilt: the transactions found so far, in their slots.
#[derive(Debug, Clone)]
pub struct Partial {
    header: BlockHeader,
    slots: Vec<Option<Transaction>>,
}

impl Partial {
    /// The indexes still missing, increasing.
    pub fn missing(&self) -> Vec<u32> {
        let empty = self.slots.iter().enumerate().filter(|(_, s)| s.is_none());
        // Indexes are below MAX_COMPACT_TXS, far below u32::MAX.
        empty.map(|(i, _)| i as u32).collect()
    }

    /// Fills the missing slots, in order, with the transactions a peer sent for them.
    ///
    /// # Errors
    /// [`RebuildError::AnswerCount`] if `txs` is not one per missing slot (nothing is
    /// filled then).
    pub fn fill(&mut self, txs: Vec<Transaction>) -> Result<(), RebuildError> {
        let missing = self.missing();
        if txs.len() != missing.len() {
            return Err(RebuildError::AnswerCount { got: txs.len(), wanted: missing.len() });
        }
        for (index, tx) in missing.into_iter().zip(txs) {
            self.slots[index as usize] = Some(tx);
        }
        Ok(())
    }

    /// The block, once every slot is filled and the transactions match the header's
    /// Merkle root. Full validation is still to come.
    ///
    /// # Errors
    /// [`RebuildError::Missing`] or [`RebuildError::MerkleMismatch`].
    pub fn finish(&self) -> Result<Block, RebuildError> {
        let missing = self.slots.iter().filter(|s| s.is_none()).count();
        if missing > 0 {
            return Err(RebuildError::Missing(missing));
        }
        let txs: Vec<Transaction> = self.slots.iter().flatten().cloned().collect();
        if block_merkle_root(&txs).0 != self.header.merkle_root {
            return Err(RebuildError::MerkleMismatch);
        }
        Ok(Block { header: self.header, txs })
    }
}

impl Encode for ShortId {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes()[..SHORT_ID_BYTES]);
    }
    fn encoded_len(&self) -> usize {
        SHORT_ID_BYTES
    }
}

impl Decode for ShortId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut word = [0u8; 8];
        word[..SHORT_ID_BYTES].copy_from_slice(r.take(SHORT_ID_BYTES)?);
        Ok(Self(u64::from_le_bytes(word)))
    }
}

impl Encode for Prefilled {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.index.to_le_bytes());
        self.tx.encode(out);
    }
    fn encoded_len(&self) -> usize {
        4 + self.tx.encoded_len()
    }
}

impl Decode for Prefilled {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { index: r.u32()?, tx: Transaction::decode(r)? })
    }
}

/// Smallest encoded prefilled transaction: an index and the smallest transaction.
const MIN_PREFILLED: usize = 4 + 16;

impl Encode for CompactBlock {
    fn encode(&self, out: &mut Vec<u8>) {
        self.header.encode(out);
        crate::primitives::encode::encode_vec(&self.short_ids, out);
        crate::primitives::encode::encode_vec(&self.prefilled, out);
    }
    fn encoded_len(&self) -> usize {
        use crate::primitives::encode::vec_len;
        HEADER_SIZE + vec_len(&self.short_ids) + vec_len(&self.prefilled)
    }
}

impl Decode for CompactBlock {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        use crate::primitives::encode::decode_vec;
        Ok(Self {
            header: BlockHeader::decode(r)?,
            short_ids: decode_vec(r, SHORT_ID_BYTES)?,
            prefilled: decode_vec(r, MIN_PREFILLED)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::TxOut;
    use crate::primitives::encode::{deserialize, serialize};

    /// A block of a coinbase and `n` other transactions, distinct for every `n` (their
    /// validity is the chain's concern, not the rebuild's).
    fn block_of(n: u32) -> Block {
        let tx = |i: u32| {
            let out = TxOut { value: u64::from(n * 1_000 + i), pubkey: [7; 32] };
            Transaction::coinbase(i, vec![out], 0)
        };
        let txs = (1..=n).map(tx).collect();
        crate::testkit::solved_block(BlockHash([1; 32]), 1, 0x207f_ffff, tx(0), txs)
    }

    fn pool(block: &Block) -> Vec<(Wtxid, Transaction)> {
        block.txs.iter().skip(1).map(|tx| (tx.wtxid(), tx.clone())).collect()
    }

    #[test]
    fn a_block_is_rebuilt_from_a_pool_holding_its_transactions() {
        let block = block_of(50);
        let compact = CompactBlock::from_block(&block);
        compact.check().unwrap();
        let bytes = serialize(&compact);
        assert_eq!(bytes.len(), HEADER_SIZE + 4 + 6 * 50 + 4 + 4 + block.txs[0].encoded_len());
        let compact: CompactBlock = deserialize(&bytes).unwrap();
        let held = pool(&block);
        let partial = compact.rebuild(held.iter().map(|(w, t)| (*w, t)));
        assert!(partial.missing().is_empty());
        assert_eq!(partial.finish().unwrap(), block);
    }

    #[test]
    fn what_the_pool_lacks_is_asked_by_index_and_filled_in_order() {
        let block = block_of(20);
        let compact = CompactBlock::from_block(&block);
        let held: Vec<_> = pool(&block)
            .into_iter()
            .filter(|(_, tx)| tx != &block.txs[3] && tx != &block.txs[17])
            .collect();
        let mut partial = compact.rebuild(held.iter().map(|(w, t)| (*w, t)));
        assert_eq!(partial.missing(), [3, 17]);
        assert_eq!(partial.finish(), Err(RebuildError::Missing(2)));
        let wrong = partial.fill(vec![block.txs[3].clone()]);
        assert_eq!(wrong, Err(RebuildError::AnswerCount { got: 1, wanted: 2 }));
        partial.fill(vec![block.txs[3].clone(), block.txs[17].clone()]).unwrap();
        assert_eq!(partial.finish().unwrap(), block);
    }

    #[test]
    fn wrong_transactions_in_a_slot_fail_the_merkle_root() {
        let block = block_of(5);
        let other = block_of(6);
        let compact = CompactBlock::from_block(&block);
        let mut partial = compact.rebuild(std::iter::empty());
        partial.fill(other.txs[1..6].to_vec()).unwrap();
        assert_eq!(partial.finish(), Err(RebuildError::MerkleMismatch));
    }

    #[test]
    fn a_short_id_two_pool_transactions_share_is_asked_not_guessed() {
        let block = block_of(3);
        let mut compact = CompactBlock::from_block(&block);
        // An announcer's id that names another pool transaction too: a collision.
        let decoy = block_of(4).txs[2].clone();
        compact.short_ids[0] = ShortIdKey::of(&block.header).short_id(&decoy.wtxid());
        let mut held = pool(&block);
        held.push((decoy.wtxid(), decoy.clone()));
        held.push((block.txs[1].wtxid(), block.txs[1].clone()));
        // The decoy alone claims slot 1: it is taken, and the root tells.
        let partial = compact.rebuild(held.iter().map(|(w, t)| (*w, t)));
        assert_eq!(partial.missing(), Vec::<u32>::new());
        assert_eq!(partial.finish(), Err(RebuildError::MerkleMismatch));
        // Two of the block's own transactions with one id: both asked.
        let mut twins = CompactBlock::from_block(&block);
        twins.short_ids[1] = twins.short_ids[0];
        let partial = twins.rebuild(held.iter().map(|(w, t)| (*w, t)));
        assert_eq!(partial.missing(), [1, 2]);
    }

    #[test]
    fn malformed_shapes_are_refused() {
        let block = block_of(3);
        let mut no_coinbase = CompactBlock::from_block(&block);
        no_coinbase.prefilled.clear();
        assert_eq!(no_coinbase.check(), Err(CompactError::NoCoinbase));
        let mut past_end = CompactBlock::from_block(&block);
        past_end.prefilled.push(Prefilled { index: 9, tx: block.txs[1].clone() });
        assert_eq!(past_end.check(), Err(CompactError::PrefilledIndex(9)));
        let mut repeated = CompactBlock::from_block(&block);
        repeated.prefilled.push(Prefilled { index: 0, tx: block.txs[1].clone() });
        assert_eq!(repeated.check(), Err(CompactError::PrefilledIndex(0)));
        assert!(deserialize::<CompactBlock>(&[0u8; 10]).is_err());
    }

    #[test]
    fn ids_depend_on_the_block() {
        let a = block_of(2);
        let b = block_of(3);
        let tx = &a.txs[1];
        let ka = ShortIdKey::of(&a.header);
        let kb = ShortIdKey::of(&b.header);
        assert_ne!(ka.short_id(&tx.wtxid()), kb.short_id(&tx.wtxid()));
        assert!(ka.short_id(&tx.wtxid()).0 < 1 << 48);
    }
}
