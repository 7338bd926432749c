//! The error type shared by every backend.

/// Why a storage operation failed.
///
/// `AlreadyExists` and `NotFound` are ordinary outcomes the caller is
/// expected to handle; the others describe the backend's condition.
/// Every error means the operation had **no effect** (a write that
/// returned `Err` was not committed).
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The thing being created is already there (e.g. the account).
    #[error("already exists")]
    AlreadyExists,
    /// The thing being changed or removed is not there.
    #[error("not found")]
    NotFound,
    /// The backend failed (I/O error, corrupt database, ...).
    #[error("storage backend: {0}")]
    Backend(String),
    /// The store was closed with [`crate::Store::close`].
    #[error("store closed")]
    Closed,
    /// The database stayed locked by another process (e.g. `natterd user
    /// add` running alongside the server) longer than the busy timeout.
    /// Retrying later may succeed.
    #[error("storage busy: {0}")]
    Busy(String),
    /// An argument cannot be stored (e.g. a number beyond `i64::MAX`).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The database was written by a newer natter (schema version higher
    /// than this build knows).
    #[error("database schema version {found} is newer than supported {supported}")]
    SchemaTooNew {
        /// The version found in the database.
        found: u32,
        /// The highest version this build can handle.
        supported: u32,
    },
}

impl StoreError {
    /// Whether the same operation may succeed if simply tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Busy(_))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Busy(e.to_string())
            }
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}
