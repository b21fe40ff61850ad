//! Token revocation (RFC 7009). Revoking a refresh token revokes its whole
//! grant; revoking an access token puts its `jti` on the denylist until it
//! expires (or revokes its grant, when so configured).

use super::keys::KeySet;
use crate::config::Settings;
use crate::domain::{Client, TokenDigest, UnixTime};
use crate::storage::{DbConnection, StorageError, grants, refresh_tokens, revoked_tokens};

/// Why a revocation could not be done.
#[derive(Debug)]
pub enum RevokeError {
    /// The revocation could not be written: answer 503, never 200 (RV-05).
    Storage(StorageError),
}

impl From<StorageError> for RevokeError {
    fn from(error: StorageError) -> Self {
        Self::Storage(error)
    }
}

/// Revokes `token` for `caller`. Unknown, malformed, expired and already
/// revoked tokens succeed silently (RV-02); `token_type_hint` is not needed
/// because the two kinds cannot be confused. Another client's token is
/// left alone and answered exactly like an unknown one (RV-03), so the
/// answer never tells whether a token exists.
pub fn revoke(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    caller: &Client,
    token: &str,
    now: UnixTime,
) -> Result<(), RevokeError> {
    if token.matches('.').count() == 2 {
        let Ok(claims) = keys.verify_access_token(
            token,
            settings.server.issuer_str(),
            settings.tokens.leeway_secs,
        ) else {
            return Ok(());
        };
        if claims.client_id != caller.id.as_str() {
            tracing::info!(client.id = %caller.id, "revocation of another client's access token ignored");
            return Ok(());
        }
        if settings.tokens.access_token_revocation_revokes_grant {
            grants::revoke(conn, &claims.gid, "client revoked an access token", now)?;
        } else {
            revoked_tokens::insert(conn, &claims.jti, &claims.gid, claims.exp, now)?;
        }
        tracing::info!(client.id = %caller.id, grant.id = %claims.gid, "access token revoked");
        return Ok(());
    }
    if token.len() > 128 {
        return Ok(());
    }
    let Some(record) = refresh_tokens::find(conn, &TokenDigest::of(token.as_bytes()))? else {
        return Ok(());
    };
    if record.client_id != caller.id {
        tracing::info!(client.id = %caller.id, "revocation of another client's refresh token ignored");
        return Ok(());
    }
    if grants::revoke(
        conn,
        &record.grant_id,
        "client revoked a refresh token",
        now,
    )? {
        tracing::info!(client.id = %caller.id, grant.id = %record.grant_id, "grant revoked with its refresh token");
    }
    Ok(())
}
