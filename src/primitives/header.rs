//! The 80-byte block header, laid out exactly as Bitcoin's.

use super::encode::{Decode, DecodeError, Encode, Reader};
use super::hash::{BlockHash, MerkleRoot, sha256d};

/// Size of an encoded header.
pub const HEADER_SIZE: usize = 80;

/// A block header: version, parent, Merkle root, time, compact target, nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    /// Block version.
    pub version: u32,
    /// Hash of the parent block.
    pub prev_blockhash: BlockHash,
    /// Merkle root over the block's whole transactions.
    pub merkle_root: MerkleRoot,
    /// Seconds since the Unix epoch.
    pub time: u32,
    /// The proof-of-work target in compact form.
    pub bits: u32,
    /// The value the miner varies.
    pub nonce: u32,
}

impl BlockHeader {
    /// The 80 bytes that are hashed: every field little-endian, in declaration order.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0u8; HEADER_SIZE];
        out[0..4].copy_from_slice(&self.version.to_le_bytes());
        out[4..36].copy_from_slice(&self.prev_blockhash.0);
        out[36..68].copy_from_slice(&self.merkle_root.0);
        out[68..72].copy_from_slice(&self.time.to_le_bytes());
        out[72..76].copy_from_slice(&self.bits.to_le_bytes());
        out[76..80].copy_from_slice(&self.nonce.to_le_bytes());
        out
    }

    /// Parses the 80-byte layout.
    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> Self {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let hash = |i: usize| {
            let mut h = [0u8; 32];
            h.copy_from_slice(&b[i..i + 32]);
            h
        };
        Self {
            version: word(0),
            prev_blockhash: BlockHash(hash(4)),
            merkle_root: MerkleRoot(hash(36)),
            time: word(68),
            bits: word(72),
            nonce: word(76),
        }
    }

    /// Double SHA-256 of the 80 bytes.
    pub fn block_hash(&self) -> BlockHash {
        BlockHash(sha256d(&self.to_bytes()))
    }
}

impl Encode for BlockHeader {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }

    fn encoded_len(&self) -> usize {
        HEADER_SIZE
    }
}

impl Decode for BlockHeader {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self::from_bytes(&r.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bitcoin's genesis header: a free test vector for the layout and the hash.
    pub(crate) fn bitcoin_genesis() -> BlockHeader {
        BlockHeader {
            version: 1,
            prev_blockhash: BlockHash::ZERO,
            merkle_root: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
                .parse::<BlockHash>()
                .map(|h| MerkleRoot(h.0))
                .unwrap(),
            time: 1_231_006_505,
            bits: 0x1d00_ffff,
            nonce: 2_083_236_893,
        }
    }

    #[test]
    fn bitcoin_genesis_hashes_to_its_known_hash() {
        assert_eq!(
            bitcoin_genesis().block_hash().to_string(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
    }

    #[test]
    fn header_round_trips_through_80_bytes() {
        let h = bitcoin_genesis();
        assert_eq!(BlockHeader::from_bytes(&h.to_bytes()), h);
    }
}
