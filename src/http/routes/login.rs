//! `/login`: the sign-in form.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{echo, return_path, see_other};
use crate::auth::AuthError;
use crate::domain::{Password, ReturnTo};
use crate::http::browser::{Browser, client_ip};
use crate::http::error::PageError;
use crate::http::pages::{Layout, LoginPage, render};
use crate::http::state::AppState;

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
    /// Set when an application asked for a fresh sign-in (prompt=login,
    /// max_age): show the form even to a signed-in browser.
    reauth: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    return_to: Option<String>,
}

/// Shows the form; a signed-in browser goes straight on.
#[tracing::instrument(skip_all)]
pub async fn show(
    state: web::Data<AppState>,
    mut browser: Browser,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, PageError> {
    let return_to = query.return_to.as_deref().and_then(ReturnTo::parse);
    if browser.session.is_some() && query.reauth.is_none() {
        return Ok(see_other(&return_path(return_to.as_ref(), "/account")));
    }
    let hint = query.login_hint.as_deref().map(echo).unwrap_or("");
    let page = login_page(
        &state,
        &mut browser,
        hint,
        return_to.as_ref(),
        None,
        StatusCode::OK,
    )?;
    Ok(browser.finish(page))
}

/// Checks the credentials; on success replaces the session and goes on.
#[tracing::instrument(skip_all)]
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut browser: Browser,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    browser.verify_form(&req, &form.csrf_token, &state.settings.server.origin())?;
    let return_to = form.return_to.as_deref().and_then(ReturnTo::parse);
    let ip = client_ip(&req, &state.settings.server.trusted_proxies);
    let password = Password::presented(form.password);
    let outcome = state
        .accounts
        .sign_in(
            &form.username,
            password,
            &ip,
            browser.presented_session.clone(),
            browser.known_browser.clone(),
        )
        .await;
    let username = echo(&form.username);
    let label = match &outcome {
        Ok(_) => "success",
        Err(AuthError::Throttled { .. }) => "throttled",
        Err(AuthError::InvalidCredentials) => "failure",
        Err(AuthError::Busy) => "busy",
        Err(_) => "error",
    };
    state
        .metrics
        .increment(&crate::metrics::SIGN_INS, "outcome", label);
    match outcome {
        Ok(signed_in) => {
            let mut response = see_other(&return_path(return_to.as_ref(), "/account"));
            let lifetime = state.settings.sessions.absolute_timeout_secs;
            browser.sign_in_cookies(&mut response, &signed_in.session, lifetime);
            if let Some(token) = &signed_in.known_browser {
                let ttl = state.settings.accounts.known_browser_ttl_secs;
                browser.remember_browser(&mut response, token, ttl);
            }
            Ok(response)
        }
        Err(AuthError::InvalidCredentials) => {
            let message = "The username or password is incorrect.";
            let status = StatusCode::UNAUTHORIZED;
            let page = login_page(
                &state,
                &mut browser,
                username,
                return_to.as_ref(),
                Some(message),
                status,
            )?;
            Ok(browser.finish(page))
        }
        Err(AuthError::Throttled { retry_after_secs }) => {
            let message = format!(
                "Too many failed attempts. Please wait {} before trying again.",
                human_duration(retry_after_secs)
            );
            let status = StatusCode::TOO_MANY_REQUESTS;
            let mut page = login_page(
                &state,
                &mut browser,
                username,
                return_to.as_ref(),
                Some(&message),
                status,
            )?;
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                page.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Ok(browser.finish(page))
        }
        Err(AuthError::Busy) => {
            // SECURITY-CASES LG-03: every hasher stayed busy; nothing was
            // checked or counted. A page, not a 500.
            let message =
                "Too many people are signing in right now. Please try again in a few seconds.";
            let mut page = login_page(
                &state,
                &mut browser,
                username,
                return_to.as_ref(),
                Some(message),
                StatusCode::SERVICE_UNAVAILABLE,
            )?;
            page.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(BUSY_RETRY_SECS),
            );
            Ok(browser.finish(page))
        }
        Err(other) => Err(other.into()),
    }
}

/// `Retry-After` when every password hasher is busy (LG-03).
pub(crate) const BUSY_RETRY_SECS: &str = "2";

fn login_page(
    state: &AppState,
    browser: &mut Browser,
    username: &str,
    return_to: Option<&ReturnTo>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let csrf_token = browser.csrf_token()?;
    let page = LoginPage {
        layout: Layout::anonymous("Sign in"),
        csrf_token: &csrf_token,
        username,
        return_to: return_to.map(ReturnTo::as_str),
        error,
        signup_enabled: state.settings.accounts.signup_enabled,
    };
    Ok(render(status, &page))
}

fn human_duration(secs: i64) -> String {
    match secs {
        ..=1 => "a second".to_owned(),
        2..=90 => format!("{secs} seconds"),
        _ => format!("{} minutes", (secs + 59) / 60),
    }
}
