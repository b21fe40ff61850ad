//! The consent form's answer: re-checked against the client's registration
//! as it is now (review F8), then a code or an error for the client.

use super::{AuthorizationRequest, ErrorRedirect, KeySet, Prompt, Rejection, issue_code};
use crate::config::Settings;
use crate::domain::{GrantType, ScopeSet, SecretToken, UnixTime, UserId};
use crate::oauth::error::OAuthError;
use crate::storage::{DbConnection, StorageError, clients, grants, pending};

/// The user's answer on the consent page.
pub enum ConsentAnswer {
    /// Approve, with the scopes left ticked.
    Allow(ScopeSet),
    Deny,
}

/// Answers a pending request. Only the stored request counts: the form
/// names the request and the ticked scopes, nothing else (CS-03). A request
/// that belongs to another user is refused; an unknown or expired one too.
pub fn answer(
    conn: &mut DbConnection,
    settings: &Settings,
    keys: &KeySet,
    pending_id: &SecretToken,
    user_id: &UserId,
    answer: ConsentAnswer,
    now: UnixTime,
) -> Result<String, AnswerError> {
    let digest = pending_id.digest();
    let Some(parked) = pending::find(conn, &digest, now)? else {
        return Err(AnswerError::Expired);
    };
    if &parked.user_id != user_id {
        return Err(AnswerError::NotYours);
    }
    // Review F8: the registration may have changed while the page was open.
    // Checked before the request is consumed: a refusal changes nothing.
    let Some(client) = clients::find(conn, &parked.client_id)?.filter(|c| !c.disabled) else {
        return Err(AnswerError::Page(
            "This application is no longer available.".to_owned(),
        ));
    };
    if client.redirect_uri_for(&parked.redirect_uri).is_none() {
        return Err(AnswerError::Page(
            "This application no longer accepts the address it asked to send you to.".to_owned(),
        ));
    }
    let request = AuthorizationRequest {
        client,
        redirect_uri: parked.redirect_uri,
        redirect_uri_sent: parked.redirect_uri_sent,
        scope: parked.scope,
        state: parked.state,
        code_challenge: parked.code_challenge,
        nonce: parked.nonce,
        prompt: Prompt::default(),
        max_age: None,
        login_hint: None,
        resource: parked.resource,
        hint_subject: None,
    };
    if let Some(error) = still_allowed(settings, &request) {
        // The answer ends the request at the client: consume it.
        pending::take(conn, &digest, now)?;
        return Ok(ErrorRedirect {
            unverified_client: None,
            ..redirect_of(&request, error)
        }
        .location(settings.server.issuer_str()));
    }
    if pending::take(conn, &digest, now)?.is_none() {
        return Err(AnswerError::Expired);
    }
    match answer {
        ConsentAnswer::Deny => {
            tracing::info!(client.id = %request.client.id, user.id = %user_id, "consent denied");
            crate::storage::audit::record(
                conn,
                "consent.denied",
                Some(user_id.as_str()),
                Some(request.client.id.as_str()),
                Some(&request.scope.to_string()),
                now,
            )?;
            Ok(redirect_of(
                &request,
                OAuthError::AccessDenied("the user denied the request".to_owned()),
            )
            .location(settings.server.issuer_str()))
        }
        ConsentAnswer::Allow(ticked) => {
            // Scopes already granted stay; new ones only as ticked, and never
            // more than were requested.
            let existing = grants::find_active_for(conn, Some(user_id), &request.client.id)?;
            let granted = existing.map(|g| g.scope).unwrap_or_default();
            let mut approved = request.scope.intersection(&ticked.union(&granted));
            // openid is what the request is about; it cannot be unticked.
            if request.scope.contains("openid") {
                approved = approved.union(&ScopeSet::from_tokens(["openid"]));
            }
            if approved.is_empty() {
                return Ok(redirect_of(
                    &request,
                    OAuthError::AccessDenied("the user approved no scope".to_owned()),
                )
                .location(settings.server.issuer_str()));
            }
            tracing::info!(client.id = %request.client.id, user.id = %user_id, scope = %approved, "consent granted");
            crate::storage::audit::record(
                conn,
                "consent.granted",
                Some(user_id.as_str()),
                Some(request.client.id.as_str()),
                Some(&approved.to_string()),
                now,
            )?;
            issue_code(
                conn,
                settings,
                keys,
                &request,
                user_id,
                parked.auth_time,
                &approved,
                now,
            )
            .map_err(AnswerError::from)
        }
    }
}

fn redirect_of(request: &AuthorizationRequest, error: OAuthError) -> ErrorRedirect {
    ErrorRedirect {
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
        error,
        unverified_client: None,
    }
}

/// What the client's current registration no longer allows of a parked
/// request (review F8): the grant type, a scope (the whole request is
/// refused with `invalid_scope` rather than silently narrowed: the user
/// approved what the page showed), a resource.
fn still_allowed(settings: &Settings, request: &AuthorizationRequest) -> Option<OAuthError> {
    if !request.client.may_use(GrantType::AuthorizationCode) {
        return Some(OAuthError::UnauthorizedClient(
            "this client may no longer use the authorization code grant".to_owned(),
        ));
    }
    let known = ScopeSet::from_tokens(settings.scopes.iter().map(|s| s.name.clone()));
    if !request.scope.is_subset(&known) || !request.scope.is_subset(&request.client.allowed_scopes)
    {
        return Some(OAuthError::InvalidScope(
            "the client may no longer ask for one or more of these scopes".to_owned(),
        ));
    }
    crate::oauth::resolve_audience(settings, &request.scope, &request.resource, &[]).err()
}

/// Why a consent answer was refused.
#[derive(Debug)]
pub enum AnswerError {
    /// Unknown, expired or already answered.
    Expired,
    /// The pending request belongs to someone else.
    NotYours,
    /// The client's registration changed: an error page, no redirect.
    Page(String),
    Failed(OAuthError),
}

impl From<StorageError> for AnswerError {
    fn from(error: StorageError) -> Self {
        Self::Failed(error.into())
    }
}

impl From<Rejection> for AnswerError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Failed(error) => Self::Failed(error),
            Rejection::Page(message) => {
                Self::Failed(OAuthError::Internal(anyhow::anyhow!(message)))
            }
            Rejection::Redirect(redirect) => Self::Failed(redirect.error),
            Rejection::TooMany { .. } => Self::Failed(OAuthError::Internal(anyhow::anyhow!(
                "throttled while answering"
            ))),
        }
    }
}
