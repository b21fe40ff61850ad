//! The token endpoint's protocol: client authentication, then the
//! `authorization_code`, `refresh_token` and `client_credentials` grants.
//! tessera checks codes, PKCE and refresh-token state itself (atomically),
//! then runs oxide-auth's flow over primitives that issue the tokens.

use std::collections::HashMap;

use oxide_auth::endpoint::{AccessTokenFlow, ClientCredentialsFlow, Endpoint, RefreshFlow};
use oxide_auth_actix::OAuthResponse;
use serde_json::Value;

use super::client_auth::{authenticate, presented_client};
use super::error::OAuthError;
use super::primitives::{
    FlowContext, FlowEndpoint, FlowFailure, FlowRequest, PreparedRegistrar, Store, oxide_grant,
};
use super::{Params, keys::KeySet};
use crate::config::Settings;
use crate::domain::{Client, GrantType, ScopeSet, TokenDigest, UnixTime};
use crate::storage::cache::Access;
use crate::storage::codes::{self, Consumed};
use crate::storage::refresh_tokens;
use crate::storage::{DbConnection, StorageError, grants, users};

/// Security events a token request caused, for metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokenEvents {
    /// A rotated refresh token came back and its family was revoked.
    pub refresh_reuse_revoked: bool,
    /// A used code came back and its grant was revoked.
    pub code_replay_revoked: bool,
    /// The user was disabled or the client lost a scope since the grant,
    /// and a refresh revoked it.
    pub policy_revoked: bool,
}

impl TokenEvents {
    /// Whether the request revoked a grant (so cached state is stale).
    pub fn revoked_a_grant(&self) -> bool {
        self.refresh_reuse_revoked || self.code_replay_revoked || self.policy_revoked
    }
}

/// A successful token response (the JSON object).
pub type TokenResponse = serde_json::Map<String, Value>;

/// Handles one token request end to end on one connection. `source` is
/// the caller's address, for the client lock-out (CA-07).
#[expect(
    clippy::too_many_arguments,
    reason = "one request's inputs and outputs, from the route only"
)]
pub fn exchange(
    access: &mut Access<'_>,
    settings: &Settings,
    keys: &KeySet,
    authorization: Option<&str>,
    params: &Params,
    source: &str,
    now: UnixTime,
    events: &mut TokenEvents,
) -> Result<TokenResponse, OAuthError> {
    if params.repeated_key().is_some() {
        return Err(OAuthError::repeated_parameter());
    }
    let presented = presented_client(authorization, params)?;
    let secret = presented.as_ref().and_then(|p| p.secret.clone());
    let grant_type = match params.get("grant_type") {
        None => {
            return Err(OAuthError::InvalidRequest(
                "grant_type is missing".to_owned(),
            ));
        }
        Some(raw) => GrantType::parse(raw).ok_or_else(|| {
            OAuthError::UnsupportedGrantType(
                "supported grant types: authorization_code, refresh_token, client_credentials"
                    .to_owned(),
            )
        })?,
    };
    let client = authenticate(access, settings, presented, source, now)?;
    if !client.may_use(grant_type) {
        return Err(OAuthError::UnauthorizedClient(format!(
            "this client may not use the {} grant",
            grant_type.as_str()
        )));
    }
    match grant_type {
        GrantType::AuthorizationCode => exchange_code(
            access.db()?,
            settings,
            keys,
            client,
            secret,
            params,
            now,
            events,
        ),
        GrantType::RefreshToken => refresh(
            access.db()?,
            settings,
            keys,
            client,
            secret,
            params,
            now,
            events,
        ),
        GrantType::ClientCredentials => {
            client_credentials(access, settings, keys, client, secret, params, now)
        }
    }
}

fn invalid_grant() -> OAuthError {
    OAuthError::InvalidGrant(
        "the code or refresh token is invalid, expired, revoked or was issued to another client"
            .to_owned(),
    )
}

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).
#[expect(
    clippy::too_many_arguments,
    reason = "one grant's inputs, from exchange() only"
)]
fn exchange_code(
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
    let audience = super::resolve_audience(
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
            |endpoint, request| {
                AccessTokenFlow::prepare(endpoint).and_then(|mut flow| flow.execute(request))
            },
        )?;
        Ok(Ok(response))
    })?
}

/// `grant_type=refresh_token` with rotation and reuse detection (RT-01..RT-07).
#[expect(
    clippy::too_many_arguments,
    reason = "one grant's inputs, from exchange() only"
)]
fn refresh(
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
        super::resolve_audience(settings, &scope, params.all("resource"), &record.resource)?;
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
    oxide.scope = super::primitives::oxide_scope(&family_scope);
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
            super::primitives::oxide_scope(&scope).to_string(),
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
        let response = run_flow(
            Some(conn),
            settings,
            keys,
            &context,
            request,
            |endpoint, request| {
                RefreshFlow::prepare(endpoint).and_then(|mut flow| flow.execute(request))
            },
        )?;
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

/// `grant_type=client_credentials`: confidential clients only, scopes within
/// their allowed set; tokens belong to the client's standing grant, so no
/// row is written per token.
fn client_credentials(
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
    let audience = super::resolve_audience(settings, &scope, params.all("resource"), &[])?;
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
        |endpoint, request| {
            ClientCredentialsFlow::prepare(endpoint).and_then(|mut flow| flow.execute(request))
        },
    )
}

fn internal(what: &str) -> OAuthError {
    OAuthError::Internal(anyhow::anyhow!("could not prepare {what} for oxide-auth"))
}

/// Runs an oxide-auth flow over tessera's primitives and reads the JSON it
/// answered. tessera has checked everything the flow checks, so a refusal
/// from oxide-auth here is a bug, reported as a server error.
fn run_flow<F>(
    mut conn: Option<&mut DbConnection>,
    settings: &Settings,
    keys: &KeySet,
    context: &FlowContext,
    request: FlowRequest,
    flow: F,
) -> Result<TokenResponse, OAuthError>
where
    F: for<'e> FnOnce(
        FlowEndpoint<'e>,
        FlowRequest,
    )
        -> Result<OAuthResponse, <FlowEndpoint<'e> as Endpoint<FlowRequest>>::Error>,
{
    // Codes, refresh tokens and ID tokens need the database; a flow that
    // issues only an access token (client credentials) does not.
    let needs_database = context.issue_refresh_token
        || context.consumed_code.is_some()
        || context.presented_refresh.is_some()
        || (context.scope.contains("openid") && context.user_id.is_some());
    if needs_database && conn.is_none() {
        return Err(StorageError::NeedsDatabase.into());
    }
    let endpoint = FlowEndpoint {
        registrar: PreparedRegistrar { context },
        store: Store {
            conn: conn.as_deref_mut(),
            context,
            keys,
            settings,
        },
        // Only the client-credentials flow asks; the client is its own owner.
        owner: Some(context.subject.clone()),
    };
    let response = flow(endpoint, request).map_err(|failure: FlowFailure| {
        OAuthError::Internal(anyhow::anyhow!(
            "oxide-auth refused a request tessera validated: {failure:?}"
        ))
    })?;
    let body = response.get_body().unwrap_or_default();
    let mut json: TokenResponse = serde_json::from_str(&body).map_err(|e| {
        OAuthError::Internal(anyhow::anyhow!(
            "oxide-auth answered something other than JSON: {e}"
        ))
    })?;
    if json.contains_key("error") {
        // Never pass oxide-auth's wording on; say what tessera knows.
        return Err(OAuthError::Internal(anyhow::anyhow!(
            "oxide-auth answered {} to a request tessera validated",
            json.get("error").cloned().unwrap_or_default()
        )));
    }
    // RFC 6750 §4: "Bearer"; oxide-auth writes it in lower case.
    json.insert("token_type".to_owned(), Value::from("Bearer"));
    json.insert("scope".to_owned(), Value::from(context.scope.to_string()));
    if context.scope.contains("openid")
        && let Some(user_id) = &context.user_id
    {
        let access_token = json
            .get("access_token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let conn = conn.ok_or(StorageError::NeedsDatabase)?;
        let user =
            users::find_by_id(conn, &crate::domain::UserId::from_stored(user_id.clone()))?
                .ok_or_else(|| OAuthError::InvalidGrant("the user no longer exists".to_owned()))?;
        let request = super::id_token::IdTokenRequest {
            user: &user,
            client_id: context.client.id.as_str(),
            scope: &context.scope,
            nonce: context.nonce.as_deref(),
            auth_time: context.auth_time,
            access_token: &access_token,
            now: context.now,
        };
        let id_token = super::id_token::issue(keys, settings, &request).map_err(|e| {
            OAuthError::Internal(anyhow::anyhow!("signing an ID token failed: {e:?}"))
        })?;
        json.insert("id_token".to_owned(), Value::from(id_token));
    }
    Ok(json)
}
