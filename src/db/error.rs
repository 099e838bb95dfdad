//! Storage errors.

use crate::consensus::Network;
use crate::primitives::encode::DecodeError;
use crate::storage::StorageError;

/// The store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, corruption, lock held by another process).
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    /// The database file could not be copied or restored around a repair.
    #[error("database file {}: {error}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// No database file where one was expected.
    #[error("no database at {}", .0.display())]
    NotFound(std::path::PathBuf),
    /// The database belongs to another network.
    #[error("database is for network '{found}', not '{expected}'")]
    WrongNetwork {
        /// Network recorded in the database.
        found: String,
        /// Network asked for.
        expected: Network,
    },
    /// The database was written by an incompatible version.
    #[error("database schema version {found}, this build reads version {expected}")]
    SchemaVersion {
        /// Version recorded.
        found: u32,
        /// Version this build writes.
        expected: u32,
    },
    /// A stored record does not decode.
    #[error("corrupt record in table {table}: {error}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What was wrong.
        error: DecodeError,
    },
    /// Stored records contradict each other.
    #[error("inconsistent database: {0}")]
    Inconsistent(&'static str),
    /// The metadata names a network this build does not know.
    #[error("inconsistent database: unknown network '{0}' in metadata")]
    UnknownNetwork(String),
}

impl From<StoreError> for StorageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { table, error } => StorageError::Corrupt { table, error },
            StoreError::Inconsistent(what) => StorageError::Inconsistent(what),
            other => StorageError::Backend(Box::new(other)),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
