//! The UTXO state machine: block index, most-work fork choice, reorgs through undo data,
//! the orphan pool. It decides and describes each transition as a `storage::ChainWrite`;
//! whatever implements `storage::ChainStore` (redb's `db`) persists it.

pub mod error;
pub mod orphans;
pub mod state;
pub mod utxo;
pub mod verified;

pub use error::ChainError;
pub use state::{AcceptOutcome, BatchOutcome, BlockStatus, ChainState, TipUpdate};
pub use utxo::SigMode;

#[cfg(test)]
mod tests;
