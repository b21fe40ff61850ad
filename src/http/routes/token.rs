//! `POST /oauth2/token`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::now;
use crate::http::error::ApiError;
use crate::http::extractors::{authorization_header, read_form};
use crate::http::state::AppState;
use crate::metrics;
use crate::oauth::error::OAuthError;
use crate::oauth::token;
use crate::storage::StorageError;
use crate::storage::cache::Access;

/// The token endpoint: form body only (parameters in the query string are
/// never read, so a secret there is ignored, CA-02), any origin (CORS),
/// never cached (OP-01).
#[tracing::instrument(skip_all, fields(grant.type = tracing::field::Empty))]
pub async fn exchange(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = read_form(&req, &body)?;
    let span = tracing::Span::current();
    if let Some(grant_type) = params.get("grant_type") {
        span.record("grant.type", grant_type.get(..40).unwrap_or(grant_type));
    }
    let authorization = authorization_header(&req);
    // CA-07: failed client authentication counts per (client, address).
    let source = crate::http::browser::client_ip(&req, &state.settings.server.trusted_proxies);
    let keys = state
        .keys
        .get()
        .await
        .map_err(super::wellknown::key_failure)?;
    let grant_type = params
        .get("grant_type")
        .unwrap_or("")
        .chars()
        .take(40)
        .collect::<String>();
    // Client credentials are answered from memory when the client, its
    // lock-out state and its standing grant were read within the cache
    // bound: nothing is written per token, so there is nothing to wait for.
    // Anything else (or a miss) runs on the blocking pool with a connection.
    let mut events = token::TokenEvents::default();
    let at = now();
    let from_memory = if grant_type == "client_credentials" {
        token::exchange(
            &mut Access::memory(&state.cache),
            &state.settings,
            &keys,
            authorization.as_deref(),
            &params,
            &source,
            at,
            &mut events,
        )
    } else {
        Err(StorageError::NeedsDatabase.into())
    };
    let outcome = match from_memory {
        Err(error) if error.needs_database() => {
            let grant_type = grant_type.clone();
            let settings = state.settings.clone();
            let cache = state.cache.clone();
            // Durable writes: on SQLite committed together with other
            // requests' (group commit) and answered after the commit.
            state
                .db
                .write(move |conn| {
                    let mut events = token::TokenEvents::default();
                    // Code exchange and refresh write durably anyway: they
                    // read the client fresh, so an operator's change to it
                    // counts at once.
                    let mut access = if grant_type == "client_credentials" {
                        Access::database(conn, &cache)
                    } else {
                        Access::fresh(conn, &cache)
                    };
                    let result = token::exchange(
                        &mut access,
                        &settings,
                        &keys,
                        authorization.as_deref(),
                        &params,
                        &source,
                        at,
                        &mut events,
                    );
                    Ok::<_, OAuthError>((result, events))
                })
                .await
                .and_then(|(result, recorded)| {
                    events = recorded;
                    result
                })
        }
        other => other,
    };
    if events.revoked_a_grant() {
        state.cache.forget_all();
    }
    if events.refresh_reuse_revoked {
        state.metrics.increment(&metrics::REFRESH_REUSE, "", "");
        state
            .metrics
            .increment(&metrics::GRANTS_REVOKED, "reason", "refresh_reuse");
    }
    if events.code_replay_revoked {
        state
            .metrics
            .increment(&metrics::GRANTS_REVOKED, "reason", "code_replay");
    }
    let response = match outcome {
        Ok(response) => {
            state
                .metrics
                .increment(&metrics::TOKENS_ISSUED, "grant_type", &grant_type);
            response
        }
        Err(error) => {
            state
                .metrics
                .increment(&metrics::TOKEN_ERRORS, "error", error.code());
            return Err(error.into());
        }
    };
    tracing::info!("tokens issued");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(response))
}
