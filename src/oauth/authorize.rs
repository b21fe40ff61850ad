//! The authorization endpoint's protocol: validate the request in RFC order
//! (client and redirect URI first, so nothing is ever sent to an
//! unvalidated URI), decide between sign-in, consent and an immediate code,
//! and issue codes through oxide-auth's authorization flow.

use std::collections::HashMap;

use oxide_auth::endpoint::AuthorizationFlow;

use super::error::OAuthError;
use super::primitives::{FlowContext, FlowEndpoint, FlowRequest, PreparedRegistrar, Store};
use super::{Params, keys::KeySet};
use crate::config::Settings;
use crate::domain::{
    Client, ClientId, ClientType, GrantType, PkceChallenge, ScopeSet, SecretToken, UnixTime, UserId,
};
use crate::storage::pending::{self, PendingAuthorization};
use crate::storage::{DbConnection, StorageError, clients, grants};

/// Longest `state` and `nonce` accepted (bytes).
const MAX_STATE_LEN: usize = 1024;
/// How long a consent page stays answerable.
const PENDING_TTL_SECS: i64 = 600;

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: Client,
    /// The redirect URI the code goes to: as requested, or the client's only
    /// registered one when the request named none.
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: ScopeSet,
    pub state: Option<String>,
    pub code_challenge: Option<PkceChallenge>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    /// OIDC `max_age`: re-authenticate when the sign-in is older (seconds).
    pub max_age: Option<i64>,
    /// OIDC `login_hint`: pre-fills the username on the sign-in page.
    pub login_hint: Option<String>,
    /// RFC 8707 resource indicators: the audiences the tokens are for.
    pub resource: Vec<String>,
}

impl AuthorizationRequest {
    /// Whether a session signed in at `auth_time` is too old or the client
    /// asked for a fresh sign-in (`prompt=login`, `max_age`).
    pub fn needs_fresh_sign_in(&self, auth_time: UnixTime, now: UnixTime) -> bool {
        self.prompt.login
            || self
                .max_age
                .is_some_and(|max_age| now - auth_time > max_age)
    }
}

/// OpenID Connect `prompt` values tessera honours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A refused authorization request.
#[derive(Debug)]
pub enum Rejection {
    /// Client or redirect URI invalid: show an error page and never redirect
    /// (RFC 6749 §4.1.2.1).
    Page(String),
    /// Everything else: back to the validated redirect URI with `error`.
    Redirect(ErrorRedirect),
    /// The database failed.
    Failed(OAuthError),
}

impl From<StorageError> for Rejection {
    fn from(error: StorageError) -> Self {
        Self::Failed(error.into())
    }
}

/// An error to send back to the client's redirect URI.
#[derive(Debug)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: OAuthError,
}

impl ErrorRedirect {
    /// The `Location`: the redirect URI with `error`, `error_description`,
    /// `state` and `iss` (RFC 9207) added to its query.
    pub fn location(&self, issuer: &str) -> String {
        let mut pairs = vec![
            ("error", self.error.code().to_owned()),
            ("error_description", self.error.description()),
        ];
        if let Some(state) = &self.state {
            pairs.push(("state", state.clone()));
        }
        pairs.push(("iss", issuer.to_owned()));
        append_query(&self.redirect_uri, &pairs)
    }
}

/// Appends form-encoded pairs to a URI's query, keeping what is there.
pub fn append_query(uri: &str, pairs: &[(&str, String)]) -> String {
    let encoded = serde_urlencoded::to_string(pairs).unwrap_or_default();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{encoded}")
}

/// VSCHAR (RFC 6749 Appendix A): printable ASCII including space.
fn is_vschar_text(value: &str) -> bool {
    value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Validates an authorization request. Needs the client row, so it runs on
/// the blocking pool.
pub fn validate(
    conn: &mut DbConnection,
    settings: &Settings,
    params: &Params,
) -> Result<AuthorizationRequest, Rejection> {
    // 1. The client and the redirect URI, before anything else (RU-02..RU-08).
    for key in ["client_id", "redirect_uri"] {
        if params.is_repeated(key) {
            return Err(Rejection::Page(format!("The request repeats `{key}`.")));
        }
    }
    let Some(raw_client_id) = params.get("client_id") else {
        return Err(Rejection::Page(
            "The request names no client (client_id is missing).".to_owned(),
        ));
    };
    let client = ClientId::parse(raw_client_id)
        .map(|id| clients::find(conn, &id))
        .transpose()?
        .flatten()
        .filter(|client| !client.disabled)
        .ok_or_else(|| {
            Rejection::Page("The application that sent you here is not registered.".to_owned())
        })?;
    let (redirect_uri, redirect_uri_sent) = match params.get("redirect_uri") {
        Some(requested) => match client.redirect_uri_for(requested) {
            Some(_) => (requested.to_owned(), true),
            None => {
                return Err(Rejection::Page(
                    "The application asked to send you to an address it has not registered."
                        .to_owned(),
                ));
            }
        },
        None if client.redirect_uris.len() == 1 => {
            (client.redirect_uris[0].as_str().to_owned(), false)
        }
        None => {
            return Err(Rejection::Page(
                "The request does not say where to return (redirect_uri is missing).".to_owned(),
            ));
        }
    };

    // 2. From here on, errors go back to the client with state and iss.
    let state = params.get("state").map(str::to_owned);
    let state_ok = state
        .as_deref()
        .is_none_or(|s| s.len() <= MAX_STATE_LEN && is_vschar_text(s));
    let redirect = |error: OAuthError, keep_state: bool| {
        Rejection::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            state: if keep_state { state.clone() } else { None },
            error,
        })
    };
    if !state_ok {
        return Err(redirect(
            OAuthError::InvalidRequest(
                "state must be at most 1024 printable ASCII characters".to_owned(),
            ),
            false,
        ));
    }
    if let Some(key) = params.repeated_key() {
        return Err(redirect(
            OAuthError::InvalidRequest(format!("the parameter {key} is repeated")),
            true,
        ));
    }
    match params.get("response_type") {
        None => {
            return Err(redirect(
                OAuthError::InvalidRequest("response_type is missing".to_owned()),
                true,
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(redirect(
                OAuthError::UnsupportedResponseType(
                    "only response_type=code is supported".to_owned(),
                ),
                true,
            ));
        }
    }
    if let Some(mode) = params.get("response_mode")
        && mode != "query"
    {
        return Err(redirect(
            OAuthError::InvalidRequest("only response_mode=query is supported".to_owned()),
            true,
        ));
    }
    if !client.may_use(GrantType::AuthorizationCode) {
        return Err(redirect(
            OAuthError::UnauthorizedClient(
                "this client may not use the authorization code grant".to_owned(),
            ),
            true,
        ));
    }
    let scope = requested_scope(settings, &client, params.get("scope"))
        .map_err(|error| redirect(error, true))?;
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(challenge), method) => Some(
            PkceChallenge::parse(challenge, method)
                .map_err(|e| redirect(OAuthError::InvalidRequest(e.to_string()), true))?,
        ),
        (None, Some(_)) => {
            return Err(redirect(
                OAuthError::InvalidRequest(
                    "code_challenge_method without code_challenge".to_owned(),
                ),
                true,
            ));
        }
        (None, None) if client.client_type == ClientType::Public => {
            return Err(redirect(
                OAuthError::InvalidRequest(
                    "public clients must use PKCE (code_challenge with S256)".to_owned(),
                ),
                true,
            ));
        }
        (None, None) => None,
    };
    let nonce = params.get("nonce").map(str::to_owned);
    if let Some(nonce) = &nonce
        && (nonce.len() > MAX_STATE_LEN || !is_vschar_text(nonce))
    {
        return Err(redirect(
            OAuthError::InvalidRequest(
                "nonce must be at most 1024 printable ASCII characters".to_owned(),
            ),
            true,
        ));
    }
    let prompt = parse_prompt(params.get("prompt")).map_err(|error| redirect(error, true))?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .ok()
                .filter(|v| (0..=10_i64.pow(9)).contains(v))
                .ok_or_else(|| {
                    redirect(
                        OAuthError::InvalidRequest(
                            "max_age must be a number of seconds".to_owned(),
                        ),
                        true,
                    )
                })?,
        ),
    };
    let login_hint = params
        .get("login_hint")
        .filter(|hint| hint.len() <= 256 && is_vschar_text(hint))
        .map(str::to_owned);
    let resource = params.all("resource").to_vec();
    super::resolve_audience(settings, &scope, &resource, &[])
        .map_err(|error| redirect(error, true))?;
    Ok(AuthorizationRequest {
        client,
        redirect_uri,
        redirect_uri_sent,
        scope,
        state,
        code_challenge,
        nonce,
        prompt,
        max_age,
        login_hint,
        resource,
    })
}

/// The requested scope: well-formed (SC-02), declared in configuration and
/// allowed for the client (SC-01).
fn requested_scope(
    settings: &Settings,
    client: &Client,
    raw: Option<&str>,
) -> Result<ScopeSet, OAuthError> {
    let Some(raw) = raw else {
        return Err(OAuthError::InvalidScope(
            "the request asks for no scope".to_owned(),
        ));
    };
    let scope = ScopeSet::parse(raw).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
    if scope.is_empty() {
        return Err(OAuthError::InvalidScope(
            "the request asks for no scope".to_owned(),
        ));
    }
    let known = ScopeSet::from_tokens(settings.scopes.iter().map(|s| s.name.clone()));
    if !scope.is_subset(&known) || !scope.is_subset(&client.allowed_scopes) {
        return Err(OAuthError::InvalidScope(
            "the client may not ask for one or more of these scopes".to_owned(),
        ));
    }
    Ok(scope)
}

fn parse_prompt(raw: Option<&str>) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    for value in raw.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            _ => {
                return Err(OAuthError::InvalidRequest(
                    "unknown prompt value".to_owned(),
                ));
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(OAuthError::InvalidRequest(
            "prompt=none cannot be combined with other values".to_owned(),
        ));
    }
    Ok(prompt)
}

/// What the endpoint does for a signed-in user.
#[derive(Debug)]
pub enum Decision {
    /// Redirect to the client with a code (consent already given).
    Issued { location: String },
    /// Show the consent page for `new_scopes` (the rest was granted before).
    AskConsent {
        pending_id: SecretToken,
        client: Box<Client>,
        new_scopes: ScopeSet,
        granted_scopes: ScopeSet,
    },
}

/// Decides for a signed-in user: an immediate code when every requested
/// scope was granted before (remembered consent) or the client is first
/// party, otherwise a pending request and the consent page.
pub fn decide(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    request: AuthorizationRequest,
    user_id: &UserId,
    auth_time: UnixTime,
    now: UnixTime,
) -> Result<Decision, Rejection> {
    let existing = grants::find_active_for(conn, Some(user_id), &request.client.id)?;
    let granted = existing
        .as_ref()
        .map(|g| g.scope.clone())
        .unwrap_or_default();
    let covered = request.scope.is_subset(&granted) && !request.prompt.consent;
    if covered || request.client.first_party {
        let location = issue_code(
            conn,
            settings,
            keys,
            &request,
            user_id,
            auth_time,
            &request.scope,
            now,
        )?;
        return Ok(Decision::Issued { location });
    }
    if request.prompt.none {
        return Err(Rejection::Redirect(ErrorRedirect {
            redirect_uri: request.redirect_uri,
            state: request.state,
            error: OAuthError::ConsentRequired(
                "the user has not approved this application yet".to_owned(),
            ),
        }));
    }
    let pending_id =
        SecretToken::generate().map_err(|e| Rejection::Failed(OAuthError::Internal(e.into())))?;
    let parked = PendingAuthorization {
        user_id: user_id.clone(),
        client_id: request.client.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_sent: request.redirect_uri_sent,
        scope: request.scope.clone(),
        state: request.state.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        auth_time,
        expires_at: now + PENDING_TTL_SECS,
        resource: request.resource.clone(),
    };
    pending::insert(conn, &pending_id.digest(), &parked, now)?;
    let new_scopes = if request.prompt.consent {
        request.scope.clone()
    } else {
        request.scope.difference(&granted)
    };
    Ok(Decision::AskConsent {
        pending_id,
        client: Box::new(request.client),
        new_scopes,
        granted_scopes: request.scope.intersection(&granted),
    })
}

/// The user's answer on the consent page.
pub enum ConsentAnswer {
    /// Approve, with the scopes left ticked.
    Allow(ScopeSet),
    Deny,
}

/// Answers a pending request. Only the stored request counts: the form
/// names the request and the ticked scopes, nothing else (CS-03). A request
/// that belongs to another user is refused; an unknown or expired one too.
pub fn answer(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    pending_id: &SecretToken,
    user_id: &UserId,
    answer: ConsentAnswer,
    now: UnixTime,
) -> Result<String, AnswerError> {
    let digest = pending_id.digest();
    match pending::owner(conn, &digest, now)? {
        None => return Err(AnswerError::Expired),
        Some(owner) if &owner != user_id => return Err(AnswerError::NotYours),
        Some(_) => {}
    }
    let Some(parked) = pending::take(conn, &digest, now)? else {
        return Err(AnswerError::Expired);
    };
    let Some(client) = clients::find(conn, &parked.client_id)?.filter(|c| !c.disabled) else {
        return Err(AnswerError::Expired);
    };
    let request = AuthorizationRequest {
        client,
        redirect_uri: parked.redirect_uri,
        redirect_uri_sent: parked.redirect_uri_sent,
        scope: parked.scope,
        state: parked.state,
        code_challenge: parked.code_challenge,
        nonce: parked.nonce,
        prompt: Prompt::default(),
        max_age: None,
        login_hint: None,
        resource: parked.resource,
    };
    match answer {
        ConsentAnswer::Deny => {
            tracing::info!(client.id = %request.client.id, user.id = %user_id, "consent denied");
            crate::storage::audit::record(
                conn,
                "consent.denied",
                Some(user_id.as_str()),
                Some(request.client.id.as_str()),
                Some(&request.scope.to_string()),
                now,
            )?;
            Ok(ErrorRedirect {
                redirect_uri: request.redirect_uri,
                state: request.state,
                error: OAuthError::AccessDenied("the user denied the request".to_owned()),
            }
            .location(settings.server.issuer_str()))
        }
        ConsentAnswer::Allow(ticked) => {
            // Scopes already granted stay; new ones only as ticked, and never
            // more than were requested.
            let existing = grants::find_active_for(conn, Some(user_id), &request.client.id)?;
            let granted = existing.map(|g| g.scope).unwrap_or_default();
            let mut approved = request.scope.intersection(&ticked.union(&granted));
            // openid is what the request is about; it cannot be unticked.
            if request.scope.contains("openid") {
                approved = approved.union(&ScopeSet::from_tokens(["openid"]));
            }
            if approved.is_empty() {
                return Ok(ErrorRedirect {
                    redirect_uri: request.redirect_uri,
                    state: request.state,
                    error: OAuthError::AccessDenied("the user approved no scope".to_owned()),
                }
                .location(settings.server.issuer_str()));
            }
            tracing::info!(client.id = %request.client.id, user.id = %user_id, scope = %approved, "consent granted");
            crate::storage::audit::record(
                conn,
                "consent.granted",
                Some(user_id.as_str()),
                Some(request.client.id.as_str()),
                Some(&approved.to_string()),
                now,
            )?;
            issue_code(
                conn,
                settings,
                keys,
                &request,
                user_id,
                parked.auth_time,
                &approved,
                now,
            )
            .map_err(AnswerError::from)
        }
    }
}

/// Why a consent answer was refused.
#[derive(Debug)]
pub enum AnswerError {
    /// Unknown, expired or already answered.
    Expired,
    /// The pending request belongs to someone else.
    NotYours,
    Failed(OAuthError),
}

impl From<StorageError> for AnswerError {
    fn from(error: StorageError) -> Self {
        Self::Failed(error.into())
    }
}

impl From<Rejection> for AnswerError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Failed(error) => Self::Failed(error),
            Rejection::Page(message) => {
                Self::Failed(OAuthError::Internal(anyhow::anyhow!(message)))
            }
            Rejection::Redirect(redirect) => Self::Failed(redirect.error),
        }
    }
}

/// Records the grant (merging new scopes into an existing one: incremental
/// consent) and issues a code through oxide-auth's authorization flow.
/// Returns the `Location` with `code`, `state` and `iss`.
#[expect(
    clippy::too_many_arguments,
    reason = "one flow's inputs, passed from one caller"
)]
fn issue_code(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    request: &AuthorizationRequest,
    user_id: &UserId,
    auth_time: UnixTime,
    scope: &ScopeSet,
    now: UnixTime,
) -> Result<String, Rejection> {
    let grant = match grants::find_active_for(conn, Some(user_id), &request.client.id)? {
        Some(grant) => {
            let merged = grant.scope.union(scope);
            if merged != grant.scope {
                grants::update_scope(conn, &grant.id, &merged, now)?;
            }
            grant
        }
        None => grants::insert(conn, Some(user_id), &request.client.id, scope, now)?,
    };
    let context = FlowContext {
        client: request.client.clone(),
        redirect_uri: Some(request.redirect_uri.clone()),
        redirect_uri_sent: request.redirect_uri_sent,
        scope: scope.clone(),
        refresh_scope: scope.clone(),
        grant_id: grant.id.clone(),
        subject: user_id.as_str().to_owned(),
        user_id: Some(user_id.as_str().to_owned()),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        auth_time,
        consumed_code: None,
        presented_refresh: None,
        issue_refresh_token: false,
        refresh_absolute_expires_at: now,
        audience: super::resolve_audience(settings, scope, &request.resource, &[])
            .map_err(Rejection::Failed)?,
        resource: request.resource.clone(),
        now,
    };
    let mut query = HashMap::from([
        ("response_type".to_owned(), "code".to_owned()),
        (
            "client_id".to_owned(),
            request.client.id.as_str().to_owned(),
        ),
        ("redirect_uri".to_owned(), request.redirect_uri.clone()),
        (
            "scope".to_owned(),
            super::primitives::oxide_scope(scope).to_string(),
        ),
    ]);
    if let Some(state) = &request.state {
        query.insert("state".to_owned(), state.clone());
    }
    let endpoint = FlowEndpoint {
        registrar: PreparedRegistrar { context: &context },
        store: Store {
            conn: Some(conn),
            context: &context,
            keys,
            settings,
        },
        owner: Some(user_id.as_str().to_owned()),
    };
    let response = AuthorizationFlow::prepare(endpoint)
        .and_then(|mut flow| flow.execute(FlowRequest::with_query(query)))
        .map_err(|failure| {
            Rejection::Failed(OAuthError::Internal(anyhow::anyhow!(
                "authorization flow failed: {failure:?}"
            )))
        })?;
    let location = response
        .get_headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            Rejection::Failed(OAuthError::Internal(anyhow::anyhow!(
                "the authorization flow did not redirect"
            )))
        })?;
    // RFC 9207: tell the client which issuer answered.
    Ok(append_query(
        &location,
        &[("iss", settings.server.issuer_str().to_owned())],
    ))
}
