//! Queries on `authorization_resumes`: authorization requests parked while
//! the browser signs in, found again by the SHA-256 of their id.

use diesel::prelude::*;

use super::models::ResumeRow;
use super::schema::authorization_resumes as resumes;
use super::{DbConnection, StorageError};
use crate::domain::{TokenDigest, UnixTime};

/// A parked authorization request.
#[derive(Debug, Clone)]
pub struct ParkedRequest {
    /// The recognised parameters of the validated request, form-encoded.
    pub query: String,
    /// The session present when the request was parked, if any.
    pub session_hash: Option<String>,
    /// SHA-256 of the browser's resume-binding cookie: only that browser
    /// may resume the request.
    pub browser_hash: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

pub fn insert(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    request: &ParkedRequest,
) -> Result<(), StorageError> {
    let row = ResumeRow {
        id_hash: digest.as_str().to_owned(),
        query: request.query.clone(),
        session_hash: request.session_hash.clone(),
        browser_hash: request.browser_hash.clone(),
        created_at: request.created_at,
        expires_at: request.expires_at,
    };
    diesel::insert_into(resumes::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

/// The parked request, unless it is unknown or expired.
pub fn find(
    conn: &mut DbConnection,
    digest: &TokenDigest,
    now: UnixTime,
) -> Result<Option<ParkedRequest>, StorageError> {
    Ok(resumes::table
        .find(digest.as_str())
        .filter(resumes::expires_at.gt(now))
        .select(ResumeRow::as_select())
        .first(conn)
        .optional()?
        .map(|row| ParkedRequest {
            query: row.query,
            session_hash: row.session_hash,
            browser_hash: row.browser_hash,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }))
}

pub fn delete(conn: &mut DbConnection, digest: &TokenDigest) -> Result<(), StorageError> {
    diesel::delete(resumes::table.find(digest.as_str())).execute(conn)?;
    Ok(())
}

/// Deletes expired rows, at most `batch` at a time (for `auth::prune`).
pub fn delete_expired(
    conn: &mut DbConnection,
    now: UnixTime,
    batch: i64,
) -> Result<usize, StorageError> {
    let ids: Vec<String> = resumes::table
        .filter(resumes::expires_at.le(now))
        .select(resumes::id_hash)
        .limit(batch)
        .load(conn)?;
    Ok(diesel::delete(resumes::table.filter(resumes::id_hash.eq_any(ids))).execute(conn)?)
}
