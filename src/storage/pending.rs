//! Queries on `pending_authorizations`: requests waiting for consent.

use diesel::prelude::*;

use super::models::PendingRow;
use super::schema::pending_authorizations as pending;
use super::{DbConnection, StorageError};
use crate::domain::{ClientId, PkceChallenge, ScopeSet, TokenDigest, UnixTime, UserId};

/// A validated authorization request, parked while the user decides.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub user_id: UserId,
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: ScopeSet,
    pub state: Option<String>,
    pub code_challenge: Option<PkceChallenge>,
    pub nonce: Option<String>,
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
    pub resource: Vec<String>,
}

/// Parks a request and keeps at most `keep_per_user` live ones for its user:
/// the oldest others are deleted in the same transaction, so one account
/// cannot pile up pending rows (review F9). The new row always stays.
pub fn insert(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    request: &PendingAuthorization,
    keep_per_user: i64,
    now: UnixTime,
) -> Result<(), StorageError> {
    let row = PendingRow {
        id_hash: digest.as_str().to_owned(),
        user_id: request.user_id.as_str().to_owned(),
        client_id: request.client_id.as_str().to_owned(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_sent: request.redirect_uri_sent,
        scope: request.scope.to_string(),
        state: request.state.clone(),
        code_challenge: request
            .code_challenge
            .as_ref()
            .map(|c| c.as_str().to_owned()),
        nonce: request.nonce.clone(),
        auth_time: request.auth_time,
        created_at: now,
        expires_at: request.expires_at,
        resource: super::codes::join_resources(&request.resource),
    };
    conn.transaction(|conn| {
        diesel::insert_into(pending::table)
            .values(&row)
            .execute(conn)?;
        let older: Vec<String> = pending::table
            .filter(pending::user_id.eq(&row.user_id))
            .filter(pending::id_hash.ne(&row.id_hash))
            .order((pending::created_at.desc(), pending::id_hash.desc()))
            .select(pending::id_hash)
            .limit(1000)
            .offset((keep_per_user - 1).max(0))
            .load(conn)?;
        if !older.is_empty() {
            diesel::delete(pending::table.filter(pending::id_hash.eq_any(older))).execute(conn)?;
        }
        Ok(())
    })
}

/// Reads and deletes a pending request in one transaction: a consent form
/// can be answered once.
pub fn take(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    now: UnixTime,
) -> Result<Option<PendingAuthorization>, StorageError> {
    conn.transaction(|conn| {
        let found = find(conn, digest, now)?;
        diesel::delete(pending::table.find(digest.as_str())).execute(conn)?;
        Ok(found)
    })
}

/// A live pending request, without consuming it.
pub fn find(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    now: UnixTime,
) -> Result<Option<PendingAuthorization>, StorageError> {
    let row = pending::table
        .find(digest.as_str())
        .filter(pending::expires_at.gt(now))
        .select(PendingRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(|row| PendingAuthorization {
        user_id: UserId::from_stored(row.user_id),
        client_id: ClientId::from_stored(row.client_id),
        redirect_uri: row.redirect_uri,
        redirect_uri_sent: row.redirect_uri_sent,
        scope: ScopeSet::from_stored(&row.scope),
        state: row.state,
        code_challenge: row.code_challenge.map(PkceChallenge::from_stored),
        nonce: row.nonce,
        auth_time: row.auth_time,
        expires_at: row.expires_at,
        resource: super::codes::split_resources(row.resource.as_deref()),
    }))
}

/// Deletes expired rows, at most `batch` at a time.
pub fn delete_expired(
    conn: &mut DbConnection,
    now: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let ids: Vec<String> = pending::table
        .filter(pending::expires_at.le(now))
        .select(pending::id_hash)
        .limit(batch)
        .load(conn)?;
    Ok(diesel::delete(pending::table.filter(pending::id_hash.eq_any(ids))).execute(conn)?)
}
