//! Consensus: pure rule functions of (data, params, context). No state, no I/O.
//!
//! In isolation (`check_header`, `check_transaction`, `check_block`) a rule looks only at
//! the data; in context (`check_header_in_context`, `check_tx_inputs`) it is also given
//! what the chain knows: expected bits, median time past, the coins spent.

pub mod asert;
pub mod block;
pub mod error;
pub mod genesis;
pub mod header;
pub mod merkle;
pub mod params;
pub mod pow;
pub mod sighash;
pub mod tx;

pub use error::{BlockError, HeaderError, TxError};
pub use params::{MAX_MONEY, Network, Params};

/// Tags of the tagged hashes minichain uses (BIP340 style).
pub mod tagged {
    /// The message each transaction input signs.
    pub const SIGHASH: &str = "minichain/sighash";
}
