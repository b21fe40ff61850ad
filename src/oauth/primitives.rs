//! tessera's oxide-auth primitives. Every request is validated by tessera
//! first (client, redirect URI, scope, PKCE, code and refresh-token state);
//! oxide-auth then runs the RFC 6749 flow over these primitives, which store
//! codes and issue tokens on one borrowed database connection, inside one
//! blocking call per request.

use std::borrow::Cow;
use std::collections::HashMap;

use oxide_auth::endpoint::{
    Endpoint, OAuthError as OxideError, OwnerConsent, OwnerSolicitor, QueryParameter, Scopes,
    Solicitation, Template, WebRequest,
};
use oxide_auth::primitives::authorizer::Authorizer;
use oxide_auth::primitives::grant::Grant as OxideGrant;
use oxide_auth::primitives::issuer::{IssuedToken, Issuer, RefreshedToken, TokenType};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, PreGrant, RegisteredUrl, Registrar, RegistrarError,
};
use oxide_auth::primitives::scope::Scope as OxideScope;
use oxide_auth_actix::{OAuthResponse, WebError};

use super::keys::{AccessClaims, Audience, KeySet};
use crate::config::Settings;
use crate::domain::{
    Client, ClientType, PkceChallenge, ScopeSet, SecretToken, TokenDigest, UnixTime,
};
use crate::storage::DbConnection;
use crate::storage::codes::{self, CodeRecord};
use crate::storage::refresh_tokens::{self, RefreshRecord};

/// A request as oxide-auth reads it, built by tessera from parameters it has
/// already validated (so duplicates and junk never reach oxide-auth).
pub struct FlowRequest {
    query: HashMap<String, String>,
    body: HashMap<String, String>,
    authorization: Option<String>,
}

impl FlowRequest {
    pub fn with_query(query: HashMap<String, String>) -> Self {
        Self {
            query,
            body: HashMap::new(),
            authorization: None,
        }
    }

    /// A token request authenticating `client` the way oxide-auth expects:
    /// confidential clients with Basic, public ones by `client_id` alone.
    pub fn token_request(
        mut body: HashMap<String, String>,
        client: &Client,
        secret: Option<&str>,
    ) -> Self {
        use base64::Engine as _;
        let authorization = match (client.client_type, secret) {
            (ClientType::Confidential, Some(secret)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", client.id))
            )),
            _ => {
                body.insert("client_id".to_owned(), client.id.as_str().to_owned());
                None
            }
        };
        Self {
            query: HashMap::new(),
            body,
            authorization,
        }
    }
}

impl WebRequest for FlowRequest {
    type Error = WebError;
    type Response = OAuthResponse;

    fn query(&mut self) -> Result<Cow<'_, dyn QueryParameter + 'static>, WebError> {
        Ok(Cow::Borrowed(&self.query))
    }

    fn urlbody(&mut self) -> Result<Cow<'_, dyn QueryParameter + 'static>, WebError> {
        Ok(Cow::Borrowed(&self.body))
    }

    fn authheader(&mut self) -> Result<Option<Cow<'_, str>>, WebError> {
        Ok(self.authorization.as_deref().map(Cow::Borrowed))
    }
}

/// What one flow knows before oxide-auth runs, and what it produced.
pub struct FlowContext {
    pub client: Client,
    /// The redirect URI exactly as requested (authorization) or as bound to
    /// the code (token exchange).
    pub redirect_uri: Option<String>,
    pub redirect_uri_sent: bool,
    /// The scope to grant (authorization) or to put in the access token.
    pub scope: ScopeSet,
    /// The scope a new refresh token carries (on a narrowed refresh, the
    /// full original scope, RT-05).
    pub refresh_scope: ScopeSet,
    /// The grant (authorization) every code and token belongs to.
    pub grant_id: String,
    /// `sub` of the access token: the user id, or the client id.
    pub subject: String,
    pub user_id: Option<String>,
    pub code_challenge: Option<PkceChallenge>,
    pub nonce: Option<String>,
    pub auth_time: UnixTime,
    /// The code tessera already consumed, and its grant, for the exchange.
    pub consumed_code: Option<(String, OxideGrant)>,
    /// The refresh token tessera already claimed for rotation.
    pub presented_refresh: Option<(String, OxideGrant, RefreshRecord)>,
    /// Whether to issue a refresh token with the access token.
    pub issue_refresh_token: bool,
    /// When the refresh-token family dies whatever happens.
    pub refresh_absolute_expires_at: UnixTime,
    pub audience: Vec<String>,
    /// RFC 8707 resources named at authorization, stored with the code and
    /// with every refresh token of the family (which may narrow the
    /// audience to some of them, never widen it).
    pub resource: Vec<String>,
    pub now: UnixTime,
}

/// The redirect URI oxide-auth binds a client-credentials request to: it
/// requires one, and none is ever used.
const NO_REDIRECT: &str = "urn:ietf:wg:oauth:2.0:oob";

/// A registrar over the one client tessera has already validated.
pub struct PreparedRegistrar<'a> {
    pub context: &'a FlowContext,
}

impl Registrar for PreparedRegistrar<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        if bound.client_id != self.context.client.id.as_str() {
            return Err(RegistrarError::Unspecified);
        }
        let raw = self.context.redirect_uri.as_deref().unwrap_or(NO_REDIRECT);
        let exact: ExactUrl = raw.parse().map_err(|_| {
            tracing::error!("a validated redirect URI did not parse for oxide-auth");
            RegistrarError::PrimitiveError
        })?;
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(RegisteredUrl::Exact(exact)),
        })
    }

    fn negotiate(
        &self,
        bound: BoundClient<'_>,
        _scope: Option<OxideScope>,
    ) -> Result<PreGrant, RegistrarError> {
        Ok(PreGrant {
            client_id: bound.client_id.into_owned(),
            redirect_uri: bound.redirect_uri.into_owned(),
            scope: oxide_scope(&self.context.scope),
        })
    }

    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        let client = &self.context.client;
        if client_id != client.id.as_str() {
            return Err(RegistrarError::Unspecified);
        }
        match (client.client_type, passphrase, &client.secret_hash) {
            (ClientType::Public, None, _) => Ok(()),
            (ClientType::Confidential, Some(secret), Some(_)) => {
                let digest = TokenDigest::of(secret);
                if client.secret_matches(digest.as_str(), self.context.now) {
                    Ok(())
                } else {
                    Err(RegistrarError::Unspecified)
                }
            }
            _ => Err(RegistrarError::Unspecified),
        }
    }
}

/// oxide-auth wants a non-empty scope; an empty one becomes a scope that
/// grants nothing tessera knows.
pub fn oxide_scope(scope: &ScopeSet) -> OxideScope {
    let text = if scope.is_empty() {
        "none".to_owned()
    } else {
        scope.to_string()
    };
    text.parse().unwrap_or_else(|_| {
        #[expect(clippy::expect_used, reason = "a literal single token always parses")]
        "none".parse().expect("single-token scope parses")
    })
}

/// Codes and tokens over a borrowed connection.
pub struct Store<'a> {
    /// None when answering from memory (client credentials): such a flow
    /// stores nothing.
    pub conn: Option<&'a mut DbConnection>,
    pub context: &'a FlowContext,
    pub keys: &'a KeySet,
    pub settings: &'a Settings,
}

impl Store<'_> {
    fn access_token(&self) -> Result<(String, UnixTime), ()> {
        let context = self.context;
        let ttl = context
            .client
            .access_token_ttl_secs
            .unwrap_or(self.settings.tokens.access_token_ttl_secs);
        let claims = AccessClaims {
            iss: self.settings.server.issuer_str().to_owned(),
            sub: context.subject.clone(),
            aud: Audience::from_list(context.audience.clone()),
            client_id: context.client.id.as_str().to_owned(),
            scope: context.scope.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: context.now,
            nbf: context.now,
            exp: context.now + ttl,
            gid: context.grant_id.clone(),
        };
        let token = self.keys.sign_access_token(&claims).map_err(|error| {
            tracing::error!(error = ?error, "signing an access token failed");
        })?;
        Ok((token, claims.exp))
    }

    fn new_refresh_token(&mut self, parent: Option<&TokenDigest>) -> Result<String, ()> {
        let context = self.context;
        let token = SecretToken::generate().map_err(|error| {
            tracing::error!(error = %error, "no randomness for a refresh token");
        })?;
        let idle = context.now + self.settings.tokens.refresh_token_idle_ttl_secs;
        let record = RefreshRecord {
            grant_id: context.grant_id.clone(),
            client_id: context.client.id.clone(),
            scope: context.refresh_scope.clone(),
            idle_expires_at: idle.min(context.refresh_absolute_expires_at),
            absolute_expires_at: context.refresh_absolute_expires_at,
            rotated_at: None,
            // The family keeps what its authorization granted (AU-02) and
            // when the user authenticated (OIDC Core §12.2).
            resource: context.resource.clone(),
            auth_time: Some(context.auth_time),
        };
        let Some(conn) = self.conn.as_deref_mut() else {
            tracing::error!("a refresh token was to be issued without a database connection");
            return Err(());
        };
        refresh_tokens::insert(conn, &token.digest(), parent, &record, context.now).map_err(
            |error| {
                tracing::error!(error = ?error, "storing a refresh token failed");
            },
        )?;
        Ok(token.expose().to_owned())
    }
}

fn chrono_time(at: UnixTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(at, 0).unwrap_or_default()
}

impl Authorizer for Store<'_> {
    /// Stores a new single-use code bound to client, redirect URI, scope,
    /// PKCE challenge and nonce; only its SHA-256 is kept.
    fn authorize(&mut self, _grant: OxideGrant) -> Result<String, ()> {
        let context = self.context;
        let code = SecretToken::generate().map_err(|error| {
            tracing::error!(error = %error, "no randomness for an authorization code");
        })?;
        let (Some(user_id), Some(redirect_uri)) = (&context.user_id, &context.redirect_uri) else {
            tracing::error!("an authorization code was requested without a user or redirect URI");
            return Err(());
        };
        let record = CodeRecord {
            grant_id: context.grant_id.clone(),
            client_id: context.client.id.clone(),
            user_id: crate::domain::UserId::from_stored(user_id.clone()),
            redirect_uri: redirect_uri.clone(),
            redirect_uri_sent: context.redirect_uri_sent,
            scope: context.scope.clone(),
            code_challenge: context.code_challenge.clone(),
            nonce: context.nonce.clone(),
            auth_time: context.auth_time,
            expires_at: context.now + self.settings.tokens.authorization_code_ttl_secs,
            resource: context.resource.clone(),
        };
        let Some(conn) = self.conn.as_deref_mut() else {
            tracing::error!("an authorization code was to be issued without a database connection");
            return Err(());
        };
        codes::insert(conn, &code.digest(), &record, context.now).map_err(|error| {
            tracing::error!(error = ?error, "storing an authorization code failed");
        })?;
        Ok(code.expose().to_owned())
    }

    /// Hands oxide-auth the code tessera consumed already (atomically, before
    /// the flow); any other code is unknown.
    fn extract(&mut self, code: &str) -> Result<Option<OxideGrant>, ()> {
        Ok(match &self.context.consumed_code {
            Some((consumed, grant)) if crate::domain::constant_time_eq(consumed, code) => {
                Some(grant.clone())
            }
            _ => None,
        })
    }
}

impl Issuer for Store<'_> {
    fn issue(&mut self, _grant: OxideGrant) -> Result<IssuedToken, ()> {
        let (token, exp) = self.access_token()?;
        let refresh = if self.context.issue_refresh_token {
            Some(self.new_refresh_token(None)?)
        } else {
            None
        };
        Ok(IssuedToken {
            token,
            refresh,
            until: chrono_time(exp),
            token_type: TokenType::Bearer,
        })
    }

    /// Rotation: the presented token was claimed before the flow ran; this
    /// issues its successor in the same family and a new access token.
    fn refresh(&mut self, _refresh: &str, _grant: OxideGrant) -> Result<RefreshedToken, ()> {
        let parent = self
            .context
            .presented_refresh
            .as_ref()
            .map(|(token, _, _)| TokenDigest::of(token.as_bytes()));
        let (token, exp) = self.access_token()?;
        let refresh = self.new_refresh_token(parent.as_ref())?;
        Ok(RefreshedToken {
            token,
            refresh: Some(refresh),
            until: chrono_time(exp),
            token_type: TokenType::Bearer,
        })
    }

    fn recover_token<'a>(&'a self, _token: &'a str) -> Result<Option<OxideGrant>, ()> {
        Ok(None)
    }

    fn recover_refresh<'a>(&'a self, token: &'a str) -> Result<Option<OxideGrant>, ()> {
        Ok(match &self.context.presented_refresh {
            Some((presented, grant, _)) if crate::domain::constant_time_eq(presented, token) => {
                Some(grant.clone())
            }
            _ => None,
        })
    }
}

/// The grant oxide-auth expects to find behind a code or refresh token.
pub fn oxide_grant(context: &FlowContext, until: UnixTime) -> Result<OxideGrant, url::ParseError> {
    let redirect = context.redirect_uri.as_deref().unwrap_or(NO_REDIRECT);
    let redirect_uri = url::Url::parse(redirect)?;
    Ok(OxideGrant {
        owner_id: context.subject.clone(),
        client_id: context.client.id.as_str().to_owned(),
        scope: oxide_scope(&context.scope),
        redirect_uri,
        until: chrono_time(until),
        extensions: Default::default(),
    })
}

/// An endpoint made of the primitives above, for one flow.
pub struct FlowEndpoint<'a> {
    pub registrar: PreparedRegistrar<'a>,
    pub store: Store<'a>,
    /// The user who approved (authorization flow).
    pub owner: Option<String>,
}

/// Why an oxide-auth flow failed after tessera's own checks passed.
#[derive(Debug)]
pub enum FlowFailure {
    OAuth(OxideError),
    Web(WebError),
}

impl OwnerSolicitor<FlowRequest> for FlowEndpoint<'_> {
    fn check_consent(
        &mut self,
        _: &mut FlowRequest,
        _: Solicitation<'_>,
    ) -> OwnerConsent<OAuthResponse> {
        match &self.owner {
            Some(owner) => OwnerConsent::Authorized(owner.clone()),
            None => OwnerConsent::Denied,
        }
    }
}

impl Endpoint<FlowRequest> for FlowEndpoint<'_> {
    type Error = FlowFailure;

    fn registrar(&self) -> Option<&dyn Registrar> {
        Some(&self.registrar)
    }

    fn authorizer_mut(&mut self) -> Option<&mut dyn Authorizer> {
        Some(&mut self.store)
    }

    fn issuer_mut(&mut self) -> Option<&mut dyn Issuer> {
        Some(&mut self.store)
    }

    fn owner_solicitor(&mut self) -> Option<&mut dyn OwnerSolicitor<FlowRequest>> {
        Some(self)
    }

    fn scopes(&mut self) -> Option<&mut dyn Scopes<FlowRequest>> {
        None
    }

    fn response(
        &mut self,
        _request: &mut FlowRequest,
        _kind: Template<'_>,
    ) -> Result<OAuthResponse, FlowFailure> {
        Ok(OAuthResponse::ok())
    }

    fn error(&mut self, error: OxideError) -> FlowFailure {
        FlowFailure::OAuth(error)
    }

    fn web_error(&mut self, error: WebError) -> FlowFailure {
        FlowFailure::Web(error)
    }
}
