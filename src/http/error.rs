//! PageError: errors of the browser-facing pages, rendered as HTML. This is
//! the one place that maps failures to status codes and logs unexpected ones.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use super::pages::{ErrorPage, Layout, render};
use crate::auth::AuthError;
use crate::storage::StorageError;

/// Seconds a client is told to wait when the database is unavailable.
const UNAVAILABLE_RETRY_SECS: u32 = 5;

#[derive(thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("this page does not exist")]
    NotFound,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("too many attempts")]
    TooManyRequests { retry_after_secs: i64 },
    #[error("the database is unavailable")]
    Unavailable(#[source] StorageError),
    #[error("unexpected error")]
    Internal(#[source] anyhow::Error),
}

impl std::fmt::Debug for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::telemetry::write_error_chain(f, self)
    }
}

impl From<StorageError> for PageError {
    fn from(error: StorageError) -> Self {
        if error.is_unavailable() {
            Self::Unavailable(error)
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<AuthError> for PageError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Storage(storage) => storage.into(),
            AuthError::Throttled { retry_after_secs } => Self::TooManyRequests { retry_after_secs },
            other => Self::Internal(other.into()),
        }
    }
}

impl From<crate::oauth::error::OAuthError> for PageError {
    fn from(error: crate::oauth::error::OAuthError) -> Self {
        use crate::oauth::error::OAuthError;
        match error {
            OAuthError::Unavailable(storage) => Self::Unavailable(storage),
            OAuthError::Internal(cause) => Self::Internal(cause),
            other => Self::BadRequest(other.description()),
        }
    }
}

impl PageError {
    /// What the person sees: never internal detail.
    fn public_message(&self) -> (&'static str, String) {
        match self {
            Self::BadRequest(message) => ("Bad request", message.clone()),
            Self::Forbidden(message) => ("Forbidden", message.clone()),
            Self::NotFound => ("Not found", "There is no page at this address.".to_owned()),
            Self::PayloadTooLarge => (
                "Request too large",
                "The form sent more data than tessera accepts.".to_owned(),
            ),
            Self::TooManyRequests { retry_after_secs } => (
                "Too many attempts",
                format!("Please wait {retry_after_secs} seconds before trying again."),
            ),
            Self::Unavailable(_) => (
                "Temporarily unavailable",
                "tessera cannot reach its database right now. Please try again in a moment."
                    .to_owned(),
            ),
            Self::Internal(_) => (
                "Something went wrong",
                "tessera could not complete this request. It has been logged.".to_owned(),
            ),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(_) => tracing::error!(error = ?self, "request failed"),
            Self::Unavailable(_) => tracing::warn!(error = ?self, "database unavailable"),
            _ => {}
        }
        let (title, message) = self.public_message();
        let page = ErrorPage {
            layout: Layout::anonymous(title),
            title,
            message: &message,
        };
        let mut response = render(self.status_code(), &page);
        let retry_after = match self {
            Self::TooManyRequests { retry_after_secs } => Some(retry_after_secs.to_string()),
            Self::Unavailable(_) => Some(UNAVAILABLE_RETRY_SECS.to_string()),
            _ => None,
        };
        if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// Errors of the JSON endpoints (token; later introspection, revocation):
/// RFC 6749 §5.2 bodies, never cached, 401 with `WWW-Authenticate` for
/// `invalid_client`, 503 with `Retry-After` when the database is away.
pub struct ApiError {
    pub error: crate::oauth::error::OAuthError,
}

impl From<crate::oauth::error::OAuthError> for ApiError {
    fn from(error: crate::oauth::error::OAuthError) -> Self {
        Self { error }
    }
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.error, f)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        use crate::oauth::error::OAuthError;
        match &self.error {
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        use crate::oauth::error::OAuthError;
        match &self.error {
            OAuthError::Internal(_) => tracing::error!(error = ?self.error, "request failed"),
            OAuthError::Unavailable(_) => {
                tracing::warn!(error = ?self.error, "database unavailable")
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        match &self.error {
            OAuthError::InvalidClient(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"tessera\""));
            }
            OAuthError::TooManyAttempts { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            OAuthError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, UNAVAILABLE_RETRY_SECS.to_string()));
            }
            _ => {}
        }
        response.json(serde_json::json!({
            "error": self.error.code(),
            "error_description": self.error.description(),
        }))
    }
}

/// An RFC 6750 §3 answer for a request to a bearer-protected resource: 401
/// (no token, or `invalid_token`) or 403 (`insufficient_scope`), with the
/// `WWW-Authenticate` challenge, a JSON body and no caching.
pub fn bearer_challenge(status: StatusCode, error: Option<&str>) -> HttpResponse {
    let value = match error {
        Some(error) => format!("Bearer realm=\"tessera\", error=\"{error}\""),
        None => "Bearer realm=\"tessera\"".to_owned(),
    };
    HttpResponse::build(status)
        .insert_header((header::WWW_AUTHENTICATE, value))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": error.unwrap_or("invalid_request") }))
}
