//! `/oauth2/authorize`: GET validates the request and signs in, asks for
//! consent or redirects with a code; POST is the consent form's answer.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{login_redirect, see_other};
use crate::domain::{ScopeSet, SecretToken, now};
use crate::http::browser::{Browser, client_ip};
use crate::http::error::PageError;
use crate::http::pages::{
    AccountChoicePage, ConsentPage, Layout, RedirectNoticePage, ScopeLine, render,
};
use crate::http::state::AppState;
use crate::oauth::authorize::{
    self, AnswerError, ChoiceReason, ConsentAnswer, Decision, Rejection, Seen, SessionView, Step,
};

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
        // RFC 9700 §4.11.2, RU-10: no automatic redirect to an unverified
        // self-registered client unless the user vouched for it (see
        // `oauth::authorize::begin`); a page names the destination and
        // offers a plain link instead.
        Rejection::Redirect(redirect) if redirect.unverified_client.is_some() => {
            let location = redirect.location(state.settings.server.issuer_str());
            let page = RedirectNoticePage {
                layout: Layout::anonymous("Leaving tessera"),
                heading: "The application reported a problem",
                client_name: redirect.unverified_client.as_deref().unwrap_or_default(),
                origin: &redirect.destination_origin(),
                location: &location,
            };
            Ok(render(StatusCode::BAD_REQUEST, &page))
        }
        Rejection::Redirect(redirect) => Ok(found(
            &redirect.location(state.settings.server.issuer_str()),
        )),
        Rejection::TooMany { retry_after_secs } => {
            Err(PageError::TooManyRequests { retry_after_secs })
        }
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
    let settings = state.settings.clone();
    let keys = state.keys.get().await.map_err(key_failure)?;
    let session = browser.session.as_ref().map(|current| SessionView {
        user_id: current.user().id.clone(),
        auth_time: current.session.auth_time,
        token_digest: current.token.digest(),
    });
    let ip = client_ip(&req, &state.settings.server.trusted_proxies);
    let binding = browser.resume_binding()?;
    let step = state
        .db
        .write(move |conn| {
            Ok::<_, crate::storage::StorageError>(authorize::begin(
                conn,
                &settings,
                &keys,
                &query,
                &Seen {
                    session: session.as_ref(),
                    browser: &binding,
                    client_ip: &ip,
                },
                now(),
            ))
        })
        .await?;
    // A grant may have changed: this instance's next answer must know.
    state.cache.forget_all();
    match step {
        Ok(Step::SignIn {
            resume_id,
            login_hint,
            reauth,
        }) => Ok(browser.finish(see_other(&login_location(&resume_id, login_hint, reauth)))),
        Ok(Step::ChooseAccount {
            resume_id,
            client_name,
            reason,
        }) => choose_account(&mut browser, &resume_id, &client_name, reason),
        Ok(Step::Decided(Decision::Issued { location })) => Ok(found(&location)),
        Ok(Step::Decided(decision)) => consent_page(&state, &mut browser, decision),
        Err(rejection) => rejected(&state, rejection),
    }
}

/// `/oauth2/authorize?resume=<id>`: where the sign-in page comes back to.
fn resume_path(resume_id: &SecretToken) -> String {
    let query = serde_urlencoded::to_string([("resume", resume_id.expose())]).unwrap_or_default();
    format!("/oauth2/authorize?{query}")
}

fn login_location(resume_id: &SecretToken, login_hint: Option<String>, reauth: bool) -> String {
    let mut login = vec![("return_to", resume_path(resume_id))];
    if let Some(hint) = login_hint {
        login.push(("login_hint", hint));
    }
    if reauth {
        login.push(("reauth", "1".to_owned()));
    }
    format!(
        "/login?{}",
        serde_urlencoded::to_string(&login).unwrap_or_default()
    )
}

/// The account chooser: "You are signed in as B; <app> asked for another
/// account" (review F15), or asks which account to use
/// (`prompt=select_account`).
fn choose_account(
    browser: &mut Browser,
    resume_id: &SecretToken,
    client_name: &str,
    reason: ChoiceReason,
) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Err(PageError::Internal(anyhow::anyhow!(
            "an account choice without a session"
        )));
    };
    let csrf_token = browser.csrf_token()?;
    let continue_href = format!("{}&continue=1", resume_path(resume_id));
    let switch_href = login_location(resume_id, None, true);
    let page = AccountChoicePage {
        layout: Layout {
            title: "Choose an account",
            user: Some(current.user().greeting_name()),
            csrf_token: Some(&csrf_token),
        },
        user_name: current.user().greeting_name(),
        client_name,
        other_account_expected: reason == ChoiceReason::OtherAccountExpected,
        continue_href: &continue_href,
        switch_href: &switch_href,
    };
    Ok(browser.finish(render(StatusCode::OK, &page)))
}

fn consent_page(
    state: &AppState,
    browser: &mut Browser,
    decision: Decision,
) -> Result<HttpResponse, PageError> {
    let (
        Decision::AskConsent {
            pending_id,
            client,
            new_scopes,
            granted_scopes,
            audiences,
        },
        Some(current),
    ) = (decision, browser.session.clone())
    else {
        return Err(PageError::Internal(anyhow::anyhow!(
            "a consent page without a pending request or a session"
        )));
    };
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
        new_scopes: scope_lines(state, &new_scopes),
        granted_scopes: scope_lines(state, &granted_scopes),
        audiences,
    };
    Ok(browser.finish(render(StatusCode::OK, &page)))
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
        Err(AnswerError::Page(message)) => Err(PageError::BadRequest(message)),
        Err(AnswerError::Failed(error)) => Err(error.into()),
    }
}
