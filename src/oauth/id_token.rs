//! OpenID Connect: ID tokens and the claims the `profile` and `email`
//! scopes release (userinfo uses the same function).

use serde_json::{Map, Value};

use super::keys::{KeyError, KeySet};
use crate::config::Settings;
use crate::domain::{ScopeSet, UnixTime, User};

/// Claims about `user` released by `scope` (OIDC Core §5.4).
pub fn user_claims(user: &User, scope: &ScopeSet) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::from(user.id.as_str()));
    if scope.contains("profile") {
        claims.insert("name".into(), Value::from(user.greeting_name()));
        claims.insert(
            "preferred_username".into(),
            Value::from(user.username.as_str()),
        );
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), Value::from(email.as_str()));
        // tessera does not send mail, so it never claims to have verified one.
        claims.insert("email_verified".into(), Value::Bool(false));
    }
    claims
}

/// What an ID token is about.
pub struct IdTokenRequest<'a> {
    pub user: &'a User,
    pub client_id: &'a str,
    pub scope: &'a ScopeSet,
    pub nonce: Option<&'a str>,
    pub auth_time: UnixTime,
    pub access_token: &'a str,
    pub now: UnixTime,
}

/// Signs an ID token (OIDC Core §2, §3.1.3.6) with the ID-token key.
pub fn issue(
    keys: &KeySet,
    settings: &Settings,
    request: &IdTokenRequest<'_>,
) -> Result<String, KeyError> {
    let algorithm = settings.keys.id_token_algorithm;
    let mut claims = user_claims(request.user, request.scope);
    claims.insert("iss".into(), Value::from(settings.server.issuer_str()));
    claims.insert("aud".into(), Value::from(request.client_id));
    claims.insert("azp".into(), Value::from(request.client_id));
    claims.insert("iat".into(), Value::from(request.now));
    claims.insert(
        "exp".into(),
        Value::from(request.now + settings.tokens.access_token_ttl_secs),
    );
    claims.insert("auth_time".into(), Value::from(request.auth_time));
    if let Some(nonce) = request.nonce {
        claims.insert("nonce".into(), Value::from(nonce));
    }
    claims.insert(
        "at_hash".into(),
        Value::from(KeySet::at_hash(request.access_token, algorithm)),
    );
    keys.sign_id_token(&Value::Object(claims), algorithm)
}
