//! A block: header plus transactions, the first of which is the coinbase.

use super::encode::{Decode, DecodeError, Encode, Reader, decode_vec, encode_vec, vec_len};
use super::hash::BlockHash;
use super::header::{BlockHeader, HEADER_SIZE};
use super::tx::Transaction;

/// Smallest possible encoded transaction (no inputs, no outputs): bounds decode counts.
const MIN_TX_SIZE: usize = 16;

/// A block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Transactions, coinbase first.
    pub txs: Vec<Transaction>,
}

impl Block {
    /// The block hash (hash of the header).
    pub fn block_hash(&self) -> BlockHash {
        self.header.block_hash()
    }

    /// Encoded size in bytes.
    pub fn size(&self) -> usize {
        self.encoded_len()
    }

    /// Number of inputs over all non-coinbase transactions.
    pub fn input_count(&self) -> usize {
        self.txs.iter().skip(1).map(|tx| tx.inputs.len()).sum()
    }
}

impl Encode for Block {
    fn encode(&self, out: &mut Vec<u8>) {
        self.header.encode(out);
        encode_vec(&self.txs, out);
    }
    fn encoded_len(&self) -> usize {
        HEADER_SIZE + vec_len(&self.txs)
    }
}

impl Decode for Block {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { header: BlockHeader::decode(r)?, txs: decode_vec(r, MIN_TX_SIZE)? })
    }
}
