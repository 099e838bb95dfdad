//! The mempool as it is saved at shutdown and loaded at start (Bitcoin Core's
//! `mempool.dat`): its transactions in arrival order, parents before children, each with
//! whether the node's own API submitted it (those are announced again after the start).
//!
//! ```text
//!   "mcmp" | version (1 byte) | count (u32 LE) | count × (flags (1 byte), transaction)
//!   | sha256d of everything before (32 bytes)
//! ```
//!
//! Nothing in it is trusted: the loader validates every transaction again against the
//! chain as it is then, and a torn or foreign file is refused whole. The fee estimator's
//! statistics are saved beside it in the same framing (`"mcfe"`, `fee_estimates.dat`).

use super::FeeEstimator;
use crate::primitives::Transaction;
use crate::primitives::encode::{Decode, DecodeError, Encode, Reader};
use crate::primitives::hash::sha256d;

const MAGIC: &[u8; 4] = b"mcmp";
const VERSION: u8 = 1;
const OWN: u8 = 1;
const FEES_MAGIC: &[u8; 4] = b"mcfe";
const FEES_VERSION: u8 = 1;

/// One saved transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedTx {
    /// The transaction.
    pub tx: Transaction,
    /// Submitted through this node's API (announced again until it confirms).
    pub own: bool,
}

/// Why a saved mempool could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedError {
    /// Not a file of this kind.
    #[error("not a file of this kind (its header is wrong)")]
    Magic,
    /// A format this build does not know: the file's version and the one read.
    #[error("format version {0}, this build reads {1}")]
    Version(u8, u8),
    /// Cut short or changed since it was written.
    #[error("its checksum does not match (cut short or damaged)")]
    Checksum,
    /// A transaction does not decode.
    #[error("a transaction does not decode: {0}")]
    Decode(#[from] DecodeError),
}

/// `body` framed as a saved file: `magic | version | body | sha256d of all before`.
fn frame(magic: &[u8; 4], version: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len() + 32);
    out.extend_from_slice(magic);
    out.push(version);
    out.extend_from_slice(body);
    let sum = sha256d(&out);
    out.extend_from_slice(&sum);
    out
}

/// The body of a [`frame`]d file, checked whole.
fn unframe<'a>(magic: &[u8; 4], version: u8, bytes: &'a [u8]) -> Result<&'a [u8], SavedError> {
    if bytes.len() < 5 + 32 || &bytes[..4] != magic {
        return Err(SavedError::Magic);
    }
    if bytes[4] != version {
        return Err(SavedError::Version(bytes[4], version));
    }
    let (head, sum) = bytes.split_at(bytes.len() - 32);
    if sha256d(head) != sum {
        return Err(SavedError::Checksum);
    }
    Ok(&head[5..])
}

/// The bytes of `txs`, in the order given.
pub fn encode_saved(txs: &[SavedTx]) -> Vec<u8> {
    let mut body =
        Vec::with_capacity(4 + txs.iter().map(|t| 1 + t.tx.encoded_len()).sum::<usize>());
    // A mempool holds far fewer than 2^32 transactions (its byte cap).
    body.extend_from_slice(&u32::try_from(txs.len()).unwrap_or(u32::MAX).to_le_bytes());
    for t in txs {
        body.push(if t.own { OWN } else { 0 });
        t.tx.encode(&mut body);
    }
    frame(MAGIC, VERSION, &body)
}

/// Reads [`encode_saved`]'s bytes.
///
/// # Errors
/// [`SavedError`] for anything else; nothing of a bad file is returned.
pub fn decode_saved(bytes: &[u8]) -> Result<Vec<SavedTx>, SavedError> {
    let body = unframe(MAGIC, VERSION, bytes)?;
    let mut r = Reader::new(body);
    let count = r.u32()? as usize;
    let mut out = Vec::with_capacity(count.min(body.len() / 60));
    for _ in 0..count {
        let flags = r.take(1)?[0];
        out.push(SavedTx { tx: Transaction::decode(&mut r)?, own: flags & OWN != 0 });
    }
    if r.remaining() != 0 {
        return Err(SavedError::Decode(DecodeError::TrailingBytes(r.remaining())));
    }
    Ok(out)
}

/// The fee estimator's statistics as saved beside the mempool (Core's
/// `fee_estimates.dat`): without them a restarted node knows nothing of recent blocks.
pub fn encode_fees(fees: &FeeEstimator) -> Vec<u8> {
    let mut body = Vec::new();
    fees.encode(&mut body);
    frame(FEES_MAGIC, FEES_VERSION, &body)
}

/// Reads [`encode_fees`]'s bytes.
///
/// # Errors
/// [`SavedError`] for anything else.
pub fn decode_fees(bytes: &[u8]) -> Result<FeeEstimator, SavedError> {
    let mut r = Reader::new(unframe(FEES_MAGIC, FEES_VERSION, bytes)?);
    let fees = FeeEstimator::decode(&mut r)?;
    if r.remaining() != 0 {
        return Err(SavedError::Decode(DecodeError::TrailingBytes(r.remaining())));
    }
    Ok(fees)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{OutPoint, TxIn, TxOut, Txid};

    fn tx(n: u8) -> Transaction {
        Transaction {
            version: 1,
            inputs: vec![TxIn {
                prevout: OutPoint { txid: Txid([n; 32]), vout: 1 },
                signature: [n; 64],
            }],
            outputs: vec![TxOut { value: u64::from(n) * 1_000, pubkey: [n; 32] }],
            lock_time: 0,
        }
    }

    #[test]
    fn a_saved_mempool_reads_back_in_order_and_a_damaged_one_is_refused_whole() {
        let txs = vec![SavedTx { tx: tx(1), own: true }, SavedTx { tx: tx(2), own: false }];
        let bytes = encode_saved(&txs);
        assert_eq!(decode_saved(&bytes), Ok(txs));
        assert_eq!(decode_saved(&encode_saved(&[])), Ok(vec![]));
        assert_eq!(decode_saved(&bytes[..bytes.len() - 1]), Err(SavedError::Checksum));
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert_eq!(decode_saved(&flipped), Err(SavedError::Checksum));
        let mut newer = bytes.clone();
        newer[4] = 9;
        assert_eq!(decode_saved(&newer), Err(SavedError::Version(9, VERSION)));
        assert_eq!(decode_saved(b"garbage"), Err(SavedError::Magic));
        assert_eq!(decode_saved(&[]), Err(SavedError::Magic));
    }

    #[test]
    fn saved_fee_statistics_read_back_and_damaged_ones_are_refused() {
        let mut fees = FeeEstimator::new(1_000);
        for h in 1..=8 {
            fees.begin_block(h, h % 3 == 0);
        }
        let bytes = encode_fees(&fees);
        let back = decode_fees(&bytes).unwrap();
        assert_eq!(encode_fees(&back), bytes, "the same state");
        assert_eq!(back.min_rate(), 1_000);
        assert_eq!(decode_fees(&bytes[..bytes.len() - 1]).err(), Some(SavedError::Checksum));
        assert_eq!(
            decode_fees(&encode_saved(&[])).err(),
            Some(SavedError::Magic),
            "a mempool file"
        );
        // A negative count, checksummed as if honest, is still refused.
        let mut body = Vec::new();
        fees.encode(&mut body);
        let at = body.len() - 8;
        body[at..].copy_from_slice(&(-1.0f64).to_le_bytes());
        assert!(matches!(
            decode_fees(&frame(FEES_MAGIC, FEES_VERSION, &body)),
            Err(SavedError::Decode(DecodeError::Invalid(_)))
        ));
    }
}
