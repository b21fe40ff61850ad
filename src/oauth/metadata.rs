//! The authorization server metadata document (RFC 8414), built once at
//! start-up and served from memory.

use serde_json::{Value, json};

use crate::config::Settings;

/// `/.well-known/oauth-authorization-server`. Every value is what tessera
/// actually does: no password or implicit grant is advertised, PKCE is S256
/// only, and responses carry `iss` (RFC 9207).
pub fn authorization_server(settings: &Settings) -> Value {
    let issuer = settings.server.issuer_str();
    let scopes: Vec<&str> = settings.scopes.iter().map(|s| s.name.as_str()).collect();
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "access_token_signing_alg_values_supported": [settings.keys.algorithm.as_str()],
    });
    if settings.registration.mode != crate::config::RegistrationMode::Off {
        doc["registration_endpoint"] = json!(format!("{issuer}/oauth2/register"));
    }
    doc
}

/// `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0): the
/// RFC 8414 document plus what relying parties need.
pub fn openid_configuration(settings: &Settings) -> Value {
    let issuer = settings.server.issuer_str();
    let mut doc = authorization_server(settings);
    let extra = json!({
        "userinfo_endpoint": format!("{issuer}/oauth2/userinfo"),
        "end_session_endpoint": format!("{issuer}/oauth2/logout"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [settings.keys.id_token_algorithm.as_str()],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp",
            "name", "preferred_username", "email", "email_verified"
        ],
        "claim_types_supported": ["normal"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    });
    if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
        doc.extend(extra);
    }
    doc
}
