//! Registering clients: validation of their metadata, generated ids and
//! secrets (at least 256 bits, shown once, stored as SHA-256).

use crate::config::Settings;
use crate::domain::{
    Client, ClientId, ClientType, GrantType, RedirectUri, ScopeSet, SecretToken, TokenAuthMethod,
    UnixTime, text,
};
use crate::storage::{DbConnection, StorageError, clients};

/// What an operator or developer asks for.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistration {
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    /// Empty: authorization_code and refresh_token (plus client_credentials
    /// for confidential clients).
    pub grant_types: Vec<String>,
    pub homepage_uri: Option<String>,
    pub first_party: bool,
    pub always_issue_refresh_token: bool,
    pub owner_user_id: Option<String>,
    /// Makes the client a resource server that may introspect tokens for
    /// this audience.
    pub introspection_audience: Option<String>,
    /// Where OpenID Connect logout may return the browser.
    pub post_logout_redirect_uris: Vec<String>,
    pub description: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    /// Registered by a third party (developer pages, DCR): scopes are limited
    /// to `registration.allowed_scopes`, never first-party, never a resource
    /// server.
    pub self_registered: bool,
    /// RFC 7591 `token_endpoint_auth_method`, when the registration named
    /// one (it must agree with `public`).
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
}

/// A problem with the registration, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// `position` counts from 1 in the list as submitted; the URI itself is
    /// never repeated back (ER-01: no request input in error messages).
    #[error("invalid redirect URI ({list} #{position}): {reason}")]
    RedirectUri {
        list: &'static str,
        position: usize,
        reason: String,
    },
    #[error("{0}")]
    Metadata(String),
    /// A problem with one named field (developer pages show it there).
    #[error("{field}: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl RegistrationError {
    /// The form field at fault, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::RedirectUri { list, .. } => Some(list),
            Self::Field { field, .. } => Some(field),
            _ => None,
        }
    }

    /// RFC 7591 §3.2.2 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RedirectUri { .. } => "invalid_redirect_uri",
            _ => "invalid_client_metadata",
        }
    }
}

/// A display URI (homepage, logo, policy, terms): absolute https, or http
/// on loopback for development.
/// Only printable ASCII without spaces is stored (SECURITY-CASES IV-05):
/// `url` would strip or encode a control character, but the text stored is
/// the text submitted.
fn check_display_uri(field: &'static str, value: &Option<String>) -> Result<(), RegistrationError> {
    let Some(value) = value else { return Ok(()) };
    let ok = value.len() <= 2000
        && value.bytes().all(|b| (0x21..0x7f).contains(&b))
        && url::Url::parse(value).is_ok_and(|u| {
            u.scheme() == "https"
                || (u.scheme() == "http"
                    && matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")))
        });
    if ok {
        Ok(())
    } else {
        Err(RegistrationError::Field {
            field,
            message: "must be an absolute https URL".to_owned(),
        })
    }
}

/// Parses a list of redirect URIs, naming a bad one by its position.
fn parse_uris(list: &'static str, uris: &[String]) -> Result<Vec<RedirectUri>, RegistrationError> {
    uris.iter()
        .enumerate()
        .map(|(index, uri)| {
            RedirectUri::parse_registration(uri).map_err(|e| RegistrationError::RedirectUri {
                list,
                position: index + 1,
                reason: e.0,
            })
        })
        .collect()
}

/// A new client and its secret, which is never stored and never shown again.
#[derive(Debug)]
pub struct Registered {
    pub client: Client,
    pub secret: Option<SecretToken>,
}

pub fn validate(
    settings: &Settings,
    registration: &ClientRegistration,
    now: UnixTime,
) -> Result<Registered, RegistrationError> {
    let metadata = |m: &str| RegistrationError::Metadata(m.to_owned());
    // What users read on the consent page: no control, invisible or
    // look-alike mixed-script characters (a name that imitates another app).
    let name = text::display_name(&registration.name).map_err(|e| RegistrationError::Field {
        field: "name",
        message: e.to_string(),
    })?;
    // A third party's app may not pass for the server itself.
    if registration.self_registered && name.to_lowercase().contains("tessera") {
        return Err(RegistrationError::Field {
            field: "name",
            message: "must not contain the name of this server".to_owned(),
        });
    }
    if name.is_empty() || name.chars().count() > 100 {
        return Err(RegistrationError::Field {
            field: "name",
            message: "must have 1 to 100 characters".to_owned(),
        });
    }
    if let Some(description) = &registration.description {
        text::display_paragraph(description).map_err(|e| RegistrationError::Field {
            field: "description",
            message: e.to_string(),
        })?;
        if description.chars().count() > 500 {
            return Err(RegistrationError::Field {
                field: "description",
                message: "must have at most 500 characters".to_owned(),
            });
        }
    }
    check_display_uri("homepage_uri", &registration.homepage_uri)?;
    check_display_uri("logo_uri", &registration.logo_uri)?;
    check_display_uri("policy_uri", &registration.policy_uri)?;
    check_display_uri("tos_uri", &registration.tos_uri)?;
    let redirect_uris = parse_uris("redirect_uris", &registration.redirect_uris)?;
    let post_logout_redirect_uris = parse_uris(
        "post_logout_redirect_uris",
        &registration.post_logout_redirect_uris,
    )?;
    let scopes =
        ScopeSet::parse(&registration.scopes.join(" ")).map_err(|e| metadata(&e.to_string()))?;
    let known = ScopeSet::from_tokens(settings.scopes.iter().map(|s| s.name.clone()));
    // Only scope names the configuration declares are named in a message;
    // an unknown one is request input and is not repeated (ER-01).
    let unknown = scopes.difference(&known);
    if registration.self_registered {
        let allowed = ScopeSet::from_tokens(settings.registration.allowed_scopes.iter().cloned());
        let refused = scopes.difference(&allowed);
        if !refused.is_empty() {
            let named = refused.intersection(&known);
            let message = if named.is_empty() {
                "one or more of these scopes do not exist here".to_owned()
            } else {
                format!("self-registered apps may not ask for: {named}")
            };
            return Err(RegistrationError::Field {
                field: "scope",
                message,
            });
        }
    }
    if !unknown.is_empty() {
        return Err(RegistrationError::Metadata(
            "one or more scopes are not declared (declare them under [[scopes]] in the configuration)"
                .to_owned(),
        ));
    }
    let client_type = if registration.public {
        ClientType::Public
    } else {
        ClientType::Confidential
    };
    let mut grant_types = if registration.grant_types.is_empty() {
        let mut defaults = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        if client_type == ClientType::Confidential && redirect_uris.is_empty() {
            defaults = vec![GrantType::ClientCredentials];
        }
        defaults
    } else {
        registration
            .grant_types
            .iter()
            .map(|g| {
                GrantType::parse(g).ok_or_else(|| {
                    RegistrationError::Metadata(
                        "grant_types may hold authorization_code, refresh_token and client_credentials"
                            .to_owned(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    grant_types.sort();
    grant_types.dedup();
    if client_type == ClientType::Public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(metadata(
            "public clients cannot use client_credentials: they hold no secret",
        ));
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(metadata(
            "the authorization_code grant needs at least one redirect URI",
        ));
    }

    let id = ClientId::generate().map_err(|e| metadata(&e.to_string()))?;
    let secret = match client_type {
        ClientType::Confidential => {
            Some(SecretToken::generate().map_err(|e| metadata(&e.to_string()))?)
        }
        ClientType::Public => None,
    };
    let client = Client {
        id,
        name,
        client_type,
        secret_hash: secret.as_ref().map(|s| s.digest().as_str().to_owned()),
        redirect_uris,
        allowed_scopes: scopes,
        grant_types,
        homepage_uri: registration.homepage_uri.clone(),
        logo_uri: registration.logo_uri.clone(),
        policy_uri: registration.policy_uri.clone(),
        tos_uri: registration.tos_uri.clone(),
        verified: false,
        first_party: registration.first_party && !registration.self_registered,
        always_issue_refresh_token: registration.always_issue_refresh_token,
        access_token_ttl_secs: None,
        owner_user_id: registration.owner_user_id.clone(),
        disabled: false,
        created_at: now,
        introspection_audience: if registration.self_registered {
            None
        } else {
            registration.introspection_audience.clone()
        },
        post_logout_redirect_uris,
        description: registration.description.clone(),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        registration_token_hash: None,
        token_endpoint_auth_method: registration.token_endpoint_auth_method,
    };
    Ok(Registered { client, secret })
}

/// Validates and stores a client; nothing is stored when a field is wrong.
pub fn register(
    conn: &mut DbConnection,
    settings: &Settings,
    registration: &ClientRegistration,
    now: UnixTime,
) -> Result<Registered, RegistrationError> {
    let registered = validate(settings, registration, now)?;
    clients::insert(conn, &registered.client, now)?;
    Ok(registered)
}

/// Validates and stores an app for its owner (developer pages), at most
/// `registration.max_apps_per_user` of them (review F9).
pub fn register_owned(
    conn: &mut DbConnection,
    settings: &Settings,
    registration: &ClientRegistration,
    owner: &crate::domain::UserId,
    now: UnixTime,
) -> Result<Registered, RegistrationError> {
    let registered = validate(settings, registration, now)?;
    let max = settings.registration.max_apps_per_user;
    if !clients::insert_owned(conn, &registered.client, owner, max, now)? {
        return Err(RegistrationError::Field {
            field: "form",
            message: format!(
                "You have reached the limit of {max} apps. Delete one you no longer use first."
            ),
        });
    }
    Ok(registered)
}

/// Issues a new secret for a confidential client; the previous one keeps
/// working for `overlap_secs` so a deployment can roll over.
pub fn rotate_secret(
    conn: &mut DbConnection,
    id: &ClientId,
    overlap_secs: i64,
    now: UnixTime,
) -> Result<Option<SecretToken>, RegistrationError> {
    let Some(client) = clients::find(conn, id)? else {
        return Ok(None);
    };
    if !client.is_confidential() {
        return Err(RegistrationError::Metadata(
            "public clients have no secret".to_owned(),
        ));
    }
    let secret = SecretToken::generate().map_err(|e| RegistrationError::Metadata(e.to_string()))?;
    clients::rotate_secret_hash(
        conn,
        &client,
        secret.digest().as_str(),
        now + overlap_secs,
        now,
    )?;
    Ok(Some(secret))
}
