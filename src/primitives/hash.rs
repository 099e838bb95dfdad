//! 32-byte hashes: double SHA-256, tagged hashes, and the `BlockHash` / `Txid` newtypes.
//!
//! Hashes are kept in the byte order SHA-256 produces ("internal order") and, as in
//! Bitcoin, shown byte-reversed in hex so that proof-of-work leading zeros come first.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Double SHA-256 of `data`, in internal byte order.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

/// BIP340-style tagged hash: `SHA256(SHA256(tag) || SHA256(tag) || data...)`.
pub fn tagged_hash(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
    let tag_hash = Sha256::digest(tag.as_bytes());
    let mut engine = Sha256::new();
    engine.update(tag_hash);
    engine.update(tag_hash);
    for part in parts {
        engine.update(part);
    }
    engine.finalize().into()
}

/// A hex string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hash: expected 64 hex digits")]
pub struct ParseHashError;

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The all-zero hash.
            pub const ZERO: Self = Self([0; 32]);

            /// Wraps bytes given in internal order.
            pub const fn from_byte_array(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The bytes in internal order.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Byte-reversed hex, as shown to users.
            pub fn to_hex(&self) -> String {
                let mut rev = self.0;
                rev.reverse();
                hex::encode(rev)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = ParseHashError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(s, &mut bytes).map_err(|_| ParseHashError)?;
                bytes.reverse();
                Ok(Self(bytes))
            }
        }
    };
}

hash_newtype!(
    /// Double SHA-256 of a block's 80-byte header.
    BlockHash
);
hash_newtype!(
    /// Double SHA-256 of a transaction without its signatures.
    Txid
);
hash_newtype!(
    /// Double SHA-256 of a whole transaction, signatures included: the Merkle leaf.
    Wtxid
);
hash_newtype!(
    /// A Merkle tree node or root.
    MerkleRoot
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_byte_reversed_and_round_trips() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        bytes[31] = 0x01;
        let h = BlockHash(bytes);
        let s = h.to_string();
        assert!(s.starts_with("01"));
        assert!(s.ends_with("ab"));
        assert_eq!(s.parse::<BlockHash>().unwrap(), h);
    }

    #[test]
    fn bad_hex_is_rejected() {
        assert_eq!("zz".parse::<Txid>(), Err(ParseHashError));
        assert_eq!("00".repeat(31).parse::<Txid>(), Err(ParseHashError));
    }

    #[test]
    fn sha256d_of_empty_matches_known_vector() {
        assert_eq!(
            hex::encode(sha256d(b"")),
            "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
        );
    }
}
