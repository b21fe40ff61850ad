//! The authorization endpoint's protocol: validate the request in RFC order
//! (client and redirect URI first, so nothing is ever sent to an
//! unvalidated URI), decide between sign-in, consent and an immediate code,
//! and issue codes through oxide-auth's authorization flow.

mod begin;
mod consent;

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

pub use begin::{ChoiceReason, Seen, SessionView, Step, begin};
pub use consent::{AnswerError, ConsentAnswer, answer};

/// Longest `state` and `nonce` accepted (bytes).
const MAX_STATE_LEN: usize = 1024;
/// How long a consent page stays answerable.
const PENDING_TTL_SECS: i64 = 600;
/// Live pending consents kept per user; older ones are dropped (review F9).
pub const PENDING_PER_USER: i64 = 20;

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
    /// `sub` of a valid OIDC `id_token_hint`: the account the client expects.
    pub hint_subject: Option<String>,
}

impl AuthorizationRequest {
    /// Whether the client asked for a sign-in made for this request
    /// (`prompt=login` or any `max_age`).
    pub fn asks_for_fresh_sign_in(&self) -> bool {
        self.prompt.login || self.max_age.is_some()
    }

    /// An error for the client, sent to the validated redirect URI.
    pub fn error(&self, error: OAuthError) -> Rejection {
        Rejection::Redirect(ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
            unverified_client: unverified_client_name(&self.client),
        })
    }

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
    /// Show the account chooser even when someone is signed in.
    pub select_account: bool,
}

/// A refused authorization request.
#[derive(Debug)]
pub enum Rejection {
    /// Client or redirect URI invalid: show an error page and never redirect
    /// (RFC 6749 §4.1.2.1).
    Page(String),
    /// Everything else: back to the validated redirect URI with `error`.
    Redirect(ErrorRedirect),
    /// Too many sign-in round trips parked from one address.
    TooMany { retry_after_secs: i64 },
    /// The database failed.
    Failed(OAuthError),
}

/// The name of a client registered by a third party (developer pages or
/// DCR) that no operator verified: an error redirect or a logout redirect to
/// it needs a signed-in user or an interstitial page first, or tessera is an
/// open redirector for anyone who signs up (RFC 9700 §4.11.2, RU-10).
pub fn unverified_client_name(client: &Client) -> Option<String> {
    let self_registered =
        client.owner_user_id.is_some() || client.registration_token_hash.is_some();
    (self_registered && !client.verified && !client.first_party).then(|| client.name.clone())
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
    /// Set for unverified self-registered clients: without a session the
    /// browser sees an interstitial naming the destination instead.
    pub unverified_client: Option<String>,
}

impl ErrorRedirect {
    /// The destination's origin, for the interstitial page.
    pub fn destination_origin(&self) -> String {
        destination_origin(&self.redirect_uri)
    }

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

/// `scheme://host[:port]` of an absolute URI (what a person should check
/// before following a link), or the URI itself when it has no host.
pub fn destination_origin(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .filter(|url| url.has_host())
        .map_or_else(|| uri.to_owned(), |url| url.origin().ascii_serialization())
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
    keys: &KeySet,
    params: &Params,
) -> Result<AuthorizationRequest, Rejection> {
    // 1. The client and the redirect URI, before anything else (RU-02..RU-08).
    // SECURITY-CASES ER-01: never name the parameter; names are request input.
    if ["client_id", "redirect_uri"]
        .iter()
        .any(|key| params.is_repeated(key))
    {
        return Err(Rejection::Page(
            "The request repeats a parameter that may appear only once.".to_owned(),
        ));
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
    let unverified_client = unverified_client_name(&client);
    let redirect = |error: OAuthError, keep_state: bool| {
        Rejection::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            state: if keep_state { state.clone() } else { None },
            error,
            unverified_client: unverified_client.clone(),
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
    // SECURITY-CASES ER-01: the repeated parameter's name is request input.
    if params.repeated_key().is_some() {
        return Err(redirect(
            OAuthError::InvalidRequest("a parameter that may appear once is repeated".to_owned()),
            true,
        ));
    }
    // OIDC Core §6: request objects are not supported (yet); say so rather
    // than ignore parameters the client meant to count.
    if params.get("request").is_some() {
        return Err(redirect(
            OAuthError::RequestNotSupported("request objects are not supported".to_owned()),
            true,
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(redirect(
            OAuthError::RequestUriNotSupported("request_uri is not supported".to_owned()),
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
    let hint_subject = match params.get("id_token_hint") {
        None => None,
        Some(hint) => Some(hint_subject(settings, keys, hint, &client).ok_or_else(|| {
            redirect(
                OAuthError::InvalidRequest(
                    "the id_token_hint is not an ID token this server issued to this client"
                        .to_owned(),
                ),
                true,
            )
        })?),
    };
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
        hint_subject,
    })
}

/// `sub` of an `id_token_hint` signed by tessera for `client`. Expired
/// hints count: a hint names an account, it proves nothing (OIDC Core
/// §3.1.2.1), exactly as at logout.
fn hint_subject(settings: &Settings, keys: &KeySet, hint: &str, client: &Client) -> Option<String> {
    let claims = keys.verify_id_token_hint(hint, settings.server.issuer_str())?;
    let for_client = match &claims["aud"] {
        serde_json::Value::String(aud) => aud == client.id.as_str(),
        serde_json::Value::Array(auds) => auds
            .iter()
            .any(|aud| aud.as_str() == Some(client.id.as_str())),
        _ => false,
    };
    if !for_client {
        return None;
    }
    claims["sub"].as_str().map(str::to_owned)
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
            "select_account" => prompt.select_account = true,
            _ => {
                return Err(OAuthError::InvalidRequest(
                    "unknown prompt value".to_owned(),
                ));
            }
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
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
        /// The APIs the tokens will be for, when the request named
        /// resources (RFC 8707): consent names them (review F2).
        audiences: Vec<String>,
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
        return Err(request.error(OAuthError::ConsentRequired(
            "the user has not approved this application yet".to_owned(),
        )));
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
    pending::insert(conn, &pending_id.digest(), &parked, PENDING_PER_USER, now)?;
    let audiences = if request.resource.is_empty() {
        Vec::new()
    } else {
        super::resolve_audience(settings, &request.scope, &request.resource, &[])
            .map_err(|error| request.error(error))?
    };
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
        audiences,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    // SECURITY-CASES RU-10: the interstitial names where the link goes.
    #[test]
    fn the_destination_origin_is_what_a_person_should_check() {
        for (uri, origin) in [
            ("https://evil.example/cb?x=1", "https://evil.example"),
            (
                "https://client.example@evil.example/cb",
                "https://evil.example",
            ),
            ("http://127.0.0.1:51004/cb", "http://127.0.0.1:51004"),
            ("https://EVIL.example:443/cb", "https://evil.example"),
            ("myapp.example:/cb", "myapp.example:/cb"),
        ] {
            assert_eq!(destination_origin(uri), origin, "{uri}");
        }
    }

    #[test]
    fn prompt_values_combine_as_oidc_allows() {
        let both = parse_prompt(Some("login consent")).expect("valid");
        assert!(both.login && both.consent && !both.none);
        assert!(parse_prompt(Some("none login")).is_err());
        assert!(parse_prompt(Some("<script>")).is_err());
        assert_eq!(parse_prompt(None).expect("valid"), Prompt::default());
    }

    // SECURITY-CASES ER-01: error descriptions never carry request text.
    #[test]
    fn an_error_redirect_carries_no_request_text_but_state() {
        let redirect = ErrorRedirect {
            redirect_uri: "https://client.example/cb".to_owned(),
            state: Some("s".to_owned()),
            error: OAuthError::InvalidRequest(
                "a parameter that may appear once is repeated".to_owned(),
            ),
            unverified_client: None,
        };
        let location = redirect.location("https://tessera.example");
        assert!(location.starts_with("https://client.example/cb?error=invalid_request&"));
        assert!(location.contains("state=s"));
    }
}
