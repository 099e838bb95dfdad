//! The consensus encoding: explicit little-endian bytes, written by hand.
//!
//! Hashes (txid, Merkle leaves, header hash, sighash) are taken over these bytes, so they
//! must never depend on a serializer's choices. Decoding is strict: every length is checked
//! against the bytes that remain before anything is allocated, and `deserialize` refuses
//! trailing bytes, so one value has exactly one encoding.

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("unexpected end of data")]
    UnexpectedEnd,
    /// Bytes were left after a complete value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A count claims more elements than the remaining bytes could hold.
    #[error("count {count} exceeds what the remaining {remaining} bytes can hold")]
    CountTooLarge {
        /// The count read.
        count: u64,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// A field holds a value that no valid encoding produces.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

/// Types with a consensus encoding.
pub trait Encode {
    /// Appends the encoding to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Length in bytes of the encoding.
    fn encoded_len(&self) -> usize;
}

/// Types that can be read back from their consensus encoding.
pub trait Decode: Sized {
    /// Reads one value from `r`.
    ///
    /// # Errors
    /// Any [`DecodeError`] when the bytes are not a valid encoding.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Encodes a value into a fresh vector.
pub fn serialize<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.encoded_len());
    value.encode(&mut out);
    out
}

/// Decodes exactly one value from `bytes`.
///
/// # Errors
/// [`DecodeError`] if the bytes are malformed or not fully consumed.
pub fn deserialize<T: Decode>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut reader = Reader::new(bytes);
    let value = T::decode(&mut reader)?;
    match reader.remaining() {
        0 => Ok(value),
        n => Err(DecodeError::TrailingBytes(n)),
    }
}

/// A cursor over untrusted bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Takes the next `n` bytes.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] if fewer than `n` remain.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(DecodeError::UnexpectedEnd);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] if too few bytes remain.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] if too few bytes remain.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] if too few bytes remain.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads an element count and checks that `count * min_elem_len` bytes remain, so a
    /// forged count can never make the caller allocate more than the input's size.
    ///
    /// # Errors
    /// [`DecodeError::CountTooLarge`] if the count cannot fit in the remaining bytes.
    pub fn count(&mut self, min_elem_len: usize) -> Result<usize, DecodeError> {
        let count = self.u32()?;
        let remaining = self.remaining();
        let needed = (count as usize).checked_mul(min_elem_len.max(1));
        match needed {
            Some(n) if n <= remaining => Ok(count as usize),
            _ => Err(DecodeError::CountTooLarge { count: count.into(), remaining }),
        }
    }
}

/// Writes a vector of encodable items prefixed by a `u32` count.
pub fn encode_vec<T: Encode>(items: &[T], out: &mut Vec<u8>) {
    // Counts are bounded by block and transaction size limits far below u32::MAX; a
    // vector longer than that cannot be built from any decodable input.
    let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for item in items {
        item.encode(out);
    }
}

/// Length of [`encode_vec`]'s output.
pub fn vec_len<T: Encode>(items: &[T]) -> usize {
    4 + items.iter().map(Encode::encoded_len).sum::<usize>()
}

/// Reads a vector written by [`encode_vec`]; `min_elem_len` bounds the count.
///
/// # Errors
/// Any [`DecodeError`] of the count or of an element.
pub fn decode_vec<T: Decode>(
    r: &mut Reader<'_>,
    min_elem_len: usize,
) -> Result<Vec<T>, DecodeError> {
    let count = r.count(min_elem_len)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(T::decode(r)?);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_count_is_refused_before_allocation() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let mut r = Reader::new(&bytes);
        assert!(matches!(r.count(100), Err(DecodeError::CountTooLarge { .. })));
    }

    #[test]
    fn short_input_is_unexpected_end() {
        let mut r = Reader::new(&[1, 2]);
        assert_eq!(r.u32(), Err(DecodeError::UnexpectedEnd));
    }
}
