//! The wallet: a key file, amounts, coin selection with change, and signing.

pub mod build;
pub mod keystore;
pub mod sign;

pub use build::{Spendable, build_payment, format_coins, parse_coins};
pub use keystore::{Wallet, WalletError};
pub use sign::{SignError, sign_transaction, signed_transaction};
