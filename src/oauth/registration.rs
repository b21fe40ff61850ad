//! Dynamic Client Registration (RFC 7591) and its management protocol
//! (RFC 7592). Self-registered clients start unverified and may ask only for
//! `registration.allowed_scopes`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::clients::{self as registry, ClientRegistration, RegistrationError};
use crate::config::{RegistrationMode, Settings};
use crate::domain::{
    Client, ClientId, SecretToken, TokenAuthMethod, TokenDigest, UnixTime, constant_time_eq,
};
use crate::storage::{DbConnection, StorageError, clients, grants, registration_tokens, throttles};

/// Client metadata as RFC 7591 §2 defines it. Unknown members are ignored
/// (§2: the server "MUST ignore any client metadata it does not understand").
#[derive(Debug, Default, Deserialize)]
pub struct ClientMetadata {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub scope: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// RFC 7592 §2.2: an update names the client it updates; it must be the
    /// one in the URL.
    pub client_id: Option<String>,
    /// OIDC Registration: only `public` subjects exist here.
    pub subject_type: Option<String>,
    /// OIDC Registration: ID tokens are signed with `keys.id_token_algorithm`.
    pub id_token_signed_response_alg: Option<String>,
    /// Signed or encrypted userinfo, request objects, encrypted ID tokens and
    /// key material for `private_key_jwt` are not supported: a client that
    /// asks for them is refused rather than silently given something else.
    pub userinfo_signed_response_alg: Option<String>,
    pub request_object_signing_alg: Option<String>,
    pub id_token_encrypted_response_alg: Option<String>,
    pub userinfo_encrypted_response_alg: Option<String>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
}

/// Why a registration request failed.
#[derive(Debug)]
pub enum DcrError {
    /// `registration.mode = "off"`.
    Disabled,
    /// Missing, wrong or used-up initial access token, or wrong registration
    /// access token (RFC 6750 `invalid_token`).
    InvalidToken,
    TooMany {
        retry_after_secs: i64,
    },
    Invalid(RegistrationError),
    Storage(StorageError),
}

impl From<StorageError> for DcrError {
    fn from(error: StorageError) -> Self {
        Self::Storage(error)
    }
}

impl From<RegistrationError> for DcrError {
    fn from(error: RegistrationError) -> Self {
        match error {
            RegistrationError::Storage(storage) => Self::Storage(storage),
            other => Self::Invalid(other),
        }
    }
}

fn invalid(message: &str) -> DcrError {
    DcrError::Invalid(RegistrationError::Metadata(message.to_owned()))
}

/// Refuses metadata asking for what tessera does not do (RFC 7591 §3.2.2:
/// `invalid_client_metadata`), instead of registering the client and
/// quietly behaving otherwise.
fn refuse_unsupported(settings: &Settings, metadata: &ClientMetadata) -> Result<(), DcrError> {
    if metadata
        .subject_type
        .as_deref()
        .is_some_and(|kind| kind != "public")
    {
        return Err(invalid(
            "subject_type must be public: pairwise subjects are not supported",
        ));
    }
    if metadata
        .id_token_signed_response_alg
        .as_deref()
        .is_some_and(|alg| alg != settings.keys.id_token_algorithm.as_str())
    {
        return Err(invalid(&format!(
            "id_token_signed_response_alg must be {}",
            settings.keys.id_token_algorithm.as_str()
        )));
    }
    let unsupported = [
        (
            "userinfo_signed_response_alg",
            metadata.userinfo_signed_response_alg.is_some(),
        ),
        (
            "request_object_signing_alg",
            metadata.request_object_signing_alg.is_some(),
        ),
        (
            "id_token_encrypted_response_alg",
            metadata.id_token_encrypted_response_alg.is_some(),
        ),
        (
            "userinfo_encrypted_response_alg",
            metadata.userinfo_encrypted_response_alg.is_some(),
        ),
        ("jwks_uri", metadata.jwks_uri.is_some()),
        ("jwks", metadata.jwks.is_some()),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, present)| *present) {
        return Err(invalid(&format!("{name} is not supported by this server")));
    }
    Ok(())
}

/// Translates RFC 7591 metadata into tessera's registration, checking that
/// grant types, response types and the authentication method agree. A
/// registration without `scope` gets `registration.allowed_scopes` (what
/// relying-party libraries expect: they send no `scope` and then ask for
/// `openid profile email offline_access`); the response says which.
fn to_registration(
    settings: &Settings,
    metadata: &ClientMetadata,
) -> Result<ClientRegistration, DcrError> {
    refuse_unsupported(settings, metadata)?;
    let method = match metadata.token_endpoint_auth_method.as_deref() {
        // RFC 7591 §2: absent means client_secret_basic.
        None => TokenAuthMethod::ClientSecretBasic,
        Some(raw) => TokenAuthMethod::parse(raw).ok_or_else(|| {
            invalid(
                "token_endpoint_auth_method must be client_secret_basic, client_secret_post or none",
            )
        })?,
    };
    let public = method == TokenAuthMethod::None;
    let grant_types = metadata
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    let response_types = metadata.response_types.clone().unwrap_or_else(|| {
        if grant_types.iter().any(|g| g == "authorization_code") {
            vec!["code".to_owned()]
        } else {
            Vec::new()
        }
    });
    if response_types.iter().any(|r| r != "code") {
        return Err(invalid("only the response type `code` is supported"));
    }
    let wants_code = grant_types.iter().any(|g| g == "authorization_code");
    if wants_code != response_types.iter().any(|r| r == "code") {
        return Err(invalid(
            "grant_types authorization_code and response_types code go together",
        ));
    }
    let name = metadata.client_name.clone().unwrap_or_default();
    if name.trim().is_empty() {
        return Err(DcrError::Invalid(RegistrationError::Field {
            field: "client_name",
            message: "client_name is required: users see it on the consent page".to_owned(),
        }));
    }
    Ok(ClientRegistration {
        name,
        public,
        redirect_uris: metadata.redirect_uris.clone(),
        scopes: match metadata.scope.as_deref() {
            Some(scope) => scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            None => settings.registration.allowed_scopes.clone(),
        },
        grant_types,
        homepage_uri: metadata.client_uri.clone(),
        logo_uri: metadata.logo_uri.clone(),
        policy_uri: metadata.policy_uri.clone(),
        tos_uri: metadata.tos_uri.clone(),
        post_logout_redirect_uris: metadata.post_logout_redirect_uris.clone(),
        self_registered: true,
        token_endpoint_auth_method: Some(method),
        ..ClientRegistration::default()
    })
}

/// The client's metadata as RFC 7591 §3.2.1 returns it (absent members
/// omitted rather than null).
pub fn client_document(settings: &Settings, client: &Client) -> Value {
    let mut document = json!({
        "client_id": client.id.as_str(),
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "post_logout_redirect_uris": client.post_logout_redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": if client.may_use(crate::domain::GrantType::AuthorizationCode) { vec!["code"] } else { Vec::new() },
        "token_endpoint_auth_method": client.auth_method().as_str(),
        "scope": client.allowed_scopes.to_string(),
        "client_uri": client.homepage_uri,
        "logo_uri": client.logo_uri,
        "policy_uri": client.policy_uri,
        "tos_uri": client.tos_uri,
        "registration_client_uri": format!("{}/oauth2/register/{}", settings.server.issuer_str(), client.id),
    });
    if let Value::Object(members) = &mut document {
        members.retain(|_, value| !value.is_null());
    }
    document
}

/// `POST /oauth2/register`: checks the mode, the initial access token and
/// the per-address limit, then registers. Returns the 201 body.
pub fn register(
    conn: &mut DbConnection,
    settings: &Settings,
    metadata: &ClientMetadata,
    initial_token: Option<&str>,
    client_ip: &str,
    now: UnixTime,
) -> Result<Value, DcrError> {
    let initial_token = match settings.registration.mode {
        RegistrationMode::Off => return Err(DcrError::Disabled),
        RegistrationMode::Token => {
            let token = initial_token.ok_or(DcrError::InvalidToken)?;
            let digest = TokenDigest::of(token.as_bytes());
            // Checked here, spent below with the insert: a registration that
            // fails spends nothing (review F12).
            if !registration_tokens::is_usable(conn, &digest, now)? {
                return Err(DcrError::InvalidToken);
            }
            Some(digest)
        }
        RegistrationMode::Open => None,
    };
    let key = format!(
        "register-ip:{}",
        crate::auth::throttle::address_key(client_ip)
    );
    let record = throttles::record_failure(conn, &key, now, now - 3600)?;
    if record.failures > settings.registration.requests_per_ip_per_hour {
        return Err(DcrError::TooMany {
            retry_after_secs: (record.window_started_at + 3600 - now).max(1),
        });
    }
    let registration = to_registration(settings, metadata)?;
    let registered = registry::validate(settings, &registration, now)?;
    let access_token = SecretToken::generate().map_err(|e| invalid(&e.to_string()))?;
    let mut client = registered.client;
    client.registration_token_hash = Some(access_token.digest().as_str().to_owned());
    // One transaction: the initial access token's use is spent only with a
    // stored client; a parallel registration that took its last use first
    // leaves nothing behind.
    if !clients::insert_paid(conn, &client, initial_token.as_ref(), now)? {
        return Err(DcrError::InvalidToken);
    }
    tracing::info!(client.id = %client.id, client.ip = %client_ip, "client registered (RFC 7591)");
    let mut body = client_document(settings, &client);
    body["registration_access_token"] = json!(access_token.expose());
    if let Some(secret) = registered.secret {
        body["client_secret"] = json!(secret.expose());
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(body)
}

/// The client named in the URL, if `token` is its registration access token.
fn managed_client(
    conn: &mut DbConnection,
    client_id: &str,
    token: Option<&str>,
) -> Result<Client, DcrError> {
    let token = token.ok_or(DcrError::InvalidToken)?;
    let digest = TokenDigest::of(token.as_bytes());
    let client = ClientId::parse(client_id)
        .map(|id| clients::find(conn, &id))
        .transpose()?
        .flatten()
        .ok_or(DcrError::InvalidToken)?;
    let matches = client
        .registration_token_hash
        .as_deref()
        .is_some_and(|stored| constant_time_eq(stored, digest.as_str()));
    if matches {
        Ok(client)
    } else {
        Err(DcrError::InvalidToken)
    }
}

/// RFC 7592 §2.1: read.
pub fn read(
    conn: &mut DbConnection,
    settings: &Settings,
    client_id: &str,
    token: Option<&str>,
) -> Result<Value, DcrError> {
    let client = managed_client(conn, client_id, token)?;
    Ok(client_document(settings, &client))
}

/// RFC 7592 §2.2: replace the metadata (id, type and secret stay).
pub fn update(
    conn: &mut DbConnection,
    settings: &Settings,
    client_id: &str,
    token: Option<&str>,
    metadata: &ClientMetadata,
    now: UnixTime,
) -> Result<Value, DcrError> {
    let client = managed_client(conn, client_id, token)?;
    if metadata
        .client_id
        .as_deref()
        .is_some_and(|named| named != client.id.as_str())
    {
        return Err(invalid(
            "client_id in the body must be the client being updated",
        ));
    }
    let registration = to_registration(settings, metadata)?;
    if registration.public == client.is_confidential() {
        return Err(invalid(
            "token_endpoint_auth_method cannot change between public and confidential",
        ));
    }
    let validated = registry::validate(settings, &registration, now)?.client;
    let updated = Client {
        id: client.id.clone(),
        client_type: client.client_type,
        secret_hash: client.secret_hash.clone(),
        ..validated
    };
    clients::update_metadata(conn, &updated, now)?;
    let stored = clients::find(conn, &client.id)?.ok_or(DcrError::InvalidToken)?;
    Ok(client_document(settings, &stored))
}

/// RFC 7592 §2.3: delete; every grant of the client is revoked first.
pub fn delete(
    conn: &mut DbConnection,
    client_id: &str,
    token: Option<&str>,
    now: UnixTime,
) -> Result<(), DcrError> {
    let client = managed_client(conn, client_id, token)?;
    grants::revoke_for_client(conn, &client.id, "client deleted its registration", now)?;
    clients::delete(conn, &client.id)?;
    tracing::info!(client.id = %client.id, "client deleted (RFC 7592)");
    Ok(())
}

/// Mints an initial access token (`tessera registration-token create`).
pub fn create_initial_token(
    conn: &mut DbConnection,
    uses: i32,
    expires_in_secs: i64,
    now: UnixTime,
) -> Result<SecretToken, DcrError> {
    let token = SecretToken::generate().map_err(|e| invalid(&e.to_string()))?;
    registration_tokens::insert(conn, &token.digest(), uses, now + expires_in_secs, now)?;
    Ok(token)
}
