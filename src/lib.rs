//! minichain: a peer-to-peer UTXO blockchain node.
//!
//! Modules in data-flow order:
//!
//! ```text
//!  primitives   plain data and the bytes that get hashed
//!  consensus    pure rule functions (header, tx, block, PoW, ASERT, Merkle, sighash)
//!  chain        the UTXO state machine: block index, fork choice, reorgs, orphans
//!    └ store    redb: one write transaction per state transition
//!  mempool      unconfirmed transactions by fee rate
//!  miner        block templates and the midstate nonce search
//! ```
//!
//! Everything here is synchronous and sans-IO apart from the embedded database: time is
//! passed in as an argument, so tests drive the core deterministically.

pub mod api;
pub mod bench_chain;
pub mod chain;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod core;
#[doc(hidden)]
pub mod fuzzing;
pub mod logging;
pub mod mempool;
pub mod miner;
pub mod net;
pub mod node;
pub mod primitives;
#[cfg(test)]
mod proptests;
pub mod protocol;
pub mod rpc;
pub mod storage;
pub mod store;
pub mod sync;
#[doc(hidden)]
pub mod testkit;
pub mod verify;
pub mod wallet;
