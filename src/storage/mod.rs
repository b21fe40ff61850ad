//! The only place diesel appears. One connection type over SQLite and
//! PostgreSQL, chosen by the URL scheme; a pool; embedded migrations; and one
//! module of query functions per table.

pub mod audit;
pub mod cache;
pub mod clients;
pub mod codes;
pub mod error;
pub mod grants;
pub mod keys;
pub mod known_browsers;
mod models;
pub mod pending;
pub mod refresh_tokens;
pub mod registration_tokens;
pub mod revoked_tokens;
pub mod schema;
pub mod seed;
pub mod sessions;
pub mod throttles;
pub mod users;
mod writer;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tracing::Instrument as _;

use crate::config::{DatabaseSettings, DatabaseUrl, SqliteSynchronous};
pub use error::StorageError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend. Queries written with diesel's DSL run on
/// both; code branches on the variant only where the SQL must differ.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs the same diesel expression against whichever backend `conn` holds,
/// for statements MultiConnection cannot express (upserts).
macro_rules! on_backend {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::storage::DbConnection::Postgres($inner) => $body,
            $crate::storage::DbConnection::Sqlite($inner) => $body,
        }
    };
}
pub(crate) use on_backend;

/// tessera's r2d2 manager. It opens the backend the URL names and reports
/// that backend's real error; diesel's derived `establish` would try each
/// backend in turn, hide the cause and could create a SQLite file named after
/// a PostgreSQL URL.
#[derive(Debug)]
struct ConnectionManager {
    url: DatabaseUrl,
    synchronous: SqliteSynchronous,
    busy_timeout_ms: u32,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgres)
                .map_err(diesel::r2d2::Error::ConnectionError),
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // Per connection: SQLite forgets these when it closes.
                let synchronous = match self.synchronous {
                    SqliteSynchronous::Full => "FULL",
                    SqliteSynchronous::Normal => "NORMAL",
                };
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; PRAGMA synchronous = {synchronous};",
                    self.busy_timeout_ms
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// The pool, and the one way to use it: `db.run(|conn| ...)` on the blocking
/// thread pool, inside the caller's tracing span.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<ConnectionManager>,
    backend: Backend,
    /// SQLite only: the group-commit writer (`storage::writer`).
    writer: Option<writer::Writer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Db {
    /// Builds the pool. The pool opens connections lazily, so this succeeds
    /// even when the database is down; `tessera serve` then reports not-ready
    /// until it comes back.
    pub fn connect(settings: &DatabaseSettings) -> Result<Self, StorageError> {
        let url = DatabaseUrl::parse(&settings.url)
            .map_err(|e| StorageError::Migration(e.to_string()))?;
        let backend = match url {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        if let Some(path) = url.sqlite_path() {
            prepare_sqlite_file(path)?;
        }
        let manager = ConnectionManager {
            url,
            synchronous: settings.sqlite_synchronous,
            busy_timeout_ms: settings.sqlite_busy_timeout_ms,
        };
        let pool = r2d2::Pool::builder()
            .max_size(settings.max_connections)
            .min_idle(Some(0))
            // A SQLite file does not drop connections; a PostgreSQL server
            // may, and a checked-out connection is then tested first.
            .test_on_check_out(backend == Backend::Postgres)
            .connection_timeout(Duration::from_secs(settings.connect_timeout_secs))
            .error_handler(Box::new(PoolErrorLogger))
            .build_unchecked(manager);
        let writer = match backend {
            Backend::Sqlite => Some(writer::Writer::start(pool.clone())?),
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            backend,
            writer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    /// Runs `work` with one pooled connection on the blocking pool. No
    /// connection is ever held across an `.await`.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = pool.get().map_err(StorageError::from)?;
            work(&mut conn)
        });
        task.in_current_span()
            .await
            .map_err(|e| E::from(StorageError::from(e)))?
    }

    /// Runs `work`, which writes durably, and answers once it is committed.
    /// On SQLite it joins the writer's next batch (group commit, see
    /// `storage::writer`); on PostgreSQL it is [`Db::run`].
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write(work).await,
            None => self.run(work).await,
        }
    }

    /// Applies every pending migration of the backend in use.
    pub async fn migrate(&self) -> Result<Vec<String>, StorageError> {
        self.run(run_migrations).await
    }

    /// Whether the database answers and has every migration applied: what
    /// `/health/ready` reports.
    pub async fn is_ready(&self) -> Result<bool, StorageError> {
        self.run(|conn| {
            let pending = on_backend!(conn, |c| {
                c.has_pending_migration(migrations_of(c))
                    .map_err(|e| StorageError::Migration(e.to_string()))?
            });
            Ok(!pending)
        })
        .await
    }
}

/// The migration set for a concrete connection type.
trait BackendMigrations {
    fn migrations() -> EmbeddedMigrations;
}
impl BackendMigrations for PgConnection {
    fn migrations() -> EmbeddedMigrations {
        POSTGRES_MIGRATIONS
    }
}
impl BackendMigrations for SqliteConnection {
    fn migrations() -> EmbeddedMigrations {
        SQLITE_MIGRATIONS
    }
}
fn migrations_of<C: BackendMigrations>(_conn: &C) -> EmbeddedMigrations {
    C::migrations()
}

fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, StorageError> {
    on_backend!(conn, |c| {
        let applied = c
            .run_pending_migrations(migrations_of(c))
            .map_err(|e| StorageError::Migration(e.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
}

/// Creates the SQLite file's directory and switches the file to WAL once,
/// before any pooled connection exists (journal_mode is persistent).
fn prepare_sqlite_file(path: &std::path::Path) -> Result<(), StorageError> {
    let io_error = |source| StorageError::SqliteFile {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(io_error)?;
    }
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
    conn.batch_execute("PRAGMA journal_mode = WAL;")?;
    Ok(())
}

/// Sends r2d2's connection errors to tracing once, at `warn`: the database
/// being away is degraded service, and each request reports its own 503.
#[derive(Debug)]
struct PoolErrorLogger;

impl r2d2::HandleError<diesel::r2d2::Error> for PoolErrorLogger {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(error = %error, "database connection failed");
    }
}
