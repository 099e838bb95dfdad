//! minichain: a peer-to-peer UTXO blockchain node.
//!
//! Modules in data-flow order: bytes come in, are judged, change the chain, are stored,
//! and flow back out. Each module imports only modules above it.
//!
//! ```text
//!  primitives   plain data and the bytes that get hashed; Time and PeerKey
//!  consensus    pure rule functions (header, tx, block, PoW, ASERT, Merkle, sighash)
//!  protocol     wire vocabulary: sync messages, topics, caps, frame errors
//!  compact      compact blocks: short ids, the rebuild from a mempool
//!  human        rates, sizes and durations as logs and the CLI print them
//!  storage      the storage boundary: ChainStore, ChainWrite, UTXO types, StorageError
//!  chain        the UTXO state machine: block index, fork choice, reorgs, orphans
//!  db           redb behind storage::ChainStore: one write transaction per ChainWrite
//!  mempool      unconfirmed transactions by fee rate
//!  miner        block templates and the SIMD nonce search
//!  sync         which peer to ask for what
//!  core         Core::handle(input, now) -> outputs: the node's decisions, sans-IO
//!  ── edges: the clock, sockets, threads, files ──────────────────────────────────
//!  clock        the system clock, read only at the edges
//!  config       the node's config file
//!  net          the libp2p edge: carries events in and actions out
//!  api          the JSON shapes of the HTTP API
//!  node         the driver thread, miner threads and the typed NodeHandle
//!  rpc          the HTTP API and block explorer on a NodeHandle
//!  verify       the operator's consistency check of a database
//!  wallet       key file, coin selection, signing
//!  bench_chain  the synthetic chain `minichain bench-chain` writes for benchmarks
//!  logging      tracing set-up: text or JSON, stderr and a reopenable log file
//!  cli          the minichain binary's subcommands
//!  ── test code only (cfg-gated; never in the node binary) ───────────────────────
//!  testkit      chains, keys and blocks for tests and benches (feature `testkit`)
//!  fuzzing      the fuzz targets' checks (cfg `fuzzing`)
//!  sim          the deterministic many-node simulator (unit tests)
//!  proptests    property tests (unit tests)
//! ```
//!
//! Everything from `primitives` to `core` except `db` is synchronous and free of I/O:
//! time is passed in as an argument, so tests drive the core deterministically.

/// This build: the crate's version and the commit it was built from (`--version`,
/// `/status`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("MINICHAIN_COMMIT"), ")");

pub mod primitives;
pub mod consensus;
pub mod protocol;
pub mod compact;
pub mod human;
pub mod storage;
pub mod snapshot;
pub mod chain;
pub mod db;
pub mod mempool;
pub mod miner;
pub mod sync;
pub mod core;

pub mod clock;
pub mod config;
pub mod net;
pub mod api;
pub mod node;
pub mod rpc;
pub mod verify;
pub mod wallet;
pub mod bench_chain;
pub mod logging;
pub mod cli;

#[cfg(any(test, fuzzing, feature = "testkit"))]
#[doc(hidden)]
pub mod testkit;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
// The simulator drives its own scenarios (src/sim/tests.rs) and nothing else: compiled
// for unit tests only, never into the node. `pub` keeps its whole toolbox (helpers no
// scenario calls yet) free of dead-code warnings.
#[cfg(test)]
pub mod sim;
#[cfg(test)]
mod proptests;
