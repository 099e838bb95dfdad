//! Transactions: inputs spend outpoints with a BIP340 signature, outputs lock an amount to
//! an x-only secp256k1 public key.
//!
//! The txid is the double SHA-256 of the transaction *without* signatures, so nobody can
//! change a txid by re-signing (no malleability). The Merkle leaf (`wtxid`) covers the whole
//! transaction, signatures included.
//!
//! A coinbase has exactly one input whose outpoint is `(Txid::ZERO, height)`: the height
//! makes every coinbase txid unique. Its 64-byte `signature` field is not a signature but
//! free space the miner uses as an extra nonce; it changes the Merkle root, not the txid.

use super::encode::{Decode, DecodeError, Encode, Reader, decode_vec, encode_vec, vec_len};
use super::hash::{Txid, Wtxid, sha256d};

/// Base units per coin.
pub const COIN: u64 = 100_000_000;

/// Size of an encoded input: outpoint (36) + signature (64).
pub const TXIN_SIZE: usize = 100;
/// Size of an encoded output: value (8) + public key (32).
pub const TXOUT_SIZE: usize = 40;

/// A reference to an output of an earlier transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutPoint {
    /// The transaction that created the output.
    pub txid: Txid,
    /// Index of the output in that transaction.
    pub vout: u32,
}

impl OutPoint {
    /// The 36-byte key: txid then index, little-endian.
    pub fn to_bytes(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..32].copy_from_slice(&self.txid.0);
        out[32..].copy_from_slice(&self.vout.to_le_bytes());
        out
    }

    /// Inverse of [`OutPoint::to_bytes`].
    pub fn from_bytes(b: &[u8; 36]) -> Self {
        let mut txid = [0u8; 32];
        txid.copy_from_slice(&b[..32]);
        Self { txid: Txid(txid), vout: u32::from_le_bytes([b[32], b[33], b[34], b[35]]) }
    }

    /// True for the placeholder outpoint a coinbase input carries.
    pub fn is_null(&self) -> bool {
        self.txid == Txid::ZERO
    }
}

impl std::fmt::Display for OutPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.txid, self.vout)
    }
}

/// A transaction input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxIn {
    /// The output spent.
    pub prevout: OutPoint,
    /// BIP340 signature over the input's sighash (extra-nonce space in a coinbase).
    pub signature: [u8; 64],
}

/// A transaction output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxOut {
    /// Amount in base units.
    pub value: u64,
    /// The x-only public key that may spend it.
    pub pubkey: [u8; 32],
}

/// A transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transaction {
    /// Transaction version.
    pub version: u32,
    /// Inputs.
    pub inputs: Vec<TxIn>,
    /// Outputs.
    pub outputs: Vec<TxOut>,
    /// Reserved; carried and hashed, not interpreted.
    pub lock_time: u32,
}

impl Transaction {
    /// Builds a coinbase for `height` paying `outputs`; `extra_nonce` fills the first bytes
    /// of its signature field.
    pub fn coinbase(height: u32, outputs: Vec<TxOut>, extra_nonce: u64) -> Self {
        let mut signature = [0u8; 64];
        signature[..8].copy_from_slice(&extra_nonce.to_le_bytes());
        Self {
            version: 1,
            inputs: vec![TxIn { prevout: OutPoint { txid: Txid::ZERO, vout: height }, signature }],
            outputs,
            lock_time: 0,
        }
    }

    /// True if this has the shape of a coinbase (one input spending the null outpoint).
    pub fn is_coinbase(&self) -> bool {
        self.inputs.len() == 1 && self.inputs[0].prevout.is_null()
    }

    /// The encoding without signatures: what the txid and the sighash commit to.
    pub fn encode_unsigned(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.inputs.len() as u32).to_le_bytes());
        for input in &self.inputs {
            out.extend_from_slice(&input.prevout.to_bytes());
        }
        encode_vec(&self.outputs, out);
        out.extend_from_slice(&self.lock_time.to_le_bytes());
    }

    /// The transaction id (signatures excluded).
    pub fn txid(&self) -> Txid {
        let mut buf = Vec::with_capacity(self.encoded_len());
        self.encode_unsigned(&mut buf);
        Txid(sha256d(&buf))
    }

    /// The hash of the whole transaction (signatures included): the Merkle leaf.
    pub fn wtxid(&self) -> Wtxid {
        Wtxid(sha256d(&super::encode::serialize(self)))
    }

    /// Sum of output values, `None` on overflow.
    pub fn total_out(&self) -> Option<u64> {
        self.outputs.iter().try_fold(0u64, |acc, o| acc.checked_add(o.value))
    }

    /// Encoded size in bytes.
    pub fn size(&self) -> usize {
        self.encoded_len()
    }
}

impl Encode for OutPoint {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
    fn encoded_len(&self) -> usize {
        36
    }
}

impl Decode for OutPoint {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self::from_bytes(&r.array()?))
    }
}

impl Encode for TxIn {
    fn encode(&self, out: &mut Vec<u8>) {
        self.prevout.encode(out);
        out.extend_from_slice(&self.signature);
    }
    fn encoded_len(&self) -> usize {
        TXIN_SIZE
    }
}

impl Decode for TxIn {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { prevout: OutPoint::decode(r)?, signature: r.array()? })
    }
}

impl Encode for TxOut {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.value.to_le_bytes());
        out.extend_from_slice(&self.pubkey);
    }
    fn encoded_len(&self) -> usize {
        TXOUT_SIZE
    }
}

impl Decode for TxOut {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { value: r.u64()?, pubkey: r.array()? })
    }
}

impl Encode for Transaction {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        encode_vec(&self.inputs, out);
        encode_vec(&self.outputs, out);
        out.extend_from_slice(&self.lock_time.to_le_bytes());
    }
    fn encoded_len(&self) -> usize {
        4 + vec_len(&self.inputs) + vec_len(&self.outputs) + 4
    }
}

impl Decode for Transaction {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            version: r.u32()?,
            inputs: decode_vec(r, TXIN_SIZE)?,
            outputs: decode_vec(r, TXOUT_SIZE)?,
            lock_time: r.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::encode::{deserialize, serialize};

    fn sample() -> Transaction {
        Transaction {
            version: 1,
            inputs: vec![TxIn {
                prevout: OutPoint { txid: Txid([7; 32]), vout: 3 },
                signature: [9; 64],
            }],
            outputs: vec![TxOut { value: 5 * COIN, pubkey: [2; 32] }],
            lock_time: 0,
        }
    }

    #[test]
    fn txid_ignores_signatures_but_wtxid_does_not() {
        let a = sample();
        let mut b = a.clone();
        b.inputs[0].signature = [1; 64];
        assert_eq!(a.txid(), b.txid());
        assert_ne!(a.wtxid(), b.wtxid());
    }

    #[test]
    fn encoding_round_trips_and_has_the_documented_size() {
        let tx = sample();
        let bytes = serialize(&tx);
        assert_eq!(bytes.len(), 4 + 4 + TXIN_SIZE + 4 + TXOUT_SIZE + 4);
        assert_eq!(deserialize::<Transaction>(&bytes).unwrap(), tx);
    }

    #[test]
    fn coinbase_txids_differ_by_height() {
        let out = vec![TxOut { value: 1, pubkey: [0; 32] }];
        let a = Transaction::coinbase(1, out.clone(), 0);
        let b = Transaction::coinbase(2, out, 0);
        assert!(a.is_coinbase());
        assert_ne!(a.txid(), b.txid());
    }
}
