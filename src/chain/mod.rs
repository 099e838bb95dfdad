//! The UTXO state machine: block index, most-work fork choice, reorgs through undo data,
//! the orphan pool. It decides; `store` persists.

pub mod error;
pub mod index;
pub mod orphans;
pub mod state;
pub mod utxo;
pub mod verify;

pub use error::ChainError;
pub use index::IndexEntry;
pub use state::{AcceptOutcome, BlockStatus, ChainState, TipUpdate};
pub use utxo::{BlockUndo, SigMode, UtxoDiff, UtxoView};

#[cfg(test)]
mod tests;
