//! redb's errors as [`StorageError::Backend`], redb's own error (and the I/O error in it)
//! kept whole as the source so that its message reaches the operator, with the kind of
//! failure it is.

use crate::storage::{Failure, StorageError};

/// What kind of failure a redb error is.
fn failure(e: &redb::Error) -> Failure {
    match e {
        redb::Error::Io(io) => Failure::of_io(io),
        // An earlier I/O error closed the database for writes until it is opened again.
        redb::Error::PreviousIo | redb::Error::DatabaseClosed | redb::Error::Unsupported => {
            Failure::Io
        }
        redb::Error::Corrupted(_)
        | redb::Error::UpgradeRequired(_)
        | redb::Error::TableTypeMismatch { .. }
        | redb::Error::TypeDefinitionChanged { .. } => Failure::Damaged,
        redb::Error::DatabaseAlreadyOpen
        | redb::Error::TransactionInProgress
        | redb::Error::ReadTransactionStillInUse(_) => Failure::Transient,
        // The rest are misuses of the API by this program: stop writing rather than guess.
        _ => Failure::Io,
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                let e = redb::Error::from(e);
                StorageError::Backend { failure: failure(&e), source: Box::new(e) }
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_keeps_the_system_s_reason_in_the_message() {
        let io = std::io::Error::other("No space left on device");
        let e = StorageError::from(redb::CommitError::Storage(redb::StorageError::Io(io)));
        assert!(e.to_string().contains("No space left on device"), "{e}");
        assert_eq!(e.failure(), Failure::Io, "a message alone does not make a full disk");
        let full = std::io::Error::from_raw_os_error(28);
        let e = StorageError::from(redb::CommitError::Storage(redb::StorageError::Io(full)));
        assert_eq!(e.failure(), Failure::DiskFull);
        assert!(e.failure().is_fatal());
        let previous = StorageError::from(redb::StorageError::PreviousIo);
        assert_eq!(previous.failure(), Failure::Io, "redb stays closed after an I/O error");
        assert!(previous.to_string().contains("Previous I/O error"), "{previous}");
    }
}
