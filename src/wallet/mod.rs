//! Keys and signing. The key file, coin selection and the HTTP client come with the CLI.

pub mod sign;

pub use sign::{SignError, sign_transaction};
