//! redb's errors as [`StorageError::Backend`], redb's own error (and the I/O error in it)
//! kept whole as the source so that its message reaches the operator.

use crate::storage::StorageError;

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                StorageError::Backend(Box::new(redb::Error::from(e)))
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
        assert!(matches!(e, StorageError::Backend(_)));
    }
}
