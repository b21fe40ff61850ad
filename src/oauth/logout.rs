//! OpenID Connect RP-initiated logout 1.0: validate where the browser may
//! go after signing out.

use super::Params;
use super::authorize::append_query;
use super::keys::KeySet;
use crate::config::Settings;
use crate::domain::ClientId;
use crate::storage::{DbConnection, StorageError, clients};

/// A validated logout request.
#[derive(Debug, Default)]
pub struct LogoutRequest {
    /// The registered `post_logout_redirect_uri` with `state` appended.
    pub redirect: Option<String>,
    /// `sub` of a valid `id_token_hint`.
    pub hint_subject: Option<String>,
    pub client_name: Option<String>,
    /// Set when the client is self-registered and unverified: without a
    /// signed-in user the browser sees an interstitial, not a redirect
    /// (RFC 9700 §4.11.2, RU-10).
    pub unverified_client: Option<String>,
    /// The parameters to carry through the confirmation form.
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub id_token_hint: Option<String>,
}

/// Validates the parameters; an error is a message for an error page (the
/// browser is never sent to an unvalidated address).
pub fn validate(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    params: &Params,
) -> Result<Result<LogoutRequest, String>, StorageError> {
    // SECURITY-CASES ER-01: never name the parameter; names are request input.
    if params.repeated_key().is_some() {
        return Ok(Err(
            "The request repeats a parameter that may appear only once.".to_owned(),
        ));
    }
    let mut request = LogoutRequest {
        state: params
            .get("state")
            .filter(|s| s.len() <= 1024)
            .map(str::to_owned),
        ..LogoutRequest::default()
    };
    let mut client_id = params.get("client_id").map(str::to_owned);
    if let Some(hint) = params.get("id_token_hint") {
        let Some(claims) = keys.verify_id_token_hint(hint, settings.server.issuer_str()) else {
            return Ok(Err(
                "The sign-out request carries an ID token tessera did not issue.".to_owned(),
            ));
        };
        let audience = claims["aud"].as_str().map(str::to_owned);
        if client_id.is_some() && client_id != audience {
            return Ok(Err(
                "The ID token was issued to another application.".to_owned()
            ));
        }
        client_id = audience;
        request.hint_subject = claims["sub"].as_str().map(str::to_owned);
        request.id_token_hint = Some(hint.to_owned());
    }
    let client = match client_id.as_deref().map(ClientId::parse) {
        None => None,
        Some(None) => {
            return Ok(Err(
                "The application that sent you here is not registered.".to_owned()
            ));
        }
        Some(Some(id)) => match clients::find(conn, &id)? {
            Some(client) => Some(client),
            None => {
                return Ok(Err(
                    "The application that sent you here is not registered.".to_owned()
                ));
            }
        },
    };
    if let Some(uri) = params.get("post_logout_redirect_uri") {
        let Some(client) = &client else {
            return Ok(Err(
                "A return address needs client_id or id_token_hint.".to_owned()
            ));
        };
        if !client
            .post_logout_redirect_uris
            .iter()
            .any(|registered| registered.as_str() == uri)
        {
            return Ok(Err(
                "The application asked to send you to an address it has not registered.".to_owned(),
            ));
        }
        let mut pairs = Vec::new();
        if let Some(state) = &request.state {
            pairs.push(("state", state.clone()));
        }
        request.redirect = Some(if pairs.is_empty() {
            uri.to_owned()
        } else {
            append_query(uri, &pairs)
        });
        request.post_logout_redirect_uri = Some(uri.to_owned());
    }
    request.client_name = client.as_ref().map(|c| c.name.clone());
    request.unverified_client = client
        .as_ref()
        .and_then(super::authorize::unverified_client_name);
    request.client_id = client.map(|c| c.id.as_str().to_owned());
    Ok(Ok(request))
}
