//! Queries on `known_browsers`: browsers that signed in to an account
//! before, keyed by the SHA-256 of their cookie's token (LG-02).

use diesel::prelude::*;

use super::models::KnownBrowserRow;
use super::schema::known_browsers;
use super::{DbConnection, StorageError};
use crate::domain::{TokenDigest, UnixTime, UserId};

pub fn insert(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    user_id: &UserId,
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<(), StorageError> {
    let row = KnownBrowserRow {
        token_hash: digest.as_str().to_owned(),
        user_id: user_id.as_str().to_owned(),
        created_at: now,
        expires_at,
    };
    diesel::insert_into(known_browsers::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// Keeps the user's `keep` newest known browsers and deletes the rest: a
/// password holder cannot mint browsers without bound, each with counters
/// of its own.
pub fn keep_newest(
    conn: &mut DbConnection,
    user_id: &UserId,
    keep: i64,
) -> Result<usize, StorageError> {
    let kept: Vec<String> = known_browsers::table
        .filter(known_browsers::user_id.eq(user_id.as_str()))
        .order((
            known_browsers::created_at.desc(),
            known_browsers::token_hash.desc(),
        ))
        .limit(keep)
        .select(known_browsers::token_hash)
        .load(conn)?;
    Ok(diesel::delete(
        known_browsers::table
            .filter(known_browsers::user_id.eq(user_id.as_str()))
            .filter(known_browsers::token_hash.ne_all(kept)),
    )
    .execute(conn)?)
}

/// Forgets every known browser of the user (new password, disabled user).
pub fn delete_for_user(conn: &mut DbConnection, user_id: &UserId) -> Result<usize, StorageError> {
    Ok(
        diesel::delete(known_browsers::table.filter(known_browsers::user_id.eq(user_id.as_str())))
            .execute(conn)?,
    )
}

/// Whether `digest` names an unexpired known browser of `user_id`.
pub fn is_known_for(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    user_id: &UserId,
    now: UnixTime,
) -> Result<bool, StorageError> {
    let found = known_browsers::table
        .find(digest.as_str())
        .filter(known_browsers::user_id.eq(user_id.as_str()))
        .filter(known_browsers::expires_at.gt(now))
        .select(known_browsers::token_hash)
        .first::<String>(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Deletes rows expired at `now`, at most `batch` at a time.
pub fn delete_expired(
    conn: &mut DbConnection,
    now: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let hashes: Vec<String> = known_browsers::table
        .filter(known_browsers::expires_at.le(now))
        .select(known_browsers::token_hash)
        .limit(batch)
        .load(conn)?;
    Ok(
        diesel::delete(known_browsers::table.filter(known_browsers::token_hash.eq_any(hashes)))
            .execute(conn)?,
    )
}
