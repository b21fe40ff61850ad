//! `grant_type=refresh_token` (RFC 6749 §6): rotation on every use, reuse
//! detection that revokes the family, the grace window for a lost answer.

use std::collections::HashMap;

use super::{
    TokenEvents, TokenResponse,
    flow::{Flow, internal, run_flow},
    invalid_grant,
};
use crate::config::Settings;
use crate::domain::{Client, ScopeSet, TokenDigest, UnixTime};
use crate::oauth::error::OAuthError;
use crate::oauth::primitives::{FlowContext, FlowRequest, oxide_grant};
use crate::oauth::{Params, keys::KeySet};
use crate::storage::refresh_tokens;
use crate::storage::{DbConnection, grants, users};

/// `grant_type=refresh_token` with rotation and reuse detection (RT-01..RT-07).
#[expect(
    clippy::too_many_arguments,
    reason = "one grant's inputs, from exchange() only"
)]
pub(super) fn refresh(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    client: Client,
    secret: Option<String>,
    params: &Params,
    now: UnixTime,
    events: &mut TokenEvents,
) -> Result<TokenResponse, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::InvalidRequest("refresh_token is missing".to_owned()))?;
    let digest = TokenDigest::of(token.as_bytes());
    let Some(record) = refresh_tokens::find(conn, &digest)? else {
        return Err(invalid_grant());
    };
    // RT-04: bound to its client; another client's attempt changes nothing.
    if record.client_id != client.id {
        return Err(invalid_grant());
    }
    // A rotated token came back. Within `refresh_token_reuse_grace_secs` and
    // while its successor is still unused, this is the client retrying a
    // refresh whose answer it lost: the refresh goes on as a rotation of
    // that successor (which then dies) and answers a fresh pair. Otherwise it
    // is reuse (RT-02): past the window the whole family is revoked.
    let (digest, record) = match record.rotated_at {
        None => (digest, record),
        Some(rotated_at) => {
            let since_rotation = now - rotated_at;
            let grace = settings.tokens.refresh_token_reuse_grace_secs;
            let successor = if grace > 0 && since_rotation <= grace {
                refresh_tokens::find_unused_child(conn, &digest)?
            } else {
                None
            };
            match successor {
                Some(successor) => {
                    tracing::info!(client.id = %client.id, grant.id = %record.grant_id, "rotated refresh token retried within the grace window: its unused successor is rotated instead");
                    successor
                }
                None => {
                    return Err(reuse_detected(
                        conn,
                        settings,
                        &record.grant_id,
                        &client,
                        since_rotation,
                        now,
                        events,
                    )?);
                }
            }
        }
    };
    // RT-04 again for a successor (same family, same client), then RT-06:
    // idle and absolute expiry.
    if record.client_id != client.id {
        return Err(invalid_grant());
    }
    if record.idle_expires_at <= now || record.absolute_expires_at <= now {
        return Err(invalid_grant());
    }
    let grant = grants::find(conn, &record.grant_id)?
        .filter(grants::Grant::is_active)
        .ok_or_else(invalid_grant)?;
    // RT-07: the user must still be active and the client still allowed
    // every scope of the family; otherwise the grant goes.
    let user_active = match &grant.user_id {
        Some(user_id) => users::find_by_id(conn, user_id)?.is_some_and(|u| !u.disabled),
        None => true,
    };
    if !user_active || !record.scope.is_subset(&client.allowed_scopes) {
        if grants::revoke(conn, &grant.id, "policy changed since the grant", now)? {
            events.policy_revoked = true;
        }
        return Err(invalid_grant());
    }
    // Scopes the user removed on the connected-apps page are gone for good.
    let family_scope = record.scope.intersection(&grant.scope);
    if family_scope.is_empty() {
        return Err(invalid_grant());
    }
    // RT-05: narrowing is allowed, widening is not.
    let scope = match params.get("scope") {
        None => family_scope.clone(),
        Some(raw) => {
            let asked =
                ScopeSet::parse(raw).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
            if asked.is_empty() || !asked.is_subset(&family_scope) {
                return Err(OAuthError::InvalidScope(
                    "a refresh cannot add scopes".to_owned(),
                ));
            }
            asked
        }
    };
    // AU-02, ST-01: the audience is settled before the token is spent,
    // within the resources granted at authorization.
    let audience =
        crate::oauth::resolve_audience(settings, &scope, params.all("resource"), &record.resource)?;
    let subject = grant
        .user_id
        .as_ref()
        .map_or_else(|| client.id.as_str().to_owned(), |u| u.as_str().to_owned());
    let context = FlowContext {
        redirect_uri: None,
        redirect_uri_sent: false,
        scope: scope.clone(),
        refresh_scope: family_scope.clone(),
        grant_id: grant.id.clone(),
        user_id: grant.user_id.as_ref().map(|u| u.as_str().to_owned()),
        subject,
        code_challenge: None,
        nonce: None,
        // OIDC Core §12.2: the time the user authenticated, not when the
        // grant was made (families from before it was stored: as before).
        auth_time: record.auth_time.unwrap_or(grant.created_at),
        consumed_code: None,
        presented_refresh: None,
        issue_refresh_token: true,
        refresh_absolute_expires_at: record.absolute_expires_at,
        audience,
        resource: record.resource.clone(),
        now,
        client,
    };
    let mut oxide = oxide_grant(&context, record.idle_expires_at)
        .map_err(|_| internal("the refresh token's grant"))?;
    oxide.scope = crate::oauth::primitives::oxide_scope(&family_scope);
    let grant_id = record.grant_id.clone();
    let context = FlowContext {
        presented_refresh: Some((token.to_owned(), oxide, record)),
        ..context
    };
    let mut body = HashMap::from([
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        ("refresh_token".to_owned(), token.to_owned()),
    ]);
    if params.get("scope").is_some() {
        body.insert(
            "scope".to_owned(),
            crate::oauth::primitives::oxide_scope(&scope).to_string(),
        );
    }
    let request = FlowRequest::token_request(body, &context.client, secret.as_deref());
    // ST-01: claiming the rotation and issuing the successor are one
    // transaction, so a failure while issuing leaves the token unspent.
    grants::all_or_nothing::<_, OAuthError>(conn, |conn| {
        // RT-03: of parallel refreshes exactly one claims the rotation.
        if !refresh_tokens::claim_rotation(conn, &digest, now)? {
            let refusal =
                reuse_detected(conn, settings, &grant_id, &context.client, 0, now, events)?;
            return Ok(Err(refusal));
        }
        grants::touch(conn, &grant.id, now)?;
        let response = run_flow(Some(conn), settings, keys, &context, request, Flow::Refresh)?;
        Ok(Ok(response))
    })?
}

/// A rotated refresh token came back (RT-02) or lost a rotation race
/// (RT-03): within the grace window only this request fails; past it the
/// whole grant family is revoked and the event logged.
fn reuse_detected(
    conn: &mut DbConnection,
    settings: &Settings,
    grant_id: &str,
    client: &Client,
    since_rotation: i64,
    now: UnixTime,
    events: &mut TokenEvents,
) -> Result<OAuthError, OAuthError> {
    let grace = settings.tokens.refresh_token_reuse_grace_secs;
    if grace > 0 && since_rotation <= grace {
        tracing::info!(client.id = %client.id, grant.id = %grant_id, "rotated refresh token presented within the grace window");
        return Ok(invalid_grant());
    }
    if grants::revoke(conn, grant_id, "refresh token reused", now)? {
        events.refresh_reuse_revoked = true;
        tracing::warn!(client.id = %client.id, grant.id = %grant_id, "refresh token reuse detected: grant revoked");
    }
    Ok(invalid_grant())
}
