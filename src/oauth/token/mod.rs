//! The token endpoint's protocol: client authentication, then the
//! `authorization_code`, `refresh_token` and `client_credentials` grants.
//! tessera checks codes, PKCE and refresh-token state itself (atomically),
//! then runs oxide-auth's flow over primitives that issue the tokens.

mod authorization_code;
mod client_credentials;
mod flow;
mod refresh_token;

use serde_json::Value;

use super::client_auth::{authenticate, presented_client};
use super::error::OAuthError;
use super::{Params, keys::KeySet};
use crate::config::Settings;
use crate::domain::{GrantType, UnixTime};
use crate::storage::cache::Access;

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
        GrantType::AuthorizationCode => authorization_code::exchange_code(
            access.db()?,
            settings,
            keys,
            client,
            secret,
            params,
            now,
            events,
        ),
        GrantType::RefreshToken => refresh_token::refresh(
            access.db()?,
            settings,
            keys,
            client,
            secret,
            params,
            now,
            events,
        ),
        GrantType::ClientCredentials => client_credentials::client_credentials(
            access, settings, keys, client, secret, params, now,
        ),
    }
}

pub(super) fn invalid_grant() -> OAuthError {
    OAuthError::InvalidGrant(
        "the code or refresh token is invalid, expired, revoked or was issued to another client"
            .to_owned(),
    )
}
