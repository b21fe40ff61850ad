//! `/.well-known/oauth-authorization-server` and `/.well-known/jwks.json`,
//! served from memory.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::http::state::AppState;

pub async fn authorization_server(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.documents.authorization_server.clone())
}

/// The public keys. Resource servers cache them for `max-age`; a new key is
/// published before it signs (see docs/operations.md).
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/jwk-set+json"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(state.documents.jwks.to_string())
}
