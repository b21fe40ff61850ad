//! `/oauth2/register` (RFC 7591) and `/oauth2/register/{client_id}`
//! (RFC 7592). JSON in, JSON out; server to server, so no CORS.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::domain::now;
use crate::http::browser::client_ip;
use crate::http::state::AppState;
use crate::oauth::clients::RegistrationError;
use crate::oauth::registration::{self, ClientMetadata, DcrError};
use crate::storage::StorageError;

fn bearer(req: &HttpRequest) -> Option<String> {
    crate::http::extractors::bearer_token(req.headers()).map(str::to_owned)
}

fn error_response(error: DcrError) -> HttpResponse {
    let json_error = |status: StatusCode, code: &str, description: String| {
        HttpResponse::build(status)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "error": code, "error_description": description }))
    };
    match error {
        DcrError::Disabled => json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "dynamic client registration is off".to_owned(),
        ),
        DcrError::InvalidToken => {
            crate::http::error::bearer_challenge(StatusCode::UNAUTHORIZED, Some("invalid_token"))
        }
        DcrError::TooMany { retry_after_secs } => {
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "slow_down",
                "too many registrations from this address".to_owned(),
            );
            if let Ok(value) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        DcrError::Invalid(error) => {
            json_error(StatusCode::BAD_REQUEST, error.code(), error.to_string())
        }
        DcrError::Storage(error) => {
            tracing::error!(error = ?error, "registration failed");
            let mut response = json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "retry shortly".to_owned(),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            response
        }
    }
}

fn parse_metadata(req: &HttpRequest, body: &[u8]) -> Result<ClientMetadata, DcrError> {
    let invalid =
        |message: &str| DcrError::Invalid(RegistrationError::Metadata(message.to_owned()));
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(invalid("the body must be application/json"));
    }
    serde_json::from_slice(body)
        .map_err(|_| invalid("the body is not a JSON object of client metadata"))
}

async fn run<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&mut crate::storage::DbConnection) -> Result<T, DcrError> + Send + 'static,
) -> Result<T, DcrError> {
    state
        .db
        .run(move |conn| Ok::<_, StorageError>(work(conn)))
        .await
        .map_err(DcrError::Storage)?
}

#[tracing::instrument(skip_all)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let metadata = match parse_metadata(&req, &body) {
        Ok(metadata) => metadata,
        Err(error) => return error_response(error),
    };
    let token = bearer(&req);
    let ip = client_ip(&req, &state.settings.server.trusted_proxies);
    let settings = state.settings.clone();
    match run(&state, move |conn| {
        registration::register(conn, &settings, &metadata, token.as_deref(), &ip, now())
    })
    .await
    {
        Ok(document) => HttpResponse::Created()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(document),
        Err(error) => error_response(error),
    }
}

#[tracing::instrument(skip_all)]
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let token = bearer(&req);
    let settings = state.settings.clone();
    let id = path.into_inner();
    match run(&state, move |conn| {
        registration::read(conn, &settings, &id, token.as_deref())
    })
    .await
    {
        Ok(document) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(document),
        Err(error) => error_response(error),
    }
}

#[tracing::instrument(skip_all)]
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let metadata = match parse_metadata(&req, &body) {
        Ok(metadata) => metadata,
        Err(error) => return error_response(error),
    };
    let token = bearer(&req);
    let settings = state.settings.clone();
    let id = path.into_inner();
    match run(&state, move |conn| {
        registration::update(conn, &settings, &id, token.as_deref(), &metadata, now())
    })
    .await
    .inspect(|_| state.cache.forget_all())
    {
        Ok(document) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(document),
        Err(error) => error_response(error),
    }
}

#[tracing::instrument(skip_all)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let token = bearer(&req);
    let id = path.into_inner();
    match run(&state, move |conn| {
        registration::delete(conn, &id, token.as_deref(), now())
    })
    .await
    .inspect(|_| state.cache.forget_all())
    {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(error) => error_response(error),
    }
}
