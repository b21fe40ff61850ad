//! Queries on `sessions`. Rows are keyed by the SHA-256 of the session id.

use diesel::prelude::*;

use super::models::{SessionRow, UserRow};
use super::schema::{sessions, users};
use super::{DbConnection, StorageError};
use crate::domain::{TokenDigest, UnixTime, User, UserId};

/// A live browser session and its user.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub user: User,
    pub auth_time: UnixTime,
    pub last_seen_at: UnixTime,
    pub expires_at: UnixTime,
}

pub fn insert(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    user_id: &UserId,
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<(), StorageError> {
    let row = SessionRow {
        id_hash: digest.as_str().to_owned(),
        user_id: user_id.as_str().to_owned(),
        auth_time: now,
        created_at: now,
        last_seen_at: now,
        expires_at,
    };
    diesel::insert_into(sessions::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// Keeps the user's `keep` newest sessions and ends the rest: signing in
/// over and over cannot grow the table without bound (the oldest browser is
/// signed out first).
pub fn keep_newest(
    conn: &mut DbConnection,
    user_id: &UserId,
    keep: i64,
) -> Result<usize, StorageError> {
    let kept: Vec<String> = sessions::table
        .filter(sessions::user_id.eq(user_id.as_str()))
        .order((sessions::created_at.desc(), sessions::id_hash.desc()))
        .limit(keep)
        .select(sessions::id_hash)
        .load(conn)?;
    Ok(diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id.as_str()))
            .filter(sessions::id_hash.ne_all(kept)),
    )
    .execute(conn)?)
}

/// The session if it exists, has not expired (absolute or idle) and its user
/// is not disabled.
pub fn find_active(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    now: UnixTime,
    idle_timeout_secs: i64,
) -> Result<Option<ActiveSession>, StorageError> {
    let found = sessions::table
        .inner_join(users::table)
        .filter(sessions::id_hash.eq(digest.as_str()))
        .filter(sessions::expires_at.gt(now))
        .filter(sessions::last_seen_at.gt(now - idle_timeout_secs))
        .filter(users::disabled.eq(false))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first::<(SessionRow, UserRow)>(conn)
        .optional()?;
    Ok(found.map(|(session, user)| ActiveSession {
        user: user.into_user(),
        auth_time: session.auth_time,
        last_seen_at: session.last_seen_at,
        expires_at: session.expires_at,
    }))
}

/// Records activity, which pushes the idle expiry back.
pub fn touch(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    now: UnixTime,
) -> Result<(), StorageError> {
    diesel::update(sessions::table.filter(sessions::id_hash.eq(digest.as_str())))
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut DbConnection, digest: &TokenDigest) -> Result<(), StorageError> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(digest.as_str()))).execute(conn)?;
    Ok(())
}

/// Deletes sessions past their absolute expiry or idle for longer than
/// `idle_timeout_secs`, at most `batch` at a time. Returns how many went.
pub fn delete_expired(
    conn: &mut DbConnection,
    now: UnixTime,
    idle_timeout_secs: i64,
    batch: i64,
) -> Result<usize, StorageError> {
    let expired = sessions::table
        .filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.le(now - idle_timeout_secs)),
        )
        .select(sessions::id_hash)
        .limit(batch);
    let ids: Vec<String> = expired.load(conn)?;
    Ok(diesel::delete(sessions::table.filter(sessions::id_hash.eq_any(ids))).execute(conn)?)
}
