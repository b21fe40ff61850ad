//! `/oauth2/authorize`: GET validates the request and signs in, asks for
//! consent or redirects with a code; POST is the consent form's answer.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{login_redirect, see_other};
use crate::domain::{ScopeSet, SecretToken, now};
use crate::http::browser::Browser;
use crate::http::error::PageError;
use crate::http::pages::{ConsentPage, Layout, ScopeLine, render};
use crate::http::state::AppState;
use crate::oauth::Params;
use crate::oauth::authorize::{
    self, AnswerError, ConsentAnswer, Decision, ErrorRedirect, Rejection,
};
use crate::oauth::error::OAuthError;

/// A 302 to the client (errors and codes from GET).
fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn rejected(state: &AppState, rejection: Rejection) -> Result<HttpResponse, PageError> {
    match rejection {
        Rejection::Page(message) => Err(PageError::BadRequest(message)),
        Rejection::Redirect(redirect) => Ok(found(
            &redirect.location(state.settings.server.issuer_str()),
        )),
        Rejection::Failed(error) => Err(error.into()),
    }
}

#[tracing::instrument(skip_all, fields(client.id = tracing::field::Empty))]
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut browser: Browser,
) -> Result<HttpResponse, PageError> {
    let query = req.query_string().to_owned();
    let params = Params::parse(&query);
    let settings = state.settings.clone();
    let validated = state
        .db
        .write(move |conn| {
            Ok::<_, crate::storage::StorageError>(authorize::validate(conn, &settings, &params))
        })
        .await?;
    let request = match validated {
        Ok(request) => request,
        Err(rejection) => return rejected(&state, rejection),
    };
    tracing::Span::current().record("client.id", request.client.id.as_str());
    let fresh_sign_in_needed = match &browser.session {
        None => true,
        Some(current) => request.needs_fresh_sign_in(current.session.auth_time, now()),
    };
    if fresh_sign_in_needed {
        if request.prompt.none {
            return rejected(
                &state,
                Rejection::Redirect(ErrorRedirect {
                    redirect_uri: request.redirect_uri,
                    state: request.state,
                    error: OAuthError::LoginRequired("the user must sign in".to_owned()),
                }),
            );
        }
        // Back here after signing in, without the prompt=login that sent
        // the browser away (or it would loop).
        let again: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(key, _)| key != "prompt")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let return_to = format!(
            "/oauth2/authorize?{}",
            serde_urlencoded::to_string(&again).unwrap_or_default()
        );
        let mut login = vec![("return_to", return_to)];
        if let Some(hint) = &request.login_hint {
            login.push(("login_hint", hint.clone()));
        }
        if browser.session.is_some() {
            login.push(("reauth", "1".to_owned()));
        }
        return Ok(see_other(&format!(
            "/login?{}",
            serde_urlencoded::to_string(&login).unwrap_or_default()
        )));
    }
    let Some(current) = browser.session.clone() else {
        return Err(PageError::Internal(anyhow::anyhow!(
            "a session vanished between two lines"
        )));
    };
    let settings = state.settings.clone();
    let keys = state.keys.get().await.map_err(key_failure)?;
    let user_id = current.user().id.clone();
    let auth_time = current.session.auth_time;
    let decided = state
        .db
        .write(move |conn| {
            Ok::<_, crate::storage::StorageError>(authorize::decide(
                conn,
                &settings,
                &keys,
                request,
                &user_id,
                auth_time,
                now(),
            ))
        })
        .await?;
    // A grant may have changed: this instance's next answer must know.
    state.cache.forget_all();
    match decided {
        Ok(Decision::Issued { location }) => Ok(found(&location)),
        Ok(Decision::AskConsent {
            pending_id,
            client,
            new_scopes,
            granted_scopes,
        }) => {
            let csrf_token = browser.csrf_token()?;
            let page = ConsentPage {
                layout: Layout {
                    title: "Allow access",
                    user: Some(current.user().greeting_name()),
                    csrf_token: Some(&csrf_token),
                },
                csrf_token: &csrf_token,
                pending_id: pending_id.expose(),
                client_name: &client.name,
                homepage: client.homepage_uri.as_deref(),
                verified: client.verified,
                new_scopes: scope_lines(&state, &new_scopes),
                granted_scopes: scope_lines(&state, &granted_scopes),
            };
            Ok(browser.finish(render(StatusCode::OK, &page)))
        }
        Err(rejection) => rejected(&state, rejection),
    }
}

fn key_failure(error: crate::oauth::keys::KeyError) -> PageError {
    match error {
        crate::oauth::keys::KeyError::Storage(storage) => storage.into(),
        other => PageError::Internal(other.into()),
    }
}

fn scope_lines(state: &AppState, scopes: &ScopeSet) -> Vec<ScopeLine> {
    scopes
        .iter()
        .map(|name| ScopeLine {
            name: name.to_owned(),
            description: state
                .settings
                .scopes
                .iter()
                .find(|s| s.name == name)
                .map_or_else(|| name.to_owned(), |s| s.description.clone()),
            required: name == "openid",
        })
        .collect()
}

/// The consent form's answer. Only the pending request stored on the
/// server counts; the form adds nothing but the ticked scopes (CS-02, CS-03).
#[tracing::instrument(skip_all)]
pub async fn answer(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: Browser,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(login_redirect("/account"));
    };
    let text = std::str::from_utf8(&body)
        .map_err(|_| PageError::BadRequest("The form could not be read.".to_owned()))?;
    let mut csrf_token = None;
    let mut pending_id = None;
    let mut decision = None;
    let mut ticked = Vec::new();
    for (key, value) in url::form_urlencoded::parse(text.as_bytes()) {
        match key.as_ref() {
            "csrf_token" => csrf_token = Some(value.into_owned()),
            "request" => pending_id = Some(value.into_owned()),
            "decision" => decision = Some(value.into_owned()),
            "scope" => ticked.push(value.into_owned()),
            _ => {}
        }
    }
    browser.verify_form(
        &req,
        csrf_token.as_deref().unwrap_or(""),
        &state.settings.server.origin(),
    )?;
    let pending_id = pending_id
        .filter(|id| id.len() <= 128)
        .map(SecretToken::from_presented)
        .ok_or_else(|| PageError::BadRequest("The form does not name a request.".to_owned()))?;
    if let Some(decision) = decision
        .as_deref()
        .filter(|d| matches!(*d, "allow" | "deny"))
    {
        state
            .metrics
            .increment(&crate::metrics::CONSENT_DECISIONS, "decision", decision);
    }
    let answer = match decision.as_deref() {
        Some("allow") => ConsentAnswer::Allow(ScopeSet::from_tokens(ticked)),
        Some("deny") => ConsentAnswer::Deny,
        _ => return Err(PageError::BadRequest("Choose Allow or Deny.".to_owned())),
    };
    let settings = state.settings.clone();
    let keys = state.keys.get().await.map_err(key_failure)?;
    let user_id = current.user().id.clone();
    let outcome = state
        .db
        .write(move |conn| {
            Ok::<_, crate::storage::StorageError>(authorize::answer(
                conn,
                &settings,
                &keys,
                &pending_id,
                &user_id,
                answer,
                now(),
            ))
        })
        .await?;
    // A grant may have changed: this instance's next answer must know.
    state.cache.forget_all();
    match outcome {
        // AZ-04: 303, so the browser follows with GET and never re-posts.
        Ok(location) => Ok(see_other(&location)),
        Err(AnswerError::NotYours) => {
            tracing::warn!(user.id = %current.user().id, "consent answer for another user's request refused");
            Err(PageError::Forbidden("This request belongs to another account.".to_owned()))
        }
        Err(AnswerError::Expired) => Err(PageError::BadRequest(
            "This request has expired or was already answered. Go back to the application and start again.".to_owned(),
        )),
        Err(AnswerError::Failed(error)) => Err(error.into()),
    }
}
