//! Queries on `revoked_access_tokens`: the denylist of access tokens revoked
//! one by one, kept until they would have expired anyway.

use diesel::prelude::*;

use super::schema::revoked_access_tokens as revoked;
use super::{DbConnection, StorageError};
use crate::domain::UnixTime;

/// Puts a token's `jti` on the denylist; revoking twice is fine.
pub fn insert(
    conn: &mut DbConnection,
    jti: &str,
    grant_id: &str,
    expires_at: UnixTime,
    now: UnixTime,
) -> Result<(), StorageError> {
    let exists = revoked::table
        .find(jti)
        .select(revoked::jti)
        .first::<String>(conn)
        .optional()?
        .is_some();
    if exists {
        return Ok(());
    }
    let inserted = diesel::insert_into(revoked::table)
        .values((
            revoked::jti.eq(jti),
            revoked::grant_id.eq(grant_id),
            revoked::expires_at.eq(expires_at),
            revoked::revoked_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(()),
        // A parallel revocation of the same token won the race.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

pub fn is_revoked(conn: &mut DbConnection, jti: &str) -> Result<bool, StorageError> {
    Ok(revoked::table
        .find(jti)
        .select(revoked::jti)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

/// Whether any access token of grant `grant_id` is on the denylist.
pub fn any_for_grant(conn: &mut DbConnection, grant_id: &str) -> Result<bool, StorageError> {
    Ok(revoked::table
        .filter(revoked::grant_id.eq(grant_id))
        .select(revoked::jti)
        .first::<String>(conn)
        .optional()?
        .is_some())
}

pub fn delete_expired(
    conn: &mut DbConnection,
    now: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let ids: Vec<String> = revoked::table
        .filter(revoked::expires_at.lt(now))
        .select(revoked::jti)
        .limit(batch)
        .load(conn)?;
    Ok(diesel::delete(revoked::table.filter(revoked::jti.eq_any(ids))).execute(conn)?)
}
