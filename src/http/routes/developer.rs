//! `/developer/apps`: third-party developers register and manage their own
//! apps. Owner-only: another user's app id is a 404.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{login_redirect, see_other};
use crate::auth::CurrentSession;
use crate::domain::{Client, ClientId, FieldError, now};
use crate::http::browser::Browser;
use crate::http::error::PageError;
use crate::http::pages::{
    AppFormValues, DeveloperAppDeletePage, DeveloperAppFormPage, DeveloperAppSecretPage,
    DeveloperAppsPage, FieldErrors, Layout, ScopeChoice, render,
};
use crate::http::state::AppState;
use crate::oauth::Params;
use crate::oauth::clients::{self as registry, ClientRegistration, RegistrationError};
use crate::storage::{StorageError, clients, grants};

/// The form as posted: single fields plus the repeated `scope`.
struct PostedForm {
    params: Params,
    scopes: Vec<String>,
}

fn parse(body: &[u8]) -> Result<PostedForm, PageError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| PageError::BadRequest("The form could not be read.".to_owned()))?;
    let scopes = url::form_urlencoded::parse(text.as_bytes())
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .collect();
    Ok(PostedForm {
        params: Params::parse(text),
        scopes,
    })
}

impl PostedForm {
    fn text(&self, key: &str) -> String {
        self.params
            .get(key)
            .map(|v| super::echo(v).to_owned())
            .unwrap_or_default()
    }

    fn optional(&self, key: &str) -> Option<String> {
        self.params
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn values(&self) -> AppFormValues {
        AppFormValues {
            name: self.text("name"),
            description: self.text("description"),
            homepage_uri: self.text("homepage_uri"),
            logo_uri: self.text("logo_uri"),
            policy_uri: self.text("policy_uri"),
            tos_uri: self.text("tos_uri"),
            kind: self.text("kind"),
            redirect_uris: self
                .params
                .get("redirect_uris")
                .unwrap_or("")
                .chars()
                .take(4000)
                .collect(),
        }
    }

    fn registration(&self, owner: &str) -> ClientRegistration {
        ClientRegistration {
            name: self.params.get("name").unwrap_or("").to_owned(),
            public: matches!(self.params.get("kind"), Some("spa" | "native")),
            redirect_uris: self
                .params
                .get("redirect_uris")
                .unwrap_or("")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            scopes: self.scopes.clone(),
            grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
            homepage_uri: self.optional("homepage_uri"),
            logo_uri: self.optional("logo_uri"),
            policy_uri: self.optional("policy_uri"),
            tos_uri: self.optional("tos_uri"),
            description: self.optional("description"),
            owner_user_id: Some(owner.to_owned()),
            self_registered: true,
            ..ClientRegistration::default()
        }
    }
}

fn field_errors(error: &RegistrationError) -> Vec<FieldError> {
    vec![FieldError {
        field: error.field().unwrap_or("form"),
        message: error.to_string(),
    }]
}

fn scope_choices(state: &AppState, checked: &[String]) -> Vec<ScopeChoice> {
    state
        .settings
        .registration
        .allowed_scopes
        .iter()
        .map(|name| ScopeChoice {
            name: name.clone(),
            description: state
                .settings
                .scopes
                .iter()
                .find(|s| &s.name == name)
                .map_or_else(|| name.clone(), |s| s.description.clone()),
            checked: checked.contains(name),
        })
        .collect()
}

fn layout<'a>(title: &'a str, current: &'a CurrentSession, csrf: &'a str) -> Layout<'a> {
    Layout {
        title,
        user: Some(current.user().greeting_name()),
        csrf_token: Some(csrf),
    }
}

/// The signed-in user's own app, or 404.
async fn owned_app(
    state: &AppState,
    current: &CurrentSession,
    raw_id: &str,
) -> Result<Client, PageError> {
    let id = ClientId::parse(raw_id).ok_or(PageError::NotFound)?;
    let owner = current.user().id.as_str().to_owned();
    state
        .db
        .run(move |conn| clients::find(conn, &id))
        .await?
        .filter(|client| client.owner_user_id.as_deref() == Some(owner.as_str()))
        .ok_or(PageError::NotFound)
}

/// The common start of the owner-only posts: a signed-in owner, their app,
/// the parsed form with a valid CSRF token. `None`: not signed in.
async fn owned_post(
    req: &HttpRequest,
    state: &AppState,
    browser: &Browser,
    raw_id: &str,
    body: &[u8],
) -> Result<Option<(CurrentSession, Client, PostedForm)>, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(None);
    };
    let client = owned_app(state, &current, raw_id).await?;
    let form = parse(body)?;
    browser.verify_form(
        req,
        form.params.get("csrf_token").unwrap_or(""),
        &state.settings.server.origin(),
    )?;
    Ok(Some((current, client, form)))
}

/// The register/edit form; `client` is set when editing.
#[expect(clippy::too_many_arguments, reason = "everything the one form shows")]
fn form_page(
    state: &AppState,
    browser: &mut Browser,
    current: &CurrentSession,
    client: Option<&Client>,
    values: AppFormValues,
    checked: &[String],
    errors: Vec<FieldError>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let csrf = browser.csrf_token()?;
    let action = client.map_or_else(
        || "/developer/apps/new".to_owned(),
        |c| format!("/developer/apps/{}", c.id),
    );
    let title = if client.is_some() {
        "Your app"
    } else {
        "Register an app"
    };
    let page = DeveloperAppFormPage {
        layout: layout(title, current, &csrf),
        csrf_token: &csrf,
        action: &action,
        client_id: client.map(|c| c.id.as_str()),
        confidential: client.is_none_or(Client::is_confidential),
        values,
        scopes: scope_choices(state, checked),
        errors: FieldErrors(errors),
    };
    Ok(browser.finish(render(status, &page)))
}

#[tracing::instrument(skip_all)]
pub async fn list(
    state: web::Data<AppState>,
    mut browser: Browser,
) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(login_redirect("/developer/apps"));
    };
    let user_id = current.user().id.clone();
    let owned = state
        .db
        .run(move |conn| clients::list_owned(conn, &user_id))
        .await?;
    let csrf = browser.csrf_token()?;
    let page = DeveloperAppsPage {
        layout: layout("Your apps", &current, &csrf),
        apps: owned
            .into_iter()
            .map(|c| {
                (
                    c.id.as_str().to_owned(),
                    c.name.clone(),
                    c.client_type.as_str(),
                    c.verified,
                )
            })
            .collect(),
    };
    Ok(browser.finish(render(StatusCode::OK, &page)))
}

#[tracing::instrument(skip_all)]
pub async fn new_form(
    state: web::Data<AppState>,
    mut browser: Browser,
) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(login_redirect("/developer/apps/new"));
    };
    form_page(
        &state,
        &mut browser,
        &current,
        None,
        AppFormValues::default(),
        &["openid".to_owned()],
        Vec::new(),
        StatusCode::OK,
    )
}

/// Creates the app; nothing is stored when a field is wrong. The secret is
/// shown once, on the answer to this post.
#[tracing::instrument(skip_all)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut browser: Browser,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(login_redirect("/developer/apps/new"));
    };
    let form = parse(&body)?;
    browser.verify_form(
        &req,
        form.params.get("csrf_token").unwrap_or(""),
        &state.settings.server.origin(),
    )?;
    let registration = form.registration(current.user().id.as_str());
    let settings = state.settings.clone();
    let owner = current.user().id.clone();
    let outcome = state
        .db
        .write(move |conn| {
            Ok::<_, StorageError>(registry::register_owned(
                conn,
                &settings,
                &registration,
                &owner,
                now(),
            ))
        })
        .await?;
    let csrf = browser.csrf_token()?;
    match outcome {
        Ok(registered) => {
            tracing::info!(client.id = %registered.client.id, user.id = %current.user().id, "app registered on the developer pages");
            let secret = registered.secret.as_ref().map(|s| s.expose().to_owned());
            let page = DeveloperAppSecretPage {
                layout: layout("App registered", &current, &csrf),
                client_id: registered.client.id.as_str(),
                client_secret: secret.as_deref(),
                rotated: false,
                overlap_hours: 0,
            };
            Ok(browser.finish(render(StatusCode::OK, &page)))
        }
        Err(RegistrationError::Storage(error)) => Err(error.into()),
        Err(error) => form_page(
            &state,
            &mut browser,
            &current,
            None,
            form.values(),
            &form.scopes,
            field_errors(&error),
            StatusCode::BAD_REQUEST,
        ),
    }
}

#[tracing::instrument(skip_all)]
pub async fn show(
    state: web::Data<AppState>,
    mut browser: Browser,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(login_redirect("/developer/apps"));
    };
    let client = owned_app(&state, &current, &path).await?;
    let checked: Vec<String> = client.allowed_scopes.iter().map(str::to_owned).collect();
    let values = AppFormValues {
        name: client.name.clone(),
        description: client.description.clone().unwrap_or_default(),
        homepage_uri: client.homepage_uri.clone().unwrap_or_default(),
        logo_uri: client.logo_uri.clone().unwrap_or_default(),
        policy_uri: client.policy_uri.clone().unwrap_or_default(),
        tos_uri: client.tos_uri.clone().unwrap_or_default(),
        kind: String::new(),
        redirect_uris: client
            .redirect_uris
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    form_page(
        &state,
        &mut browser,
        &current,
        Some(&client),
        values,
        &checked,
        Vec::new(),
        StatusCode::OK,
    )
}

/// Saves edited metadata (the type and secret stay).
#[tracing::instrument(skip_all)]
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut browser: Browser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let Some((current, client, form)) = owned_post(&req, &state, &browser, &path, &body).await?
    else {
        return Ok(login_redirect("/developer/apps"));
    };
    let mut registration = form.registration(current.user().id.as_str());
    registration.public = !client.is_confidential();
    let settings = state.settings.clone();
    let existing = client.clone();
    let outcome = state
        .db
        .run(move |conn| {
            let validated = match registry::validate(&settings, &registration, now()) {
                Ok(registered) => registered.client,
                Err(error) => return Ok(Err(error)),
            };
            let updated = Client {
                id: existing.id.clone(),
                client_type: existing.client_type,
                ..validated
            };
            clients::update_metadata(conn, &updated, now())?;
            Ok::<_, StorageError>(Ok(()))
        })
        .await?;
    state.cache.forget_all();
    match outcome {
        Ok(()) => Ok(see_other(&format!("/developer/apps/{}", client.id))),
        Err(error) => form_page(
            &state,
            &mut browser,
            &current,
            Some(&client),
            form.values(),
            &form.scopes,
            field_errors(&error),
            StatusCode::BAD_REQUEST,
        ),
    }
}

/// A new secret, shown once; the previous one keeps working for
/// `registration.secret_rotation_overlap_secs`.
#[tracing::instrument(skip_all)]
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut browser: Browser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let Some((current, client, _form)) = owned_post(&req, &state, &browser, &path, &body).await?
    else {
        return Ok(login_redirect("/developer/apps"));
    };
    let overlap = state.settings.registration.secret_rotation_overlap_secs;
    let id = client.id.clone();
    let secret = state
        .db
        .run(move |conn| Ok::<_, StorageError>(registry::rotate_secret(conn, &id, overlap, now())))
        .await
        .inspect(|_| state.cache.forget_all())?
        .map_err(|e| PageError::BadRequest(e.to_string()))?
        .ok_or(PageError::NotFound)?;
    tracing::info!(client.id = %client.id, "client secret rotated on the developer pages");
    let csrf = browser.csrf_token()?;
    let page = DeveloperAppSecretPage {
        layout: layout("New secret", &current, &csrf),
        client_id: client.id.as_str(),
        client_secret: Some(secret.expose()),
        rotated: true,
        overlap_hours: overlap / 3600,
    };
    Ok(browser.finish(render(StatusCode::OK, &page)))
}

#[tracing::instrument(skip_all)]
pub async fn confirm_delete(
    state: web::Data<AppState>,
    mut browser: Browser,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let Some(current) = browser.session.clone() else {
        return Ok(login_redirect("/developer/apps"));
    };
    let client = owned_app(&state, &current, &path).await?;
    let csrf = browser.csrf_token()?;
    let page = DeveloperAppDeletePage {
        layout: layout("Delete app", &current, &csrf),
        csrf_token: &csrf,
        client_id: client.id.as_str(),
        name: &client.name,
    };
    Ok(browser.finish(render(StatusCode::OK, &page)))
}

/// Revokes every grant of the app, then deletes it.
#[tracing::instrument(skip_all)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    browser: Browser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    let Some((current, client, _form)) = owned_post(&req, &state, &browser, &path, &body).await?
    else {
        return Ok(login_redirect("/developer/apps"));
    };
    let id = client.id.clone();
    state
        .db
        .run(move |conn| {
            grants::revoke_for_client(conn, &id, "app deleted by its developer", now())?;
            clients::delete(conn, &id)
        })
        .await?;
    state.cache.forget_all();
    tracing::info!(client.id = %client.id, user.id = %current.user().id, "app deleted on the developer pages");
    Ok(see_other("/developer/apps"))
}
