//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): the
//! code is consumed atomically, bound to its client, redirect URI and PKCE
//! challenge; a replay revokes the grant.

use std::collections::HashMap;

use super::{
    TokenEvents, TokenResponse,
    flow::{Flow, internal, run_flow},
    invalid_grant,
};
use crate::config::Settings;
use crate::domain::{Client, GrantType, TokenDigest, UnixTime};
use crate::oauth::error::OAuthError;
use crate::oauth::primitives::{FlowContext, FlowRequest, oxide_grant};
use crate::oauth::{Params, keys::KeySet};
use crate::storage::codes::{self, Consumed};
use crate::storage::{DbConnection, grants, users};

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).
#[expect(
    clippy::too_many_arguments,
    reason = "one grant's inputs, from exchange() only"
)]
pub(super) fn exchange_code(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    client: Client,
    secret: Option<String>,
    params: &Params,
    now: UnixTime,
    events: &mut TokenEvents,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::InvalidRequest("code is missing".to_owned()))?;
    let digest = TokenDigest::of(code.as_bytes());
    let Some((record, _)) = codes::find(conn, &digest)? else {
        return Err(invalid_grant());
    };
    // CD-04: a code is bound to the client it was issued to.
    if record.client_id != client.id || record.expires_at <= now {
        return Err(invalid_grant());
    }
    // CD-05: the redirect URI must repeat the authorization request's.
    match params.get("redirect_uri") {
        Some(sent) if sent == record.redirect_uri => {}
        None if !record.redirect_uri_sent => {}
        _ => {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri does not match the authorization request".to_owned(),
            ));
        }
    }
    // PK-03..PK-05.
    match (&record.code_challenge, params.get("code_verifier")) {
        (Some(_), None) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier is missing".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "code_verifier sent for a code issued without PKCE".to_owned(),
            ));
        }
        (Some(challenge), Some(verifier)) => {
            let matches = challenge
                .verify(verifier)
                .map_err(|e| OAuthError::InvalidGrant(e.to_string()))?;
            if !matches {
                // PK-04: a wrong verifier burns the code.
                let _ = codes::consume(conn, &digest, now)?;
                return Err(OAuthError::InvalidGrant(
                    "code_verifier does not match the code_challenge".to_owned(),
                ));
            }
        }
        (None, None) => {}
    }
    // The grant and the user must be live before the code is spent. Checked
    // first, so that a concurrent replay revoking the grant after this
    // request won the code cannot turn the winner's answer into an error:
    // of parallel redemptions exactly one succeeds (CD-03), and the tokens it
    // got die with the grant the replay revoked.
    let grant = grants::find(conn, &record.grant_id)?
        .filter(grants::Grant::is_active)
        .ok_or_else(invalid_grant)?;
    let user_active = users::find_by_id(conn, &record.user_id)?.is_some_and(|u| !u.disabled);
    if !user_active {
        return Err(invalid_grant());
    }
    // AU-02, ST-01: the audience is settled before the code is spent, so a
    // bad `resource` leaves the code usable. It narrows what the
    // authorization granted, never widens or changes it.
    let audience = crate::oauth::resolve_audience(
        settings,
        &record.scope,
        params.all("resource"),
        &record.resource,
    )?;
    let issue_refresh_token = client.may_use(GrantType::RefreshToken)
        && (record.scope.contains("offline_access") || client.always_issue_refresh_token);
    let context = FlowContext {
        redirect_uri: Some(record.redirect_uri.clone()),
        redirect_uri_sent: record.redirect_uri_sent,
        scope: record.scope.clone(),
        refresh_scope: record.scope.clone(),
        grant_id: grant.id.clone(),
        subject: record.user_id.as_str().to_owned(),
        user_id: Some(record.user_id.as_str().to_owned()),
        code_challenge: None,
        nonce: record.nonce.clone(),
        auth_time: record.auth_time,
        consumed_code: None,
        presented_refresh: None,
        issue_refresh_token,
        refresh_absolute_expires_at: now + settings.tokens.refresh_token_absolute_ttl_secs,
        audience,
        // The refresh-token family keeps every resource granted at
        // authorization, whatever this exchange narrowed its token to.
        resource: record.resource.clone(),
        now,
        client,
    };
    let oxide =
        oxide_grant(&context, record.expires_at).map_err(|_| internal("the code's grant"))?;
    let context = FlowContext {
        consumed_code: Some((code.to_owned(), oxide)),
        ..context
    };
    let body = HashMap::from([
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.to_owned()),
        ("redirect_uri".to_owned(), record.redirect_uri.clone()),
    ]);
    let request = FlowRequest::token_request(body, &context.client, secret.as_deref());
    // ST-01: spending the code and issuing from it are one transaction, so
    // a failure while issuing leaves the code unspent. A replay's revocation
    // is a refusal whose writes stand.
    grants::all_or_nothing::<_, OAuthError>(conn, |conn| {
        // CD-01, CD-03: one atomic consume; a replay that is otherwise valid
        // revokes everything issued from the code's grant.
        match codes::consume(conn, &digest, now)? {
            Consumed::Fresh(_) => {}
            Consumed::AlreadyUsed(record) => {
                if grants::revoke(conn, &record.grant_id, "authorization code replayed", now)? {
                    events.code_replay_revoked = true;
                    tracing::warn!(client.id = %context.client.id, grant.id = %record.grant_id, "authorization code replayed: grant revoked");
                }
                return Ok(Err(invalid_grant()));
            }
            Consumed::Invalid => return Ok(Err(invalid_grant())),
        }
        grants::touch(conn, &grant.id, now)?;
        let response = run_flow(
            Some(conn),
            settings,
            keys,
            &context,
            request,
            Flow::AccessToken,
        )?;
        Ok(Ok(response))
    })?
}
