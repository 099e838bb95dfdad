//! Plain data and the bytes that get hashed: no I/O, no policy.

pub mod address;
pub mod block;
pub mod coin;
pub mod encode;
pub mod hash;
pub mod header;
pub mod time;
pub mod tx;

/// Hash maps and sets for keys that are, or start with, hashes (outpoints, txids): a
/// process-seeded foldhash instead of SipHash, which took 1.5% of an initial sync's CPU
/// (the maps a block's connection builds). Seeded, so the bucket a key lands in cannot be
/// chosen by whoever ground the txid.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// See [`FastMap`].
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

pub use block::Block;
pub use coin::Coin;
pub use hash::{BlockHash, MerkleRoot, Txid, Wtxid};
pub use header::BlockHeader;
pub use time::{PeerKey, Time};
pub use tx::{COIN, OutPoint, Transaction, TxIn, TxOut};
