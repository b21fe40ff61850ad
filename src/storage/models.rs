//! Row structs and their conversions to domain types. They stay inside
//! `storage`.

use diesel::prelude::*;

use super::schema::{sessions, throttles, users};
use crate::domain::{DisplayName, Email, User, UserId, Username};

#[derive(Queryable, Selectable, Insertable, Debug)]
#[diesel(table_name = users)]
pub(super) struct UserRow {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl UserRow {
    pub fn into_user(self) -> User {
        User {
            id: UserId::from_stored(self.id),
            username: Username::from_stored(self.username),
            email: self.email.map(Email::from_stored),
            display_name: self.display_name.map(DisplayName::from_stored),
            disabled: self.disabled,
            created_at: self.created_at,
        }
    }
}

#[derive(Queryable, Selectable, Insertable, Debug)]
#[diesel(table_name = sessions)]
pub(super) struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Debug)]
#[diesel(table_name = throttles)]
pub(super) struct ThrottleRow {
    pub key: String,
    pub failures: i32,
    pub window_started_at: i64,
    pub last_failure_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = super::schema::clients)]
pub(super) struct ClientRow {
    pub id: String,
    pub name: String,
    pub client_type: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: String,
    pub allowed_scopes: String,
    pub grant_types: String,
    pub homepage_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub verified: bool,
    pub first_party: bool,
    pub always_issue_refresh_token: bool,
    pub access_token_ttl_secs: Option<i64>,
    pub owner_user_id: Option<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub introspection_audience: Option<String>,
    pub post_logout_redirect_uris: String,
    pub description: Option<String>,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    pub registration_token_hash: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
}

impl ClientRow {
    pub fn from_client(client: &crate::domain::Client, now: i64) -> Self {
        Self {
            id: client.id.as_str().to_owned(),
            name: client.name.clone(),
            client_type: client.client_type.as_str().to_owned(),
            secret_hash: client.secret_hash.clone(),
            redirect_uris: client
                .redirect_uris
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            allowed_scopes: client.allowed_scopes.to_string(),
            grant_types: client
                .grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            homepage_uri: client.homepage_uri.clone(),
            logo_uri: client.logo_uri.clone(),
            policy_uri: client.policy_uri.clone(),
            tos_uri: client.tos_uri.clone(),
            verified: client.verified,
            first_party: client.first_party,
            always_issue_refresh_token: client.always_issue_refresh_token,
            access_token_ttl_secs: client.access_token_ttl_secs,
            owner_user_id: client.owner_user_id.clone(),
            disabled: client.disabled,
            created_at: now,
            updated_at: now,
            introspection_audience: client.introspection_audience.clone(),
            post_logout_redirect_uris: client
                .post_logout_redirect_uris
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            description: client.description.clone(),
            previous_secret_hash: client.previous_secret_hash.clone(),
            previous_secret_expires_at: client.previous_secret_expires_at,
            registration_token_hash: client.registration_token_hash.clone(),
            token_endpoint_auth_method: client
                .token_endpoint_auth_method
                .map(|m| m.as_str().to_owned()),
        }
    }

    pub fn into_client(self) -> crate::domain::Client {
        use crate::domain::{Client, ClientId, ClientType, GrantType, RedirectUri, ScopeSet};
        Client {
            id: ClientId::from_stored(self.id),
            name: self.name,
            client_type: ClientType::parse(&self.client_type).unwrap_or(ClientType::Confidential),
            secret_hash: self.secret_hash,
            redirect_uris: self
                .redirect_uris
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| RedirectUri::from_stored(l.to_owned()))
                .collect(),
            allowed_scopes: ScopeSet::from_stored(&self.allowed_scopes),
            grant_types: self
                .grant_types
                .split(' ')
                .filter_map(GrantType::parse)
                .collect(),
            homepage_uri: self.homepage_uri,
            logo_uri: self.logo_uri,
            policy_uri: self.policy_uri,
            tos_uri: self.tos_uri,
            verified: self.verified,
            first_party: self.first_party,
            always_issue_refresh_token: self.always_issue_refresh_token,
            access_token_ttl_secs: self.access_token_ttl_secs,
            owner_user_id: self.owner_user_id,
            disabled: self.disabled,
            created_at: self.created_at,
            introspection_audience: self.introspection_audience,
            post_logout_redirect_uris: self
                .post_logout_redirect_uris
                .lines()
                .filter(|l| !l.is_empty())
                .map(|l| RedirectUri::from_stored(l.to_owned()))
                .collect(),
            description: self.description,
            previous_secret_hash: self.previous_secret_hash,
            previous_secret_expires_at: self.previous_secret_expires_at,
            registration_token_hash: self.registration_token_hash,
            token_endpoint_auth_method: self
                .token_endpoint_auth_method
                .as_deref()
                .and_then(crate::domain::TokenAuthMethod::parse),
        }
    }
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = super::schema::grants)]
pub(super) struct GrantRow {
    pub id: String,
    pub user_id: Option<String>,
    pub client_id: String,
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = super::schema::authorization_codes)]
pub(super) struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub resource: Option<String>,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = super::schema::pending_authorizations)]
pub(super) struct PendingRow {
    pub id_hash: String,
    pub user_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub resource: Option<String>,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = super::schema::authorization_resumes)]
pub(super) struct ResumeRow {
    pub id_hash: String,
    pub query: String,
    pub session_hash: Option<String>,
    pub browser_hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = super::schema::refresh_tokens)]
pub(super) struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub parent_hash: Option<String>,
    pub scope: String,
    pub created_at: i64,
    pub idle_expires_at: i64,
    pub absolute_expires_at: i64,
    pub rotated_at: Option<i64>,
    /// RFC 8707 resources granted at authorization, space-separated.
    pub resource: Option<String>,
    /// When the user authenticated (OIDC `auth_time`); None before 000011.
    pub auth_time: Option<i64>,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = super::schema::signing_keys)]
pub(super) struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub private_key_encrypted: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub activates_at: i64,
}

#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = super::schema::known_browsers)]
pub(super) struct KnownBrowserRow {
    pub token_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}
