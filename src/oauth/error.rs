//! OAuthError: protocol errors with their RFC 6749 / 6750 codes, split from
//! failures on tessera's side.

use crate::storage::StorageError;

/// An error a client caused, with the code RFC 6749 §4.1.2.1 / §5.2 names,
/// or an internal failure.
#[derive(thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("unsupported_response_type: {0}")]
    UnsupportedResponseType(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    #[error("access_denied: {0}")]
    AccessDenied(String),
    #[error("login_required: {0}")]
    LoginRequired(String),
    #[error("consent_required: {0}")]
    ConsentRequired(String),
    /// OIDC Core §6: request objects (`request`) are not supported.
    #[error("request_not_supported: {0}")]
    RequestNotSupported(String),
    /// OIDC Core §6: `request_uri` is not supported.
    #[error("request_uri_not_supported: {0}")]
    RequestUriNotSupported(String),
    #[error("too many failed client authentications; retry in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: i64 },
    #[error("the database is unavailable")]
    Unavailable(#[source] StorageError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl std::fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::telemetry::write_error_chain(f, self)
    }
}

impl From<StorageError> for OAuthError {
    fn from(error: StorageError) -> Self {
        if error.is_unavailable() {
            Self::Unavailable(error)
        } else {
            Self::Internal(error.into())
        }
    }
}

impl OAuthError {
    /// A parameter that must not repeat did (RFC 6749 §3.2). The description
    /// never names it: request input is never echoed (ER-01).
    pub fn repeated_parameter() -> Self {
        Self::InvalidRequest("a parameter that must not repeat is repeated".to_owned())
    }

    /// Whether the request was being answered from memory and needs the
    /// database after all (see `storage::cache::Access`).
    pub fn needs_database(&self) -> bool {
        matches!(self, Self::Unavailable(StorageError::NeedsDatabase))
    }

    /// The `error` code on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnsupportedResponseType(_) => "unsupported_response_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget(_) => "invalid_target",
            Self::AccessDenied(_) => "access_denied",
            Self::LoginRequired(_) => "login_required",
            Self::ConsentRequired(_) => "consent_required",
            Self::RequestNotSupported(_) => "request_not_supported",
            Self::RequestUriNotSupported(_) => "request_uri_not_supported",
            Self::TooManyAttempts { .. } => "invalid_client",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Internal(_) => "server_error",
        }
    }

    /// The `error_description`: tessera's own words, never request input,
    /// restricted to the characters RFC 6749 allows (%x20-21 / %x23-5B /
    /// %x5D-7E).
    pub fn description(&self) -> String {
        let text = match self {
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::UnsupportedResponseType(d)
            | Self::InvalidScope(d)
            | Self::InvalidTarget(d)
            | Self::AccessDenied(d)
            | Self::LoginRequired(d)
            | Self::ConsentRequired(d)
            | Self::RequestNotSupported(d)
            | Self::RequestUriNotSupported(d) => d.as_str(),
            Self::TooManyAttempts { .. } => {
                "too many failed authentication attempts for this client; retry later"
            }
            Self::Unavailable(_) => {
                "the authorization server cannot reach its database; retry shortly"
            }
            Self::Internal(_) => "the authorization server failed; the error has been logged",
        };
        text.chars()
            .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
            .collect()
    }
}
