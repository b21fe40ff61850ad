//! Queries on `registration_tokens`: initial access tokens for Dynamic
//! Client Registration, stored as SHA-256, each with a number of uses.

use diesel::prelude::*;

use super::schema::registration_tokens as tokens;
use super::{DbConnection, StorageError};
use crate::domain::{TokenDigest, UnixTime};

pub fn insert(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    uses: i32,
    expires_at: UnixTime,
    now: UnixTime,
) -> Result<(), StorageError> {
    diesel::insert_into(tokens::table)
        .values((
            tokens::token_hash.eq(digest.as_str()),
            tokens::uses_left.eq(uses),
            tokens::expires_at.eq(expires_at),
            tokens::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether the token exists, has a use left and has not expired. Spending
/// is [`spend`], in the transaction that stores what the token paid for.
pub fn is_usable(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    now: UnixTime,
) -> Result<bool, StorageError> {
    let found: Option<String> = tokens::table
        .find(digest.as_str())
        .filter(tokens::uses_left.gt(0))
        .filter(tokens::expires_at.gt(now))
        .select(tokens::token_hash)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Spends one use of the token in one statement; false when it is unknown,
/// expired or used up.
pub fn spend(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    now: UnixTime,
) -> Result<bool, StorageError> {
    let spent = diesel::update(
        tokens::table
            .find(digest.as_str())
            .filter(tokens::uses_left.gt(0))
            .filter(tokens::expires_at.gt(now)),
    )
    .set(tokens::uses_left.eq(tokens::uses_left - 1))
    .execute(conn)?;
    Ok(spent == 1)
}

pub fn delete_expired(
    conn: &mut DbConnection,
    now: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let hashes: Vec<String> = tokens::table
        .filter(tokens::expires_at.le(now).or(tokens::uses_left.le(0)))
        .select(tokens::token_hash)
        .limit(batch)
        .load(conn)?;
    Ok(diesel::delete(tokens::table.filter(tokens::token_hash.eq_any(hashes))).execute(conn)?)
}
