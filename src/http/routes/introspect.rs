//! `POST /oauth2/introspect` (RFC 7662): for resource servers and clients.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::wellknown::key_failure;
use crate::config::Settings;
use crate::domain::{UnixTime, now};
use crate::http::error::ApiError;
use crate::http::extractors::{authorization_header, read_form};
use crate::http::state::AppState;
use crate::oauth::error::OAuthError;
use crate::oauth::keys::KeySet;
use crate::oauth::{client_auth, introspect};
use crate::storage::StorageError;
use crate::storage::cache::Access;

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
    let at = now();
    // From memory when every row it needs was read within the cache bound
    // (no database round trip, no thread hop); otherwise on the blocking
    // pool with a connection.
    let answer = match answer(
        &mut Access::memory(&state.cache),
        &state.settings,
        &keys,
        presented.clone(),
        &source,
        &token,
        at,
    ) {
        Err(error) if error.needs_database() => {
            let settings = state.settings.clone();
            let cache = state.cache.clone();
            state
                .db
                .run(move |conn| {
                    let mut access = Access::database(conn, &cache);
                    answer(
                        &mut access,
                        &settings,
                        &keys,
                        presented,
                        &source,
                        &token,
                        at,
                    )
                })
                .await?
        }
        other => other?,
    };
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

/// Authenticates the caller and introspects `token` for it.
fn answer(
    access: &mut Access<'_>,
    settings: &Settings,
    keys: &KeySet,
    presented: Option<client_auth::PresentedClient>,
    source: &str,
    token: &str,
    at: UnixTime,
) -> Result<serde_json::Value, OAuthError> {
    let caller = client_auth::authenticate(access, settings, presented, source, at)?;
    if !caller.is_confidential() {
        return Err(OAuthError::InvalidClient(
            "introspection needs a confidential client".to_owned(),
        ));
    }
    introspect::introspect(access, settings, keys, &caller, token, at).map_err(unavailable)
}

/// Fail closed: whatever went wrong in storage, the answer is 503.
pub fn unavailable(error: StorageError) -> OAuthError {
    if matches!(error, StorageError::NeedsDatabase) {
        return OAuthError::Unavailable(error);
    }
    if !error.is_unavailable() {
        tracing::error!(error = ?error, "storage failed during introspection or revocation");
    }
    OAuthError::Unavailable(error)
}
