//! askama page structs, one per template in `templates/`. Pages receive
//! display-ready data; escaping stays on for everything (CS-05).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use askama::Template;

use crate::domain::FieldError;

/// What the shared layout (`base.html`) shows around every page.
pub struct Layout<'a> {
    pub title: &'a str,
    /// The signed-in user's name, for the header.
    pub user: Option<&'a str>,
    /// The CSRF token for the header's sign-out button.
    pub csrf_token: Option<&'a str>,
}

impl<'a> Layout<'a> {
    pub fn anonymous(title: &'a str) -> Self {
        Self {
            title,
            user: None,
            csrf_token: None,
        }
    }
}

/// Renders a page with the given status. HTML is never cached (CS-04); the
/// security headers come from the middleware.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .body(body),
        Err(error) => {
            tracing::error!(error = %error, "a page template failed to render");
            HttpResponse::InternalServerError()
                .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("tessera could not render this page.")
        }
    }
}

/// Form errors looked up by field name from templates.
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn none() -> Self {
        Self(Vec::new())
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub layout: Layout<'a>,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub layout: Layout<'a>,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub return_to: Option<&'a str>,
    pub error: Option<&'a str>,
    pub signup_enabled: bool,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage<'a> {
    pub layout: Layout<'a>,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub display_name: &'a str,
    pub return_to: Option<&'a str>,
    pub errors: FieldErrors,
    pub min_password_length: usize,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub layout: Layout<'a>,
    pub username: &'a str,
    pub display_name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub member_since: &'a str,
    pub signed_in_at: &'a str,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub layout: Layout<'a>,
    pub csrf_token: &'a str,
    pub return_to: Option<&'a str>,
}

/// A scope as the consent page shows it.
pub struct ScopeLine {
    pub name: String,
    pub description: String,
    /// Cannot be unticked (`openid`: the request is about signing in).
    pub required: bool,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub layout: Layout<'a>,
    pub csrf_token: &'a str,
    pub pending_id: &'a str,
    pub client_name: &'a str,
    pub homepage: Option<&'a str>,
    pub verified: bool,
    pub new_scopes: Vec<ScopeLine>,
    pub granted_scopes: Vec<ScopeLine>,
    /// The APIs (RFC 8707 audiences) the tokens will be for, when the
    /// request named resources.
    pub audiences: Vec<String>,
}

/// The interstitial before tessera sends the browser to an unverified
/// self-registered client (RFC 9700 §4.11.2, RU-10): it names the app and
/// the destination and offers a plain link; nothing follows it by itself.
#[derive(Template)]
#[template(path = "redirect_notice.html")]
pub struct RedirectNoticePage<'a> {
    pub layout: Layout<'a>,
    pub heading: &'a str,
    pub client_name: &'a str,
    /// `scheme://host[:port]` of the destination.
    pub origin: &'a str,
    /// The whole destination, for the link.
    pub location: &'a str,
}

/// Signed in as one account while the application's `id_token_hint` names
/// another (OIDC Core §3.1.2.1).
#[derive(Template)]
#[template(path = "account_choice.html")]
pub struct AccountChoicePage<'a> {
    pub layout: Layout<'a>,
    pub user_name: &'a str,
    pub client_name: &'a str,
    /// The client named another account (`id_token_hint`); otherwise it
    /// asked the user to choose (`prompt=select_account`).
    pub other_account_expected: bool,
    pub continue_href: &'a str,
    pub switch_href: &'a str,
}

/// One connected app on `/account/apps`.
pub struct AppLine {
    pub grant_id: String,
    pub name: String,
    pub verified: bool,
    pub homepage: Option<String>,
    pub scopes: Vec<ScopeLine>,
    pub granted_on: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "apps.html")]
pub struct AppsPage<'a> {
    pub layout: Layout<'a>,
    pub csrf_token: &'a str,
    pub apps: Vec<AppLine>,
}

#[derive(Template)]
#[template(path = "end_session.html")]
pub struct EndSessionPage<'a> {
    pub layout: Layout<'a>,
    pub csrf_token: &'a str,
    pub client_name: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    pub layout: Layout<'a>,
}

/// A scope checkbox on the developer form.
pub struct ScopeChoice {
    pub name: String,
    pub description: String,
    pub checked: bool,
}

/// What the developer typed (or what is stored, when editing).
#[derive(Default)]
pub struct AppFormValues {
    pub name: String,
    pub description: String,
    pub homepage_uri: String,
    pub logo_uri: String,
    pub policy_uri: String,
    pub tos_uri: String,
    pub kind: String,
    pub redirect_uris: String,
}

#[derive(Template)]
#[template(path = "developer_apps.html")]
pub struct DeveloperAppsPage<'a> {
    pub layout: Layout<'a>,
    /// (client id, name, type, verified)
    pub apps: Vec<(String, String, &'static str, bool)>,
}

#[derive(Template)]
#[template(path = "developer_app_form.html")]
pub struct DeveloperAppFormPage<'a> {
    pub layout: Layout<'a>,
    pub csrf_token: &'a str,
    pub action: &'a str,
    /// Set when editing an existing app.
    pub client_id: Option<&'a str>,
    pub confidential: bool,
    pub values: AppFormValues,
    pub scopes: Vec<ScopeChoice>,
    pub errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "developer_app_secret.html")]
pub struct DeveloperAppSecretPage<'a> {
    pub layout: Layout<'a>,
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
    pub rotated: bool,
    pub overlap_hours: i64,
}

#[derive(Template)]
#[template(path = "developer_app_delete.html")]
pub struct DeveloperAppDeletePage<'a> {
    pub layout: Layout<'a>,
    pub csrf_token: &'a str,
    pub client_id: &'a str,
    pub name: &'a str,
}
