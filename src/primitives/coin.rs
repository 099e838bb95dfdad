//! An unspent output as the UTXO set keeps it.

use super::encode::{Decode, DecodeError, Encode, Reader};
use super::tx::TxOut;

/// An unspent transaction output with the facts consensus needs about where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Coin {
    /// Amount and key.
    pub output: TxOut,
    /// Height of the block that created it.
    pub height: u32,
    /// Whether it was created by a coinbase (and so must mature).
    pub is_coinbase: bool,
}

impl Encode for Coin {
    fn encode(&self, out: &mut Vec<u8>) {
        self.output.encode(out);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.push(u8::from(self.is_coinbase));
    }
    fn encoded_len(&self) -> usize {
        45
    }
}

impl Decode for Coin {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let output = TxOut::decode(r)?;
        let height = r.u32()?;
        let is_coinbase = match r.array::<1>()?[0] {
            0 => false,
            1 => true,
            _ => return Err(DecodeError::Invalid("coinbase flag")),
        };
        Ok(Self { output, height, is_coinbase })
    }
}
