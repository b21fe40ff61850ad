//! Token introspection (RFC 7662). A token is active only if its signature,
//! `exp` and `nbf` hold, it is not on the denylist, and its grant, user and
//! client are all still active: revoking a grant makes every JWT of it
//! inactive at once, whatever its signature and `exp` say (IN-05).

use serde_json::{Map, Value, json};

use super::keys::{AccessClaims, KeySet};
use crate::config::Settings;
use crate::domain::{Client, ScopeSet, TokenDigest, UnixTime};
use crate::storage::cache::{Access, GrantState};
use crate::storage::grants::Grant;
use crate::storage::{StorageError, grants, refresh_tokens, revoked_tokens, users};

/// `{"active": false}` and nothing else (IN-03).
pub fn inactive() -> Value {
    json!({ "active": false })
}

/// Whether `caller` may learn about a token issued to `client_id` for
/// `audience`: its own tokens, or (for a resource server) tokens whose
/// audience it is (IN-02).
fn may_see(caller: &Client, client_id: &str, audience: &super::keys::Audience) -> bool {
    caller.id.as_str() == client_id
        || caller
            .introspection_audience
            .as_deref()
            .is_some_and(|own| audience.contains(own))
}

/// The grant, if it and its user and client are all active, with the
/// username for the response and whether any of its tokens is on the
/// denylist. Read through the cache (at most `database.cache_ttl_ms` old).
fn live_grant(access: &mut Access<'_>, grant_id: &str) -> Result<Option<GrantState>, StorageError> {
    let cached = access.grant_state(grant_id, |conn| {
        let Some(grant) = grants::find(conn, grant_id)?.filter(Grant::is_active) else {
            return Ok(None);
        };
        let client_active =
            crate::storage::clients::find(conn, &grant.client_id)?.is_some_and(|c| !c.disabled);
        if !client_active {
            return Ok(None);
        }
        let username = match &grant.user_id {
            Some(user_id) => match users::find_by_id(conn, user_id)? {
                Some(user) if !user.disabled => Some(user.username.as_str().to_owned()),
                _ => return Ok(None),
            },
            None => None,
        };
        let has_denylisted_tokens = revoked_tokens::any_for_grant(conn, &grant.id)?;
        Ok(Some(GrantState {
            grant,
            username,
            has_denylisted_tokens,
        }))
    })?;
    Ok(cached)
}

/// Introspects `token` for `caller`. Any storage failure is an error (the
/// caller answers 503), never a guess.
pub fn introspect(
    access: &mut Access<'_>,
    settings: &Settings,
    keys: &KeySet,
    caller: &Client,
    token: &str,
    now: UnixTime,
) -> Result<Value, StorageError> {
    if token.matches('.').count() == 2 {
        return introspect_access_token(access, settings, keys, caller, token, now);
    }
    introspect_refresh_token(access, caller, token, now)
}

fn introspect_access_token(
    access: &mut Access<'_>,
    settings: &Settings,
    keys: &KeySet,
    caller: &Client,
    token: &str,
    now: UnixTime,
) -> Result<Value, StorageError> {
    let issuer = settings.server.issuer_str();
    let Ok(claims) =
        keys.verify_access_token_cached(token, issuer, settings.tokens.leeway_secs, now)
    else {
        return Ok(inactive());
    };
    if !may_see(caller, &claims.client_id, &claims.aud) {
        return Ok(inactive());
    }
    let Some(state) = live_grant(access, &claims.gid)? else {
        return Ok(inactive());
    };
    // Only a grant with denylisted tokens needs the token's own lookup.
    if state.has_denylisted_tokens && access.is_denylisted(&claims.jti)? {
        return Ok(inactive());
    }
    // Scopes the user has since withdrawn no longer count.
    let scope = ScopeSet::from_stored(&claims.scope).intersection(&state.grant.scope);
    Ok(active_access(&claims, &scope, state.username))
}

fn active_access(claims: &AccessClaims, scope: &ScopeSet, username: Option<String>) -> Value {
    let mut body = Map::new();
    body.insert("active".into(), Value::Bool(true));
    body.insert("scope".into(), Value::from(scope.to_string()));
    body.insert("client_id".into(), Value::from(claims.client_id.clone()));
    body.insert("sub".into(), Value::from(claims.sub.clone()));
    if let Some(username) = username {
        body.insert("username".into(), Value::from(username));
    }
    body.insert(
        "aud".into(),
        serde_json::to_value(&claims.aud).unwrap_or(Value::Null),
    );
    body.insert("iss".into(), Value::from(claims.iss.clone()));
    body.insert("exp".into(), Value::from(claims.exp));
    body.insert("iat".into(), Value::from(claims.iat));
    body.insert("nbf".into(), Value::from(claims.nbf));
    body.insert("jti".into(), Value::from(claims.jti.clone()));
    body.insert("token_type".into(), Value::from("Bearer"));
    Value::Object(body)
}

fn introspect_refresh_token(
    access: &mut Access<'_>,
    caller: &Client,
    token: &str,
    now: UnixTime,
) -> Result<Value, StorageError> {
    if token.len() > 128 {
        return Ok(inactive());
    }
    let Some(record) = refresh_tokens::find(access.db()?, &TokenDigest::of(token.as_bytes()))?
    else {
        return Ok(inactive());
    };
    // Refresh tokens are for their client's eyes only.
    if record.client_id != caller.id || record.rotated_at.is_some() {
        return Ok(inactive());
    }
    if record.idle_expires_at <= now || record.absolute_expires_at <= now {
        return Ok(inactive());
    }
    let Some(GrantState {
        grant, username, ..
    }) = live_grant(access, &record.grant_id)?
    else {
        return Ok(inactive());
    };
    let mut body = Map::new();
    body.insert("active".into(), Value::Bool(true));
    body.insert(
        "scope".into(),
        Value::from(record.scope.intersection(&grant.scope).to_string()),
    );
    body.insert("client_id".into(), Value::from(record.client_id.as_str()));
    let subject = grant.user_id.as_ref().map_or_else(
        || record.client_id.as_str().to_owned(),
        |u| u.as_str().to_owned(),
    );
    body.insert("sub".into(), Value::from(subject));
    if let Some(username) = username {
        body.insert("username".into(), Value::from(username));
    }
    body.insert(
        "exp".into(),
        Value::from(record.idle_expires_at.min(record.absolute_expires_at)),
    );
    body.insert("token_type".into(), Value::from("refresh_token"));
    Ok(Value::Object(body))
}
