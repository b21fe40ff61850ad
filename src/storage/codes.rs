//! Queries on `authorization_codes`. A code is consumed by one atomic
//! UPDATE, so of any number of parallel redemptions exactly one wins
//! (CD-03); the used row stays until it expires so a replay is recognised.

use diesel::prelude::*;

use super::models::CodeRow;
use super::schema::authorization_codes as codes;
use super::{DbConnection, StorageError};
use crate::domain::{ClientId, PkceChallenge, ScopeSet, TokenDigest, UnixTime, UserId};

/// What an authorization code is bound to.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub grant_id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub redirect_uri: String,
    /// Whether the authorization request carried `redirect_uri`.
    pub redirect_uri_sent: bool,
    pub scope: ScopeSet,
    pub code_challenge: Option<PkceChallenge>,
    pub nonce: Option<String>,
    pub auth_time: UnixTime,
    pub expires_at: UnixTime,
    /// RFC 8707 resources the authorization request named.
    pub resource: Vec<String>,
}

impl From<CodeRow> for CodeRecord {
    fn from(row: CodeRow) -> Self {
        Self {
            grant_id: row.grant_id,
            client_id: ClientId::from_stored(row.client_id),
            user_id: UserId::from_stored(row.user_id),
            redirect_uri: row.redirect_uri,
            redirect_uri_sent: row.redirect_uri_sent,
            scope: ScopeSet::from_stored(&row.scope),
            code_challenge: row.code_challenge.map(PkceChallenge::from_stored),
            nonce: row.nonce,
            auth_time: row.auth_time,
            expires_at: row.expires_at,
            resource: split_resources(row.resource.as_deref()),
        }
    }
}

pub fn insert(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    record: &CodeRecord,
    now: UnixTime,
) -> Result<(), StorageError> {
    let row = CodeRow {
        code_hash: digest.as_str().to_owned(),
        grant_id: record.grant_id.clone(),
        client_id: record.client_id.as_str().to_owned(),
        user_id: record.user_id.as_str().to_owned(),
        redirect_uri: record.redirect_uri.clone(),
        redirect_uri_sent: record.redirect_uri_sent,
        scope: record.scope.to_string(),
        code_challenge: record
            .code_challenge
            .as_ref()
            .map(|c| c.as_str().to_owned()),
        nonce: record.nonce.clone(),
        auth_time: record.auth_time,
        created_at: now,
        expires_at: record.expires_at,
        consumed_at: None,
        resource: join_resources(&record.resource),
    };
    diesel::insert_into(codes::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// The outcome of trying to consume a code.
#[derive(Debug)]
pub enum Consumed {
    /// This caller consumed it.
    Fresh(CodeRecord),
    /// It was consumed before: a replay.
    AlreadyUsed(CodeRecord),
    /// Unknown or expired.
    Invalid,
}

/// Looks a code up without consuming it (to check client and PKCE first).
pub fn find(
    conn: &mut DbConnection,
    digest: &TokenDigest,
) -> Result<Option<(CodeRecord, bool)>, StorageError> {
    Ok(codes::table
        .find(digest.as_str())
        .select(CodeRow::as_select())
        .first(conn)
        .optional()?
        .map(|row| {
            let used = row.consumed_at.is_some();
            (CodeRecord::from(row), used)
        }))
}

/// Marks the code consumed if it is unused and unexpired, in one statement.
pub fn consume(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    now: UnixTime,
) -> Result<Consumed, StorageError> {
    let claimed = diesel::update(
        codes::table
            .find(digest.as_str())
            .filter(codes::consumed_at.is_null())
            .filter(codes::expires_at.gt(now)),
    )
    .set(codes::consumed_at.eq(now))
    .execute(conn)?;
    let Some((record, _)) = find(conn, digest)? else {
        return Ok(Consumed::Invalid);
    };
    if claimed == 1 {
        return Ok(Consumed::Fresh(record));
    }
    if record.expires_at <= now {
        return Ok(Consumed::Invalid);
    }
    Ok(Consumed::AlreadyUsed(record))
}

/// Deletes codes expired before `cutoff`, at most `batch` at a time.
pub fn delete_expired(
    conn: &mut DbConnection,
    cutoff: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let hashes: Vec<String> = codes::table
        .filter(codes::expires_at.lt(cutoff))
        .select(codes::code_hash)
        .limit(batch)
        .load(conn)?;
    Ok(diesel::delete(codes::table.filter(codes::code_hash.eq_any(hashes))).execute(conn)?)
}

/// Resources are URIs without spaces: stored space-separated.
pub(super) fn split_resources(stored: Option<&str>) -> Vec<String> {
    stored
        .unwrap_or("")
        .split(' ')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn join_resources(resources: &[String]) -> Option<String> {
    (!resources.is_empty()).then(|| resources.join(" "))
}
