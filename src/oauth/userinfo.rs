//! The OpenID Connect userinfo endpoint's protocol (OIDC Core §5.3, RFC 6750).

use serde_json::{Map, Value};

use super::id_token::user_claims;
use super::keys::KeySet;
use crate::config::Settings;
use crate::domain::ScopeSet;
use crate::storage::{DbConnection, StorageError, clients, grants, revoked_tokens, users};

/// Why a bearer token was not accepted (RFC 6750 §3.1).
#[derive(Debug)]
pub enum BearerError {
    /// Missing, malformed, expired, revoked, of another audience, or not an
    /// access token at all.
    InvalidToken,
    /// Valid, but without the `openid` scope.
    InsufficientScope,
    Storage(StorageError),
}

impl From<StorageError> for BearerError {
    fn from(error: StorageError) -> Self {
        Self::Storage(error)
    }
}

/// The claims of the token's user, for the scopes it carries (still
/// granted). Checks the JWT exactly like introspection does (JW-01..JW-06)
/// plus the audience: the token must be meant for this issuer (JW-04).
pub fn userinfo(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    token: &str,
) -> Result<Map<String, Value>, BearerError> {
    let issuer = settings.server.issuer_str();
    let claims = keys
        .verify_access_token(token, issuer, settings.tokens.leeway_secs)
        .map_err(|_| BearerError::InvalidToken)?;
    if !claims.aud.contains(&settings.default_audience()) {
        return Err(BearerError::InvalidToken);
    }
    if revoked_tokens::is_revoked(conn, &claims.jti)? {
        return Err(BearerError::InvalidToken);
    }
    let grant = grants::find(conn, &claims.gid)?
        .filter(grants::Grant::is_active)
        .ok_or(BearerError::InvalidToken)?;
    let client_active = clients::find(conn, &grant.client_id)?.is_some_and(|c| !c.disabled);
    let user_id = grant
        .user_id
        .as_ref()
        .ok_or(BearerError::InsufficientScope)?;
    let user = users::find_by_id(conn, user_id)?
        .filter(|u| !u.disabled && client_active)
        .ok_or(BearerError::InvalidToken)?;
    let scope = ScopeSet::from_stored(&claims.scope).intersection(&grant.scope);
    if !scope.contains("openid") {
        return Err(BearerError::InsufficientScope);
    }
    Ok(user_claims(&user, &scope))
}
