//! Plain data and the bytes that get hashed: no I/O, no policy.

pub mod address;
pub mod block;
pub mod coin;
pub mod encode;
pub mod hash;
pub mod header;
pub mod time;
pub mod tx;

pub use block::Block;
pub use coin::Coin;
pub use hash::{BlockHash, MerkleRoot, Txid, Wtxid};
pub use header::BlockHeader;
pub use time::{PeerKey, Time};
pub use tx::{COIN, OutPoint, Transaction, TxIn, TxOut};
