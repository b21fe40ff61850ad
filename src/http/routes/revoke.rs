//! `POST /oauth2/revoke` (RFC 7009).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::introspect::unavailable;
use super::wellknown::key_failure;
use crate::domain::now;
use crate::http::error::ApiError;
use crate::http::extractors::{authorization_header, read_form};
use crate::http::state::AppState;
use crate::oauth::client_auth;
use crate::oauth::error::OAuthError;
use crate::oauth::revoke::{self, RevokeError};
use crate::storage::cache::Access;

/// 200 with an empty body whether or not the token existed (RV-02), and
/// the same 200 for another client's token, which stays valid (RV-03): a
/// different answer would tell a stranger that the token exists (RFC 7009
/// §2.2 allows 200 for tokens the server does not revoke). 503 with
/// `Retry-After` when the revocation cannot be written, never 200 (RV-05).
#[tracing::instrument(skip_all)]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = read_form(&req, &body)?;
    if params.repeated_key().is_some() {
        return Err(OAuthError::repeated_parameter().into());
    }
    let presented = client_auth::presented_client(authorization_header(&req).as_deref(), &params)?;
    let token = params
        .get("token")
        .map(str::to_owned)
        .ok_or_else(|| OAuthError::InvalidRequest("token is missing".to_owned()))?;
    let keys = state.keys.get().await.map_err(key_failure)?;
    let source = crate::http::browser::client_ip(&req, &state.settings.server.trusted_proxies);
    let settings = state.settings.clone();
    let cache = state.cache.clone();
    // A durable write: on SQLite it is committed together with other
    // requests' writes (group commit) and answered after the commit.
    let outcome = state
        .db
        .write(move |conn| {
            let at = now();
            let caller = client_auth::authenticate(
                &mut Access::fresh(conn, &cache),
                &settings,
                presented,
                &source,
                at,
            )?;
            let revoked = revoke::revoke(conn, &settings, &keys, &caller, &token, at);
            match revoked {
                Ok(()) => Ok(()),
                Err(RevokeError::Storage(error)) => Err(unavailable(error)),
            }
        })
        .await;
    // Whatever it revoked, this instance's next answer must know: retired
    // only now, after the commit. Retired inside the write, an introspection
    // reading between that and the commit (SQLite commits a batch of writes
    // at once) would remember the old state under the new generation and
    // answer `active` after this 200 (reliability review, finding 1).
    state.cache.forget_all();
    let outcome = outcome
        // Fail closed: an unexpected failure is "not revoked, retry", never 200.
        .map_err(|error: OAuthError| match error {
            OAuthError::Internal(cause) => {
                tracing::error!(error = ?cause, "revocation failed");
                OAuthError::Unavailable(crate::storage::StorageError::Failed(cause.to_string()))
            }
            other => other,
        });
    let label = match &outcome {
        Ok(()) => "revoked",
        Err(OAuthError::Unavailable(_)) => "unavailable",
        Err(_) => "refused",
    };
    state
        .metrics
        .increment(&crate::metrics::REVOCATIONS, "outcome", label);
    outcome?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
