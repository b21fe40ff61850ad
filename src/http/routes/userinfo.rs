//! `/oauth2/userinfo` (OpenID Connect Core §5.3): GET or POST with a bearer
//! access token carrying `openid`. CORS: any origin, no credentials.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use super::wellknown::key_failure;
use crate::http::error::{ApiError, bearer_challenge as challenge};
use crate::http::extractors::bearer_token as bearer_token_of;
use crate::http::state::AppState;
use crate::oauth::userinfo::{BearerError, userinfo};

/// The bearer token: `Authorization: Bearer` (RFC 6750 §2.1) or, on POST, a
/// form-encoded `access_token` (§2.2). Never from the query string.
fn bearer_token(req: &HttpRequest, body: &[u8]) -> Option<String> {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return bearer_token_of(req.headers()).map(str::to_owned);
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if req.method() == actix_web::http::Method::POST && is_form {
        let params = crate::oauth::Params::parse(std::str::from_utf8(body).ok()?);
        return params.get("access_token").map(str::to_owned);
    }
    None
}

#[tracing::instrument(skip_all)]
pub async fn userinfo_endpoint(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = bearer_token(&req, &body) else {
        return Ok(challenge(StatusCode::UNAUTHORIZED, None));
    };
    let keys = state.keys.get().await.map_err(key_failure)?;
    let settings = state.settings.clone();
    let outcome = state
        .db
        .run(move |conn| {
            Ok::<_, crate::storage::StorageError>(userinfo(conn, &settings, &keys, &token))
        })
        .await
        .map_err(|e| ApiError::from(crate::oauth::error::OAuthError::from(e)))?;
    match outcome {
        Ok(claims) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(claims)),
        Err(BearerError::InvalidToken) => {
            Ok(challenge(StatusCode::UNAUTHORIZED, Some("invalid_token")))
        }
        Err(BearerError::InsufficientScope) => {
            Ok(challenge(StatusCode::FORBIDDEN, Some("insufficient_scope")))
        }
        Err(BearerError::Storage(error)) => {
            Err(crate::oauth::error::OAuthError::from(error).into())
        }
    }
}
