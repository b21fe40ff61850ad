//! Group commit for SQLite: one writer thread runs the durable writes of
//! many requests in one transaction and commits them with one fsync.
//!
//! Why: SQLite has one writer at a time. Requests that each commit on their
//! own wait for each other in SQLite's busy handler, which sleeps in steps
//! of up to 100 ms, and every commit pays a full fsync. Here writes queue in
//! memory instead; the writer takes everything queued (up to
//! [`MAX_BATCH`]), runs each request's work in turn on one connection inside
//! one transaction, commits, and only then answers them. Nobody is answered
//! before the commit that holds their write is on disk (with
//! `sqlite_synchronous = "full"`), and if that commit fails every request in
//! the batch gets the error (503), never a success.
//!
//! A request's own multi-statement writes still use `conn.transaction`,
//! which inside the batch becomes a savepoint: its failure undoes its own
//! statements and nobody else's. PostgreSQL does not use this: its
//! connections commit in parallel and it groups WAL flushes itself.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use diesel::connection::{AnsiTransactionManager, TransactionManager as _};

use super::{ConnectionManager, DbConnection, StorageError};

/// Most requests committed together.
const MAX_BATCH: usize = 256;

/// What the writer calls once the batch's commit has finished: `None` when
/// it committed, the failure otherwise.
type Finish = Box<dyn FnOnce(Option<&StorageError>) + Send>;

/// One request's work, run on the writer's connection.
pub(super) type Job = Box<dyn FnOnce(&mut DbConnection) -> Finish + Send>;

/// The queue into the writer thread.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread; it stops when the last `Writer` is dropped.
    pub(super) fn start(pool: r2d2::Pool<ConnectionManager>) -> Result<Self, StorageError> {
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tessera-sqlite-writer".to_owned())
            .spawn(move || write_loop(&pool, &jobs))
            .map_err(|e| StorageError::Failed(format!("could not start the writer: {e}")))?;
        Ok(Self { queue })
    }

    /// Queues `work`; the answer comes once its batch has committed.
    pub(super) async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |conn| {
            let outcome = {
                let _entered = span.enter();
                work(conn)
            };
            Box::new(move |failure: Option<&StorageError>| {
                let result = match failure {
                    None => outcome,
                    Some(error) => Err(E::from(StorageError::Failed(format!(
                        "the commit holding this write failed: {error}"
                    )))),
                };
                // The request may have gone away (client disconnected).
                let _ = answer.send(result);
            })
        });
        self.queue
            .send(job)
            .map_err(|_| E::from(StorageError::Failed("the writer has stopped".to_owned())))?;
        answered.await.unwrap_or_else(|_| {
            Err(E::from(StorageError::Failed(
                "the writer dropped the request".to_owned(),
            )))
        })
    }
}

fn write_loop(pool: &r2d2::Pool<ConnectionManager>, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut conn = match pool.get() {
            Ok(conn) => conn,
            Err(error) => {
                let error = StorageError::from(error);
                tracing::warn!(error = ?error, "the writer has no connection");
                // Dropping the jobs unrun drops their answer channels: each
                // request reports the failure (503).
                drop(batch);
                continue;
            }
        };
        commit_batch(&mut conn, batch);
    }
}

fn commit_batch(conn: &mut DbConnection, batch: Vec<Job>) {
    let mut finishers: Vec<Finish> = Vec::with_capacity(batch.len());
    let committed = in_immediate_transaction(conn, |conn| {
        for job in batch {
            match std::panic::catch_unwind(AssertUnwindSafe(|| job(conn))) {
                Ok(finish) => finishers.push(finish),
                // Whatever the panicking request half-wrote goes with the
                // whole batch; the others are told it failed.
                Err(_) => {
                    return Err(StorageError::Failed(
                        "a request panicked while writing".to_owned(),
                    ));
                }
            }
        }
        Ok(())
    });
    match committed {
        Ok(()) => {
            for finish in finishers {
                finish(None);
            }
        }
        Err(error) => {
            tracing::error!(error = ?error, count = finishers.len(), "a batch of writes failed to commit");
            for finish in finishers {
                finish(Some(&error));
            }
        }
    }
}

/// `BEGIN IMMEDIATE` ... `COMMIT` around `work`, on the `DbConnection` (so
/// the requests' own `conn.transaction` calls nest as savepoints). The write
/// lock is taken first: a deferred transaction that read before writing
/// would fail (SQLITE_BUSY_SNAPSHOT) whenever another connection committed
/// in between.
fn in_immediate_transaction(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let DbConnection::Sqlite(sqlite) = conn else {
        return work(conn);
    };
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    let outcome = work(conn);
    let DbConnection::Sqlite(sqlite) = conn else {
        return outcome;
    };
    match outcome {
        Ok(()) => match AnsiTransactionManager::commit_transaction(sqlite) {
            Ok(()) => Ok(()),
            Err(error) => {
                let _ = AnsiTransactionManager::rollback_transaction(sqlite);
                Err(error.into())
            }
        },
        Err(error) => {
            let _ = AnsiTransactionManager::rollback_transaction(sqlite);
            Err(error)
        }
    }
}
