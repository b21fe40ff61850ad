//! `/oauth2/logout`: OpenID Connect RP-initiated logout. With a valid
//! `id_token_hint` for the signed-in user it signs out at once; otherwise it
//! asks first. The browser returns only to a registered
//! `post_logout_redirect_uri`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::see_other;
use crate::http::browser::Browser;
use crate::http::error::PageError;
use crate::http::pages::{EndSessionPage, Layout, RedirectNoticePage, SignedOutPage, render};
use crate::http::state::AppState;
use crate::oauth::Params;
use crate::oauth::authorize::destination_origin;
use crate::oauth::logout::{LogoutRequest, validate};

async fn validated(state: &AppState, params: Params) -> Result<LogoutRequest, PageError> {
    let keys = state
        .keys
        .get()
        .await
        .map_err(|e| PageError::Internal(e.into()))?;
    let settings = state.settings.clone();
    state
        .db
        .run(move |conn| validate(conn, &settings, &keys, &params))
        .await?
        .map_err(PageError::BadRequest)
}

/// Signs out and goes on. `signed_in`: the user had a session (and, for the
/// form, a valid CSRF token); only then does an unverified self-registered
/// client get an automatic redirect (RU-10).
fn finish(browser: &Browser, request: &LogoutRequest, signed_in: bool) -> HttpResponse {
    let mut response = match (&request.redirect, &request.unverified_client) {
        (Some(location), Some(client_name)) if !signed_in => render(
            StatusCode::OK,
            &RedirectNoticePage {
                layout: Layout::anonymous("Signed out"),
                heading: "You are signed out",
                client_name,
                origin: &destination_origin(location),
                location,
            },
        ),
        (Some(location), _) => see_other(location),
        (None, _) => render(
            StatusCode::OK,
            &SignedOutPage {
                layout: Layout::anonymous("Signed out"),
            },
        ),
    };
    browser.sign_out_cookies(&mut response);
    response
}

#[tracing::instrument(skip_all)]
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut browser: Browser,
) -> Result<HttpResponse, PageError> {
    let request = validated(&state, Params::parse(req.query_string())).await?;
    let Some(current) = browser.session.clone() else {
        return Ok(finish(&browser, &request, false));
    };
    // A hint naming the signed-in user is enough; anything doubtful asks.
    if request.hint_subject.as_deref() == Some(current.user().id.as_str()) {
        state.accounts.end_session(current.token.clone()).await?;
        tracing::info!(user.id = %current.user().id, "signed out by the application (id_token_hint)");
        return Ok(finish(&browser, &request, true));
    }
    let csrf_token = browser.csrf_token()?;
    let page = EndSessionPage {
        layout: Layout {
            title: "Sign out",
            user: Some(current.user().greeting_name()),
            csrf_token: Some(&csrf_token),
        },
        csrf_token: &csrf_token,
        client_name: request.client_name.as_deref(),
        client_id: request.client_id.as_deref(),
        post_logout_redirect_uri: request.post_logout_redirect_uri.as_deref(),
        state: request.state.as_deref(),
    };
    Ok(browser.finish(render(StatusCode::OK, &page)))
}

/// The confirmation form: the parameters are validated again, nothing is
/// trusted because it came back from the form.
#[tracing::instrument(skip_all)]
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: Browser,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| PageError::BadRequest("The form could not be read.".to_owned()))?;
    let params = Params::parse(text);
    let request = validated(&state, params.clone()).await?;
    let signed_in = browser.session.is_some();
    if let Some(current) = browser.session.clone() {
        browser.verify_form(
            &req,
            params.get("csrf_token").unwrap_or(""),
            &state.settings.server.origin(),
        )?;
        state.accounts.end_session(current.token.clone()).await?;
        tracing::info!(user.id = %current.user().id, "signed out at the application's request");
    }
    Ok(finish(&browser, &request, signed_in))
}
