//! `POST /oauth2/introspect` (RFC 7662): for resource servers and clients.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::token::{authorization_header, read_form};
use super::wellknown::key_failure;
use crate::domain::now;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::oauth::error::OAuthError;
use crate::oauth::{introspect, token};
use crate::storage::StorageError;

/// The caller authenticates as a confidential client (IN-01); the token is
/// read from the body only, never the URL. Storage failures answer 503,
/// never `active: true` on a guess.
#[tracing::instrument(skip_all)]
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = read_form(&req, &body)?;
    if let Some(key) = params.repeated_key() {
        return Err(OAuthError::InvalidRequest(format!("the parameter {key} is repeated")).into());
    }
    let presented = token::presented_client(authorization_header(&req).as_deref(), &params)?;
    let token = params
        .get("token")
        .map(str::to_owned)
        .ok_or_else(|| OAuthError::InvalidRequest("token is missing".to_owned()))?;
    let keys = state.keys.get().await.map_err(key_failure)?;
    let settings = state.settings.clone();
    let answer = state
        .db
        .run(move |conn| {
            let at = now();
            let caller = token::authenticate(conn, &settings, presented, at)?;
            if !caller.is_confidential() {
                return Err(OAuthError::InvalidClient(
                    "introspection needs a confidential client".to_owned(),
                ));
            }
            introspect::introspect(conn, &settings, &keys, &caller, &token, at).map_err(unavailable)
        })
        .await?;
    let active = if answer["active"] == true {
        "true"
    } else {
        "false"
    };
    state
        .metrics
        .increment(&crate::metrics::INTROSPECTIONS, "active", active);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(answer))
}

/// Fail closed: whatever went wrong in storage, the answer is 503.
pub fn unavailable(error: StorageError) -> OAuthError {
    if !error.is_unavailable() {
        tracing::error!(error = ?error, "storage failed during introspection or revocation");
    }
    OAuthError::Unavailable(error)
}
