//! Queries on `throttles`: failure counters shared by every instance.

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::models::ThrottleRow;
use super::schema::throttles;
use super::{DbConnection, StorageError, on_backend};
use crate::domain::UnixTime;

/// A counter as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRecord {
    pub failures: u32,
    pub window_started_at: UnixTime,
    pub last_failure_at: UnixTime,
}

impl From<ThrottleRow> for ThrottleRecord {
    fn from(row: ThrottleRow) -> Self {
        Self {
            failures: u32::try_from(row.failures).unwrap_or(0),
            window_started_at: row.window_started_at,
            last_failure_at: row.last_failure_at,
        }
    }
}

pub fn find(conn: &mut DbConnection, key: &str) -> Result<Option<ThrottleRecord>, StorageError> {
    Ok(throttles::table
        .find(key)
        .select(ThrottleRow::as_select())
        .first(conn)
        .optional()?
        .map(ThrottleRecord::from))
}

/// Adds one failure to `key` in a single atomic statement, so parallel
/// failures on any number of instances each count (LG-03). A counter whose
/// window started before `window_start_cutoff` starts again at 1.
pub fn record_failure(
    conn: &mut DbConnection,
    key: &str,
    now: UnixTime,
    window_start_cutoff: UnixTime,
) -> Result<ThrottleRecord, StorageError> {
    use diesel::dsl::case_when;
    let fresh = ThrottleRow {
        key: key.to_owned(),
        failures: 1,
        window_started_at: now,
        last_failure_at: now,
    };
    let window_over = throttles::window_started_at.lt(window_start_cutoff);
    // MultiConnection has no ON CONFLICT: the same statement per backend.
    let row: ThrottleRow = on_backend!(conn, |c| {
        diesel::insert_into(throttles::table)
            .values(&fresh)
            .on_conflict(throttles::key)
            .do_update()
            .set((
                throttles::failures.eq(case_when::<_, _, diesel::sql_types::Integer>(
                    window_over,
                    1,
                )
                .otherwise(throttles::failures + 1)),
                throttles::window_started_at.eq(case_when(
                    window_over,
                    excluded(throttles::window_started_at),
                )
                .otherwise(throttles::window_started_at)),
                throttles::last_failure_at.eq(excluded(throttles::last_failure_at)),
            ))
            .returning(ThrottleRow::as_returning())
            .get_result(c)?
    });
    Ok(row.into())
}

pub fn clear(conn: &mut DbConnection, key: &str) -> Result<(), StorageError> {
    diesel::delete(throttles::table.find(key)).execute(conn)?;
    Ok(())
}

/// Deletes counters whose last failure is older than `cutoff`, at most
/// `batch` at a time.
pub fn delete_stale(
    conn: &mut DbConnection,
    cutoff: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let keys: Vec<String> = throttles::table
        .filter(throttles::last_failure_at.lt(cutoff))
        .select(throttles::key)
        .limit(batch)
        .load(conn)?;
    Ok(diesel::delete(throttles::table.filter(throttles::key.eq_any(keys))).execute(conn)?)
}

/// One attempt counted before it is made (LG-03): the counter as it was
/// just before, and as it is now with the attempt in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub before: ThrottleRecord,
    pub after: ThrottleRecord,
}

/// Counts one attempt against `key` and returns the counter before and
/// after it, serialised against every other reservation of the key: the
/// row is created if missing and locked (`FOR UPDATE` on PostgreSQL; on
/// SQLite every write already runs one at a time), so of a parallel burst
/// each request sees the one before it. A fresh row reads as 0 failures.
/// Run through `Db::write`.
pub fn reserve(
    conn: &mut DbConnection,
    key: &str,
    now: UnixTime,
    window_start_cutoff: UnixTime,
) -> Result<Reservation, StorageError> {
    conn.transaction(|conn| {
        let placeholder = ThrottleRow {
            key: key.to_owned(),
            failures: 0,
            window_started_at: now,
            last_failure_at: 0,
        };
        on_backend!(conn, |c| {
            diesel::insert_into(throttles::table)
                .values(&placeholder)
                .on_conflict_do_nothing()
                .execute(c)?
        });
        let row = throttles::table.find(key).select(ThrottleRow::as_select());
        let before: ThrottleRow = match conn {
            DbConnection::Postgres(c) => row.for_update().first(c)?,
            DbConnection::Sqlite(c) => throttles::table
                .find(key)
                .select(ThrottleRow::as_select())
                .first(c)?,
        };
        let mut before = ThrottleRecord::from(before);
        if before.window_started_at < window_start_cutoff {
            // The window is over: the attempt starts a fresh one.
            before = ThrottleRecord {
                failures: 0,
                window_started_at: now,
                last_failure_at: 0,
            };
        }
        let after = record_failure(conn, key, now, window_start_cutoff)?;
        Ok(Reservation { before, after })
    })
}

/// Gives one reserved attempt back (a sign-in that succeeded), never going
/// below zero.
pub fn release(conn: &mut DbConnection, key: &str) -> Result<(), StorageError> {
    use diesel::dsl::case_when;
    diesel::update(throttles::table.find(key))
        .set(
            throttles::failures.eq(case_when::<_, _, diesel::sql_types::Integer>(
                throttles::failures.gt(0),
                throttles::failures - 1,
            )
            .otherwise(0)),
        )
        .execute(conn)?;
    Ok(())
}
