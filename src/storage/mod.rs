//! The only place diesel appears. One connection type over SQLite and
//! PostgreSQL, chosen by the URL scheme; a pool; embedded migrations; and one
//! module of query functions per table.

pub mod audit;
pub mod cache;
pub mod clients;
pub mod codes;
pub mod error;
pub mod grants;
pub mod guard;
pub mod keys;
pub mod known_browsers;
mod libpq;
mod models;
pub mod pending;
pub mod refresh_tokens;
pub mod registration_tokens;
pub mod resumes;
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
#[derive(Debug, Clone)]
struct ConnectionManager {
    url: DatabaseUrl,
    synchronous: SqliteSynchronous,
    busy_timeout_ms: u32,
    /// PostgreSQL only: libpq parameters that bound connecting and every
    /// statement, and notice a dead peer (see [`postgres_parameters`]).
    postgres_parameters: String,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                PgConnection::establish(&libpq::with_parameters(url, &self.postgres_parameters))
                    .map(DbConnection::Postgres)
                    .map_err(diesel::r2d2::Error::ConnectionError)
            }
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
    pools: std::sync::Arc<Pools>,
    backend: Backend,
    /// SQLite only: the group-commit writer (`storage::writer`).
    writer: Option<writer::Writer>,
}

/// The pool in use, how to build another, and the circuit in front of it.
struct Pools {
    current: std::sync::RwLock<std::sync::Arc<PoolGeneration>>,
    manager: ConnectionManager,
    max_size: u32,
    connect_timeout: Duration,
    /// `None`: wait as long as the work takes.
    query_timeout: Option<Duration>,
    circuit: guard::Circuit,
    /// When the pool was last replaced (`Circuit::uptime_ms`); 0: never.
    replaced_at_ms: std::sync::atomic::AtomicU64,
}

/// Shortest time between two pool replacements.
const REPLACE_INTERVAL_MS: u64 = 10_000;

/// One pool and the work of it that outlived its timeout.
struct PoolGeneration {
    pool: r2d2::Pool<ConnectionManager>,
    stuck: std::sync::Arc<guard::Stuck>,
}

impl Pools {
    fn build(&self) -> PoolGeneration {
        let postgres = matches!(self.manager.url, DatabaseUrl::Postgres(_));
        let pool = r2d2::Pool::builder()
            .max_size(self.max_size)
            .min_idle(Some(0))
            // A SQLite file does not drop connections; a PostgreSQL server
            // may, and a checked-out connection is then tested first.
            .test_on_check_out(postgres)
            .connection_timeout(self.connect_timeout)
            .error_handler(Box::new(PoolErrorLogger))
            .build_unchecked(self.manager.clone());
        PoolGeneration {
            pool,
            stuck: std::sync::Arc::new(guard::Stuck::default()),
        }
    }

    fn current(&self) -> std::sync::Arc<PoolGeneration> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// When half the pool (at least one connection) is held by work nobody
    /// waits for any more, those connections are taken as lost: a fresh
    /// pool opens new ones, and the stuck ones go with their threads if they
    /// ever come back. PostgreSQL only; SQLite work cannot hang on a network.
    fn replace_if_stuck(&self, generation: &std::sync::Arc<PoolGeneration>) {
        if !matches!(self.manager.url, DatabaseUrl::Postgres(_)) {
            return;
        }
        let stuck = generation.stuck.count();
        if stuck < (self.max_size / 2).max(1) {
            return;
        }
        // At most one fresh pool per interval: a burst of slow work cannot
        // multiply the connections opened to a server that is only busy.
        let now = self.circuit.uptime_ms();
        let last = self
            .replaced_at_ms
            .load(std::sync::atomic::Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < REPLACE_INTERVAL_MS {
            return;
        }
        let Ok(mut current) = self.current.write() else {
            return;
        };
        if std::sync::Arc::ptr_eq(&current, generation) {
            self.replaced_at_ms
                .store(now.max(1), std::sync::atomic::Ordering::Release);
            tracing::warn!(
                stuck_connections = stuck,
                "database connections stopped answering: starting a fresh connection pool"
            );
            *current = std::sync::Arc::new(self.build());
        }
    }
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
            postgres_parameters: libpq::parameters(settings),
        };
        let partial = Pools {
            current: std::sync::RwLock::new(std::sync::Arc::new(PoolGeneration {
                pool: r2d2::Pool::builder()
                    .max_size(1)
                    .build_unchecked(manager.clone()),
                stuck: std::sync::Arc::default(),
            })),
            manager,
            max_size: settings.max_connections,
            connect_timeout: Duration::from_secs(settings.connect_timeout_secs),
            query_timeout: (settings.query_timeout_ms > 0)
                .then(|| Duration::from_millis(settings.query_timeout_ms)),
            circuit: guard::Circuit::default(),
            replaced_at_ms: std::sync::atomic::AtomicU64::new(0),
        };
        let first = std::sync::Arc::new(partial.build());
        let writer = match backend {
            Backend::Sqlite => Some(writer::Writer::start(first.pool.clone())?),
            Backend::Postgres => None,
        };
        let pools = Pools {
            current: std::sync::RwLock::new(first),
            ..partial
        };
        Ok(Self {
            pools: std::sync::Arc::new(pools),
            backend,
            writer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pools.current().pool.state();
        (state.connections, state.idle_connections)
    }

    /// Runs `work` with one pooled connection on the blocking pool. No
    /// connection is ever held across an `.await`. Waits at most
    /// `database.query_timeout_ms` (checkout included), then answers
    /// [`StorageError::TimedOut`]; after repeated failures the circuit opens
    /// and requests are refused at once ([`StorageError::CircuitOpen`])
    /// until a probe gets through (see `storage::guard`).
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        self.run_within(self.pools.query_timeout, work).await
    }

    /// [`Db::run`] without the time bound: migrations and bulk seeding,
    /// which may rightly take long.
    pub async fn run_unbounded<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        self.run_within(None, work).await
    }

    async fn run_within<T, E, F>(&self, timeout: Option<Duration>, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let pools = self.pools.clone();
        if !pools.circuit.admit() {
            return Err(E::from(StorageError::CircuitOpen));
        }
        let generation = pools.current();
        let ticket = generation.stuck.ticket();
        // If this future is dropped (the client hung up, an outer timeout)
        // the work is given up exactly as on our own timeout.
        let mut waiting = Waiting {
            ticket: ticket.clone(),
            pools: pools.clone(),
            generation: generation.clone(),
            answered: false,
        };
        let pool = generation.pool.clone();
        let span = tracing::Span::current();
        let unbounded = timeout.is_none();
        let task = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let outcome = match pool.get() {
                Ok(mut conn) if ticket.start() => {
                    pools.circuit.succeeded();
                    if unbounded {
                        run_unbounded_on(&mut conn, work)
                    } else {
                        work(&mut conn)
                    }
                }
                // Given up while this thread waited: the caller has answered
                // 503 already, so the work must not happen behind its back.
                Ok(_) => Err(E::from(StorageError::TimedOut)),
                Err(error) => {
                    if !ticket.is_abandoned() {
                        pools.circuit.failed();
                    }
                    Err(E::from(StorageError::from(error)))
                }
            };
            ticket.finish();
            outcome
        });
        let joined = match timeout {
            None => task.in_current_span().await,
            Some(limit) => match tokio::time::timeout(limit, task.in_current_span()).await {
                Ok(joined) => joined,
                Err(_) => {
                    waiting.give_up();
                    return Err(E::from(StorageError::TimedOut));
                }
            },
        };
        waiting.answered = true;
        joined.map_err(|e| E::from(StorageError::from(e)))?
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
        self.run_unbounded(run_migrations).await
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

/// A request waiting for its database work. Giving up on a timeout marks
/// the work abandoned, counts a failure for the circuit and may replace a
/// pool whose connections are stuck. A request dropped before its answer
/// (its client hung up, a shorter outer timeout) only marks the work
/// abandoned: a client hanging up says nothing about the database, and a
/// probe lost that way is replaced after `guard::PROBE_DEADLINE`.
struct Waiting {
    ticket: guard::Ticket,
    pools: std::sync::Arc<Pools>,
    generation: std::sync::Arc<PoolGeneration>,
    answered: bool,
}

impl Waiting {
    fn give_up(&mut self) {
        if self.answered {
            return;
        }
        self.answered = true;
        self.ticket.abandon();
        if self.pools.circuit.failed() {
            tracing::warn!("the database keeps failing: refusing requests at once for a while");
        }
        self.pools.replace_if_stuck(&self.generation);
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if !self.answered {
            self.answered = true;
            self.ticket.abandon();
        }
    }
}

/// Runs `work` with PostgreSQL's per-statement bounds lifted (migrations,
/// bulk seeding) and put back afterwards. SQLite has no such bounds.
fn run_unbounded_on<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<StorageError>,
{
    let postgres = matches!(conn, DbConnection::Postgres(_));
    if postgres {
        conn.batch_execute(
            "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0",
        )
        .map_err(|e| E::from(StorageError::from(e)))?;
    }
    let outcome = work(conn);
    if postgres {
        // RESET returns to the connection's own default (its libpq options).
        conn.batch_execute("RESET statement_timeout; RESET idle_in_transaction_session_timeout")
            .map_err(|e| E::from(StorageError::from(e)))?;
    }
    outcome
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
