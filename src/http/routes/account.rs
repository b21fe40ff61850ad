//! `/account`: who is signed in.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::{login_redirect, see_other};
use crate::domain::{DisplayName, Email, format_date};
use crate::http::browser::Browser;
use crate::http::error::PageError;
use crate::http::pages::{AccountPage, Layout, render};

#[tracing::instrument(skip_all)]
pub async fn show(mut browser: Browser) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(login_redirect("/account"));
    };
    let csrf_token = browser.csrf_token()?;
    let user = current.user();
    let member_since = format_date(user.created_at);
    let signed_in_at = format_date(current.session.auth_time);
    let page = AccountPage {
        layout: Layout {
            title: "Your account",
            user: Some(user.greeting_name()),
            csrf_token: Some(&csrf_token),
        },
        username: user.username.as_str(),
        display_name: user.display_name.as_ref().map(DisplayName::as_str),
        email: user.email.as_ref().map(Email::as_str),
        member_since: &member_since,
        signed_in_at: &signed_in_at,
    };
    Ok(browser.finish(render(StatusCode::OK, &page)))
}

/// `/`: the account page for people, via sign-in when needed.
pub async fn index() -> HttpResponse {
    see_other("/account")
}
