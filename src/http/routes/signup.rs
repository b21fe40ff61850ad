//! `/signup`: account creation, when enabled.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{echo, return_path, see_other};
use crate::auth::AuthError;
use crate::domain::{FieldError, NewAccount, ReturnTo};
use crate::http::browser::{Browser, client_ip};
use crate::http::error::PageError;
use crate::http::pages::{FieldErrors, Layout, SignupPage, render};
use crate::http::state::AppState;

#[derive(Deserialize)]
pub struct SignupQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
    #[serde(default)]
    csrf_token: String,
    return_to: Option<String>,
}

fn ensure_enabled(state: &AppState) -> Result<(), PageError> {
    if state.settings.accounts.signup_enabled {
        Ok(())
    } else {
        Err(PageError::NotFound)
    }
}

#[tracing::instrument(skip_all)]
pub async fn show(
    state: web::Data<AppState>,
    mut browser: Browser,
    query: web::Query<SignupQuery>,
) -> Result<HttpResponse, PageError> {
    ensure_enabled(&state)?;
    let return_to = query.return_to.as_deref().and_then(ReturnTo::parse);
    if browser.session.is_some() {
        return Ok(see_other(&return_path(return_to.as_ref(), "/account")));
    }
    let values = SignupValues::default();
    let page = signup_page(
        &state,
        &mut browser,
        &values,
        return_to.as_ref(),
        Vec::new(),
    )?;
    Ok(browser.finish(page))
}

#[tracing::instrument(skip_all)]
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut browser: Browser,
    form: web::Form<SignupForm>,
) -> Result<HttpResponse, PageError> {
    ensure_enabled(&state)?;
    let form = form.into_inner();
    browser.verify_form(&req, &form.csrf_token, &state.settings.server.origin())?;
    let return_to = form.return_to.as_deref().and_then(ReturnTo::parse);
    let values = SignupValues {
        username: echo(&form.username).to_owned(),
        email: echo(&form.email).to_owned(),
        display_name: echo(&form.display_name).to_owned(),
    };
    let account = match NewAccount::parse(
        &form.username,
        &form.email,
        &form.display_name,
        form.password,
        Some(&form.password_confirmation),
        state.settings.accounts.min_password_length,
    ) {
        Ok(account) => account,
        Err(errors) => {
            let page = signup_page(&state, &mut browser, &values, return_to.as_ref(), errors)?;
            return Ok(browser.finish(page));
        }
    };
    let ip = client_ip(&req, &state.settings.server.trusted_proxies);
    match state
        .accounts
        .sign_up(account, &ip, browser.presented_session.clone())
        .await
    {
        Ok(signed_in) => {
            let mut response = see_other(&return_path(return_to.as_ref(), "/account"));
            let lifetime = state.settings.sessions.absolute_timeout_secs;
            browser.sign_in_cookies(&mut response, &signed_in.session, lifetime);
            Ok(response)
        }
        Err(AuthError::UsernameTaken) => {
            let errors = vec![FieldError {
                field: "username",
                message: "This username is taken. Choose another.".to_owned(),
            }];
            let page = signup_page(&state, &mut browser, &values, return_to.as_ref(), errors)?;
            Ok(browser.finish(page))
        }
        Err(AuthError::Busy) => {
            // SECURITY-CASES LG-03: every hasher stayed busy; a page, not a 500.
            let errors = vec![FieldError {
                field: "password",
                message: "tessera is busy right now. Please send the form again in a few seconds."
                    .to_owned(),
            }];
            let mut page = signup_page(&state, &mut browser, &values, return_to.as_ref(), errors)?;
            *page.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            page.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(super::login::BUSY_RETRY_SECS),
            );
            Ok(browser.finish(page))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Default)]
struct SignupValues {
    username: String,
    email: String,
    display_name: String,
}

fn signup_page(
    state: &AppState,
    browser: &mut Browser,
    values: &SignupValues,
    return_to: Option<&ReturnTo>,
    errors: Vec<FieldError>,
) -> Result<HttpResponse, PageError> {
    let csrf_token = browser.csrf_token()?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let page = SignupPage {
        layout: Layout::anonymous("Create an account"),
        csrf_token: &csrf_token,
        username: &values.username,
        email: &values.email,
        display_name: &values.display_name,
        return_to: return_to.map(ReturnTo::as_str),
        errors: FieldErrors(errors),
        min_password_length: state.settings.accounts.min_password_length,
    };
    Ok(render(status, &page))
}
