//! The wallet: a seed phrase sealed with a passphrase, hierarchical keys with receive and
//! change addresses, amounts, coin selection with change, and signing.

pub mod build;
pub mod hd;
pub mod keystore;
pub mod seal;
pub mod sign;

pub use build::{
    FeeChoice, FeeError, MAX_FEE, Payment, Spendable, build_paying, build_payment, check_fee,
    fee_for, format_coins, parse_coins,
};
pub use hd::KeyChain;
pub use keystore::{GAP_LIMIT, Signer, Wallet, WalletAddress, WalletError, scan};
pub use seal::KdfCost;
pub use sign::{SignError, sign_transaction, signed_transaction};
