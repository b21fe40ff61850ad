//! StorageError: what went wrong talking to the database.

/// A failure in the storage layer. `is_unavailable` tells callers whether
/// the database could not be reached at all (answer 503 and retry) as
/// opposed to a query that failed.
#[derive(thiserror::Error)]
pub enum StorageError {
    #[error("no database connection could be obtained")]
    Pool(#[from] r2d2::Error),
    #[error("could not connect to the database")]
    Connect(#[from] diesel::ConnectionError),
    #[error("a database query failed")]
    Query(#[from] diesel::result::Error),
    #[error("applying database migrations failed: {0}")]
    Migration(String),
    #[error("a row with this {0} already exists")]
    Duplicate(&'static str),
    #[error("could not prepare the SQLite database file at {path}")]
    SqliteFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a storage operation failed: {0}")]
    Failed(String),
    /// Answering from memory only (`cache::Access::memory`), and the answer
    /// needs the database: the caller runs the request again with a
    /// connection. Never reaches a client.
    #[error("this request needs the database")]
    NeedsDatabase,
    /// The database did not answer within `database.query_timeout_ms`.
    #[error("the database did not answer in time")]
    TimedOut,
    /// The database failed repeatedly; requests are refused at once for a
    /// moment (`storage::guard`).
    #[error("the database is failing; not trying for a moment")]
    CircuitOpen,
    #[error("the database task was cancelled or panicked")]
    Task(#[from] tokio::task::JoinError),
}

impl StorageError {
    /// Whether the failure means "the database is not there right now", so
    /// the caller should answer 503 with `Retry-After` rather than 500.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            Self::Pool(_)
            | Self::Connect(_)
            | Self::Failed(_)
            | Self::NeedsDatabase
            | Self::TimedOut
            | Self::CircuitOpen => true,
            Self::Query(Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _)) => true,
            Self::Query(Error::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
                let message = info.message();
                // SQLite: locked or read-only file; PostgreSQL: lost connection.
                message.contains("database is locked")
                    || message.contains("readonly database")
                    || message.contains("disk I/O error")
                    || message.contains("server closed the connection")
                    || message.contains("connection")
                    // PostgreSQL's own bound (`statement_timeout`, the same
                    // as `database.query_timeout_ms`) fired before ours:
                    // "canceling statement due to statement timeout".
                    || message.contains("canceling statement")
            }
            _ => false,
        }
    }
}

/// Prints the message and each `Caused by:` so one log line tells the whole
/// story.
impl std::fmt::Debug for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::telemetry::write_error_chain(f, self)
    }
}
