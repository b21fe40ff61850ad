//! Queries on `refresh_tokens`. Each use rotates the token: the old row is
//! claimed by one atomic UPDATE (so of parallel refreshes one wins, RT-03)
//! and kept, marked rotated, so a later reuse is recognised (RT-02).

use diesel::prelude::*;

use super::models::RefreshTokenRow;
use super::schema::refresh_tokens as tokens;
use super::{DbConnection, StorageError};
use crate::domain::{ClientId, ScopeSet, TokenDigest, UnixTime};

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub grant_id: String,
    pub client_id: ClientId,
    pub scope: ScopeSet,
    pub idle_expires_at: UnixTime,
    pub absolute_expires_at: UnixTime,
    pub rotated_at: Option<UnixTime>,
    /// RFC 8707 resources granted at authorization, inherited by every
    /// token of the family: a refresh may narrow the audience to some of
    /// them, never widen or change it (AU-02). Empty: none was named, so
    /// the audience follows the scope.
    pub resource: Vec<String>,
    /// When the user authenticated, kept for refreshed ID tokens (OIDC Core
    /// §12.2). None for rows written before it was stored.
    pub auth_time: Option<UnixTime>,
}

impl From<RefreshTokenRow> for RefreshRecord {
    fn from(row: RefreshTokenRow) -> Self {
        Self {
            grant_id: row.grant_id,
            client_id: ClientId::from_stored(row.client_id),
            scope: ScopeSet::from_stored(&row.scope),
            idle_expires_at: row.idle_expires_at,
            absolute_expires_at: row.absolute_expires_at,
            rotated_at: row.rotated_at,
            resource: super::codes::split_resources(row.resource.as_deref()),
            auth_time: row.auth_time,
        }
    }
}

pub fn insert(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    parent: Option<&TokenDigest>,
    record: &RefreshRecord,
    now: UnixTime,
) -> Result<(), StorageError> {
    let row = RefreshTokenRow {
        token_hash: digest.as_str().to_owned(),
        grant_id: record.grant_id.clone(),
        client_id: record.client_id.as_str().to_owned(),
        parent_hash: parent.map(|p| p.as_str().to_owned()),
        scope: record.scope.to_string(),
        created_at: now,
        idle_expires_at: record.idle_expires_at,
        absolute_expires_at: record.absolute_expires_at,
        rotated_at: None,
        resource: super::codes::join_resources(&record.resource),
        auth_time: record.auth_time,
    };
    diesel::insert_into(tokens::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut DbConnection,
    digest: &TokenDigest,
) -> Result<Option<RefreshRecord>, StorageError> {
    Ok(tokens::table
        .find(digest.as_str())
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?
        .map(RefreshRecord::from))
}

/// The newest successor of `parent` that has not been used yet, if any: what
/// a client that lost the answer to its refresh holds without knowing it.
pub fn find_unused_child(
    conn: &mut DbConnection,
    parent: &TokenDigest,
) -> Result<Option<(TokenDigest, RefreshRecord)>, StorageError> {
    Ok(tokens::table
        .filter(tokens::parent_hash.eq(parent.as_str()))
        .filter(tokens::rotated_at.is_null())
        .order(tokens::created_at.desc())
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?
        .map(|row| {
            (
                TokenDigest::from_stored(row.token_hash.clone()),
                RefreshRecord::from(row),
            )
        }))
}

/// Marks the token rotated if nobody did before. Returns whether this caller
/// won the rotation.
pub fn claim_rotation(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    now: UnixTime,
) -> Result<bool, StorageError> {
    let claimed = diesel::update(
        tokens::table
            .find(digest.as_str())
            .filter(tokens::rotated_at.is_null()),
    )
    .set(tokens::rotated_at.eq(now))
    .execute(conn)?;
    Ok(claimed == 1)
}

/// Deletes tokens past their expiry (idle or absolute) before `cutoff`.
pub fn delete_expired(
    conn: &mut DbConnection,
    cutoff: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let hashes: Vec<String> = tokens::table
        .filter(
            tokens::idle_expires_at
                .lt(cutoff)
                .or(tokens::absolute_expires_at.lt(cutoff)),
        )
        .select(tokens::token_hash)
        .limit(batch)
        .load(conn)?;
    Ok(diesel::delete(tokens::table.filter(tokens::token_hash.eq_any(hashes))).execute(conn)?)
}
