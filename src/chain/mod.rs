//! The UTXO state machine: block index, most-work fork choice, reorgs through undo data,
//! the orphan pool. It decides and describes each transition as a `storage::ChainWrite`;
//! whatever implements `storage::ChainStore` (redb's `db`) persists it.

mod accept;
mod assume;
mod connect;
pub mod error;
mod headers;
mod index;
pub mod orphans;
mod outcome;
mod snapshot;
pub mod state;
pub mod utxo;
pub mod verified;
pub mod write;

pub use error::ChainError;
pub use outcome::{AcceptOutcome, BatchOutcome, BlockStatus, TipUpdate, block_error};
pub use state::ChainState;
pub use utxo::SigMode;

#[cfg(test)]
mod tests;
