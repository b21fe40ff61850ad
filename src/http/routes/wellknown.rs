//! `/.well-known/oauth-authorization-server` and `/.well-known/jwks.json`,
//! served from memory.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::oauth::error::OAuthError;
use crate::oauth::keys::KeyError;

pub async fn authorization_server(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.documents.authorization_server.clone())
}

pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.documents.openid_configuration.clone())
}

/// The public keys. Resource servers cache them for `max-age`; a new key is
/// published before it signs (see docs/operations.md).
pub async fn jwks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = state.keys.get().await.map_err(key_failure)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jwk-set+json"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(keys.jwks_json().to_string()))
}

/// Keys that cannot be loaded: the database is away (503) or the
/// key-encryption key is wrong (500, logged).
pub fn key_failure(error: KeyError) -> ApiError {
    match error {
        KeyError::Storage(storage) => OAuthError::from(storage).into(),
        other => OAuthError::Internal(other.into()).into(),
    }
}
