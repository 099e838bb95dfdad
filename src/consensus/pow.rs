//! Compact targets, proof-of-work checks and chain work, as Bitcoin defines them.

use ruint::aliases::U256;

use super::error::HeaderError;
use crate::primitives::BlockHash;

/// Decodes a compact target. Returns `None` for negative, zero or overflowing encodings.
pub fn target_from_compact(bits: u32) -> Option<U256> {
    let size = bits >> 24;
    let mut word = bits & 0x007f_ffff;
    let negative = word != 0 && bits & 0x0080_0000 != 0;
    let overflow =
        word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
    if negative || overflow {
        return None;
    }
    let target = if size <= 3 {
        word >>= 8 * (3 - size);
        U256::from(word)
    } else {
        U256::from(word) << (8 * (size as usize - 3))
    };
    (!target.is_zero()).then_some(target)
}

/// Encodes a target in compact form (rounding down, as Bitcoin does).
pub fn target_to_compact(target: U256) -> u32 {
    let mut size = target.bit_len().div_ceil(8) as u32;
    let mut compact = if size <= 3 {
        (target.as_limbs()[0] << (8 * (3 - size))) as u32
    } else {
        (target >> (8 * (size as usize - 3))).as_limbs()[0] as u32
    };
    if compact & 0x0080_0000 != 0 {
        compact >>= 8;
        size += 1;
    }
    compact | (size << 24)
}

/// The header hash read as a 256-bit little-endian number.
pub fn hash_to_u256(hash: &BlockHash) -> U256 {
    U256::from_le_bytes(hash.0)
}

/// Expected number of hashes to meet `target`: `2^256 / (target + 1)`.
pub fn work_from_target(target: U256) -> U256 {
    // 2^256 does not fit; (2^256 - t - 1) / (t + 1) + 1 is the same number.
    (!target / (target + U256::from(1u8))) + U256::from(1u8)
}

/// Work of a header with compact target `bits` (zero for an invalid encoding).
pub fn work_from_bits(bits: u32) -> U256 {
    target_from_compact(bits).map_or(U256::ZERO, work_from_target)
}

/// Difficulty as this project states it (API, CLI, logs): the expected hashes to find a
/// block with compact target `bits`, i.e. its work as a float.
pub fn difficulty(bits: u32) -> f64 {
    f64::from(work_from_bits(bits))
}

/// Checks that `bits` is a valid target no easier than `pow_limit` and that `hash` meets it.
///
/// # Errors
/// [`HeaderError::InvalidBits`] or [`HeaderError::BadProofOfWork`].
pub fn check_proof_of_work(
    hash: &BlockHash,
    bits: u32,
    pow_limit: U256,
) -> Result<(), HeaderError> {
    let target = target_from_compact(bits).ok_or(HeaderError::InvalidBits { bits })?;
    if target > pow_limit {
        return Err(HeaderError::InvalidBits { bits });
    }
    if hash_to_u256(hash) > target {
        return Err(HeaderError::BadProofOfWork);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitcoin_genesis_bits_decode_and_its_hash_meets_them() {
        let target = target_from_compact(0x1d00_ffff).unwrap();
        assert_eq!(target, U256::from(0xffffu64) << 208);
        assert_eq!(target_to_compact(target), 0x1d00_ffff);
        let hash: BlockHash =
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f".parse().unwrap();
        assert_eq!(check_proof_of_work(&hash, 0x1d00_ffff, target), Ok(()));
        // Bitcoin's first difficulty-1 block has 2^32 + 2^16 + ... work: 0x100010001.
        assert_eq!(work_from_target(target), U256::from(0x1_0001_0001u64));
    }

    #[test]
    fn negative_zero_and_overflowing_compact_targets_are_refused() {
        assert_eq!(target_from_compact(0x0480_0001), None); // sign bit
        assert_eq!(target_from_compact(0x0100_0000), None); // zero
        assert_eq!(target_from_compact(0xff12_3456), None); // overflow
    }

    #[test]
    fn compact_round_trips_small_sizes() {
        for bits in [0x0312_3456u32, 0x0200_8000, 0x0401_0000, 0x207f_ffff] {
            let t = target_from_compact(bits).unwrap();
            assert_eq!(target_to_compact(t), bits, "{bits:#x}");
        }
    }

    #[test]
    fn hash_above_target_is_bad_pow() {
        let limit = target_from_compact(0x207f_ffff).unwrap();
        let hash = BlockHash([0xff; 32]);
        assert_eq!(
            check_proof_of_work(&hash, 0x207f_ffff, limit),
            Err(HeaderError::BadProofOfWork)
        );
        assert_eq!(
            check_proof_of_work(
                &BlockHash::ZERO,
                0x207f_ffff,
                target_from_compact(0x1d00_ffff).unwrap()
            ),
            Err(HeaderError::InvalidBits { bits: 0x207f_ffff })
        );
    }
}
