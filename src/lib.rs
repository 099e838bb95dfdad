//! minichain: a peer-to-peer UTXO blockchain node.
//!
//! Modules in data-flow order (each imports only modules above it):
//!
//! ```text
//!  primitives   plain data and the bytes that get hashed; Time and PeerKey
//!  consensus    pure rule functions (header, tx, block, PoW, ASERT, Merkle, sighash)
//!  protocol     wire vocabulary: sync messages, topics, caps, frame errors
//!  storage      the storage boundary: ChainStore, ChainWrite, UTXO types
//!  chain        the UTXO state machine: block index, fork choice, reorgs, orphans
//!  store        redb, implementing ChainStore: one write transaction per ChainWrite
//!  mempool      unconfirmed transactions by fee rate
//!  miner        block templates and the midstate nonce search
//!  sync         which peer to ask for what
//!  core         Core::handle(input, now) -> outputs: the node's decisions, sans-IO
//!  net          the libp2p edge: carries events in and actions out
//!  node         the driver thread, miner threads and the typed NodeHandle
//!  api · rpc    JSON types; the HTTP API on a NodeHandle
//!  wallet · cli the wallet and the minichain binary's subcommands
//! ```
//!
//! Everything from `primitives` to `core` except `store` is synchronous and free of I/O:
//! time is passed in as an argument, so tests drive the core deterministically.

pub mod api;
pub mod bench_chain;
pub mod chain;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod core;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
pub mod human;
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
// The simulator drives its own scenarios (src/sim/tests.rs) and nothing else: compiled
// for unit tests only, never into the node. `pub` keeps its whole toolbox (helpers no
// scenario calls yet) free of dead-code warnings.
#[cfg(test)]
pub mod sim;
pub mod storage;
pub mod store;
pub mod sync;
#[cfg(any(test, fuzzing, feature = "testkit"))]
#[doc(hidden)]
pub mod testkit;
pub mod verify;
pub mod wallet;
