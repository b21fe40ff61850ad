//! `grant_type=client_credentials` (RFC 6749 §4.4): confidential clients
//! only, tokens of the client's standing grant, answered from memory when
//! the cache holds what it needs.

use std::collections::HashMap;

use super::TokenResponse;
use super::flow::{Flow, run_flow};
use crate::config::Settings;
use crate::domain::{Client, ScopeSet, UnixTime};
use crate::oauth::error::OAuthError;
use crate::oauth::primitives::{FlowContext, FlowRequest};
use crate::oauth::{Params, keys::KeySet};
use crate::storage::cache::Access;
use crate::storage::grants;

/// `grant_type=client_credentials`: confidential clients only, scopes within
/// their allowed set; tokens belong to the client's standing grant, so no
/// row is written per token.
pub(super) fn client_credentials(
    access: &mut Access<'_>,
    settings: &Settings,
    keys: &KeySet,
    client: Client,
    secret: Option<String>,
    params: &Params,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    if !client.is_confidential() {
        return Err(OAuthError::UnauthorizedClient(
            "public clients cannot use client credentials".to_owned(),
        ));
    }
    let scope = match params.get("scope") {
        None => client
            .allowed_scopes
            .difference(&ScopeSet::from_tokens(["openid", "offline_access"])),
        Some(raw) => ScopeSet::parse(raw).map_err(|e| OAuthError::InvalidScope(e.to_string()))?,
    };
    if !scope.is_subset(&client.allowed_scopes) {
        return Err(OAuthError::InvalidScope(
            "the client may not ask for one or more of these scopes".to_owned(),
        ));
    }
    // AU-01, ST-01: the audience is settled before anything is written.
    let audience = crate::oauth::resolve_audience(settings, &scope, params.all("resource"), &[])?;
    let grant = match access.standing_grant(&client.id)? {
        Some(grant) => grant,
        None => grants::insert(access.db()?, None, &client.id, &client.allowed_scopes, now)?,
    };
    let context = FlowContext {
        redirect_uri: None,
        redirect_uri_sent: false,
        scope: scope.clone(),
        refresh_scope: scope.clone(),
        grant_id: grant.id,
        subject: client.id.as_str().to_owned(),
        user_id: None,
        code_challenge: None,
        nonce: None,
        auth_time: now,
        consumed_code: None,
        presented_refresh: None,
        issue_refresh_token: false,
        refresh_absolute_expires_at: now,
        audience,
        resource: Vec::new(),
        now,
        client,
    };
    let mut body = HashMap::from([("grant_type".to_owned(), "client_credentials".to_owned())]);
    if !scope.is_empty() {
        body.insert("scope".to_owned(), scope.to_string());
    }
    let request = FlowRequest::token_request(body, &context.client, secret.as_deref());
    run_flow(
        access.connection(),
        settings,
        keys,
        &context,
        request,
        Flow::ClientCredentials,
    )
}
