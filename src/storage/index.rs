//! The block index entry: one per known header, with its height, cumulative work and
//! validation status.

use ruint::aliases::U256;

use crate::primitives::encode::{Decode, DecodeError, Encode, Reader};
use crate::primitives::{BlockHash, BlockHeader};

/// Status bit: the block's transactions are stored.
pub const HAVE_DATA: u8 = 1;
/// Status bit: the block, or an ancestor, broke a consensus rule.
pub const FAILED: u8 = 2;
/// Status bit: the UTXO set at this block came from a snapshot (its data, and its
/// ancestors', may be missing: they were never connected here).
pub const SNAPSHOT_BASE: u8 = 4;

/// What the node knows about one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// The header.
    pub header: BlockHeader,
    /// Distance from genesis.
    pub height: u32,
    /// Sum of the work of this block and all its ancestors.
    pub chain_work: U256,
    /// `HAVE_DATA` / `FAILED` / `SNAPSHOT_BASE` bits.
    pub status: u8,
}

impl IndexEntry {
    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.header.block_hash()
    }

    /// Whether the block's transactions are stored.
    pub fn has_data(&self) -> bool {
        self.status & HAVE_DATA != 0
    }

    /// Whether the UTXO set at this block came from a snapshot.
    pub fn is_snapshot_base(&self) -> bool {
        self.status & SNAPSHOT_BASE != 0
    }

    /// Whether the block is known to be invalid.
    pub fn is_failed(&self) -> bool {
        self.status & FAILED != 0
    }
}

impl Encode for IndexEntry {
    fn encode(&self, out: &mut Vec<u8>) {
        self.header.encode(out);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.chain_work.to_le_bytes::<32>());
        out.push(self.status);
    }
    fn encoded_len(&self) -> usize {
        80 + 4 + 32 + 1
    }
}

impl Decode for IndexEntry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            header: BlockHeader::decode(r)?,
            height: r.u32()?,
            chain_work: U256::from_le_bytes(r.array::<32>()?),
            status: r.array::<1>()?[0],
        })
    }
}
