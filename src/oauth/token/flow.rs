//! The token path's use of oxide-auth: runs an RFC 6749 flow over
//! tessera's primitives and reads the response it built, then adds what
//! oxide-auth does not know (scope, ID token).

use oxide_auth::endpoint::{AccessTokenFlow, ClientCredentialsFlow, RefreshFlow};
use serde_json::Value;

use super::TokenResponse;
use crate::config::Settings;
use crate::oauth::error::OAuthError;
use crate::oauth::keys::KeySet;
use crate::oauth::primitives::{
    FlowContext, FlowEndpoint, FlowFailure, FlowRequest, PreparedRegistrar, Store,
};
use crate::storage::{DbConnection, StorageError, users};

/// Which RFC 6749 flow oxide-auth runs: the grant files name the flow, only
/// this file names oxide-auth on the token path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Flow {
    /// §4.1.3: a code for tokens.
    AccessToken,
    /// §6: a refresh token for new tokens.
    Refresh,
    /// §4.4: the client's own token.
    ClientCredentials,
}

pub(super) fn internal(what: &str) -> OAuthError {
    OAuthError::Internal(anyhow::anyhow!("could not prepare {what} for oxide-auth"))
}

/// Runs an oxide-auth flow over tessera's primitives and reads the JSON it
/// answered. tessera has checked everything the flow checks, so a refusal
/// from oxide-auth here is a bug, reported as a server error.
pub(super) fn run_flow(
    mut conn: Option<&mut DbConnection>,
    settings: &Settings,
    keys: &KeySet,
    context: &FlowContext,
    request: FlowRequest,
    flow: Flow,
) -> Result<TokenResponse, OAuthError> {
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
    let response = match flow {
        Flow::AccessToken => {
            AccessTokenFlow::prepare(endpoint).and_then(|mut flow| flow.execute(request))
        }
        Flow::Refresh => RefreshFlow::prepare(endpoint).and_then(|mut flow| flow.execute(request)),
        Flow::ClientCredentials => {
            ClientCredentialsFlow::prepare(endpoint).and_then(|mut flow| flow.execute(request))
        }
    };
    let response = response.map_err(|failure: FlowFailure| {
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
        let request = crate::oauth::id_token::IdTokenRequest {
            user: &user,
            client_id: context.client.id.as_str(),
            scope: &context.scope,
            nonce: context.nonce.as_deref(),
            auth_time: context.auth_time,
            access_token: &access_token,
            now: context.now,
        };
        let id_token = crate::oauth::id_token::issue(keys, settings, &request).map_err(|e| {
            OAuthError::Internal(anyhow::anyhow!("signing an ID token failed: {e:?}"))
        })?;
        json.insert("id_token".to_owned(), Value::from(id_token));
    }
    Ok(json)
}
