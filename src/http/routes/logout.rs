//! `/logout`: a confirmation page (GET) and the sign-out itself (POST).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{return_path, see_other};
use crate::domain::ReturnTo;
use crate::http::browser::Browser;
use crate::http::error::PageError;
use crate::http::pages::{Layout, LogoutPage, render};
use crate::http::state::AppState;

#[derive(Deserialize)]
pub struct LogoutQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
    return_to: Option<String>,
}

/// Asks before signing out, so a link or an image cannot sign anyone out.
#[tracing::instrument(skip_all)]
pub async fn show(
    mut browser: Browser,
    query: web::Query<LogoutQuery>,
) -> Result<HttpResponse, PageError> {
    let return_to = query.return_to.as_deref().and_then(ReturnTo::parse);
    let Some(current) = browser.session.clone() else {
        return Ok(see_other(&return_path(return_to.as_ref(), "/login")));
    };
    let csrf_token = browser.csrf_token()?;
    let page = LogoutPage {
        layout: Layout {
            title: "Sign out",
            user: Some(current.user().greeting_name()),
            csrf_token: Some(&csrf_token),
        },
        csrf_token: &csrf_token,
        return_to: return_to.as_ref().map(ReturnTo::as_str),
    };
    Ok(browser.finish(render(StatusCode::OK, &page)))
}

/// Ends the session and expires its cookie.
#[tracing::instrument(skip_all)]
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: Browser,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, PageError> {
    let return_to = form.return_to.as_deref().and_then(ReturnTo::parse);
    let Some(current) = browser.session.clone() else {
        // Already signed out: nothing to protect, nothing to do.
        return Ok(see_other(&return_path(return_to.as_ref(), "/login")));
    };
    browser.verify_form(&req, &form.csrf_token, &state.settings.server.origin())?;
    state.accounts.end_session(current.token.clone()).await?;
    tracing::info!(user.id = %current.user().id, "signed out");
    let mut response = see_other(&return_path(return_to.as_ref(), "/login"));
    browser.sign_out_cookies(&mut response);
    Ok(response)
}
