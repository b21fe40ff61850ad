//! `/account/apps`: the apps a user connected, and taking access back.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{login_redirect, see_other};
use crate::domain::{ScopeSet, format_date, now};
use crate::http::browser::Browser;
use crate::http::error::PageError;
use crate::http::pages::{AppLine, AppsPage, Layout, ScopeLine, render};
use crate::http::state::AppState;
use crate::oauth::connected::{self, Outcome};
use crate::storage::{StorageError, grants};

#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    mut browser: Browser,
) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(login_redirect("/account/apps"));
    };
    let user_id = current.user().id.clone();
    let held = state
        .db
        .run(move |conn| grants::list_active_for_user(conn, &user_id))
        .await?;
    let apps = held
        .into_iter()
        .map(|(grant, client)| AppLine {
            grant_id: grant.id,
            name: client.name,
            verified: client.verified,
            homepage: client.homepage_uri,
            scopes: grant
                .scope
                .iter()
                .map(|name| ScopeLine {
                    name: name.to_owned(),
                    description: describe(&state, name),
                    required: false,
                })
                .collect(),
            granted_on: format_date(grant.created_at),
            last_used: format_date(grant.last_used_at),
        })
        .collect();
    let csrf_token = browser.csrf_token()?;
    let page = AppsPage {
        layout: Layout {
            title: "Connected apps",
            user: Some(current.user().greeting_name()),
            csrf_token: Some(&csrf_token),
        },
        csrf_token: &csrf_token,
        apps,
    };
    Ok(browser.finish(render(StatusCode::OK, &page)))
}

fn describe(state: &AppState, name: &str) -> String {
    state
        .settings
        .scopes
        .iter()
        .find(|s| s.name == name)
        .map_or_else(|| name.to_owned(), |s| s.description.clone())
}

/// The two forms: the grant id, the CSRF token and (for narrowing) the
/// scopes left ticked.
struct AppForm {
    grant: String,
    csrf_token: String,
    scopes: Vec<String>,
}

fn parse(body: &[u8]) -> Result<AppForm, PageError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| PageError::BadRequest("The form could not be read.".to_owned()))?;
    let mut form = AppForm {
        grant: String::new(),
        csrf_token: String::new(),
        scopes: Vec::new(),
    };
    for (key, value) in url::form_urlencoded::parse(text.as_bytes()) {
        match key.as_ref() {
            "grant" => form.grant = value.chars().take(64).collect(),
            "csrf_token" => form.csrf_token = value.into_owned(),
            "scope" => form.scopes.push(value.into_owned()),
            _ => {}
        }
    }
    Ok(form)
}

/// "Revoke access": the whole grant family dies at once (RV-04).
#[tracing::instrument(skip_all)]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: Browser,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    act(req, state, browser, body, false).await
}

/// "Save permissions": keep only the ticked scopes.
#[tracing::instrument(skip_all)]
pub async fn narrow(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: Browser,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    act(req, state, browser, body, true).await
}

async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: Browser,
    body: web::Bytes,
    narrowing: bool,
) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(login_redirect("/account/apps"));
    };
    let form = parse(&body)?;
    browser.verify_form(&req, &form.csrf_token, &state.settings.server.origin())?;
    let user_id = current.user().id.clone();
    let kept = ScopeSet::from_tokens(form.scopes);
    let outcome = state
        .db
        .run(move |conn| {
            if narrowing {
                connected::narrow(conn, &user_id, &form.grant, &kept, now())
            } else {
                connected::revoke(conn, &user_id, &form.grant, now())
            }
        })
        .await
        .map_err(|e: StorageError| PageError::from(e))?;
    // A grant may have changed: this instance's next answer must know.
    state.cache.forget_all();
    if outcome == Outcome::Revoked {
        state
            .metrics
            .increment(&crate::metrics::GRANTS_REVOKED, "reason", "user");
    }
    match outcome {
        Outcome::NotFound => Err(PageError::NotFound),
        Outcome::Revoked | Outcome::Narrowed => Ok(see_other("/account/apps")),
    }
}
