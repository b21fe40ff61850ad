//! OAuth clients: identifiers, types, and the grant types they may use.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{RedirectUri, ScopeSet, UnixTime};

/// A client identifier: 128 random bits, base64url (22 characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A `client_id` as presented: 1 to 128 characters of the URL-safe
    /// alphabet tessera issues, so control characters, quotes and SQL never
    /// get further than this.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 6749 §2.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientType {
    /// Can keep a secret: authenticates with it at the token endpoint.
    Confidential,
    /// Runs on the user's device (native or single-page app): no secret,
    /// PKCE required.
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "confidential" => Some(Self::Confidential),
            "public" => Some(Self::Public),
            _ => None,
        }
    }
}

/// The grant types tessera implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == raw)
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2,
/// `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client: no authentication, `client_id` in the request.
    None,
}

impl TokenAuthMethod {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// A registered client.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    /// SHA-256 (hex) of the secret, for confidential clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub allowed_scopes: ScopeSet,
    pub grant_types: Vec<GrantType>,
    pub homepage_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    /// Verified by an operator: the consent page says so.
    pub verified: bool,
    /// Operated by the same party as tessera: consent is skipped.
    pub first_party: bool,
    /// Gets a refresh token even without the `offline_access` scope.
    pub always_issue_refresh_token: bool,
    pub access_token_ttl_secs: Option<i64>,
    pub owner_user_id: Option<String>,
    pub disabled: bool,
    pub created_at: UnixTime,
    /// Set for resource servers: they may introspect tokens whose `aud`
    /// contains this value.
    pub introspection_audience: Option<String>,
    /// Where RP-initiated logout may return the browser (exact strings).
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// What the app does, for the consent and developer pages.
    pub description: Option<String>,
    /// The secret before the last rotation, accepted until it expires so a
    /// deployment can roll over.
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<UnixTime>,
    /// SHA-256 of the RFC 7592 registration access token, for clients
    /// registered through `/oauth2/register`.
    pub registration_token_hash: Option<String>,
    /// The authentication method registered through RFC 7591; `None` for a
    /// confidential client means either secret method (`client_secret_basic`
    /// or `client_secret_post`).
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.client_type == ClientType::Confidential
    }

    /// The method to report (RFC 7591 §3.2.1): the registered one, else the
    /// RFC's default for a confidential client and `none` for a public one.
    pub fn auth_method(&self) -> TokenAuthMethod {
        self.token_endpoint_auth_method
            .unwrap_or(match self.client_type {
                ClientType::Confidential => TokenAuthMethod::ClientSecretBasic,
                ClientType::Public => TokenAuthMethod::None,
            })
    }

    pub fn may_use(&self, grant_type: GrantType) -> bool {
        self.grant_types.contains(&grant_type)
    }

    /// Whether `digest` (SHA-256 hex of a presented secret) is this client's
    /// secret, or its previous one within the rotation overlap. Compared in
    /// constant time.
    pub fn secret_matches(&self, digest: &str, now: UnixTime) -> bool {
        let current = self
            .secret_hash
            .as_deref()
            .is_some_and(|stored| super::constant_time_eq(digest, stored));
        let previous = self
            .previous_secret_expires_at
            .is_some_and(|until| until > now)
            && self
                .previous_secret_hash
                .as_deref()
                .is_some_and(|stored| super::constant_time_eq(digest, stored));
        current | previous
    }

    /// Whether `other` shows users the same app and sends them to the same
    /// places: name, description, homepage, logo, policy and terms links,
    /// redirect and post-logout redirect URIs. A change to any of them
    /// clears an operator's verification (SECURITY-CASES VF-01): a verified
    /// badge vouches for what was verified, not for whatever replaces it.
    pub fn presents_as(&self, other: &Client) -> bool {
        fn uris(list: &[RedirectUri]) -> Vec<&str> {
            list.iter().map(RedirectUri::as_str).collect()
        }
        self.name == other.name
            && self.description == other.description
            && self.homepage_uri == other.homepage_uri
            && self.logo_uri == other.logo_uri
            && self.policy_uri == other.policy_uri
            && self.tos_uri == other.tos_uri
            && uris(&self.redirect_uris) == uris(&other.redirect_uris)
            && uris(&self.post_logout_redirect_uris) == uris(&other.post_logout_redirect_uris)
    }

    /// The registered URI that admits `requested`, if any.
    pub fn redirect_uri_for(&self, requested: &str) -> Option<&RedirectUri> {
        self.redirect_uris.iter().find(|uri| uri.admits(requested))
    }
}
